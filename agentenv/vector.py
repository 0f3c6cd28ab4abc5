"""Vector envs for group-based RL (GRPO, GiGPO, HGPO): groups of envs that share a task.

``make_group_vector_env("ALFWorld-v0", num_groups=G, group_size=n)`` builds ``G * n``
envs; env ``i`` belongs to group ``i // n``. On ``reset(seed=s)`` every env of group
``g`` is reset with seed ``s + g`` (so, with the env contract's ``tasks[seed % len]``,
the members of a group play the same game from the same state and groups play
different games), or, with ``options={"tasks": [...]}``, with the task given for
its group.

Episodes of a group end at different steps. Gymnasium's vector envs either reset a
finished env on the next step (``NEXT_STEP``, which loads a new game for nothing) or,
with autoreset disabled, refuse to step it. :class:`GroupVectorEnv` keeps autoreset
disabled and *parks* a finished member (a masked reset that its wrapper answers
without touching the env); from then on it returns that member's final observation
and info, reward 0 and its final ``terminated``/``truncated`` flags, so the caller
can step the whole batch until every member is done.

Asynchronous envs run in :class:`ProcessVectorEnv`, one worker process per env, which
survives a dead worker (killed by the OOM killer, a segfault in native code): it
restarts the worker, ends that member's episode as truncated with
``info["worker_restarted"] = True``, and the next reset plays normally.

Works with any env whose observations can be batched by gymnasium (the text envs of
this package); this module does not import torch or any env package.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

__all__ = ["WORKER_RESTARTED", "GroupVectorEnv", "ProcessVectorEnv", "make_group_vector_env"]

logger = logging.getLogger(__name__)

_PARK = "idle"
#: Info key set (True) on a member whose worker process died and was restarted.
WORKER_RESTARTED = "worker_restarted"


class _GroupMember(gym.Wrapper):
    """A member env that knows its group: picks its group's task, and parks without touching the env."""

    def __init__(self, env: gym.Env, group: int):
        super().__init__(env)
        self.group = group
        self._parked = False
        self._last: tuple[Any, dict[str, Any]] = (None, {})

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        options = dict(options or {})
        if options.pop(_PARK, False):
            self._parked = True
            return self._last
        self._parked = False
        tasks = options.pop("tasks", None)
        if tasks is not None:
            options["task"] = tasks[self.group]
        obs, info = self.env.reset(seed=seed, options=options or None)
        self._last = (obs, info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._parked:
            # Not done as far as the vector env knows (it would refuse the next step);
            # GroupVectorEnv restores the member's real flags.
            obs, info = self._last
            return obs, 0.0, False, False, info
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._last = (obs, info)
        return obs, reward, terminated, truncated, info


def _make_member(env_id: str, group: int, env_kwargs: dict[str, Any]) -> gym.Env:
    # Worker processes start from scratch: make sure our ids are registered there.
    from agentenv.registration import register_envs

    register_envs()
    return _GroupMember(gym.make(env_id, **env_kwargs), group)


# ---------------------------------------------------------------------------- worker processes


def _worker_main(
    index: int, env_fn: Callable[[], gym.Env], conn: multiprocessing.connection.Connection
) -> None:
    """One env in its own process: answer ``(command, payload)`` messages with ``(ok, result)``."""
    # Ctrl-C reaches the whole process group: the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    env = None
    try:
        env = env_fn()
        conn.send((True, (env.observation_space, env.action_space, dict(env.metadata), env.render_mode)))
        while True:
            try:
                command, payload = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                break
            if command == "close":
                break
            try:
                if command == "reset":
                    result = env.reset(**payload)
                elif command == "step":
                    result = env.step(payload)
                elif command == "get_attr":
                    result = env.get_wrapper_attr(payload)
                elif command == "call":
                    name, args, kwargs = payload
                    attr = env.get_wrapper_attr(name)
                    result = attr(*args, **kwargs) if callable(attr) else attr
                elif command == "set_attr":
                    env.set_wrapper_attr(*payload)
                    result = None
                else:
                    raise ValueError(f"unknown worker command {command!r}")
                conn.send((True, result))
            except Exception as error:
                _send_error(conn, error)
    except Exception as error:  # the env could not be built
        _send_error(conn, error)
    finally:
        if env is not None:
            try:
                env.close()
            except Exception:
                logger.exception("env worker %d: closing its env failed", index)


def _send_error(conn: multiprocessing.connection.Connection, error: Exception) -> None:
    trace = traceback.format_exc()
    try:
        conn.send((False, (error, trace)))
    except Exception:  # the exception itself does not pickle: send its text
        conn.send((False, (RuntimeError(f"{type(error).__name__}: {error}"), trace)))


class _WorkerDied(Exception):
    def __init__(self, index: int, pid: int | None, exitcode: int | None):
        super().__init__(index, pid, exitcode)
        self.index, self.pid, self.exitcode = index, pid, exitcode


class _Worker:
    """The parent's handle on one worker process: its pipe, and whether a reply is owed."""

    def __init__(self, index: int, env_fn: Callable[[], gym.Env], ctx: Any):
        self.index = index
        self._env_fn = env_fn
        self._ctx = ctx
        self.pending = False
        self.start()

    def start(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe()
        self.process = self._ctx.Process(
            target=_worker_main,
            args=(self.index, self._env_fn, child_conn),
            name=f"agentenv-env-{self.index}",
            daemon=True,
        )
        self.process.start()
        child_conn.close()
        self.conn = parent_conn
        self.pending = True  # the worker reports once its env is built

    def send(self, command: str, payload: Any = None) -> None:
        if self.pending:
            self.receive()  # a reply left over from an interrupted call: drop it
        try:
            self.conn.send((command, payload))
        except (OSError, ValueError):  # BrokenPipeError, ConnectionResetError, closed pipe
            raise self._died() from None
        self.pending = True

    def receive(self) -> tuple[bool, Any]:
        """The reply to the last message; :class:`_WorkerDied` if the process ended first."""
        try:
            while not self.conn.poll():
                multiprocessing.connection.wait([self.conn, self.process.sentinel])
                if not self.process.is_alive() and not self.conn.poll():
                    raise self._died()
            reply = self.conn.recv()
        except (EOFError, OSError):
            raise self._died() from None
        self.pending = False
        return reply

    def _died(self) -> _WorkerDied:
        self.pending = False
        self.process.join(timeout=5)
        return _WorkerDied(self.index, self.process.pid, self.process.exitcode)

    def stop(self, deadline: float) -> None:
        """Ask the worker to exit; terminate, then kill it if it is still there at ``deadline``."""
        with contextlib.suppress(OSError, ValueError):  # already dead or closed
            self.conn.send(("close", None))
        self.process.join(timeout=max(0.0, deadline - time.monotonic()))
        for end in (self.process.terminate, self.process.kill):
            if not self.process.is_alive():
                break
            end()
            self.process.join(timeout=2)
        self.conn.close()
        self.pending = False


@dataclass
class _MemberState:
    obs: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    lost: bool = False  # its worker died this episode: answered here until the next real reset
    deaths_in_a_row: int = 0
    clean_episode: bool = True  # no death since the last real reset


class ProcessVectorEnv(VectorEnv):
    """A vector env with one worker process per env that survives dead workers.

    Like ``gymnasium.vector.AsyncVectorEnv(..., shared_memory=False,
    autoreset_mode=AutoresetMode.DISABLED)``, plus:

    * a worker that dies (SIGKILL, OOM killer, segfault) is detected by its process
      sentinel, never a hang; it is restarted with the same env function and a warning
      names the env index, pid and exit code;
    * died during ``reset``: the reset is retried on the new worker (same seed and
      options) and its info carries ``worker_restarted=True``;
    * died during ``step`` or between calls: that member's episode ends as truncated
      (reward 0, its last observation and info plus ``worker_restarted=True``), and it
      keeps answering so, without a worker call, until its next reset, which plays
      normally;
    * a worker that dies more than ``max_restarts`` times in a row (without a whole
      episode in between) raises a ``RuntimeError`` naming it;
    * an exception inside an env is raised in the caller, with the worker's traceback
      as a note; the worker stays usable;
    * ``close()`` never blocks: workers get ``close_timeout`` seconds to exit, then are
      terminated, then killed.

    Args:
        env_fns: one function per env that builds it (picklable: workers are started by
            ``context``).
        context: a ``multiprocessing`` start method (default: the platform's).
        max_restarts: restarts allowed per worker in a row.
        close_timeout: seconds ``close()`` waits for workers to exit before terminating them.
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        *,
        context: str | None = None,
        max_restarts: int = 3,
        close_timeout: float = 5.0,
    ):
        if not env_fns:
            raise ValueError("ProcessVectorEnv needs at least one env function")
        if not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
        self.num_envs = len(env_fns)
        self.max_restarts = max_restarts
        self.close_timeout = float(close_timeout)
        self.closed = False
        ctx = multiprocessing.get_context(context)
        self._members = [_MemberState() for _ in env_fns]
        self._workers = [_Worker(i, fn, ctx) for i, fn in enumerate(env_fns)]
        try:
            ready = self._receive_all(range(self.num_envs), "start")
        except BaseException:
            self.close()
            raise
        observation_space, action_space, metadata, render_mode = ready[0]
        self.single_observation_space = observation_space
        self.single_action_space = action_space
        self.observation_space = batch_space(observation_space, self.num_envs)
        self.action_space = batch_space(action_space, self.num_envs)
        self.metadata = {**metadata, "autoreset_mode": AutoresetMode.DISABLED}
        self.render_mode = render_mode
        self._observations = create_empty_array(observation_space, n=self.num_envs, fn=np.zeros)

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the envs (those of ``options["reset_mask"]`` only, when given)."""
        self._check_open()
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        mask = np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"options['reset_mask'] must have shape ({self.num_envs},), got {mask.shape}")
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        park = bool(options.get(_PARK))
        to_reset = [i for i in range(self.num_envs) if mask[i]]
        for i in to_reset:
            member = self._members[i]
            if not park:
                if member.clean_episode:
                    member.deaths_in_a_row = 0
                member.clean_episode = True
                member.lost = False
        calls = [i for i in to_reset if not self._members[i].lost]
        kwargs = {i: {"seed": seeds[i], "options": options or None} for i in calls}
        results = self._call_all(calls, "reset", kwargs, retry=not park)
        infos: dict[str, Any] = {}
        observations = []
        for i in range(self.num_envs):
            member = self._members[i]
            if i in results:
                member.obs, member.info = results[i]
            if mask[i]:
                infos = self._add_info(infos, member.info, i)
            observations.append(member.obs)
        self._observations = concatenate(self.single_observation_space, observations, self._observations)
        return self._observations, infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; members whose worker died this episode answer truncated (see the class doc)."""
        self._check_open()
        actions = list(iterate(self.action_space, actions))
        if len(actions) != self.num_envs:
            raise ValueError(f"got {len(actions)} actions for {self.num_envs} envs")
        calls = [i for i in range(self.num_envs) if not self._members[i].lost]
        results = self._call_all(calls, "step", {i: actions[i] for i in calls}, retry=False)
        observations, infos = [], {}
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for i, member in enumerate(self._members):
            if i in results:
                member.obs, rewards[i], terminated[i], truncated[i], member.info = results[i]
            else:  # lost this step or earlier in the episode
                truncated[i] = True
            observations.append(member.obs)
            infos = self._add_info(infos, member.info, i)
        self._observations = concatenate(self.single_observation_space, observations, self._observations)
        return self._observations, rewards, terminated, truncated, infos

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """An attribute of every env (through its wrappers)."""
        self._check_open()
        results = self._call_all(
            range(self.num_envs), "get_attr", dict.fromkeys(range(self.num_envs), name), retry=True
        )
        return tuple(results[i] for i in range(self.num_envs))

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call a method of every env (or read an attribute) and return the results."""
        self._check_open()
        payload = dict.fromkeys(range(self.num_envs), (name, args, kwargs))
        results = self._call_all(range(self.num_envs), "call", payload, retry=True)
        return tuple(results[i] for i in range(self.num_envs))

    def set_attr(self, name: str, values: Any) -> None:
        """Set an attribute on every env: one value for all, or a list of one per env."""
        self._check_open()
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"got {len(values)} values for {self.num_envs} envs")
        payload = {i: (name, values[i]) for i in range(self.num_envs)}
        self._call_all(range(self.num_envs), "set_attr", payload, retry=True)

    @property
    def worker_pids(self) -> tuple[int | None, ...]:
        """The process id of each env's current worker."""
        return tuple(w.process.pid for w in self._workers)

    def close_extras(self, **kwargs: Any) -> None:
        """Stop every worker: a ``close`` message, then terminate and kill after ``close_timeout``."""
        deadline = time.monotonic() + self.close_timeout
        for worker in self._workers:
            try:
                worker.stop(deadline)
            except Exception:  # close must finish: one stubborn worker must not keep the others
                logger.exception("env worker %d: stopping it failed", worker.index)

    def __del__(self) -> None:
        if not getattr(self, "closed", True) and hasattr(self, "_workers"):
            with contextlib.suppress(Exception):  # at interpreter exit, modules may be gone
                self.close()

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this vector env is closed")

    def _call_all(
        self, indices: Any, command: str, payloads: dict[int, Any], *, retry: bool
    ) -> dict[int, Any]:
        """Send ``command`` to the workers of ``indices``, then collect every reply.

        A dead worker is restarted. Unless the command is a real reset (which starts a new
        episode anyway), its member has lost its episode: it is marked lost (truncated
        until its next reset). With ``retry`` the call is repeated on the new worker.
        Every reply is read before any error is raised, so the pipes stay in step.
        """
        indices = list(indices)
        dead: list[_WorkerDied] = []
        sent = []
        for i in indices:
            try:
                self._workers[i].send(command, payloads[i])
                sent.append(i)
            except _WorkerDied as death:
                dead.append(death)
        results: dict[int, Any] = {}
        errors: list[tuple[int, Exception, str]] = []
        for i in sent:
            try:
                ok, value = self._workers[i].receive()
            except _WorkerDied as death:
                dead.append(death)
                continue
            if ok:
                results[i] = value
            else:
                errors.append((i, *value))
        new_episode = command == "reset" and retry
        for death in sorted(dead, key=lambda d: d.index):
            value = self._recover(death, command, payloads[death.index], retry, new_episode)
            if retry:
                results[death.index] = value
        if errors:
            _raise_from_worker(*errors[0])
        return results

    def _recover(self, death: _WorkerDied, command: str, payload: Any, retry: bool, new_episode: bool) -> Any:
        """Restart a dead worker (until it stays up); then, with ``retry``, the call's result on the new one."""
        index = death.index
        member = self._members[index]
        worker = self._workers[index]
        while True:
            member.deaths_in_a_row += 1
            member.clean_episode = False
            if member.deaths_in_a_row > self.max_restarts:
                raise RuntimeError(
                    f"env worker {index} (pid {death.pid}) died {member.deaths_in_a_row} times in a row, "
                    f"the last time with exit code {death.exitcode} during {command!r}; "
                    f"not restarting it again (max_restarts={self.max_restarts})"
                )
            logger.warning(
                "env worker %d (pid %s) died with exit code %s during %r; restarting it (%d in a row)",
                index, death.pid, death.exitcode, command, member.deaths_in_a_row,
            )  # fmt: skip
            if not new_episode:
                member.lost = True
                member.info = {**member.info, WORKER_RESTARTED: True}
            try:
                worker.start()
                ok, value = worker.receive()  # the new env is built
                if not ok:
                    raise RuntimeError(
                        f"env worker {index} could not rebuild its env after a restart:\n{value[1]}"
                    )
                if not retry:
                    return None
                worker.send(command, payload)
                ok, value = worker.receive()
            except _WorkerDied as again:
                death = again
                continue
            if not ok:
                _raise_from_worker(index, *value)
            if new_episode:
                obs, info = value
                return obs, {**info, WORKER_RESTARTED: True}
            return value

    def _receive_all(self, indices: Any, what: str) -> list[Any]:
        """Collect the pending reply of every worker (restarting dead ones)."""
        replies = []
        for i in indices:
            worker = self._workers[i]
            member = self._members[i]
            while True:
                try:
                    ok, value = worker.receive()
                    break
                except _WorkerDied as death:
                    member.deaths_in_a_row += 1
                    if member.deaths_in_a_row > self.max_restarts:
                        raise RuntimeError(
                            f"env worker {i} (pid {death.pid}) died {member.deaths_in_a_row} times in a row "
                            f"during {what} (exit code {death.exitcode})"
                        ) from None
                    logger.warning(
                        "env worker %d (pid %s) died with exit code %s during %s; restarting it",
                        i, death.pid, death.exitcode, what,
                    )  # fmt: skip
                    worker.start()
            if not ok:
                _raise_from_worker(i, *value)
            replies.append(value)
        return replies


def _raise_from_worker(index: int, error: BaseException, trace: str) -> None:
    if hasattr(error, "add_note"):  # Python >= 3.11
        error.add_note(f"(raised in env worker {index}; its traceback follows)\n{trace}")
    raise error


# ---------------------------------------------------------------------------- groups


class GroupVectorEnv(VectorWrapper):
    """A vector env of ``num_groups`` groups of ``group_size`` envs (see the module docstring).

    Attributes:
        group_ids: the group of each env (``np.ndarray`` of int, env ``i`` -> ``i // group_size``).
        num_groups, group_size: the layout.
    """

    def __init__(self, env: VectorEnv, group_size: int):
        super().__init__(env)
        if group_size < 1 or env.num_envs % group_size:
            raise ValueError(f"group_size must divide num_envs={env.num_envs}, got {group_size}")
        if env.metadata.get("autoreset_mode") != AutoresetMode.DISABLED:
            raise ValueError(
                "GroupVectorEnv needs a vector env built with autoreset_mode=AutoresetMode.DISABLED"
            )
        self.group_size = group_size
        self.num_groups = env.num_envs // group_size
        self.group_ids = np.arange(env.num_envs) // group_size
        self._terminated = np.zeros(env.num_envs, dtype=bool)
        self._truncated = np.zeros(env.num_envs, dtype=bool)
        self._parked = np.zeros(env.num_envs, dtype=bool)
        self._rng = np.random.default_rng()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every env: group ``g`` gets seed ``seed + g`` (a random base seed if None).

        ``options={"tasks": [task id per group]}`` picks each group's task; any other
        option is passed to every env.
        """
        options = dict(options or {})
        tasks = options.get("tasks")
        if tasks is not None and (isinstance(tasks, str) or len(tasks) != self.num_groups):
            raise ValueError(
                f"options['tasks'] must list one task per group ({self.num_groups}), got {tasks!r}"
            )
        if seed is None:
            seed = int(self._rng.integers(2**31 - self.num_groups))
        seeds = [int(seed + g) for g in self.group_ids]
        self._terminated[:] = self._truncated[:] = self._parked[:] = False
        return self.env.reset(seed=seeds, options=options)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; members whose episode ended repeat their final step's results (reward 0)."""
        to_park = (self._terminated | self._truncated) & ~self._parked
        if to_park.any():
            self.env.reset(options={_PARK: True, "reset_mask": to_park})
            self._parked |= to_park
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        active = ~self._parked
        self._terminated[active] = terminated[active]
        self._truncated[active] = truncated[active]
        return obs, rewards, self._terminated.copy(), self._truncated.copy(), infos

    @property
    def done(self) -> np.ndarray:
        """Which members have finished their episode since the last reset."""
        return self._terminated | self._truncated

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """An attribute of every member env (through the member wrappers)."""
        return self.env.get_attr(name)


def _default_context(env_id: str) -> str:
    """Forkserver (spawn where there is none), with the env's module preloaded in the server.

    Fork would copy the caller's threads and locks (torch, a JVM) into the workers. The
    forkserver is a fresh single-threaded process: importing the env's module there once
    (textworld takes seconds) lets every worker start from a ready copy.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    # gymnasium also accepts "module:EnvName-v0" ids: importing the module registers the id.
    registering_module, _, name = env_id.rpartition(":")
    if registering_module:
        importlib.import_module(registering_module)
    entry_point = gym.spec(name).entry_point
    if isinstance(entry_point, str):
        import multiprocessing.forkserver as forkserver

        # Add to (never replace) the modules the caller asked the forkserver to preload;
        # this has no effect once this process's forkserver is running.
        preload = list(getattr(forkserver._forkserver, "_preload_modules", ["__main__"]))
        module = entry_point.split(":")[0]
        if module not in preload:
            multiprocessing.get_context("forkserver").set_forkserver_preload([*preload, module])
    return "forkserver"


def make_group_vector_env(
    env_id: str,
    num_groups: int,
    group_size: int,
    *,
    asynchronous: bool = True,
    vector_kwargs: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> GroupVectorEnv:
    """Build ``num_groups * group_size`` envs of ``env_id`` (made with ``env_kwargs``) as a :class:`GroupVectorEnv`.

    With ``asynchronous=True`` each env runs in its own process (:class:`ProcessVectorEnv`,
    a forkserver or spawn context; a dead worker is restarted); else all run in this one
    (gymnasium's ``SyncVectorEnv``). ``vector_kwargs`` go to the vector env's constructor
    (for :class:`ProcessVectorEnv`: ``context``, ``max_restarts``, ``close_timeout``).
    """
    for name, value in (("num_groups", num_groups), ("group_size", group_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    env_fns = [
        functools.partial(_make_member, env_id, i // group_size, dict(env_kwargs))
        for i in range(num_groups * group_size)
    ]
    vector_kwargs = dict(vector_kwargs or {})
    env: VectorEnv
    if asynchronous:
        if "context" not in vector_kwargs:
            vector_kwargs["context"] = _default_context(env_id)
        env = ProcessVectorEnv(env_fns, **vector_kwargs)
    else:
        env = SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.DISABLED, **vector_kwargs)
    return GroupVectorEnv(env, group_size)
