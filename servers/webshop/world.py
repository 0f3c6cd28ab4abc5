"""The WebShop world: catalogue, search, goals and reward behind one facade.

``World.load(WorldConfig(...))`` builds, once per catalogue fingerprint, a SQLite product store and a
Lucene index in the cache folder (under a file lock, so concurrent processes build it once), plus a goal
table per price seed; later loads only open them. Every method is safe to call from many threads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import build, catalogue, generator, goals, reward, search
from .catalogue import CatalogueError
from .store import ProductStore

logger = logging.getLogger(__name__)

__all__ = ["CatalogueError", "World", "WorldConfig"]


class WorldConfig(BaseModel):
    """Which catalogue to serve and where to cache what is built from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_products: int = Field(1000, ge=1, le=10_000_000, description="size of the generated catalogue "
                              "(ignored with data_dir)")
    seed: int = Field(0, description="catalogue generation seed")
    data_dir: Path | None = Field(None, description="folder with WebShop's real files (items_shuffle*.json, "
                                  "items_ins_v2*.json, optional items_human_ins.json); None = generated")
    cache_dir: Path | None = Field(None, description="default: $HGPO_CACHE/webshop, else "
                                   "~/.cache/hgpo-agents/webshop")
    human_goals: bool = Field(True, description="use human goals when items_human_ins.json is present")
    price_seed: int = Field(0, description="seeds the charged price of range-priced products and the "
                            "goals' price limits (WebShop left both unseeded)")
    products_file: str | None = Field(None, description="with data_dir: the products file to use "
                                      "(default items_shuffle_1000.json, else items_shuffle.json)")
    max_products: int | None = Field(None, ge=1, description="with data_dir: keep only the first N raw "
                                     "records, as WebShop's num_products")

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(value).expanduser()

    def resolved_cache_dir(self) -> Path:
        """The cache folder this config uses."""
        if self.cache_dir is not None:
            return Path(self.cache_dir).expanduser()
        if os.environ.get("HGPO_CACHE"):
            return Path(os.environ["HGPO_CACHE"]).expanduser() / "webshop"
        return Path.home() / ".cache" / "hgpo-agents" / "webshop"


def _file_identity(path: Path) -> dict[str, Any]:
    """Name, size, mtime and a digest of the first and last MiB: cheap even for the 1.18M-product file."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        if stat.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
        digest.update(f.read(1 << 20))
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "digest": digest.hexdigest()}


def _describe_source(config: WorldConfig) -> tuple[dict[str, Any], catalogue.RealFiles | None]:
    if config.data_dir is None:
        source = {
            "kind": "generated",
            "num_products": config.num_products,
            "seed": config.seed,
            "generator": generator.GENERATOR_VERSION,
            "vocab": generator.vocab_digest(),
        }
        return source, None
    files = catalogue.find_real_files(Path(config.data_dir), config.products_file)
    source = {
        "kind": "real",
        "products": _file_identity(files.products),
        "attributes": _file_identity(files.attributes),
        "human": None if files.human is None else _file_identity(files.human),
        "max_products": config.max_products,
    }
    return source, files


def _fingerprint(source: dict[str, Any]) -> str:
    payload = {"processing": catalogue.PROCESSING_VERSION, "source": source}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class World:
    """A loaded WebShop world. Build it with ``World.load``; all methods are thread-safe.

    Attributes:
        config: the WorldConfig it was loaded from.
        fingerprint: hex digest of the catalogue source and processing version (names the cache entry).
        goals: the goal dicts in WebShop's shuffled order (a lazily built sequence).
        goal_weights: numpy array, one weight per goal in ``goals`` order (for weighted goal sampling).
        goal_kind: ``"human"`` or ``"synthetic"``.
        source: ``"generated"`` or ``"real"``.
        path: the cache folder holding this catalogue's store, index and goal tables.
    """

    def __init__(self, config: WorldConfig, fingerprint: str, path: Path, goal_kind: goals.GoalKind,
                 source: str) -> None:
        self.config = config
        self.fingerprint = fingerprint
        self.path = path
        self.goal_kind = goal_kind
        self.source = source
        self._store = ProductStore(path / "products.sqlite")
        self._searcher = search.Searcher(path / "index")
        table = goals.load_goal_table(path / self._goal_file(goal_kind, config.price_seed))
        self.goals = goals.GoalList(table, self._store, goal_kind)
        self.goal_weights = self.goals.weights

    @staticmethod
    def _goal_file(kind: str, price_seed: int) -> str:
        return f"goals-{kind}-price{price_seed}-v{goals.GOALS_VERSION}.npz"

    @classmethod
    def load(cls, config: WorldConfig | None = None) -> World:
        """Build (once per catalogue fingerprint) or open the store, index and goals of ``config``.

        Raises CatalogueError when real files are missing or malformed (the message names the file).
        """
        config = config or WorldConfig()
        started = time.perf_counter()
        source, files = _describe_source(config)
        fingerprint = _fingerprint(source)
        cache_dir = config.resolved_cache_dir()
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / f"catalogue-{fingerprint[:20]}"
        kind: goals.GoalKind = "human" if files is not None and files.human is not None and config.human_goals \
            else "synthetic"
        goal_path = path / cls._goal_file(kind, config.price_seed)
        if not ((path / "READY").is_file() and goal_path.is_file()):
            # Only a build writes, so a complete cache (say, baked into a read-only image) needs no lock.
            cls._build_missing(config, source, files, path, kind, goal_path)
        world = cls(config, fingerprint, path, kind, source["kind"])
        if not len(world.goals):
            logger.warning("catalogue %s has no %s goals", fingerprint[:12], kind)
        logger.info("WebShop world ready: %d products, %d %s goals, in %.1f s (%s)", world.num_products(),
                    len(world.goals), kind, time.perf_counter() - started, path)
        return world

    @classmethod
    def _build_missing(cls, config: WorldConfig, source: dict[str, Any], files: catalogue.RealFiles | None,
                       path: Path, kind: goals.GoalKind, goal_path: Path) -> None:
        """Build the catalogue and/or the goal table under a file lock: concurrent loaders build once."""
        lock = FileLock(str(path) + ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            logger.info("waiting for another process to finish building %s", path)
            lock.acquire()
        try:
            if not (path / "READY").is_file():
                cls._build(config, source, files, path)
            if not goal_path.is_file():
                logger.info("building %s goals (price seed %d)", kind, config.price_seed)
                store = ProductStore(path / "products.sqlite")
                try:
                    goals.save_goal_table(goals.build_goal_table(store, kind, config.price_seed), goal_path)
                finally:
                    store.close()
        finally:
            lock.release()

    @staticmethod
    def _build(config: WorldConfig, source: dict[str, Any], files: catalogue.RealFiles | None, path: Path) -> None:
        meta = {"fingerprint": _fingerprint(source), "source": source, "processing": catalogue.PROCESSING_VERSION}
        if files is None:
            logger.info("generating a %d-product catalogue (seed %d) in %s", config.num_products, config.seed, path)
            workers = max(1, min(4, os.cpu_count() or 1))
            products = build.generated_products(config.num_products, config.seed, workers)
            build.build_catalogue(products, path, config.num_products, meta)
        else:
            logger.info("processing WebShop files from %s into %s", files.products.parent, path)
            build.build_catalogue(build.real_products(files, config.max_products), path, config.max_products, meta)

    # --- products -------------------------------------------------------------------------------------------
    def product(self, asin: str) -> dict[str, Any]:
        """The served product dict of ``asin``; KeyError(asin) when unknown."""
        product = self._store.get(asin) if isinstance(asin, str) else None
        if product is None:
            raise KeyError(asin)
        return product

    def __contains__(self, asin: object) -> bool:
        return isinstance(asin, str) and self._store.contains(asin)

    def num_products(self) -> int:
        """Number of products in the catalogue."""
        return len(self._store)

    def iter_products(self) -> Iterator[dict[str, Any]]:
        """Every served product in catalogue order, streamed from the store (never all in memory)."""
        return self._store.iter_docs()

    def price(self, asin: str) -> float:
        """The price charged for ``asin``: its price, or a seeded uniform draw in its price range."""
        return goals.charged_price(asin, self.product(asin)["Price"], self.config.price_seed)

    # --- search ---------------------------------------------------------------------------------------------
    def search(self, query: str, k: int = search.TOP_K) -> list[str]:
        """ASINs of the top ``k`` products for ``query`` (BM25 k1=0.9, b=0.4, WebShop's analyser)."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, not {type(query).__name__}")
        return self._searcher.search(query, k)

    # --- goals and reward -----------------------------------------------------------------------------------
    def goal_indices(self, split: str) -> range:
        """Goal positions of ``split``: "test" 0-499, "eval" 500-1499, "train" 1500-end (clipped)."""
        return goals.split_range(split, len(self.goals))

    def reward(self, asin: str, options: dict[str, str], goal: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """WebShop's reward for buying ``asin`` with ``options`` (option name -> value) against ``goal``."""
        if not isinstance(options, dict):
            raise TypeError(f"options must be a dict of option name -> value, not {type(options).__name__}")
        missing = {"query", "product_category", "name", "attributes", "goal_options", "price_upper"} - set(goal)
        if missing:
            raise ValueError(f"goal lacks {', '.join(sorted(missing))}")
        return reward.get_reward(self.product(asin), goal, self.price(asin), options)

    def warm_up(self) -> None:
        """Load spaCy and run one search, so the first reward and query pay no start-up cost."""
        reward.load_nlp()
        self.search("warm up")

    def close(self) -> None:
        """Release the index and this thread's database connection."""
        self._searcher.close()
        self._store.close()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

