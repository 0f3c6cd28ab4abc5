"""``WebShopBrowser-v0`` in real headless Chromium: search, open an item, pick options, buy, read the score."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from agentenv.webshop.browser import WebShopBrowserEnv
from agentenv.webshop.env import WebShopEnv

from .conftest import WinningCase
from .test_api import buy_path


@pytest.fixture(scope="module")
def browser_env(base_url: str) -> Any:
    env = gym.make("WebShopBrowser-v0", server_url=base_url, observation_mode="text_rich")
    yield env
    env.close()


def test_browser_buys_the_goal_and_reads_the_score(
    browser_env: Any, base_url: str, world: Any, winning: WinningCase
) -> None:
    reference = WebShopEnv(server_url=base_url, observation_mode="text_rich")
    steps = [browser_env.reset(options={"task": winning.goal_index})]
    expected = [reference.reset(options={"task": winning.goal_index})]
    driver = browser_env.unwrapped.driver
    assert Path(driver.capabilities["chrome"]["userDataDir"]).name.startswith("webshop-chromium-")
    # Search from the item page too: WebShop allows a search on any page (the env goes back first).
    actions = buy_path(world, winning)
    actions = [*actions[:2], actions[0], actions[1], *actions[2:]]
    for action in actions:
        steps.append(browser_env.step(action))
        expected.append(reference.step(action))
        if action.startswith("click[") and action != "click[buy now]":
            # The browser really is on the page the action led to.
            assert f"/{browser_env.unwrapped._session_id}/" in driver.current_url
    assert steps == expected  # same observations (read from the rendered DOM), rewards and infos
    obs, reward, terminated, truncated, info = steps[-1]
    assert (reward, terminated, truncated, info["won"], info["score"]) == (10.0, True, False, True, 1.0)
    assert "/done/" in driver.current_url
    assert obs.endswith("Your score (min 0.0, max 1.0)\n1.0\n")
    option_values = list(winning.options.values())
    item_page_obs = steps[-2][0]
    assert all(f"[clicked button] {value} [clicked button_]" in item_page_obs for value in option_values)
    reference.close()


def test_browser_invalid_actions_and_cleanup(base_url: str, winning: WinningCase) -> None:
    env = WebShopBrowserEnv(server_url=base_url)
    obs, _ = env.reset(seed=0)
    assert obs.startswith("WebShop [SEP] Instruction: [SEP] ")
    url = env.driver.current_url
    for action in ["click[nothing here]", "click[search]", "search[" + "x" * 2000 + "]", "hello"]:
        assert env.step(action)[:4] == (obs, 0.0, False, False)
        assert env.driver.current_url == url
    profile = Path(env.driver.capabilities["chrome"]["userDataDir"])
    assert profile.is_dir()
    env.close()
    assert not profile.exists()
    assert os.environ.get("SE_AVOID_STATS") == "true"
