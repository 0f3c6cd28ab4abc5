"""ALFWorld-v0 on the real engine: the env contract, determinism, bad input, episode ends."""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agentenv.alfworld import caches
from agentenv.alfworld.engine import admissible_actions
from agentenv.alfworld.env import ALFWorldEnv
from agentenv.alfworld.generate import write_compact
from agentenv.alfworld.tasks import TASK_TYPES

from .conftest import embedded_records, small_tasks

INFO_KEYS = {"task", "task_id", "task_type", "gamefile", "admissible_actions", "action_valid", "won"}


@pytest.fixture(scope="module")
def task():
    return small_tasks("train", task_types=("pick_and_place_simple",))[0]


@pytest.fixture
def env():
    env = gym.make("ALFWorld-v0")
    yield env
    env.close()


def test_gym_make_registered_without_import():
    spec = gym.spec("ALFWorld-v0")
    assert spec.entry_point == "agentenv.alfworld.env:ALFWorldEnv"
    env = gym.make("ALFWorld-v0", split="valid_unseen", max_steps=7, success_reward=1.5)
    assert isinstance(env.unwrapped, ALFWorldEnv)
    assert (env.unwrapped.max_steps, env.unwrapped.success_reward) == (7, 1.5)
    assert env.unwrapped.tasks.split == "valid_unseen"
    env.close()


def test_check_env_passes(tmp_path):
    # check_env resets with seeds 123, 456 and random ones: give it a one-game split (fast to load).
    small = small_tasks("train", task_types=("look_at_obj_in_light",))[0]
    write_compact(tmp_path / "train.jsonl.xz", [embedded_records("train")[small.task_id]])
    env = ALFWorldEnv(data_path=tmp_path)
    with pytest.warns(UserWarning, match="render"):  # no spec to test render modes with: expected
        check_env(env)
    env.close()


def test_first_observation_and_info(env, task):
    obs, info = env.reset(options={"task": task.task_id})
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-")
    assert "You are in the middle of a room." in obs
    assert obs.endswith(f"Your task is to: {task.goal}.")
    assert set(info) == INFO_KEYS
    assert info["task"] == task.goal
    assert (info["task_id"], info["task_type"], info["gamefile"]) == (task.task_id, task.task_type, "")
    assert info["action_valid"] is True and info["won"] is False
    actions = info["admissible_actions"]
    assert actions == sorted(actions) and "help" not in actions and "look" in actions
    assert any(a.startswith("go to ") for a in actions)


def test_walkthrough_wins_with_reward_at_the_last_step(env, task):
    env.reset(options={"task": task.task_id})
    rewards = []
    for i, command in enumerate(task.walkthrough):
        _obs, reward, terminated, truncated, info = env.step(command)
        rewards.append(reward)
        assert info["action_valid"] is True
        assert terminated is (i == len(task.walkthrough) - 1) and truncated is False
    assert info["won"] is True
    assert rewards == [0.0] * (len(rewards) - 1) + [10.0]


def test_success_reward_is_configurable(task):
    env = gym.make("ALFWorld-v0", success_reward=1.0)
    env.reset(options={"task": task.task_id})
    rewards = [env.step(c)[1] for c in task.walkthrough]
    assert rewards[-1] == 1.0 and sum(rewards) == 1.0
    env.close()


def test_seed_picks_tasks_in_order_and_consecutive_seeds_differ(env):
    tasks = env.unwrapped.tasks.tasks
    ids = []
    for seed in (0, 1, len(tasks) + 1):
        _, info = env.reset(seed=seed)
        ids.append(info["task_id"])
    assert ids == [tasks[0].task_id, tasks[1].task_id, tasks[1].task_id]
    assert len(set(ids)) == 2


def _play(env: gym.Env, seed: int, task_id: str | None = None, steps: int = 8) -> list:
    """A trajectory of admissible commands chosen by a seeded RNG (same seed -> same choices)."""
    rng = np.random.default_rng(seed)
    options = {"task": task_id} if task_id else None
    obs, info = env.reset(seed=seed, options=options)
    trajectory = [(obs, sorted(info.items()))]
    for _ in range(steps):
        command = str(rng.choice(info["admissible_actions"]))
        obs, reward, terminated, truncated, info = env.step(command)
        trajectory.append((command, obs, reward, terminated, truncated, sorted(info.items())))
        if terminated or truncated:
            break
    return trajectory


def test_same_seed_same_trajectory_and_other_seed_differs(task):
    env = gym.make("ALFWorld-v0", expert=True)
    first = _play(env, seed=3, task_id=task.task_id)
    other = small_tasks("train", task_types=("look_at_obj_in_light",))[0]
    _play(env, seed=5, task_id=other.task_id)  # play something else in between
    again = _play(env, seed=3, task_id=task.task_id)
    assert first == again
    assert _play(env, seed=4, task_id=task.task_id) != first  # other commands chosen
    env.close()


def test_two_envs_agree():
    tasks = small_tasks("valid_seen", task_types=("pick_clean_then_place_in_recep",))
    a, b = gym.make("ALFWorld-v0", split="valid_seen"), gym.make("ALFWorld-v0", split="valid_seen")
    assert _play(a, seed=11, task_id=tasks[0].task_id) == _play(b, seed=11, task_id=tasks[0].task_id)
    a.close()
    b.close()


@pytest.mark.parametrize(
    "action",
    [
        "",
        "   ",
        "x" * 1_000_000,
        "prends la pomme ☕ 🍎 à côté",
        "go to the moon",
        "GO TO SHELF 1",
        "look; look",
        "\x00\n\t",
    ],
)
def test_bad_actions_get_nothing_happens(env, task, action):
    _obs0, info0 = env.reset(options={"task": task.task_id})
    obs, reward, terminated, truncated, info = env.step(action)
    assert obs == "Nothing happens."
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["action_valid"] is False
    assert info["admissible_actions"] == info0["admissible_actions"]  # the state did not change
    # and the game goes on normally
    obs, _, _, _, info = env.step(task.walkthrough[0])
    assert info["action_valid"] is True and obs != "Nothing happens."


@pytest.mark.parametrize("action", [None, 42, b"look", ["look"]])
def test_non_string_actions_do_not_crash(env, task, action):
    env.reset(options={"task": task.task_id})
    obs, reward, _terminated, _truncated, info = env.step(action)
    assert obs == "Nothing happens." and info["action_valid"] is False and reward == 0.0


def test_help_is_playable_but_not_listed(env, task):
    _, info = env.reset(options={"task": task.task_id})
    assert "help" not in info["admissible_actions"]
    obs, _, _, _, info = env.step("help")
    assert info["action_valid"] is True
    assert "go to" in obs and "Nothing happens." not in obs


def test_truncation_at_max_steps(task):
    env = gym.make("ALFWorld-v0", max_steps=3)
    env.reset(options={"task": task.task_id})
    flags = [env.step("look")[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    env.close()


def test_winning_on_the_last_allowed_step_terminates_not_truncates(task):
    env = gym.make("ALFWorld-v0", max_steps=len(task.walkthrough))
    env.reset(options={"task": task.task_id})
    for command in task.walkthrough:
        _, reward, terminated, truncated, _ = env.step(command)
    assert (reward, terminated, truncated) == (10.0, True, False)
    env.close()


class _NoEngine:
    def __getattr__(self, name):
        raise AssertionError(f"the engine was used: {name}")


def test_stepping_a_finished_episode_repeats_the_end_without_the_engine(task):
    env = ALFWorldEnv(max_steps=2)
    env.reset(options={"task": task.task_id})
    env.step("look")
    final = env.step("inventory")
    assert final[3] is True
    env._engine, engine = _NoEngine(), env._engine
    for action in ("look", "", task.walkthrough[0]):
        obs, reward, terminated, truncated, info = env.step(action)
        assert (obs, reward, terminated, truncated) == (final[0], 0.0, False, True)
        assert info["action_valid"] is False and info["task_id"] == task.task_id
    env._engine = engine
    env.close()


def test_idle_reset_does_no_engine_work(task):
    env = ALFWorldEnv(expert=True)
    env.reset(options={"task": task.task_id})
    env._engine, engine = _NoEngine(), env._engine
    obs, info = env.reset(options={"idle": True})
    assert obs == "" and info["task_id"] == "" and info["admissible_actions"] == []
    assert set(info) == INFO_KEYS | {"expert_action"}
    for action in ("look", task.walkthrough[0], ""):
        assert env.step(action)[:4] == ("", 0.0, False, False)
    env._engine = engine
    obs, info = env.reset(options={"task": task.task_id})  # a real reset leaves the idle state
    assert obs.startswith("-= Welcome") and info["task_id"] == task.task_id
    env.close()


def test_step_before_reset_is_a_clear_error():
    env = ALFWorldEnv()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step("look")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown split 'test'"):
        ALFWorldEnv(split="test")
    with pytest.raises(ValueError, match="max_steps"):
        ALFWorldEnv(max_steps=0)
    with pytest.raises(FileNotFoundError, match="/no/such/folder"):
        ALFWorldEnv(data_path="/no/such/folder")
    env = ALFWorldEnv()
    with pytest.raises(ValueError, match="unknown task id 'nope/trial_x'"):
        env.reset(options={"task": "nope/trial_x"})


def test_every_split_has_every_task_type():
    for split in ("train", "valid_seen", "valid_unseen"):
        env = ALFWorldEnv(split=split)
        assert {t.task_type for t in env.tasks} == set(TASK_TYPES)


def _detoured_commands(task, state_admissible: list[str], rng: random.Random) -> list[str]:
    """The walkthrough with inadmissible commands (garbage and near misses) and a few valid detours."""
    near_misses = [
        "jump",
        "",
        "go to cabinet 99",
        "GO TO " + state_admissible[0].upper(),
        state_admissible[0].replace(" ", "  "),
        state_admissible[0] + ".",
        "put " + state_admissible[0],
        "take mug 1 from the moon",
        "x" * 10_000,
        "prends la pomme ☕",
    ]
    commands = list(task.walkthrough)
    for position in sorted(rng.sample(range(1, len(commands)), k=min(4, len(commands) - 1)), reverse=True):
        commands[position:position] = [*rng.sample(near_misses, k=3), f"  {commands[position]}  "]
    commands[1:1] = ["help", "look", "inventory", *near_misses]
    return commands


def _stock_transcript(task, commands: list[str]) -> list[tuple]:
    """What stock ALFWorld shows: textworld's PddlEnv + alfworld's AlfredDemangler, without our caches."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    from textworld.envs import PddlEnv

    caches.uninstall()
    try:
        env = AlfredDemangler(PddlEnv(textworld.EnvInfos(won=True, admissible_commands=True)), shuffle=False)
        env.load(task.game_data())
        state = env.reset()
        rows = [(state["feedback"], admissible_actions(state), state["won"])]
        for command in commands:
            state, _, _ = env.step(command)
            rows.append((state["feedback"], admissible_actions(state), state["won"]))
        env.close()
    finally:
        caches.install()
    return rows


def test_inadmissible_commands_are_answered_without_the_engine_and_match_stock_alfworld():
    tasks = small_tasks("valid_unseen", task_types=("pick_clean_then_place_in_recep", "look_at_obj_in_light"))
    env = ALFWorldEnv(split="valid_unseen", max_steps=1000)
    for task in tasks:
        obs, info = env.reset(options={"task": task.task_id})
        commands = _detoured_commands(task, info["admissible_actions"], random.Random(task.task_id))
        engine_steps: list[str] = []
        real_step = env._engine.step

        def counted_step(command, steps=engine_steps, step=real_step):
            steps.append(command)
            return step(command)

        env._engine.step = counted_step
        ours = [(obs, info["admissible_actions"], info["won"])]
        valid = []
        for command in commands:
            obs, _, terminated, _, info = env.step(command)
            ours.append((obs, info["admissible_actions"], info["won"]))
            valid.append(info["action_valid"])
            if terminated:
                break
        env._engine.step = real_step
        assert ours[-1][2] is True  # the detours did not stop the walkthrough from winning
        assert ours == _stock_transcript(task, commands[: len(ours) - 1])
        played = commands[: len(ours) - 1]
        assert engine_steps == [c.strip() for c, ok in zip(played, valid, strict=True) if ok]
        assert valid.count(False) >= 10 and valid.count(True) > len(task.walkthrough)
    env.close()
