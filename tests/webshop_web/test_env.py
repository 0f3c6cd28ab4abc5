"""``WebShop-v0``: the env contract, check_env, determinism, the in-process server and both transports."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import warnings
from typing import Any

import gymnasium as gym
import pytest
import requests
from gymnasium.utils.env_checker import check_env

from agentenv.webshop.env import WebShopEnv

from .conftest import WinningCase, free_port
from .test_api import buy_path

SCRIPT = [
    "search[{query}]",
    "click[next >]",
    "click[< prev]",
    "click[{first}]",
    "click[description]",
    "click[< prev]",
    "click[no such button]",
]


def play_script(env: gym.Env, seed: int) -> list[tuple]:
    """Reset with ``seed`` and play SCRIPT (filled from the episode's own goal and results)."""
    obs, info = env.reset(seed=seed)
    trace: list[tuple] = [(obs, info)]
    query = info["task"].split(",")[0]
    first = None
    for template in SCRIPT:
        action = template.format(query=query, first=first)
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((action, obs, reward, terminated, truncated, info))
        if first is None:
            first = next(
                a for a in info["admissible_actions"] if a not in {"click[back to search]", "click[next >]"}
            )[6:-1]
    return trace


def test_check_env_is_clean(base_url: str) -> None:
    env = WebShopEnv(server_url=base_url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught] == []
    env.close()


def test_gym_make_starts_an_in_process_server(env_kwargs: dict[str, Any], base_url: str) -> None:
    env = gym.make("WebShop-v0", **env_kwargs)
    obs, info = env.reset(seed=0)
    # Same world config as the session's server: the env reuses it rather than starting another.
    assert env.unwrapped.server_url == base_url
    assert obs.startswith("WebShop [SEP] Instruction: [SEP] ") and obs.endswith(" [SEP] Search")
    assert info["admissible_actions"] == ["search[<query>]"]
    assert set(info) >= {"task", "task_id", "admissible_actions", "action_valid", "won", "score"}
    env.close()


def test_gym_make_alone_in_a_fresh_process(env_kwargs: dict[str, Any]) -> None:
    """``gym.make("WebShop-v0")`` with no import of ours and no server: it builds and serves the world."""
    code = (
        "import json, sys, gymnasium as gym\n"
        "env = gym.make('WebShop-v0', **json.loads(sys.argv[1]))\n"
        "obs, info = env.reset(seed=1)\n"
        "obs, reward, terminated, truncated, info = env.step('search[shoes]')\n"
        "print(json.dumps([obs, info['action_valid'], env.unwrapped.server_url]))\n"
        "env.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(env_kwargs)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    obs, valid, url = json.loads(result.stdout.strip().splitlines()[-1])
    assert valid and "Page 1 (Total results: " in obs
    assert url.startswith("http://127.0.0.1:")


def test_same_seed_same_episode_and_consecutive_seeds_differ(base_url: str, world: Any) -> None:
    first, second = WebShopEnv(server_url=base_url), WebShopEnv(server_url=base_url)
    assert play_script(first, seed=11) == play_script(second, seed=11)
    tasks = [first.reset(seed=seed)[1]["task_id"] for seed in range(5)]
    test_split = world.goal_indices("test")
    assert tasks == [test_split[seed % len(test_split)] for seed in range(5)]
    first.close()
    second.close()


def test_direct_transport_matches_http(env_kwargs: dict[str, Any]) -> None:
    over_http = WebShopEnv(**env_kwargs)
    direct = WebShopEnv(transport="direct", **env_kwargs)
    assert play_script(direct, seed=4) == play_script(over_http, seed=4)
    assert direct.server_url is None and over_http.server_url is not None
    direct.close()
    over_http.close()


def test_winning_episode_then_finished_steps_touch_nothing(
    base_url: str, world: Any, winning: WinningCase, http: requests.Session
) -> None:
    env = WebShopEnv(server_url=base_url)
    obs, info = env.reset(options={"task": winning.goal_index})
    assert info["task_id"] == winning.goal_index and info["task"] == winning.goal["instruction_text"]
    for action in buy_path(world, winning)[:-1]:
        assert action in info["admissible_actions"] or action.startswith("search[")
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["action_valid"] and reward == 0.0 and not terminated
    obs, reward, terminated, truncated, info = env.step("click[buy now]")
    assert (reward, terminated, truncated, info["won"], info["score"]) == (10.0, True, False, True, 1.0)
    assert obs.endswith("[SEP] 1.0")
    steps_on_server = http.get(f"{base_url}/api/sessions/{env._session_id}").json()["steps"]
    again = env.step("click[buy now]")
    assert again[:4] == (obs, 0.0, True, False) and again[4]["action_valid"] is False
    assert http.get(f"{base_url}/api/sessions/{env._session_id}").json()["steps"] == steps_on_server
    session_id = env._session_id
    env.close()
    assert http.get(f"{base_url}/api/sessions/{session_id}").status_code == 404  # close() ends the session


def test_losing_purchase_and_step_limit(base_url: str, winning: WinningCase) -> None:
    env = WebShopEnv(server_url=base_url, max_steps=3, success_reward=1.0)
    env.reset(options={"task": winning.goal_index})
    env.step(f"search[{winning.product['Title']}]")
    env.step(f"click[{winning.goal['asin'].lower()}]")
    _, reward, terminated, truncated, info = env.step("click[buy now]")  # without the goal's options
    assert terminated and not truncated and reward == 0.0 and not info["won"] and 0.0 < info["score"] < 1.0

    env.reset(seed=0)
    results = [env.step("search[shoes]") for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True] and not any(r[2] for r in results)
    assert env.step("search[more]")[3] is True  # stays truncated, no new request
    env.close()


INVALID_ACTIONS = [
    "click[search]",
    "click[buy now]",
    "buy it now",
    "",
    "Search[shoes]",  # upstream's names are case-sensitive and keep surrounding whitespace
    " search[shoes]",
    "search[red\nshoes]",
    "click[\ud800]",
    42,
]
REFUSED_ACTIONS = [  # (action, the reason shown in front of the unchanged page)
    ("search[" + "x" * 100_000 + "]", "the action is 100008 characters long; the limit is 2000"),
    ("search[" + "x " * 600 + "]", "the search query is 1200 characters long; the limit is 1000"),
    ("search[\ud800]", "the search query is not valid text: it holds the lone surrogate '\\ud800'"),
]


@pytest.mark.parametrize("transport", ["http", "direct"])
def test_no_str_action_raises_and_invalid_ones_change_nothing(
    env_kwargs: dict[str, Any], transport: str
) -> None:
    env = WebShopEnv(observation_mode="text_rich", transport=transport, **env_kwargs)
    obs, info = env.reset(seed=2)
    assert obs.startswith("WebShop\nInstruction:\n") and "[button] Search [button_]" in obs
    for action in INVALID_ACTIONS:
        next_obs, reward, terminated, truncated, info = env.step(action)
        assert (next_obs, reward, terminated, truncated, info["action_valid"]) == (obs, 0.0, False, False, False)
    for action, reason in REFUSED_ACTIONS:
        next_obs, reward, terminated, truncated, info = env.step(action)
        assert next_obs.startswith(f"Invalid action: {reason}") and next_obs.endswith(f".\n{obs}")
        assert (reward, terminated, truncated, info["action_valid"]) == (0.0, False, False, False)
    assert env.step("search[shoes]")[4]["action_valid"]  # the next valid action shows a plain page
    env.close()


def test_lenient_parsing_is_an_option(base_url: str) -> None:
    upstream = WebShopEnv(server_url=base_url)
    lenient = WebShopEnv(server_url=base_url, action_parsing="lenient")
    for env in (upstream, lenient):
        env.reset(seed=3)
    for action in [" Search[Shoes] ", "SEARCH [shoes]", "\tclick[next >]\n"]:
        assert not upstream.step(action)[4]["action_valid"]
        assert lenient.step(action)[4]["action_valid"], action
    with pytest.raises(ValueError, match="action_parsing"):
        WebShopEnv(server_url=base_url, action_parsing="loose")
    upstream.close()
    lenient.close()


def test_info_carries_upstream_available_actions(base_url: str) -> None:
    env = WebShopEnv(server_url=base_url)
    _, info = env.reset(seed=0)
    assert info["available_actions"] == {"has_search_bar": True, "clickables": ["search"]}
    _, _, _, _, info = env.step("search[shoes]")
    available = info["available_actions"]
    assert available["has_search_bar"] is False and available["clickables"][:2] == ["back to search", "next >"]
    # Ours: verl-agent's list without the search button, which does nothing when clicked.
    assert info["admissible_actions"] == [f"click[{c}]" for c in available["clickables"]]
    env.close()


def test_idle_reset_makes_no_request() -> None:
    env = WebShopEnv(server_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    obs, info = env.reset(options={"idle": True})
    assert obs == "" and info["admissible_actions"] == [] and info["won"] is False
    for _ in range(3):
        assert env.step("click[buy now]")[:4] == ("", 0.0, False, False)
    with pytest.raises(ConnectionError, match="cannot reach the WebShop server"):
        env.reset(seed=0)
    env.close()


def test_bad_arguments_are_refused_clearly(base_url: str, world: Any) -> None:
    with pytest.raises(ValueError, match="split"):
        WebShopEnv(split="validation")
    with pytest.raises(ValueError, match="observation_mode"):
        WebShopEnv(observation_mode="html")
    with pytest.raises(ValueError, match="server_url=None"):
        WebShopEnv(server_url=base_url, transport="direct")
    env = WebShopEnv(server_url=base_url)
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"goal": 1})
    with pytest.raises(ValueError, match="goal index from 0"):
        env.reset(options={"task": len(world.goals)})
    with pytest.raises(gym.error.ResetNeeded):
        env.step("search[x]")
    env.close()


def test_seeds_cover_the_test_split_once_in_an_order_without_blocks(base_url: str, world: Any) -> None:
    """Seed s is goal s of the split (upstream's ``fixed_<s>`` / verl-agent's ``session=s``): seeds
    0..499 cover the test split exactly once, and the order (upstream's seeded shuffle) has no blocks
    of one category (benchmarks/webshop_goal_order.py measures this on larger catalogues)."""
    env = WebShopEnv(server_url=base_url, transport="http")
    split = world.goal_indices("test")
    task_ids = [env.reset(seed=seed)[1]["task_id"] for seed in range(len(split))]
    assert task_ids == list(split) and len(split) == 500
    assert env.reset(seed=len(split))[1]["task_id"] == split[0]  # then the split starts over
    categories = [world.goals[i]["category"] for i in task_ids]
    windows = [len(set(categories[i : i + 16])) for i in range(len(categories) - 15)]
    assert min(windows) >= 2 and sum(windows) / len(windows) > 3.5, (min(windows), sum(windows) / len(windows))
    same_neighbours = sum(a == b for a, b in itertools.pairwise(categories))
    shares = {c: categories.count(c) / len(categories) for c in set(categories)}
    expected = (len(categories) - 1) * sum(p * p for p in shares.values())
    assert same_neighbours < 1.3 * expected, (same_neighbours, expected)
    env.close()
