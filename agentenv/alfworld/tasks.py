"""Where ALFWorld games come from: the embedded generated set, or a folder of games.

Two on-disk formats are read, both produced by ``hgpo-alfworld-generate``:

* the **official layout** of ALFWorld's data (``$ALFWORLD_DATA/json_2.1.1/<split>/
  <task folder>/<trial>/{traj_data.json, game.tw-pddl}``), which is what
  ``alfworld-download`` installs: 3,553 train, 140 valid_seen and 134 valid_unseen
  games once the ``solvable`` filter and the six task types are applied;
* the **compact format** (``<split>.jsonl.xz``: one JSON record per game holding the
  PDDL problem, the task sentence and a walkthrough; the PDDL domain and the text
  grammar come from the installed alfworld wheel). The embedded sets shipped in
  ``agentenv/alfworld/data/v<N>`` use it.

Game selection follows alfworld's ``AlfredTWEnv.collect_game_files``: skip folders
whose path contains ``movable`` or ``Sliced``, keep the six task types, keep games
whose ``game.tw-pddl`` says ``"solvable": true``.

**Seed order.** A :class:`TaskSet` lists its games in *seed order*: seed ``s`` plays
``tasks[s % len(tasks)]``. The order is a fixed shuffle that depends only on the task
ids (never on file order, the machine, the process or a library version), stratified
by task type so that every window of consecutive seeds mixes the types in proportion
(:func:`seed_order`). Files sorted by type would otherwise give a trainer that walks
consecutive seeds blocks of one task type: a curriculum nobody chose.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import lzma
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "EMBEDDED_DATA_DIR",
    "GAMES_VERSIONS",
    "LATEST_GAMES_VERSION",
    "OFFICIAL_SUBDIR",
    "SPLITS",
    "TASK_TYPES",
    "Task",
    "TaskSet",
    "embedded_dir",
    "load_task_set",
    "read_compact",
    "read_compact_records",
    "resolve_source",
    "seed_order",
    "wheel_logic",
]

logger = logging.getLogger(__name__)

#: The six ALFWorld task types, in ALFWorld's order (``alfred_tw_env.TASK_TYPES``).
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
#: Split names; ``valid_seen`` is ALFWorld's in-distribution and ``valid_unseen`` its
#: out-of-distribution evaluation set.
SPLITS = ("train", "valid_seen", "valid_unseen")
#: Folder of the official data inside ``$ALFWORLD_DATA``.
OFFICIAL_SUBDIR = "json_2.1.1"
#: Folder of the embedded game sets shipped with the package (one ``v<N>`` folder per version).
EMBEDDED_DATA_DIR = Path(__file__).parent / "data"
#: Versions of the embedded games: 1 = the first release (types cycled, 100 per type in
#: train; valid_seen drawn independently of train; walkthroughs up to 50 steps);
#: 2 = official type proportions, valid_seen from train task instances, walkthroughs
#: capped at 30 steps (docs/alfworld.md).
GAMES_VERSIONS = (1, 2)
LATEST_GAMES_VERSION = 2
#: Salt of the seed order's digests; changing it would change which game every seed plays.
SEED_ORDER_SALT = "agentenv/alfworld/seed-order/1"

Source = Literal["auto", "embedded", "official"]


@dataclass(frozen=True)
class Task:
    """One ALFWorld game.

    ``gamefile`` is set for games in the official layout (the engine reads the file);
    ``pddl_problem`` and ``goal`` for games in the compact format (the engine builds the
    game from them and the wheel's domain and grammar).
    """

    task_id: str
    task_type: str
    pddl_params: Mapping[str, Any]
    gamefile: str = ""
    pddl_problem: str = field(default="", repr=False)
    goal: str = ""
    walkthrough: tuple[str, ...] = field(default=(), repr=False)

    def game_data(self) -> dict[str, Any]:
        """The game as textworld's ``PddlEnv.load`` takes it (``pddl_domain``, ``grammar``, ``pddl_problem``)."""
        if self.gamefile:
            return _read_gamefile(self.gamefile)
        domain, grammar = wheel_logic()
        return {
            "pddl_domain": domain,
            "grammar": grammar.replace("UNKNOWN GOAL", self.goal),
            "pddl_problem": self.pddl_problem,
            "walkthrough": list(self.walkthrough),
        }


def _unit_digest(task_id: str, purpose: str) -> float:
    digest = hashlib.blake2b(f"{SEED_ORDER_SALT}/{purpose}/{task_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def seed_order(tasks: Sequence[Task]) -> tuple[Task, ...]:
    """The games in seed order: a fixed shuffle, stratified by task type.

    Within each task type, games are ranked by a BLAKE2b digest of their id; the game of
    rank ``r`` among the ``n_t`` games of its type gets the position key
    ``(r + u) / n_t``, with ``u`` in [0, 1) from a second digest of its id; all games are
    sorted by that key. Each type is spread evenly over the whole order (one game per
    ``1 / n_t`` of it), so any window of ``w`` consecutive games holds about
    ``w * n_t / n`` games of each type, and the order depends on the ids alone.
    """
    by_type: dict[str, list[Task]] = {}
    for task in tasks:
        by_type.setdefault(task.task_type, []).append(task)
    keyed = []
    for group in by_type.values():
        group.sort(key=lambda t: (_unit_digest(t.task_id, "rank"), t.task_id))
        for rank, task in enumerate(group):
            keyed.append(((rank + _unit_digest(task.task_id, "offset")) / len(group), task.task_id, task))
    keyed.sort(key=lambda item: item[:2])
    return tuple(task for _, _, task in keyed)


@dataclass(frozen=True)
class TaskSet:
    """The games of one split of one source, in seed order (:func:`seed_order`): seed ``s`` plays ``tasks[s % len]``."""

    split: str
    source: str  # "embedded" or the folder the games were read from
    tasks: tuple[Task, ...]

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError(f"no playable games for split {self.split!r} in {self.source}")

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    @functools.cached_property
    def _by_id(self) -> dict[str, Task]:
        return {task.task_id: task for task in self.tasks}

    def subset(self, task_types: Sequence[str] | None = None, max_tasks: int | None = None) -> TaskSet:
        """The games of the given task types (all when None), then the first ``max_tasks`` of them in seed order."""
        tasks = self.tasks
        if task_types is not None:
            unknown = sorted(set(task_types) - set(TASK_TYPES))
            if unknown:
                raise ValueError(f"unknown task type(s) {unknown}; expected some of {list(TASK_TYPES)}")
            tasks = tuple(t for t in tasks if t.task_type in set(task_types))
        if max_tasks is not None:
            if not isinstance(max_tasks, int) or isinstance(max_tasks, bool) or max_tasks < 1:
                raise ValueError(f"max_tasks must be a positive int, got {max_tasks!r}")
            tasks = tasks[:max_tasks]
        if not tasks:
            raise ValueError(
                f"no games of task types {list(task_types or [])} in split {self.split!r} of {self.source}"
            )
        return TaskSet(self.split, self.source, tasks)

    def get(self, task_id: str) -> Task:
        """The task with this id; ``ValueError`` naming the id if there is none."""
        try:
            return self._by_id[task_id]
        except (KeyError, TypeError):
            example = self.tasks[0].task_id
            raise ValueError(
                f"unknown task id {task_id!r} for split {self.split!r} of {self.source} "
                f"({len(self.tasks)} tasks; ids look like {example!r})"
            ) from None


@functools.cache
def wheel_logic() -> tuple[str, str]:
    """The PDDL domain and text grammar shipped with the installed alfworld wheel."""
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    return Path(ALFRED_PDDL_PATH).read_text(), Path(ALFRED_TWL2_PATH).read_text()


def _read_json(path: str | Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: corrupt game file, not valid JSON ({error})") from None


def _read_gamefile(path: str) -> dict[str, Any]:
    data = _read_json(path)
    missing = [
        k for k in ("pddl_domain", "grammar", "pddl_problem") if not isinstance(data, dict) or k not in data
    ]
    if missing:
        raise ValueError(f"{path}: corrupt game file, missing {', '.join(missing)}")
    return data


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def read_compact_records(path: str | Path) -> list[dict[str, Any]]:
    """The raw records of a ``<split>.jsonl.xz`` file of the compact format, in file order."""
    records = []
    try:
        with lzma.open(path, "rt", encoding="utf-8") as f:
            for line_number, line in enumerate(f, 1):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {line_number}: corrupt game record ({error})") from None
                records.append(record)
    except (lzma.LZMAError, EOFError) as error:
        raise ValueError(f"{path}: corrupt compressed game file ({error})") from None
    return records


def read_compact(path: str | Path) -> tuple[Task, ...]:
    """The games of a ``<split>.jsonl.xz`` file of the compact format, sorted by task id."""
    tasks = []
    for number, record in enumerate(read_compact_records(path), 1):
        try:
            task = Task(
                task_id=record["task_id"],
                task_type=record["task_type"],
                pddl_params=record["pddl_params"],
                pddl_problem=record["pddl_problem"],
                goal=record["goal"],
                walkthrough=tuple(record["walkthrough"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"{path}, record {number}: corrupt game record (missing or bad {error})"
            ) from None
        tasks.append(task)
    return tuple(sorted(tasks, key=lambda t: t.task_id))


def _scan_official(split_dir: Path) -> tuple[Task, ...]:
    tasks = []
    for traj_path in sorted(split_dir.rglob("traj_data.json")):
        root = traj_path.parent
        relative = root.relative_to(split_dir).as_posix()
        if "movable" in relative or "Sliced" in relative:
            continue  # as AlfredTWEnv: these task variants are not supported by the text engine
        traj = _read_json(traj_path)
        task_type = traj.get("task_type") if isinstance(traj, dict) else None
        if task_type not in TASK_TYPES:
            continue
        gamefile = root / "game.tw-pddl"
        if not gamefile.is_file():
            continue
        game = _read_gamefile(str(gamefile))
        if not game.get("solvable"):
            continue
        params = traj.get("pddl_params")
        if not isinstance(params, dict):
            raise ValueError(f"{traj_path}: corrupt traj_data.json, no pddl_params")
        tasks.append(
            Task(
                task_id=relative,
                task_type=task_type,
                pddl_params=params,
                gamefile=str(gamefile),
                walkthrough=tuple(game.get("walkthrough") or ()),
            )
        )
    return tuple(tasks)


def _split_location(root: Path, split: str) -> Path | None:
    """The file or folder holding ``split`` under ``root``, in any supported layout."""
    for candidate in (root / OFFICIAL_SUBDIR / split, root / split):
        if candidate.is_dir():
            return candidate
    compact = root / f"{split}.jsonl.xz"
    return compact if compact.is_file() else None


@functools.cache
def _load_folder(root: str, split: str) -> TaskSet:
    location = _split_location(Path(root), split)
    if location is None:
        raise FileNotFoundError(
            f"{root}: no games for split {split!r}; expected {OFFICIAL_SUBDIR}/{split}/, {split}/ "
            f"(ALFWorld's layout) or {split}.jsonl.xz (hgpo-alfworld-generate --format compact)"
        )
    tasks = read_compact(location) if location.is_file() else _scan_official(location)
    return TaskSet(split=split, source=str(location), tasks=seed_order(tasks))


def embedded_dir(games_version: int = LATEST_GAMES_VERSION) -> Path:
    """The folder of one version of the embedded games."""
    if games_version not in GAMES_VERSIONS:
        raise ValueError(f"unknown games_version {games_version!r}; expected one of {GAMES_VERSIONS}")
    return EMBEDDED_DATA_DIR / f"v{games_version}"


@functools.cache
def _load_embedded(split: str, games_version: int) -> TaskSet:
    tasks = read_compact(embedded_dir(games_version) / f"{split}.jsonl.xz")
    source = "embedded" if games_version == LATEST_GAMES_VERSION else f"embedded v{games_version}"
    return TaskSet(split=split, source=source, tasks=seed_order(tasks))


def resolve_source(source: Source, data_path: str | os.PathLike[str] | None) -> Path | None:
    """The folder to read games from, or ``None`` for the embedded set.

    ``data_path`` wins; else ``$ALFWORLD_DATA`` when it holds ``json_2.1.1`` (with
    ``source="auto"``, an ``$ALFWORLD_DATA`` without it falls back to the embedded set:
    importing alfworld sets that variable to ``~/.cache/alfworld`` even when no data was
    ever downloaded).
    """
    if source not in ("auto", "embedded", "official"):
        raise ValueError(f"unknown source {source!r}; expected 'auto', 'embedded' or 'official'")
    if source == "embedded":
        if data_path is not None:
            raise ValueError("source='embedded' takes no data_path")
        return None
    if data_path is not None:
        root = Path(data_path).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(
                f"ALFWorld data_path {str(data_path)!r} does not exist or is not a folder"
            )
        return root
    env_value = os.environ.get("ALFWORLD_DATA")
    if env_value and (Path(env_value).expanduser() / OFFICIAL_SUBDIR).is_dir():
        return Path(env_value).expanduser()
    if source == "official":
        where = (
            f"ALFWORLD_DATA={env_value!r} has no {OFFICIAL_SUBDIR}/"
            if env_value
            else "ALFWORLD_DATA is not set"
        )
        raise FileNotFoundError(
            f"source='official' needs the official ALFWorld data: {where} (run alfworld-download)"
        )
    if env_value:
        logger.info(
            "ALFWORLD_DATA=%s has no %s/: using the embedded generated games", env_value, OFFICIAL_SUBDIR
        )
    return None


def load_task_set(
    split: str,
    source: Source = "auto",
    data_path: str | os.PathLike[str] | None = None,
    games_version: int | None = None,
) -> TaskSet:
    """The games of ``split`` from the embedded set or from a folder (cached per process).

    ``games_version`` picks a version of the embedded games (default: the latest); it is
    an error when the games come from a folder.
    """
    _check_split(split)
    if games_version is not None and (isinstance(games_version, bool) or games_version not in GAMES_VERSIONS):
        raise ValueError(f"unknown games_version {games_version!r}; expected one of {GAMES_VERSIONS}")
    root = resolve_source(source, data_path)
    if root is None:
        return _load_embedded(split, games_version or LATEST_GAMES_VERSION)
    if games_version is not None:
        raise ValueError(
            f"games_version={games_version} selects a version of the embedded games; "
            f"these games come from {root}"
        )
    return _load_folder(str(root.resolve()), split)
