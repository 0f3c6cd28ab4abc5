"""Demonstrations for the imitation warm start, on the corridor env (its expert always goes east)."""

from __future__ import annotations

import re

import pytest

from agentenv.vector import make_group_vector_env
from hgpo.config import load_config
from hgpo.warm_start import collect_demonstrations
from memory import FixedSizeMemory

ENV_ID = "tests.hgpo.corridor:Corridor-v0"


def _collect(noise: float) -> tuple[list[tuple[str, str]], float]:
    envs = make_group_vector_env(ENV_ID, 8, 1, asynchronous=False, expert=True, max_steps=10)
    try:
        return collect_demonstrations(
            envs, FixedSizeMemory(2, "alfworld"), episodes=16, seed=0, max_steps=10, noise=noise
        )
    finally:
        envs.close()


def _actions(pairs: list[tuple[str, str]]) -> list[str]:
    return [re.fullmatch(r"<action>(.*)</action>", target).group(1) for _, target in pairs]


def test_noiseless_demonstrations_teach_the_expert():
    pairs, success = _collect(0.0)
    actions = _actions(pairs)
    assert success == 1.0
    assert "go west" not in actions and actions.count("go east") == 16 * 4  # corridor length 4
    assert all("find the treasure" in prompt for prompt, _ in pairs)


def test_noisy_demonstrations_teach_the_random_actions_they_take():
    pairs, success = _collect(0.5)
    actions = _actions(pairs)
    # Uniform over 2-4 admissible actions at half of the steps: detours and wrong doors.
    assert actions.count("go west") >= 5
    assert success < 1.0
    assert set(actions) <= {"go east", "go west", "open red door", "open blue door"}


def test_noise_is_a_probability():
    with pytest.raises(ValueError, match="noise"):
        load_config(None, ["warm_start.noise=1.5"])
