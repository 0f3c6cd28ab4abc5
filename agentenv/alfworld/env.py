"""``ALFWorld-v0``: ALFWorld's text games on the real TextWorld PDDL engine."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import gymnasium as gym

from agentenv.alfworld.engine import Engine, admissible_actions, expert_seed, expert_view
from agentenv.alfworld.expert import HandcodedExpert
from agentenv.alfworld.tasks import Task, TaskSet, load_task_set
from agentenv.spaces import FreeText

__all__ = ["ALFWorldEnv"]

_GOAL = re.compile(r"Your task is to: (.*?)\.?\s*$", re.DOTALL)


class ALFWorldEnv(gym.Env[str, str]):
    """ALFWorld (Shridhar et al., 2021): household tasks played as text, on textworld's PDDL engine.

    Each episode is one game: a room full of receptacles and objects, and a task of one
    of six types (put an object somewhere; look at one under a lamp; clean, heat or cool
    it first; put two of them). Games come from the embedded generated set (default), or
    from ALFWorld's official data when ``data_path`` or ``$ALFWORLD_DATA`` points at it
    (see ``docs/alfworld.md``).

    ## Action Space
    ``FreeText``: a command such as ``go to cabinet 1``, ``take mug 2 from cabinet 1``,
    ``move mug 2 to coffeemachine 1``, ``heat mug 2 with microwave 1``, ``use desklamp 1``.
    A command the game does not admit (anything not in ``info["admissible_actions"]``,
    compared after stripping surrounding spaces; also non-strings) changes nothing: the
    observation is the game's ``Nothing happens.`` and ``info["action_valid"]`` is False.
    Such a step is answered from the cached state without an engine step: textworld's
    ``PddlEnv`` looks the stripped command up among the state's commands and, when it is
    not there, prints ``Nothing happens.`` and recomputes the same state, so the
    transcript is byte-identical to stock ALFWorld's, in about 1 µs instead of a full step.

    ## Observation Space
    ``FreeText``: the game's text as ALFWorld prints it. The first observation
    describes the room and ends with ``Your task is to: ...``.

    ## Rewards
    ``success_reward`` (10.0) on the step that completes the task, else 0.0.

    ## Episode End
    Terminated when the task is done; truncated after ``max_steps`` (50) steps.
    Stepping a finished episode does not touch the engine: it returns the final
    observation again, reward 0 and the same ``terminated``/``truncated``.

    ## Information
    ``task`` (the task sentence), ``task_id``, ``task_type`` (one of the six),
    ``gamefile`` (its path for games in ALFWorld's layout, "" for the compact format of
    the embedded set),
    ``admissible_actions`` (sorted, without ``help``), ``action_valid`` and ``won``.
    With ``expert=True`` also ``expert_action``: the next command of ALFWorld's
    handcoded expert (``None`` once it gives up); following it from the first step
    plays the game's walkthrough.

    ## Starting State
    ``reset(options={"task": task_id})`` plays that game; otherwise the game is
    ``tasks[seed % len(tasks)]``, with ``tasks`` the split in *seed order*: a fixed
    shuffle, stratified by task type, that depends only on the task ids
    (:func:`agentenv.alfworld.tasks.seed_order`). So consecutive seeds mix the task types
    in proportion, and seeds ``0 .. len(tasks) - 1`` play every game once. Without a seed
    the game is a random one. The same game and seed give the same episode.
    ``reset(options={"idle": True})`` parks the env without engine work: it returns
    ``("", info)`` and every step until the next reset returns ``("", 0.0, False, False, info)``.

    ## Arguments
    ``split``: ``"train"``, ``"valid_seen"`` (new games on training floor plans,
    in-distribution) or ``"valid_unseen"`` (held-out floor plans, out-of-distribution).
    ``source``: ``"auto"`` (default: ``data_path`` or ``$ALFWORLD_DATA`` if it holds the
    official data, else the embedded set), ``"embedded"`` or ``"official"``.
    ``data_path``: a folder of games (ALFWorld's data root, a ``json_2.1.1`` folder, or
    an ``hgpo-alfworld-generate`` output). ``games_version``: the version of the embedded
    games (default: the latest, 2; 1 is the first release's set, see ``docs/alfworld.md``);
    an error with games from a folder. ``expert``, ``max_steps``, ``success_reward`` as
    above. ``task_types``: keep only games of these task types; ``max_tasks``: then keep
    the first N games in seed order (a fixed small set for debugging, curricula or CPU demos).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        split: str = "train",
        *,
        source: Literal["auto", "embedded", "official"] = "auto",
        data_path: str | os.PathLike[str] | None = None,
        games_version: int | None = None,
        expert: bool = False,
        max_steps: int = 50,
        success_reward: float = 10.0,
        render_mode: str | None = None,
        task_types: Sequence[str] | None = None,
        max_tasks: int | None = None,
    ):
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"unsupported render_mode {render_mode!r}; expected None or 'ansi'")
        self.tasks: TaskSet = load_task_set(split, source, data_path, games_version)
        if task_types is not None or max_tasks is not None:
            self.tasks = self.tasks.subset(task_types, max_tasks)
        self.split = split
        self.expert = bool(expert)
        self.max_steps = max_steps
        self.success_reward = float(success_reward)
        self.render_mode = render_mode
        self.observation_space = FreeText()
        self.action_space = FreeText()
        self._engine: Engine | None = None  # built at the first real reset: construction stays cheap
        self._expert: HandcodedExpert | None = None
        self._task: Task | None = None
        self._idle = False
        self._started = False
        self._obs = ""
        self._info: dict[str, Any] = {}
        self._steps = 0
        self._terminated = False
        self._truncated = False
        self._commands: frozenset[str] = frozenset()
        self._goal = ""

    # ---------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        self._started = True
        self._steps = 0
        self._terminated = self._truncated = False
        if options.get("idle"):
            self._idle = True
            self._task = None
            self._obs = ""
            self._info = self._idle_info()
            return "", dict(self._info)
        self._idle = False
        self._task = self._choose_task(seed, options.get("task"))
        if self._engine is None:
            self._engine = Engine(facts=self.expert)
        self._engine.load(self._task)
        state = self._engine.reset()
        self._obs = state["feedback"]
        self._info = self._state_info(state, action_valid=True)
        if self.expert:
            self._expert = HandcodedExpert(
                self._task.task_type, self._task.pddl_params, expert_seed(self._task.task_id)
            )
            self._info["expert_action"] = self._expert.start(expert_view(state))
        return self._obs, dict(self._info)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("ALFWorldEnv.step() called before reset()")
        if self._idle:
            return "", 0.0, False, False, dict(self._info)
        if self._terminated or self._truncated:
            return self._obs, 0.0, self._terminated, self._truncated, {**self._info, "action_valid": False}
        assert self._engine is not None and self._task is not None
        self._steps += 1
        command = action.strip() if isinstance(action, str) else None
        if command is None or command not in self._commands:
            # textworld's PddlEnv.step looks the stripped command up among the state's
            # commands; a miss prints "Nothing happens.", applies nothing and recomputes the
            # same state (facts, admissible commands, won). Answer it from the cache: same
            # transcript, no engine step. The expert's suggestion stays the same too.
            self._obs, info = "Nothing happens.", {**self._info, "action_valid": False}
        else:
            state = self._engine.step(command)
            self._obs, info = state["feedback"], self._state_info(state, action_valid=True)
            if self.expert:
                assert self._expert is not None
                info["expert_action"] = self._expert.next_action(expert_view(state), command)
        won = info["won"]
        self._terminated = bool(won)
        self._truncated = not won and self._steps >= self.max_steps
        self._info = info
        reward = self.success_reward if won else 0.0
        return self._obs, reward, self._terminated, self._truncated, dict(info)

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self._obs
        return None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        super().close()

    # ---------------------------------------------------------------- helpers
    def _choose_task(self, seed: int | None, task_id: Any) -> Task:
        if task_id is not None:
            return self.tasks.get(task_id)
        if seed is not None:
            return self.tasks.tasks[seed % len(self.tasks)]
        return self.tasks.tasks[int(self.np_random.integers(len(self.tasks)))]

    def _state_info(self, state: Any, action_valid: bool) -> dict[str, Any]:
        assert self._task is not None
        # Every command the engine accepts, "help" included, counts as valid.
        self._commands = frozenset(state["admissible_commands"])
        if self._steps == 0:
            match = _GOAL.search(state["feedback"])
            self._goal = match.group(1) if match else self._task.goal
        return {
            "task": self._goal,
            "task_id": self._task.task_id,
            "task_type": self._task.task_type,
            "gamefile": self._task.gamefile,
            "admissible_actions": admissible_actions(state),
            "action_valid": action_valid,
            "won": bool(state["won"]),
        }

    def _idle_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "task": "",
            "task_id": "",
            "task_type": "",
            "gamefile": "",
            "admissible_actions": [],
            "action_valid": False,
            "won": False,
        }
        if self.expert:
            info["expert_action"] = None
        return info
