"""A tiny text env for trainer tests: walk a corridor, open the marked door.

It follows the env contract of DESIGN.md (info keys, task from seed) and needs
multi-step credit assignment: the only reward comes at the last step, and every
"go west" costs steps against a tight limit. Its expert can be made noisy
(``expert_noise``: the chance of a "go west" demonstration), so imitation alone
gives a mediocre policy that RL has to improve. Registered as
``tests.hgpo.corridor:Corridor-v0`` so ``gym.make`` imports it in worker processes.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agentenv.spaces import FreeText

COLOURS = ("red", "blue")


class CorridorEnv(gym.Env[str, str]):
    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        length: int = 4,
        max_steps: int = 10,
        success_reward: float = 10.0,
        expert: bool = False,
        expert_noise: float = 0.0,
        split: str = "train",
    ):
        self.length = length
        self.expert_noise = expert_noise
        self.max_steps = max_steps
        self.success_reward = success_reward
        self.expert = expert
        self.observation_space = FreeText(2000)
        self.action_space = FreeText(2000)
        self._idle = True

    def _obs(self) -> str:
        if self.pos == 0:
            return "You are at the west end of a corridor. A sign says: the treasure is behind a marked door."
        if self.pos == self.length:
            return f"You are at the east end of the corridor. There is a red door and a blue door. The {self.colour} door is marked."
        return f"You are in the corridor, {self.length - self.pos} steps from the east end."

    def _admissible(self) -> list[str]:
        acts = ["go east", "go west"]
        if self.pos == self.length:
            acts += ["open red door", "open blue door"]
        return acts

    def _info(self, valid: bool) -> dict[str, Any]:
        info = {
            "task": "find the treasure",
            "task_id": self.colour,
            "task_type": "corridor",
            "admissible_actions": self._admissible(),
            "action_valid": valid,
            "won": self.won,
        }
        if self.expert:
            if self.pos < self.length:
                noisy = self.pos > 0 and self.np_random.random() < self.expert_noise
                info["expert_action"] = "go west" if noisy else "go east"
            else:
                info["expert_action"] = f"open {self.colour} door"
        return info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if options.get("idle"):
            self._idle = True
            return "", {"idle": True}
        self._idle = False
        task = options.get("task")
        self.colour = task if task in COLOURS else COLOURS[(seed or 0) % 2]
        self.pos, self.t, self.won, self.done = 0, 0, False, False
        return self._obs(), self._info(True)

    def step(self, action: str):
        if self._idle:
            return "", 0.0, False, False, {"idle": True}
        if self.done:
            return self._last, 0.0, True, self.t >= self.max_steps and not self.won, self._info(True)
        self.t += 1
        action = action.strip().lower()
        valid = action in self._admissible()
        terminated = False
        if action == "go east" and self.pos < self.length:
            self.pos += 1
            obs = self._obs()
        elif action == "go west" and self.pos > 0:
            self.pos -= 1
            obs = self._obs()
        elif valid and action.startswith("open"):
            terminated = True
            self.won = action == f"open {self.colour} door"
            obs = "You found the treasure!" if self.won else "The room is empty. You lose."
        else:
            obs = "Nothing happens."
        truncated = not terminated and self.t >= self.max_steps
        self.done = terminated or truncated
        self._last = obs
        reward = self.success_reward if self.won else 0.0
        return obs, reward, terminated, truncated, self._info(valid)


gym.register("Corridor-v0", entry_point=CorridorEnv, disable_env_checker=True)
