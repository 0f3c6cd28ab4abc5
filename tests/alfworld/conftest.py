"""Shared helpers for the ALFWorld tests: all of them play the real textworld PDDL engine.

Loading a game costs 0.3 s (bathrooms, bedrooms) to 3 s (large kitchens), so most
tests pick the embedded games with the smallest PDDL problems.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from agentenv.alfworld.generate import write_official
from agentenv.alfworld.tasks import TASK_TYPES, Task, embedded_dir, load_task_set, read_compact_records


def small_tasks(
    split: str = "train", per_type: int = 1, task_types: tuple[str, ...] = TASK_TYPES
) -> list[Task]:
    """The ``per_type`` embedded games of each type with the smallest PDDL problems (fast to load)."""
    tasks = sorted(load_task_set(split, source="embedded"), key=lambda t: (len(t.pddl_problem), t.task_id))
    chosen = []
    for task_type in task_types:
        chosen += [t for t in tasks if t.task_type == task_type][:per_type]
    return chosen


@functools.cache
def embedded_records(split: str, games_version: int | None = None) -> dict[str, dict[str, Any]]:
    """The raw compact records of an embedded split (latest version by default), by task id, in file order."""
    folder = embedded_dir() if games_version is None else embedded_dir(games_version)
    return {r["task_id"]: r for r in read_compact_records(folder / f"{split}.jsonl.xz")}


@pytest.fixture(scope="session")
def official_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny data folder in ALFWorld's layout, written by the generator: 3 train games, 1 per validation split."""
    root = tmp_path_factory.mktemp("alfworld_data")
    for task in small_tasks("train", task_types=TASK_TYPES[:3]):
        write_official(root, "train", embedded_records("train")[task.task_id])
    for split in ("valid_seen", "valid_unseen"):
        task = small_tasks(split, task_types=TASK_TYPES[:1])[0]
        write_official(root, split, embedded_records(split)[task.task_id])
    return root
