"""Envs survive the server's housekeeping: a server with room for 4 sessions, 4 live envs, anonymous
page visits, a 5th and 6th env, and sessions that expire or are deleted under a live episode."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import waitress
from waitress import wasyncore

from agentenv.webshop.client import WebShopAPIError
from agentenv.webshop.env import WebShopEnv
from servers.webshop.app import create_app
from servers.webshop.session import Shop, ShopConfig

MAX_SESSIONS = 4


@pytest.fixture(scope="module")
def small_server(world: Any) -> Iterator[tuple[str, Shop]]:
    """A real waitress server over the session's world that keeps at most 4 sessions."""
    app = create_app(world, ShopConfig(max_sessions=MAX_SESSIONS))
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", app.extensions["webshop"]
    server.task_dispatcher.shutdown()
    wasyncore.close_all(server._map)  # the listener and every open connection: the loop ends
    thread.join(timeout=10)
    assert not thread.is_alive()


def play(env: WebShopEnv, actions: list[str]) -> list[tuple]:
    return [env.step(action) for action in actions]


def script_for(env: WebShopEnv, query: str) -> list[str]:
    """Search, then: open the first result, read its description, go back to the results, page on."""
    _, _, _, _, info = env.step(f"search[{query}]")
    first = next(a for a in info["admissible_actions"] if a not in {"click[back to search]", "click[next >]"})
    return [first, "click[description]", "click[< prev]", "click[< prev]", "click[next >]", "click[< prev]"]


def test_live_envs_are_never_evicted(small_server: tuple[str, Shop]) -> None:
    url, shop = small_server
    envs = [WebShopEnv(server_url=url) for _ in range(6)]
    for i, env in enumerate(envs[:MAX_SESSIONS]):
        env.reset(seed=i)
    # The server is full of live episodes: a 5th and 6th env are refused with a clear message...
    for env in envs[MAX_SESSIONS:]:
        with pytest.raises(WebShopAPIError, match="the server is full") as error:
            env.reset(seed=9)
        assert error.value.status == 503
    # ...and so are anonymous page visits, each of which would create a session.
    with requests.Session() as http:
        statuses = [http.get(f"{url}/visitor{i}").status_code for i in range(10)]
    assert statuses == [503] * 10
    # Every live env plays on, step after step.
    for env in envs[:MAX_SESSIONS]:
        actions = script_for(env, "shoes")
        assert all(step[4]["action_valid"] for step in play(env, actions)), actions
    assert len(shop.sessions) == MAX_SESSIONS
    for env in envs:
        env.close()  # deletes the sessions: room again
    assert len(shop.sessions) == 0


def test_an_env_replays_its_episode_when_the_server_lost_its_session(small_server: tuple[str, Shop]) -> None:
    url, shop = small_server
    evicted, control = WebShopEnv(server_url=url, observation_mode="text_rich"), WebShopEnv(
        server_url=url, observation_mode="text_rich"
    )
    for env in (evicted, control):
        env.reset(seed=5)
    actions = script_for(control, "red dress")
    script_for(evicted, "red dress")
    half = len(actions) // 2
    play(control, actions[:half])
    play(evicted, actions[:half])
    # Housekeeping drops the session (an idle expiry, or a DELETE): the next step still works.
    old_session = evicted._session_id
    assert shop.sessions.remove(old_session)
    assert play(evicted, actions[half:]) == play(control, actions[half:])
    assert evicted._session_id != old_session
    session = shop.sessions.get(evicted._session_id)
    assert session is not None and session.pinned
    for env in (evicted, control):
        env.close()
