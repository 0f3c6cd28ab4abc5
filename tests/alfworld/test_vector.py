"""The group vector env: tasks shared inside groups and not across, parking of finished members."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agentenv.vector import GroupVectorEnv, make_group_vector_env

from .conftest import small_tasks

# Two small games (a bedroom/living room and a bathroom): quick to load.
TASKS = [
    t.task_id
    for t in small_tasks("train", task_types=("look_at_obj_in_light", "pick_clean_then_place_in_recep"))
]


def _assert_groups(infos: dict, group_ids: np.ndarray) -> None:
    ids = infos["task_id"]
    assert infos["_task_id"].all()
    for g in np.unique(group_ids):
        assert len(set(ids[group_ids == g])) == 1  # one task per group
    assert len({ids[group_ids == g][0] for g in np.unique(group_ids)}) == len(np.unique(group_ids))


def _play_to_the_end(envs: GroupVectorEnv, infos: dict, max_steps: int) -> list[tuple]:
    """Member 0 of each group follows the expert (wins early); the others only 'look' (truncated)."""
    history = []
    for _ in range(max_steps + 2):
        actions = [
            info if i % envs.group_size == 0 else "look" for i, info in enumerate(infos["expert_action"])
        ]
        obs, rewards, terminated, truncated, infos = envs.step(actions)
        history.append((obs, rewards, terminated, truncated, infos))
    return history


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_groups_share_tasks_and_finished_members_are_parked(asynchronous):
    winner_steps = max(len(small_tasks("train", task_types=(t,))[0].walkthrough) for t in
                       ("look_at_obj_in_light", "pick_clean_then_place_in_recep"))  # fmt: skip
    max_steps = winner_steps + 2
    envs = make_group_vector_env(
        "ALFWorld-v0", num_groups=2, group_size=3, asynchronous=asynchronous, expert=True, max_steps=max_steps
    )
    assert (envs.num_envs, envs.num_groups, envs.group_size) == (6, 2, 3)
    assert envs.group_ids.tolist() == [0, 0, 0, 1, 1, 1]

    obs, infos = envs.reset(seed=0, options={"tasks": TASKS})
    assert infos["task_id"].tolist() == [TASKS[0]] * 3 + [TASKS[1]] * 3
    assert len(set(obs[:3])) == 1 and obs[0] != obs[3]
    _assert_groups(infos, envs.group_ids)

    history = _play_to_the_end(envs, infos, max_steps)
    rewards = np.array([h[1] for h in history])
    terminated = np.array([h[2] for h in history])
    truncated = np.array([h[3] for h in history])
    # the expert-led members win once (reward 10 exactly once) and stay terminated
    assert rewards[:, [0, 3]].sum(axis=0).tolist() == [10.0, 10.0]
    assert rewards[:, [1, 2, 4, 5]].sum() == 0.0
    for member in (0, 3):
        end = int(np.argmax(terminated[:, member]))
        assert terminated[end:, member].all() and not truncated[:, member].any()
        final_obs = history[end][0][member]
        assert all(h[0][member] == final_obs for h in history[end:])  # the final observation, repeated
        assert all(h[4]["won"][member] for h in history[end:])  # and the final info
    # the others are truncated at max_steps and stay so
    assert truncated[max_steps - 1 :, [1, 2, 4, 5]].all() and not truncated[: max_steps - 1].any()
    assert not terminated[:, [1, 2, 4, 5]].any()

    # a new reset starts everyone again, on other tasks for other seeds
    obs, infos = envs.reset(seed=1)
    _assert_groups(infos, envs.group_ids)
    assert not envs.done.any()
    envs.close()


def test_seed_gives_each_group_its_own_task_and_seedless_reset_still_groups():
    envs = make_group_vector_env(
        "ALFWorld-v0", num_groups=2, group_size=2, asynchronous=False, split="valid_unseen"
    )
    tasks = envs.env.envs[0].unwrapped.tasks.tasks
    _, infos = envs.reset(seed=40)
    n = len(tasks)
    assert infos["task_id"].tolist() == [tasks[40 % n].task_id] * 2 + [tasks[41 % n].task_id] * 2
    _, infos = envs.reset()
    _assert_groups(infos, envs.group_ids)
    envs.close()


class _NoEngine:
    def __getattr__(self, name):
        raise AssertionError(f"a parked member used its engine: {name}")


def test_parked_members_do_no_engine_work():
    envs = make_group_vector_env("ALFWorld-v0", num_groups=1, group_size=2, asynchronous=False, max_steps=1)
    envs.reset(options={"tasks": TASKS[:1]})
    envs.step(["look", "look"])  # both truncated
    first = envs.step(["look", "look"])  # parks them
    members = [e.unwrapped for e in envs.env.envs]
    engines = [m._engine for m in members]
    for m in members:
        m._engine = _NoEngine()
    for _ in range(3):
        obs, rewards, terminated, truncated, _ = envs.step(["take x", "look"])
        assert obs == first[0] and rewards.tolist() == [0.0, 0.0] and truncated.all() and not terminated.any()
    for m, engine in zip(members, engines, strict=True):
        m._engine = engine
    envs.close()


def test_bad_group_arguments():
    with pytest.raises(ValueError, match="num_groups"):
        make_group_vector_env("ALFWorld-v0", num_groups=0, group_size=2)
    with pytest.raises(ValueError, match="group_size"):
        make_group_vector_env("ALFWorld-v0", num_groups=2, group_size=-1)
    envs = make_group_vector_env("ALFWorld-v0", num_groups=2, group_size=1, asynchronous=False)
    with pytest.raises(ValueError, match="one task per group"):
        envs.reset(options={"tasks": TASKS[:1]})
    envs.close()


class _CountdownEnv(gym.Env):
    """A stand-in text env (not ALFWorld): its episode lasts ``len(task)`` steps."""

    def __init__(self):
        from agentenv.spaces import FreeText

        self.observation_space = self.action_space = FreeText()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.task = (options or {}).get("task") or "x" * (1 + seed % 3)
        self.left = len(self.task)
        return f"{self.task}:{seed}", {"task_id": self.task}

    def step(self, action):
        self.left -= 1
        return f"{self.task}:{self.left}:{action}", 1.0, self.left == 0, False, {"task_id": self.task}


def test_works_for_any_text_env():
    gym.register("CountdownText-v0", entry_point=_CountdownEnv, disable_env_checker=True)
    envs = make_group_vector_env("CountdownText-v0", num_groups=2, group_size=2, asynchronous=False)
    obs, _ = envs.reset(seed=10, options={"tasks": ["a", "bbb"]})
    assert list(obs) == ["a:10", "a:10", "bbb:11", "bbb:11"]  # seed + group
    steps = [envs.step(["p", "q", "r", "s"]) for _ in range(4)]
    assert [s[1].tolist() for s in steps] == [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]]
    assert steps[-1][0] == ("a:0:p", "a:0:q", "bbb:0:r", "bbb:0:s")
    assert steps[-1][2].all()
    envs.close()
