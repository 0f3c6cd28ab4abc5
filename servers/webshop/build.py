"""Building a catalogue: raw records -> WebShop's processing -> the SQLite store and the Lucene index.

One pass over the records: each product is processed and encoded, written to the store, and handed to
the index writer, whose Java threads index while Python goes on. Generated catalogues are produced by a
pool of worker processes (each product is a pure function of seed and index); real files are streamed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import catalogue, generator, search
from .catalogue import CatalogueError
from .store import build_store

logger = logging.getLogger(__name__)

PARALLEL_FROM = 20_000  # below this, starting worker processes costs more than it saves
_CHUNK = 2_000


@dataclass(frozen=True)
class Prepared:
    """One product, processed and encoded for the store and the index (all fields are JSON text)."""

    asin: str
    doc: str  # the served product
    goal_info: str | None  # {synthetic, human, Price, options}, or None when it cannot be a goal
    index_doc: str  # {"id", "contents"}: the document the index gets

    def line(self) -> str:
        # JSON text never holds a raw tab or newline, so a tab-separated line frames a product.
        return "\t".join((self.asin, self.doc, self.goal_info or "", self.index_doc)) + "\n"

    @classmethod
    def from_line(cls, line: str) -> Prepared:
        asin, doc, goal_info, index_doc = line.rstrip("\n").split("\t")
        return cls(asin, doc, goal_info or None, index_doc)


def prepare(raw: dict[str, Any], entry: dict[str, Any] | None, human: list | None) -> Prepared:
    """Process a raw record (WebShop's rules) and encode what the store and the index keep."""
    product = catalogue.process_product(raw, entry)
    synthetic = None if entry is None else entry.get("synthetic")
    goal_info = None
    if synthetic is not None or human:
        goal_info = json.dumps({"synthetic": synthetic, "human": human, "Price": product["Price"],
                                "options": product["options"]}, ensure_ascii=False)
    index_doc = json.dumps({"id": raw["asin"], "contents": catalogue.search_text(product)}, ensure_ascii=False)
    return Prepared(raw["asin"], json.dumps(product, ensure_ascii=False), goal_info, index_doc)


def _prepare_generated(seed: int, start: int, stop: int) -> Iterator[Prepared]:
    for index in range(start, stop):
        raw, ins = generator.generate_product(seed, index)
        synthetic = catalogue.synthetic_instruction(raw["asin"], ins, generator.VOCAB_PATH)
        yield prepare(raw, {"attributes": ins["attributes"], "synthetic": synthetic}, None)


def _chunks(num_products: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, num_products)) for s in range(0, num_products, size)]


def generated_products(num_products: int, seed: int, workers: int) -> Iterator[Prepared]:
    """The prepared products of a generated catalogue, in order, made by ``workers`` processes.

    Worker ``w`` makes chunks w, w + workers, ...; the pipes bound how far they run ahead. Workers are
    plain ``python -m servers.webshop.build`` processes rather than multiprocessing ones: spawning would
    re-run the caller's ``__main__`` (a script calling World.load at top level would recurse), and
    forking a process that runs a JVM is unsafe.
    """
    chunks = _chunks(num_products, _CHUNK)
    if workers <= 1 or num_products < PARALLEL_FROM:
        for start, stop in chunks:
            yield from _prepare_generated(seed, start, stop)
        return
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    # stderr goes to a file, not a pipe, so a chatty worker cannot block on it
    errors = [tempfile.TemporaryFile() for _ in range(workers)]  # noqa: SIM115 (closed in the finally below)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "servers.webshop.build", *map(str, (seed, num_products, _CHUNK, w, workers))],
            stdout=subprocess.PIPE, stderr=errors[w], env=env,
        )
        for w in range(workers)
    ]

    def failure(w: int) -> RuntimeError:
        procs[w].wait()
        errors[w].seek(0)
        return RuntimeError(f"catalogue worker {w} failed: {errors[w].read()[-2000:].decode(errors='replace')}")

    try:
        for k, (start, stop) in enumerate(chunks):
            out = procs[k % workers].stdout
            assert out is not None
            for _ in range(stop - start):
                line = out.readline()
                if not line:
                    raise failure(k % workers)
                yield Prepared.from_line(line.decode("utf-8"))
        for w, proc in enumerate(procs):
            if proc.wait() != 0:
                raise failure(w)
    finally:
        for proc, err in zip(procs, errors, strict=True):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            err.close()


def _worker_main(argv: list[str]) -> None:
    """Write the prepared products of this worker's chunks to stdout (see generated_products)."""
    seed, num_products, chunk, worker, workers = (int(a) for a in argv)
    out = sys.stdout.buffer
    for start, stop in _chunks(num_products, chunk)[worker::workers]:
        out.write("".join(p.line() for p in _prepare_generated(seed, start, stop)).encode("utf-8"))
    out.flush()


def real_products(files: catalogue.RealFiles, limit: int | None) -> Iterator[Prepared]:
    """The prepared products of WebShop's real files, skipping the records WebShop skips."""
    logger.info("reading %s", files.attributes)
    attributes = {}
    for asin, entry in catalogue.iter_json(files.attributes, dict):
        synthetic = catalogue.synthetic_instruction(asin, entry, files.attributes)
        attributes[asin] = {"attributes": entry.get("attributes", []), "synthetic": synthetic}
    human: dict[str, list] = {}
    if files.human is not None:
        logger.info("reading %s", files.human)
        for asin, entry in catalogue.iter_json(files.human, dict):
            human[asin] = catalogue.human_instructions(asin, entry, files.human)
    logger.info("reading %s", files.products)
    seen: set[str] = set()
    skipped = 0
    for raw in catalogue.iter_raw_products(files.products, limit):
        asin = raw.get("asin")
        if not catalogue.valid_asin(asin) or asin in seen:
            skipped += 1
            continue
        seen.add(asin)
        yield prepare(raw, attributes.get(asin), human.get(asin))
    if skipped:
        logger.info("skipped %d records (asin 'nan', longer than 10 characters, or repeated)", skipped)


def build_catalogue(products: Iterator[Prepared], path: Path, total: int | None, meta: dict[str, Any]) -> int:
    """Write the store and the index of ``products`` into a new folder ``path`` (atomically, with READY)."""
    started = time.perf_counter()
    # The caller holds the build lock: a half-built folder or temporary folder left here was a crash's.
    for stale in [path, *path.parent.glob(f"{path.name}.tmp-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True)
    index = search.IndexWriter(tmp / "index", threads=max(1, min(4, os.cpu_count() or 1)))

    def rows() -> Iterator[tuple[str, str, str | None]]:
        for p in tqdm(products, total=total, desc="products", unit="", disable=None):
            index.add_json(p.index_doc)
            yield p.asin, p.doc, p.goal_info

    try:
        count = build_store(tmp / "products.sqlite", rows())
        if count == 0:
            raise CatalogueError(f"no usable product for {path.name}")
    except BaseException:
        index.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stored = time.perf_counter()
    index.close()
    (tmp / "meta.json").write_text(json.dumps({**meta, "num_products": count}, indent=1, default=str),
                                   encoding="utf-8")
    (tmp / "READY").touch()
    os.replace(tmp, path)
    logger.info("catalogue of %d products built in %.1f s (index done %.1f s after the store)", count,
                time.perf_counter() - started, time.perf_counter() - stored)
    return count


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
