"""``hgpo-alfworld-generate``: build a set of verified ALFWorld games of any size, offline.

(Not ``alfworld-generate``: the ``alfworld`` wheel installs a script of that name.)

Examples::

    # ALFWorld-sized set (3,553 / 140 / 134) in ALFWorld's data layout; point
    # ALFWORLD_DATA (or gym.make(..., data_path=...)) at the folder to play it.
    hgpo-alfworld-generate --out ~/alfworld-gen
    # the compact format the package ships (agentenv/alfworld/data/v2):
    hgpo-alfworld-generate --format compact --out agentenv/alfworld/data/v2 --train 600

Game ``i`` of a split depends only on ``(seed, split, i)``: the same command rebuilds
the same files, with any number of workers. Games already generated with the same
settings are kept: an interrupted run resumes where it stopped (the compact format
keeps them in a hidden ``.<split>.s<seed>.partial.jsonl`` until the run completes),
and a larger ``--train`` grows an existing set.
"""

from __future__ import annotations

import argparse
import json
import logging
import lzma
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agentenv.alfworld.generator import (
    GAMES_VERSION,
    MAX_EXPERT_STEPS,
    OFFICIAL_TYPE_COUNTS,
    generate_game,
    record_to_official,
    seen_instance_source,
)
from agentenv.alfworld.tasks import OFFICIAL_SUBDIR, SPLITS, read_compact_records, wheel_logic

__all__ = ["generate", "main", "write_compact", "write_official"]

logger = logging.getLogger(__name__)

#: Sizes of ALFWorld's official splits after its filters.
OFFICIAL_SIZES = {split: sum(counts) for split, counts in OFFICIAL_TYPE_COUNTS.items()}
COMPACT_FORMAT = "agentenv-alfworld-compact/1"
PROG = "hgpo-alfworld-generate"


def _generate_one(job: tuple[int, str, int, int]) -> tuple[str, int, dict[str, Any]]:
    seed, split, index, max_expert_steps = job
    return split, index, generate_game(seed, split, index, max_expert_steps=max_expert_steps)


def generate(
    seed: int,
    sizes: Mapping[str, int],
    *,
    workers: int = 1,
    max_expert_steps: int = MAX_EXPERT_STEPS,
    skip: Mapping[str, Iterable[int]] | None = None,
    progress: bool = True,
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Yield ``(split, index, record)`` for every game of ``sizes``, in completion order.

    ``skip`` names indices not to generate (already on disk). With ``workers > 1`` games
    are made in a process pool (forkserver, or spawn where there is none): textworld's
    PDDL translation rewrites ``sys.argv`` and ``sys.stdout``, so never threads.
    """
    skipped = {split: set(indices) for split, indices in (skip or {}).items()}
    jobs = [
        (seed, split, index, max_expert_steps)
        for split, count in sizes.items()
        for index in range(count)
        if index not in skipped.get(split, set())
    ]
    bar = tqdm(total=len(jobs), desc="alfworld games", unit="game", disable=not progress)
    with bar:
        if workers <= 1:
            for job in jobs:
                yield _generate_one(job)
                bar.update()
            return
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        try:
            futures = [pool.submit(_generate_one, job) for job in jobs]
            for future in as_completed(futures):
                yield future.result()
                bar.update()
        finally:
            # On an error or an interrupt, drop the queued games instead of finishing them.
            pool.shutdown(wait=True, cancel_futures=True)


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_compact(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Write records as one xz-compressed JSON line each (deterministic bytes)."""
    data = "".join(_dumps(r) + "\n" for r in records).encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    tmp.replace(path)


def _official_dir(out: Path, split: str) -> Path:
    return out / OFFICIAL_SUBDIR / split


def _existing_official(out: Path, split: str, seed: int) -> set[int]:
    prefix = f"trial_{split}_s{seed}_"
    found = set()
    for gamefile in _official_dir(out, split).glob(f"*/{prefix}*/game.tw-pddl"):
        suffix = gamefile.parent.name[len(prefix) :]
        if suffix.isdigit():
            found.add(int(suffix))
    return found


def write_official(out: Path, split: str, record: Mapping[str, Any]) -> Path:
    """Write one record in ALFWorld's layout; returns the game folder."""
    domain, grammar = wheel_logic()
    traj_data, game = record_to_official(record, domain, grammar)
    folder = _official_dir(out, split) / record["task_id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "traj_data.json").write_text(json.dumps(traj_data, indent=1))
    tmp = folder / "game.tw-pddl.tmp"
    tmp.write_text(json.dumps(game))
    tmp.replace(folder / "game.tw-pddl")  # written last: its presence marks a finished game
    return folder


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a game count must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Generate verified ALFWorld games offline from the alfworld wheel's files.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--format",
        choices=("official", "compact"),
        default="official",
        help="official: ALFWorld's json_2.1.1/<split>/... layout (default); "
        "compact: <split>.jsonl.xz files, as shipped in the package",
    )
    for split in SPLITS:
        flag = "--" + split.replace("_", "-")
        parser.add_argument(flag, type=_count, default=OFFICIAL_SIZES[split], metavar="N",
                            help=f"number of {split} games (default: %(default)s, as ALFWorld)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default: %(default)s)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    parser.add_argument(
        "--max-expert-steps",
        type=int,
        default=MAX_EXPERT_STEPS,
        help="keep a scene only if the handcoded expert wins it within this many steps (default: %(default)s)",
    )
    return parser


def _partial_path(out: Path, split: str, seed: int, max_expert_steps: int) -> Path:
    return out / f".{split}.s{seed}.v{GAMES_VERSION}.c{max_expert_steps}.partial.jsonl"


SETTINGS_FILE = ".hgpo-alfworld-generate.json"


def _claim_official_folder(out: Path, seed: int, max_expert_steps: int) -> None:
    """Refuse to mix games made with other settings in one folder of ALFWorld's layout."""
    settings = {"games_version": GAMES_VERSION, "seed": seed, "max_expert_steps": max_expert_steps}
    path = out / SETTINGS_FILE
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except json.JSONDecodeError:
            previous = None
        if previous != settings:
            raise SystemExit(
                f"{PROG}: {out} holds games made with other settings ({previous}, now {settings}): "
                "use another --out folder"
            )
    elif _official_dir(out, "train").parent.is_dir():
        logger.warning(
            "%s: no %s; keeping the games found there as if made with %s", out, SETTINGS_FILE, settings
        )
    path.write_text(json.dumps(settings) + "\n")


def _warn_if_seen_outside_train(sizes: Mapping[str, int]) -> None:
    """valid_seen reuses the task instances of the first train games: say if --train is too small to hold them."""
    needed = 1 + max((seen_instance_source(i) for i in range(sizes["valid_seen"])), default=-1)
    if sizes["valid_seen"] and sizes["train"] < needed:
        logger.warning(
            "valid_seen games take the task instances of the first %d train games; with --train %d "
            "some of them are not in your train split",
            needed, sizes["train"],
        )  # fmt: skip


def _read_partial(path: Path) -> dict[int, dict[str, Any]]:
    """Records of an interrupted compact run (a torn last line is dropped)."""
    done: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[entry["index"]] = entry["record"]
    return done


def _previous_compact(out: Path, seed: int, max_expert_steps: int) -> dict[str, dict[int, dict[str, Any]]]:
    """Records of a finished compact set in ``out`` made with the same settings (to grow it)."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    settings = ("format", "games_version", "seed", "max_expert_steps")
    if tuple(manifest.get(k) for k in settings) != (COMPACT_FORMAT, GAMES_VERSION, seed, max_expert_steps):
        return {}
    found = {}
    for split in SPLITS:
        path = out / f"{split}.jsonl.xz"
        if path.is_file():
            found[split] = dict(enumerate(read_compact_records(path)))  # written in index order
    return found


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hgpo-alfworld-generate`` console script."""
    # Parse before any engine work: fast-downward's translator overwrites sys.argv.
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if threading.current_thread() is not threading.main_thread():
        return _run(args)
    # A plain `kill` must stop the workers too: exit through generate()'s pool shutdown.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    sizes = {split: getattr(args, split) for split in SPLITS}
    out: Path = args.out.expanduser()
    out.mkdir(parents=True, exist_ok=True)

    # Games finished by an earlier run with the same seed are kept, in both formats.
    records: dict[str, dict[int, dict[str, Any]]] = {split: {} for split in SPLITS}
    _warn_if_seen_outside_train(sizes)
    if args.format == "official":
        _claim_official_folder(out, args.seed, args.max_expert_steps)
        skip = {split: _existing_official(out, split, args.seed) for split in SPLITS}
    else:
        previous = _previous_compact(out, args.seed, args.max_expert_steps)
        for split in SPLITS:
            records[split] = {
                **previous.get(split, {}),
                **_read_partial(_partial_path(out, split, args.seed, args.max_expert_steps)),
            }
        skip = {split: set(records[split]) for split in SPLITS}
    kept = {split: len([i for i in found if i < sizes[split]]) for split, found in skip.items()}
    if any(kept.values()):
        logger.info("keeping games already generated in %s: %s", out, kept)

    started = time.perf_counter()
    new: list[dict[str, Any]] = []
    partial_files = {}
    try:
        for split, index, record in generate(
            args.seed, sizes, workers=args.workers, max_expert_steps=args.max_expert_steps, skip=skip
        ):
            if args.format == "official":
                write_official(out, split, record)
            else:
                if split not in partial_files:
                    partial_files[split] = _partial_path(out, split, args.seed, args.max_expert_steps).open(
                        "a", encoding="utf-8"
                    )
                partial_files[split].write(_dumps({"index": index, "record": record}) + "\n")
                partial_files[split].flush()
                records[split][index] = record
            new.append({k: record[k] for k in ("task_type", "walkthrough")})
    finally:
        for f in partial_files.values():
            f.close()

    if args.format == "compact":
        for split in SPLITS:
            write_compact(out / f"{split}.jsonl.xz", (records[split][i] for i in range(sizes[split])))
        manifest = {
            "format": COMPACT_FORMAT,
            "games_version": GAMES_VERSION,
            "seed": args.seed,
            "max_expert_steps": args.max_expert_steps,
            "counts": sizes,
            "alfworld": version("alfworld"),
            "textworld": version("textworld"),
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        for split in SPLITS:
            _partial_path(out, split, args.seed, args.max_expert_steps).unlink(missing_ok=True)

    elapsed = time.perf_counter() - started
    types = Counter(r["task_type"] for r in new)
    steps = sum(len(r["walkthrough"]) for r in new) / max(len(new), 1)
    print(f"{len(new)} new games in {elapsed:.0f} s in {out} ({args.format} format); "
          f"by type: {dict(sorted(types.items()))}; mean walkthrough {steps:.1f} steps")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
