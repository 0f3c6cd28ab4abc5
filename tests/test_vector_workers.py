"""Asynchronous group vector envs survive dead workers: SIGKILL between steps, during reset, during step.

The kills are real (``os.kill(pid, SIGKILL)`` on a worker process). To kill a worker *while* it
is inside ``reset`` or ``step``, a scripted text env (registered by this module, which worker
processes import through the ``"tests.test_vector_workers:ScriptedText-v0"`` id) blocks in
``reset``/``step`` when told to, after writing its pid to a file; a thread waits for that file
and kills the pid. The same checks then run on real ``ALFWorld-v0`` and ``WebShop-v0`` envs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest

from agentenv.alfworld.tasks import TASK_TYPES
from agentenv.spaces import FreeText
from agentenv.vector import WORKER_RESTARTED, GroupVectorEnv, make_group_vector_env

SCRIPTED_ID = "tests.test_vector_workers:ScriptedText-v0"
#: Every check must end well within this (a hang would be a failure, not a slow pass).
FAST = 20.0


class ScriptedTextEnv(gym.Env):
    """A text env whose ``reset``/``step`` block or kill their own process on request.

    ``reset(options={"task": t})``: ``"block-once"`` blocks (after writing ``<marker_dir>/reset``)
    the first time, then plays normally; ``"die"`` kills its own process. ``step("block")``
    blocks after writing ``<marker_dir>/step``. Observations are ``"task:seed:steps:action"``;
    episodes end (terminated) after 3 steps.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, marker_dir: str):
        self.observation_space = self.action_space = FreeText()
        self.marker_dir = Path(marker_dir)
        self.task, self.seed, self.steps = "", None, 0

    def _block(self, what: str) -> None:
        marker = self.marker_dir / what
        marker.write_text(str(os.getpid()))
        time.sleep(60)  # killed by the test long before
        raise AssertionError("the test did not kill this worker")

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.task = (options or {}).get("task") or f"task{seed}"
        self.seed, self.steps = seed, 0
        if self.task == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.task == "block-once" and not (self.marker_dir / "reset").exists():
            self._block("reset")
        return f"{self.task}:{seed}:0:", {"task_id": self.task, "pid": os.getpid()}

    def step(self, action):
        if action == "block":
            self._block("step")
        self.steps += 1
        obs = f"{self.task}:{self.seed}:{self.steps}:{action}"
        return obs, 1.0, self.steps >= 3, False, {"task_id": self.task, "pid": os.getpid()}


if "ScriptedText-v0" not in gym.registry:
    gym.register("ScriptedText-v0", entry_point=ScriptedTextEnv, disable_env_checker=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_until(condition, what: str, timeout: float = FAST) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: not _alive(pid), f"pid {pid} to die")


@contextlib.contextmanager
def _killer(marker: Path) -> Iterator[list[int]]:
    """A thread that SIGKILLs the pid written to ``marker`` as soon as it appears."""
    killed: list[int] = []

    def run() -> None:
        _wait_until(marker.exists, f"{marker} to appear")
        _wait_until(lambda: marker.read_text().strip().isdigit(), f"a pid in {marker}")
        pid = int(marker.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield killed
    thread.join(timeout=FAST)


def _close_fast(envs: GroupVectorEnv) -> None:
    pids = envs.unwrapped.worker_pids
    start = time.monotonic()
    envs.close()
    assert time.monotonic() - start < 10.0
    assert not any(_alive(pid) for pid in pids), "a worker outlived close()"


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[GroupVectorEnv]:
    envs = make_group_vector_env(SCRIPTED_ID, num_groups=2, group_size=1, marker_dir=str(tmp_path))
    yield envs
    _close_fast(envs)


def _restart_logged(caplog: pytest.LogCaptureFixture, index: int, pid: int) -> bool:
    return any(
        f"env worker {index} (pid {pid}) died with exit code -9" in r.getMessage() for r in caplog.records
    )


def test_kill_between_steps_truncates_that_member_and_the_next_reset_plays(scripted, caplog):
    caplog.set_level(logging.WARNING, logger="agentenv.vector")
    obs, infos = scripted.reset(seed=10)
    assert list(obs) == ["task10:10:0:", "task11:11:0:"]
    scripted.step(["a", "b"])
    victim = scripted.unwrapped.worker_pids[1]
    _kill(victim)

    start = time.monotonic()
    obs, rewards, terminated, truncated, infos = scripted.step(["c", "d"])
    assert time.monotonic() - start < FAST
    assert obs[0] == "task10:10:2:c" and rewards.tolist() == [1.0, 0.0]
    assert truncated.tolist() == [False, True] and not terminated.any()
    assert obs[1] == "task11:11:1:b"  # its last observation, kept
    assert infos[WORKER_RESTARTED].tolist() == [False, True]
    assert infos[f"_{WORKER_RESTARTED}"].tolist() == [False, True]
    assert _restart_logged(caplog, 1, victim)
    new_pid = scripted.unwrapped.worker_pids[1]
    assert new_pid != victim and _alive(new_pid)

    # the member stays truncated for the rest of its episode, without calls to the new worker
    obs, rewards, terminated, truncated, infos = scripted.step(["e", "f"])
    assert terminated.tolist() == [True, False] and truncated.tolist() == [False, True]
    assert obs[1] == "task11:11:1:b" and rewards[1] == 0.0

    # the next reset plays normally, with the same seed-to-task rule
    obs, infos = scripted.reset(seed=10)
    assert list(obs) == ["task10:10:0:", "task11:11:0:"]
    assert infos["pid"][1] == new_pid and WORKER_RESTARTED not in infos
    obs, rewards, terminated, truncated, _ = scripted.step(["g", "h"])
    assert list(obs) == ["task10:10:1:g", "task11:11:1:h"] and not truncated.any()


def test_kill_between_episodes_the_next_reset_plays_on_a_new_worker(scripted, caplog):
    caplog.set_level(logging.WARNING, logger="agentenv.vector")
    scripted.reset(seed=10)
    victim = scripted.unwrapped.worker_pids[0]
    _kill(victim)
    obs, infos = scripted.reset(seed=20)
    assert list(obs) == ["task20:20:0:", "task21:21:0:"]
    assert infos[WORKER_RESTARTED].tolist() == [True, False] and infos["pid"][0] != victim
    assert _restart_logged(caplog, 0, victim)


def test_kill_during_reset_retries_the_reset_on_a_new_worker(scripted, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="agentenv.vector")
    with _killer(tmp_path / "reset") as killed:
        start = time.monotonic()
        obs, infos = scripted.reset(seed=3, options={"tasks": ["plain", "block-once"]})
        assert time.monotonic() - start < FAST
    assert killed and _restart_logged(caplog, 1, killed[0])
    assert list(obs) == ["plain:3:0:", "block-once:4:0:"]  # same task and seed on the new worker
    assert infos[WORKER_RESTARTED].tolist() == [False, True]
    assert infos["pid"][1] not in killed
    obs, rewards, terminated, truncated, _ = scripted.step(["x", "y"])  # a normal episode
    assert list(obs) == ["plain:3:1:x", "block-once:4:1:y"] and rewards.tolist() == [1.0, 1.0]
    assert not truncated.any() and not terminated.any()


def test_kill_during_step_truncates_that_member(scripted, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="agentenv.vector")
    scripted.reset(seed=0)
    with _killer(tmp_path / "step") as killed:
        start = time.monotonic()
        obs, rewards, terminated, truncated, infos = scripted.step(["block", "go"])
        assert time.monotonic() - start < FAST
    assert killed and _restart_logged(caplog, 0, killed[0])
    assert truncated.tolist() == [True, False] and obs[1] == "task1:1:1:go"
    assert rewards.tolist() == [0.0, 1.0] and not terminated.any()
    assert obs[0] == "task0:0:0:"  # the last observation it had
    assert infos[WORKER_RESTARTED].tolist() == [True, False]
    obs, _, _, truncated, _ = scripted.step(["a", "b"])  # still truncated, the other goes on
    assert truncated.tolist() == [True, False] and obs[1] == "task1:1:2:b"
    obs, infos = scripted.reset(seed=0)
    assert list(obs) == ["task0:0:0:", "task1:1:0:"]


def test_a_worker_that_keeps_dying_is_a_clear_error(tmp_path):
    envs = make_group_vector_env(
        SCRIPTED_ID, 2, 1, marker_dir=str(tmp_path), vector_kwargs={"max_restarts": 2}
    )
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"env worker 1 \(pid \d+\) died 3 times in a row.*exit code -9"):
        envs.reset(seed=0, options={"tasks": ["fine", "die"]})
    assert time.monotonic() - start < FAST
    _close_fast(envs)


def test_an_env_exception_is_raised_with_the_worker_traceback(tmp_path):
    envs = make_group_vector_env(SCRIPTED_ID, 2, 1, marker_dir=str(tmp_path / "missing"))
    envs.reset(seed=0)
    with pytest.raises(FileNotFoundError) as raised:  # step("block") writes into a missing folder
        envs.step(["block", "fine"])
    assert any("raised in env worker 0" in note for note in getattr(raised.value, "__notes__", []))
    obs, *_ = envs.step(["a", "b"])  # the workers are still in step with the caller
    assert list(obs) == ["task0:0:1:a", "task1:1:2:b"]
    _close_fast(envs)


def test_close_does_not_block_on_a_busy_or_dead_worker(tmp_path):
    envs = make_group_vector_env(
        SCRIPTED_ID, 2, 1, marker_dir=str(tmp_path), vector_kwargs={"close_timeout": 1.0}
    )
    envs.reset(seed=0)
    pids = envs.unwrapped.worker_pids
    _kill(pids[1])
    # an interrupted call leaves worker 0 busy in a blocking step
    workers = envs.unwrapped._workers
    workers[0].send("step", "block")
    _wait_until((tmp_path / "step").exists, "worker 0 to block")
    _close_fast(envs)
    with pytest.raises(RuntimeError, match="closed"):
        envs.step(["a", "b"])


# ------------------------------------------------------------------------------------ real envs


def _assert_recovers_from_kill_between_steps(
    envs: GroupVectorEnv, actions: list[str], reset_kwargs: dict[str, Any]
) -> None:
    """Kill member 1's worker between two steps; it ends truncated and the next reset replays its task."""
    _, infos = envs.reset(**reset_kwargs)
    first_tasks = infos["task_id"].tolist()
    envs.step(np.array(actions, dtype=object))
    victim = envs.unwrapped.worker_pids[1]
    _kill(victim)
    start = time.monotonic()
    _, rewards, _, truncated, infos = envs.step(np.array(actions, dtype=object))
    assert time.monotonic() - start < FAST
    assert truncated[1] and not truncated[0] and rewards[1] == 0.0
    assert infos[WORKER_RESTARTED].tolist() == [False, True]
    assert infos["task_id"].tolist() == first_tasks  # its last info, flagged
    while not envs.done.all():
        envs.step(np.array(actions, dtype=object))
    _, infos = envs.reset(**reset_kwargs)
    assert infos["task_id"].tolist() == first_tasks and WORKER_RESTARTED not in infos
    _, _, _, truncated, infos = envs.step(np.array(actions, dtype=object))
    assert not truncated.any() and infos["action_valid"].all()


def test_alfworld_vector_env_survives_a_killed_worker():
    from .alfworld.conftest import small_tasks

    tasks = [t.task_id for t in small_tasks("valid_unseen", task_types=TASK_TYPES[:2])]
    envs = make_group_vector_env("ALFWorld-v0", 2, 1, split="valid_unseen", max_steps=4)
    try:
        _assert_recovers_from_kill_between_steps(envs, ["look", "look"], {"options": {"tasks": tasks}})
    finally:
        _close_fast(envs)


def test_webshop_vector_env_survives_a_killed_worker(tmp_path):
    from agentenv.webshop.local import local_server

    server = local_server({"num_products": 100, "seed": 3, "cache_dir": str(tmp_path)})
    envs = make_group_vector_env("WebShop-v0", 2, 1, server_url=server.url, max_steps=4)
    try:
        _assert_recovers_from_kill_between_steps(envs, ["search[shirt]", "search[shoes]"], {"seed": 5})
    finally:
        _close_fast(envs)
        server.close()
