"""``webshop-server``: serve WebShop with waitress.

Every option has an environment variable (used by the Docker image), e.g.
``WEBSHOP_PORT=3000 WEBSHOP_NUM_PRODUCTS=10000 webshop-server``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

logger = logging.getLogger("servers.webshop")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"WEBSHOP_{name}", "")
    return value if value.strip() else default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webshop-server",
        description="Serve the WebShop site and its JSON API (see docs/webshop.md).",
    )
    parser.add_argument(
        "--host", default=_env("HOST", "127.0.0.1"), help="interface to bind [WEBSHOP_HOST, 127.0.0.1]"
    )
    parser.add_argument(
        "--port", type=int, default=int(_env("PORT", "3000")), help="port [WEBSHOP_PORT, 3000]"
    )
    parser.add_argument(
        "--num-products",
        type=int,
        default=int(_env("NUM_PRODUCTS", "1000")),
        help="size of the generated catalogue, ignored with --data-dir [WEBSHOP_NUM_PRODUCTS, 1000]",
    )
    parser.add_argument(
        "--seed", type=int, default=int(_env("SEED", "0")), help="catalogue seed [WEBSHOP_SEED, 0]"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=_env("DATA_DIR"),
        help="folder with the real WebShop files (items_shuffle*.json, items_ins_v2*.json, "
        "items_human_ins.json) [WEBSHOP_DATA_DIR; default: a generated catalogue]",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=_env("CACHE_DIR"),
        help="where the product store and search index are kept [WEBSHOP_CACHE_DIR, ~/.cache/hgpo-agents/webshop]",
    )
    parser.add_argument(
        "--threads", type=int, default=int(_env("THREADS", "8")), help="worker threads [WEBSHOP_THREADS, 8]"
    )
    parser.add_argument(
        "--max-sessions", type=int, default=int(_env("MAX_SESSIONS", "10000")), help="sessions kept [10000]"
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="build (or check) the catalogue store and search index, then exit (Docker build step)",
    )
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"), help="logging level [INFO]")
    return parser


def import_spacy_without_torch() -> None:
    """Import spaCy in this server-only process without letting thinc import torch.

    thinc imports torch whenever it is installed (half of spaCy's import time here, 1.7 of 3.2 s on
    a loaded machine), although the reward's tagger runs on numpy. A ``None`` entry in
    ``sys.modules`` makes ``import torch`` fail for that moment; the entry is removed afterwards, so
    a later ``import torch`` works. Nothing changes when torch is already imported.
    """
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import spacy  # noqa: F401
    finally:
        if hide and "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


class _SpacyLoader(threading.Thread):
    """Loads the reward's spaCy model while the main thread opens the catalogue (they share no lock)."""

    def __init__(self) -> None:
        super().__init__(name="spacy-load", daemon=True)
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        from . import reward

        started = time.perf_counter()
        try:
            import_spacy_without_torch()
            reward.load_nlp()
        except BaseException as error:  # reported by main()
            self.error = error
        self.seconds = time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``webshop-server`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    started = time.perf_counter()
    spacy_loader = None if args.prepare else _SpacyLoader()
    if spacy_loader is not None:
        spacy_loader.start()
    # Imported here so --help answers without loading the search stack.
    import waitress

    from .app import create_app
    from .session import ShopConfig
    from .world import World, WorldConfig

    try:
        world_config = WorldConfig(
            num_products=args.num_products, seed=args.seed, data_dir=args.data_dir, cache_dir=args.cache_dir
        )
        world = World.load(world_config)
    except (ValueError, OSError) as error:  # CatalogueError and pydantic's ValidationError are ValueErrors
        logger.error("cannot load the catalogue: %s", error)
        return 2
    logger.info(
        "catalogue %s: %d products, %d goals", world.fingerprint, world.num_products(), len(world.goals)
    )
    if args.prepare:
        return 0
    world.search("warm up")  # the first query pays Lucene's start-up now, not the first request
    loaded = time.perf_counter() - started
    spacy_loader.join()  # the reward's model: loaded now, not at the first purchase
    if spacy_loader.error is not None:
        logger.error("cannot load spaCy for the reward: %s", spacy_loader.error)
        return 2
    logger.info(
        "loaded in %.1f s: catalogue and search %.1f s, spaCy %.1f s beside it",
        time.perf_counter() - started,
        loaded,
        spacy_loader.seconds,
    )
    app = create_app(world, ShopConfig(max_sessions=args.max_sessions))
    server = waitress.create_server(
        app, host=args.host, port=args.port, threads=args.threads, ident="webshop"
    )

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)  # Docker stops containers with SIGTERM; PID 1 has no default handler

    signal.signal(signal.SIGTERM, stop)
    logger.info("WebShop server ready at http://%s:%s/", server.effective_host, server.effective_port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
