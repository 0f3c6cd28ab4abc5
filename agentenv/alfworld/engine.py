"""A thin layer over textworld's PDDL engine, shared by the env and the game generator.

The engine is textworld's ``PddlEnv`` wrapped by alfworld's ``AlfredDemangler``
(readable names such as ``mug 2``), exactly the stack alfworld's ``AlfredTWEnv``
plays; the handcoded expert is driven by :class:`~agentenv.alfworld.expert.HandcodedExpert`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import textworld
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
from textworld.envs import PddlEnv

from agentenv.alfworld import caches
from agentenv.alfworld.expert import HandcodedExpert
from agentenv.alfworld.tasks import Task

__all__ = ["HELP_COMMAND", "Engine", "expert_seed", "expert_walkthrough"]

#: The grammar's ``help`` command: playable, but not listed among the admissible actions.
HELP_COMMAND = "help"


def expert_seed(task_id: str) -> int:
    """Seed of the expert's tie-breaking for a game (stable across processes and machines)."""
    return int.from_bytes(hashlib.blake2b(task_id.encode("utf-8"), digest_size=8).digest(), "little")


class Engine:
    """One textworld ``PddlEnv`` that plays one ALFWorld game at a time.

    Args:
        facts: also report the state's facts (the handcoded expert needs them; they cost
            time on every step).
        use_caches: install :mod:`agentenv.alfworld.caches` (process-wide) and keep this
            engine's game in them.
    """

    def __init__(self, *, facts: bool = False, use_caches: bool = True):
        if use_caches:
            caches.register(self)
        infos = textworld.EnvInfos(won=True, admissible_commands=True, facts=facts)
        self._env = AlfredDemangler(PddlEnv(infos), shuffle=False)
        self.task: Task | None = None

    def load(self, task: Task) -> None:
        """Load ``task``'s game unless it is the one loaded already."""
        if task is not self.task:
            self.task = None  # a failed load leaves no half-loaded game behind
            self._env.load(task.game_data())
            self.task = task

    def reset(self) -> textworld.GameState:
        """Start the loaded game from its initial state."""
        return self._env.reset()

    def step(self, command: str) -> textworld.GameState:
        """Play ``command``; an inadmissible one gives the game's "Nothing happens."."""
        state, _, _ = self._env.step(command)
        return state

    def close(self) -> None:
        self._env.close()


def admissible_actions(state: Mapping[str, Any]) -> list[str]:
    """The admissible commands of a state, without ``help``."""
    return [c for c in state["admissible_commands"] if c != HELP_COMMAND]


def expert_view(state: Mapping[str, Any]) -> dict[str, Any]:
    """What the handcoded expert reads from a state, with ``help`` left out of its choices."""
    return {
        "feedback": state["feedback"],
        "admissible_commands": admissible_actions(state),
        "facts": state["facts"],
    }


def expert_walkthrough(engine: Engine, task: Task, *, max_steps: int) -> tuple[str, ...] | None:
    """The commands the handcoded expert plays to win ``task``, or ``None`` if it does not win in ``max_steps``.

    ``engine`` must report facts. This is the episode the env plays when an agent follows
    ``info["expert_action"]`` from the first step.
    """
    engine.load(task)
    state = engine.reset()
    expert = HandcodedExpert(task.task_type, task.pddl_params, expert_seed(task.task_id))
    command: str | None = expert.start(expert_view(state))
    commands: list[str] = []
    while command is not None and len(commands) < max_steps:
        state = engine.step(command)
        commands.append(command)
        if state["won"]:
            return tuple(commands)
        command = expert.next_action(expert_view(state), command)
    return None
