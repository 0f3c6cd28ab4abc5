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

Works with any env whose observations can be batched by gymnasium (the text envs of
this package); this module does not import torch or any env package.
"""

from __future__ import annotations

import functools
import multiprocessing
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv, VectorWrapper

__all__ = ["GroupVectorEnv", "make_group_vector_env"]

_PARK = "idle"


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
    entry_point = gym.spec(env_id).entry_point
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

    With ``asynchronous=True`` each env runs in its own process (``AsyncVectorEnv``,
    ``shared_memory=False``, a forkserver or spawn context); else all run in this one
    (``SyncVectorEnv``). ``vector_kwargs`` go to the vector env's constructor (e.g.
    ``context`` or ``max_concurrency``).
    """
    for name, value in (("num_groups", num_groups), ("group_size", group_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    env_fns = [
        functools.partial(_make_member, env_id, i // group_size, dict(env_kwargs))
        for i in range(num_groups * group_size)
    ]
    vector_kwargs = dict(vector_kwargs or {})
    vector_kwargs["autoreset_mode"] = AutoresetMode.DISABLED
    env: VectorEnv
    if asynchronous:
        if "context" not in vector_kwargs:
            vector_kwargs["context"] = _default_context(env_id)
        # Text observations cannot live in shared memory (gymnasium returns garbage).
        vector_kwargs["shared_memory"] = False
        env = AsyncVectorEnv(env_fns, **vector_kwargs)
    else:
        env = SyncVectorEnv(env_fns, **vector_kwargs)
    return GroupVectorEnv(env, group_size)
