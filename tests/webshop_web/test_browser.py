"""``WebShopBrowser-v0`` in real headless Chromium: search, open an item, pick options, buy, read the score."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import requests

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


def test_browser_invalid_actions_match_the_api_env_and_cleanup(base_url: str) -> None:
    env = WebShopBrowserEnv(server_url=base_url)
    reference = WebShopEnv(server_url=base_url)
    obs, _ = env.reset(seed=0)
    assert (obs, _) == reference.reset(seed=0)
    assert obs.startswith("WebShop [SEP] Instruction: [SEP] ")
    url = env.driver.current_url
    for action in ["click[nothing here]", "click[search]", "search[" + "x" * 2000 + "]", "hello", "Search[x]",
                   "search[\ud800]"]:
        step = env.step(action)
        assert step == reference.step(action)  # the same no-op, and the same reason when one is given
        assert step[1:4] == (0.0, False, False) and step[0].endswith(obs) and not step[4]["action_valid"]
        assert env.driver.current_url == url
    profile = Path(env.driver.capabilities["chrome"]["userDataDir"])
    assert profile.is_dir()
    env.close()
    reference.close()
    assert not profile.exists()
    assert os.environ.get("SE_AVOID_STATS") == "true"


@pytest.fixture(scope="module")
def goal_with_inner_options(world: Any) -> WinningCase:
    """A test goal scoring 1.0 whose options include values that are not the last of their group."""
    for goal_index in world.goal_indices("test"):
        goal = world.goals[goal_index]
        options = goal["goal_options"]
        product = world.product(goal["asin"])
        if not isinstance(options, dict) or len(options) < 2:
            continue
        groups = product["options"]
        if any(value not in groups.get(name, ()) for name, value in options.items()):
            continue
        inner = [name for name, value in options.items() if groups[name].index(value) < len(groups[name]) - 1]
        if len(inner) == len(options) and world.reward(goal["asin"], options, goal)[0] == 1.0:
            return WinningCase(goal_index, goal, product, dict(options))
    raise AssertionError("no test goal with two options, none of them the last of its group, scores 1.0")


def test_plain_selenium_clicks_on_option_radios(
    browser_env: Any, base_url: str, goal_with_inner_options: WinningCase
) -> None:
    """Upstream's selenium client clicks the radio inputs themselves (``element.click()``), not their
    labels: every radio of a group must take its own click, not only the last one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    case = goal_with_inner_options
    driver = browser_env.unwrapped.driver
    with requests.Session() as http:
        session_id = http.post(f"{base_url}/api/sessions", json={"goal_index": case.goal_index}).json()["session_id"]
        driver.get(f"{base_url}/item_page/{session_id}/{case.goal['asin']}/red+shoes/1/{{}}")

        def plain_click(element: Any) -> None:
            old = driver.find_element(By.TAG_NAME, "html")
            element.click()  # raises ElementClickInterceptedException if another element takes the click
            WebDriverWait(driver, 30).until(expected_conditions.staleness_of(old))

        for name, value in case.options.items():
            radios = driver.find_elements(By.CSS_SELECTOR, f'input[type="radio"][name="{name}"]')
            values = [radio.get_attribute("value") for radio in radios]
            assert values.index(value) < len(values) - 1  # not the last radio of its group
            plain_click(radios[values.index(value)])
            checked = driver.find_elements(By.CSS_SELECTOR, f'input[type="radio"][name="{name}"]:checked')
            assert [radio.get_attribute("value") for radio in checked] == [value]
        plain_click(driver.find_element(By.CSS_SELECTOR, "button.purchase"))
        score = float(driver.find_element(By.CSS_SELECTOR, "#reward pre").get_attribute("textContent"))
        purchased = json.loads(driver.find_element(By.ID, "purchased-options").get_attribute("textContent"))
        assert (score, purchased) == (1.0, case.options)
        # The JSON API reads the same session: bought through the pages, with its score, not reset.
        state = http.get(f"{base_url}/api/sessions/{session_id}").json()
        assert state["done"] and state["score"] == 1.0 and state["url"].startswith(f"/done/{session_id}/")
        assert state["observation"]["text"].endswith("Your score (min 0.0, max 1.0) [SEP] 1.0")
