"""The product store: one SQLite file per catalogue, shared read-only by every process that serves it.

Each process opens the file instead of holding the catalogue in RAM (WebShop keeps every product in every
worker); the OS page cache is shared. Connections are per thread (SQLite objects must not cross threads).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE products (
    idx INTEGER PRIMARY KEY,      -- catalogue order (WebShop's all_products order)
    asin TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,            -- the served product, JSON
    goal_info TEXT                -- JSON {synthetic, human, Price, options} for products that can be a goal
);
"""


def build_store(path: Path, rows: Iterable[tuple[str, str, str | None]]) -> int:
    """Write ``(asin, product JSON, goal info JSON or None)`` rows, in catalogue order, to a new SQLite file."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        # A fresh file written once: no journal and no fsync until the end; a crash leaves no READY marker.
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.executescript(_SCHEMA)
        count = 0

        def numbered() -> Iterator[tuple[int, str, str, str | None]]:
            nonlocal count
            for asin, doc, goal_info in rows:
                yield count, asin, doc, goal_info
                count += 1

        con.executemany("INSERT INTO products VALUES (?, ?, ?, ?)", numbered())
        con.commit()
    finally:
        con.close()
    return count


class ProductStore:
    """Read-only, thread-safe access to a built product store."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._count = self._connection().execute("SELECT COUNT(*) FROM products").fetchone()[0]

    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            self._local.con = con
        return con

    def __len__(self) -> int:
        return self._count

    def get(self, asin: str) -> dict[str, Any] | None:
        """The served product of ``asin``, or None."""
        row = self._connection().execute("SELECT doc FROM products WHERE asin = ?", (asin,)).fetchone()
        return None if row is None else json.loads(row[0])

    def contains(self, asin: str) -> bool:
        """Whether ``asin`` is in the catalogue."""
        return self._connection().execute("SELECT 1 FROM products WHERE asin = ?", (asin,)).fetchone() is not None

    def by_index(self, idx: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The served product at catalogue position ``idx`` and its goal info."""
        row = self._connection().execute("SELECT doc, goal_info FROM products WHERE idx = ?", (idx,)).fetchone()
        if row is None:
            raise IndexError(idx)
        return json.loads(row[0]), None if row[1] is None else json.loads(row[1])

    def iter_docs(self) -> Iterator[dict[str, Any]]:
        """Every served product, in catalogue order (a separate connection, streamed)."""
        con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            for (doc,) in con.execute("SELECT doc FROM products ORDER BY idx"):
                yield json.loads(doc)
        finally:
            con.close()

    def goal_rows(self) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """``(idx, asin, goal info)`` of the products that carry instructions, in catalogue order."""
        con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            query = "SELECT idx, asin, goal_info FROM products WHERE goal_info IS NOT NULL ORDER BY idx"
            for idx, asin, goal_info in con.execute(query):
                yield idx, asin, json.loads(goal_info)
        finally:
            con.close()

    def close(self) -> None:
        """Close this thread's connection (other threads' close when their thread ends)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
