"""The JSON API over real HTTP: sessions, steps, isolation under threads, and 4xx for bad input."""

from __future__ import annotations

import http.client
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

from servers.webshop.session import MAX_QUERY_CHARS

from .conftest import WinningCase


def api(http: requests.Session, method: str, url: str, status: int = 200, **kwargs: Any) -> Any:
    response = http.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def buy_path(world: Any, case: WinningCase) -> list[str]:
    """Actions that find the goal's product by its title and buy it with the goal's options."""
    return [
        f"search[{case.product['Title']}]",
        f"click[{case.goal['asin'].lower()}]",
        *(f"click[{value}]" for value in case.options.values()),
        "click[buy now]",
    ]


def test_info(http: requests.Session, base_url: str, world: Any) -> None:
    info = api(http, "GET", f"{base_url}/api/info")
    assert info["num_products"] == world.num_products()
    assert info["num_goals"] == len(world.goals)
    assert info["fingerprint"] == world.fingerprint
    for split in ("test", "eval", "train"):
        indices = world.goal_indices(split)
        assert info["splits"][split] == [indices.start, indices.stop]
    assert info["limits"]["max_query_chars"] == MAX_QUERY_CHARS


def test_session_lifecycle_and_a_winning_episode(
    http: requests.Session, base_url: str, world: Any, winning: WinningCase
) -> None:
    created = api(http, "POST", f"{base_url}/api/sessions", 201, json={"goal_index": winning.goal_index})
    session_id = created["session_id"]
    instruction = winning.goal["instruction_text"]
    assert created["instruction"] == instruction and created["goal_index"] == winning.goal_index
    assert created["observation"]["text"] == f"WebShop [SEP] Instruction: [SEP] {instruction} [SEP] Search"
    assert created["available_actions"] == {"has_search_bar": True, "clickables": ["search"]}
    assert created["url"] == f"/{session_id}" and not created["done"] and created["steps"] == 0

    step_url = f"{base_url}/api/sessions/{session_id}/step"
    actions = buy_path(world, winning)
    state = api(http, "POST", step_url, json={"action": actions[0]})
    assert state["action_valid"] and state["url"].startswith(f"/search_results/{session_id}/")
    assert winning.goal["asin"].lower() in state["available_actions"]["clickables"]
    assert "[button] Back to Search [button_]" in state["observation"]["text_rich"]
    # An inadmissible action is WebShop's no-op: same page, valid False, no reward.
    noop = api(http, "POST", step_url, json={"action": "click[no such thing]"})
    assert not noop["action_valid"] and noop["observation"] == state["observation"] and noop["reward"] == 0.0
    for action in actions[1:-1]:
        state = api(http, "POST", step_url, json={"action": action})
        assert state["action_valid"], action
    for value in winning.options.values():
        assert f"You have clicked {value}." in state["observation"]["text_rich"]
    final = api(http, "POST", step_url, json={"action": actions[-1]})
    assert final["done"] and final["score"] == final["reward"] == 1.0
    assert final["reward_info"] is not None
    assert final["observation"]["text"].endswith("Your score (min 0.0, max 1.0) [SEP] 1.0")
    assert final["steps"] == len(actions) + 1

    read = api(http, "GET", f"{base_url}/api/sessions/{session_id}")
    assert read["done"] and read["score"] == 1.0 and read["observation"] == final["observation"]
    # A finished session refuses more steps until it is reset.
    error = api(http, "POST", step_url, 409, json={"action": "click[buy now]"})
    assert "reset" in error["error"]
    reset = api(http, "POST", f"{base_url}/api/sessions/{session_id}/reset", json={})
    assert reset["goal_index"] == winning.goal_index and not reset["done"] and reset["score"] == 0.0
    other = api(http, "POST", f"{base_url}/api/sessions/{session_id}/reset", json={"goal_index": 1})
    assert other["instruction"] == world.goals[1]["instruction_text"]

    assert api(http, "DELETE", f"{base_url}/api/sessions/{session_id}", 204) is None
    api(http, "GET", f"{base_url}/api/sessions/{session_id}", 404)


def test_every_clickable_the_api_offers_works(http: requests.Session, base_url: str, world: Any) -> None:
    """Walk results -> item -> each sub page -> back, clicking every offered button once."""
    session_id = api(http, "POST", f"{base_url}/api/sessions", 201, json={"goal_index": 0})["session_id"]
    step_url = f"{base_url}/api/sessions/{session_id}/step"
    title = world.product(world.goals[0]["asin"])["Title"]
    state = api(http, "POST", step_url, json={"action": f"search[{title}]"})
    clicked = set()
    for action in [
        "next >",
        "< prev",
        None,
        "description",
        "< prev",
        "features",
        "< prev",
        "reviews",
        "< prev",
        "back to search",
    ]:
        if action is None:  # open the first product
            action = next(
                c for c in state["available_actions"]["clickables"] if c not in {"back to search", "next >"}
            )
        assert action in state["available_actions"]["clickables"], (action, state["available_actions"])
        state = api(http, "POST", step_url, json={"action": f"click[{action}]"})
        assert state["action_valid"]
        clicked.add(action)
    assert state["available_actions"]["has_search_bar"] and state["url"] == f"/{session_id}"
    assert {"next >", "< prev", "description", "features", "reviews", "back to search"} <= clicked


def test_sessions_are_isolated_under_concurrent_threads(
    base_url: str, world: Any, winning: WinningCase
) -> None:
    goal_indices = list(world.goal_indices("test"))[:8]

    def play(goal_index: int) -> tuple[int, str, list[str], float]:
        with requests.Session() as http:
            state = api(http, "POST", f"{base_url}/api/sessions", 201, json={"goal_index": goal_index})
            step_url = f"{base_url}/api/sessions/{state['session_id']}/step"
            goal = world.goals[goal_index]
            title = world.product(goal["asin"])["Title"]
            texts = []
            for action in [f"search[{title}]", "click[next >]", "click[< prev]"]:
                state = api(http, "POST", step_url, json={"action": action})
                texts.append(state["observation"]["text"])
            first = next(
                c for c in state["available_actions"]["clickables"] if c not in {"back to search", "next >"}
            )
            api(http, "POST", step_url, json={"action": f"click[{first}]"})
            final = api(http, "POST", step_url, json={"action": "click[buy now]"})
            return goal_index, first.upper(), texts, final["score"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(play, goal_indices))
    for goal_index, asin, texts, score in results:
        goal = world.goals[goal_index]
        assert all(text.startswith(f"Instruction: [SEP] {goal['instruction_text']} [SEP]") for text in texts)
        assert score == world.reward(asin, {}, goal)[0]


def test_steps_on_one_session_are_serialised(http: requests.Session, base_url: str) -> None:
    session_id = api(http, "POST", f"{base_url}/api/sessions", 201, json={"goal_index": 0})["session_id"]
    barrier = threading.Barrier(6)

    def hammer(i: int) -> None:
        with requests.Session() as own:
            barrier.wait()
            for j in range(4):
                api(
                    own,
                    "POST",
                    f"{base_url}/api/sessions/{session_id}/step",
                    json={"action": f"search[shoes {i} {j}]"},
                )

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(hammer, range(6)))
    assert api(http, "GET", f"{base_url}/api/sessions/{session_id}")["steps"] == 24


BAD_API_REQUESTS = [
    # (method, path, body, status, words in the message)
    ("GET", "/api/sessions/nosuchsession", None, 404, "unknown session"),
    ("POST", "/api/sessions/nosuchsession/step", {"action": "search[x]"}, 404, "unknown session"),
    ("POST", "/api/sessions/nosuchsession/reset", {}, 404, "unknown session"),
    ("DELETE", "/api/sessions/nosuchsession", None, 404, "unknown session"),
    ("GET", "/api/sessions/bad.id!", None, 400, "invalid session id"),
    ("POST", "/api/sessions", {"goal_index": 10**9}, 400, "out of range"),
    ("POST", "/api/sessions", {"goal_index": -1}, 400, "out of range"),
    ("POST", "/api/sessions", {"goal_index": "3"}, 400, "goal_index"),
    ("POST", "/api/sessions", {"goal_index": True}, 400, "goal_index"),
    ("POST", "/api/sessions", {"goal": 3}, 400, "goal"),
    ("POST", "/api/sessions", [1, 2], 400, "JSON object"),
    ("POST", "/api/sessions", "not json{", 400, "not valid JSON"),
    ("POST", "STEP", {}, 400, "action"),
    ("POST", "STEP", {"action": 5}, 400, "action"),
    ("POST", "/api/sessions", "[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
    ("GET", "/api/nothing-here", None, 404, "not found"),
    ("PUT", "/api/sessions", {}, 405, "not allowed"),
    ("POST", "/api/sessions", "x" * (2 << 20), 413, "exceeds"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), BAD_API_REQUESTS)
def test_bad_api_requests_get_4xx_json(
    http: requests.Session, base_url: str, method: str, path: str, body: Any, status: int, message: str
) -> None:
    if path == "STEP":
        session_id = api(http, "POST", f"{base_url}/api/sessions", 201, json={"goal_index": 0})["session_id"]
        path = f"/api/sessions/{session_id}/step"
    kwargs = {"data": body} if isinstance(body, str) else {"json": body}
    error = api(http, method, base_url + path, status, **kwargs)
    assert error["status"] == status
    assert message.lower() in error["error"].lower(), error
    if path.endswith("/step") and "nosuchsession" not in path:  # a refused request is not a step
        state = api(http, "GET", base_url + path.removesuffix("/step"))
        assert state["steps"] == 0 and state["url"] == f"/{state['session_id']}"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("search[" + "a" * 100_000 + "]", "the action is 100008 characters long; the limit is 2000"),
        ("search[" + "a " * 600 + "]", "the search query is 1200 characters long; the limit is 1000"),
        ("search[\ud800]", "lone surrogate '\\ud800' at character 0"),
        ("search[red \udfff shoes]", "lone surrogate"),
    ],
)
def test_refused_actions_are_no_ops_with_the_reason(
    http: requests.Session, base_url: str, action: str, message: str
) -> None:
    """Any action string gets an answer: one we refuse is a step that changes nothing, with the reason."""
    created = api(http, "POST", f"{base_url}/api/sessions", 201, json={"goal_index": 0})
    step_url = f"{base_url}/api/sessions/{created['session_id']}/step"
    state = api(http, "POST", step_url, json={"action": action})
    assert message in state["message"] and not state["action_valid"] and state["reward"] == 0.0
    assert state["observation"] == created["observation"] and state["steps"] == 1
    assert api(http, "POST", step_url, json={"action": "search[red shoes]"})["message"] is None


BAD_PAGES = [
    ("/search_results/fixed_0/[1, 2]/1", 400, "keywords"),
    ("/search_results/fixed_0/['unterminated/1", 400, "keywords"),
    ("/search_results/fixed_0/[]/1", 400, "at least one"),
    ("/search_results/fixed_0/['\\ud800']/1", 400, "lone surrogate"),
    ("/search_results/fixed_0/['red']/0", 400, "page must be"),
    ("/search_results/fixed_0/['red']/one", 400, "page must be"),
    ("/search_results/fixed_0/['red']/²", 400, "page must be"),
    ("/search_results/fixed_0/['red']/①", 400, "page must be"),
    ("/search_results/fixed_0/['red']/" + "9" * 5000, 400, "page must be"),
    ("/search_results/fixed_0/['" + "a" * 100_000 + "']/1", 400, "limit"),
    ("/item_page/fixed_0/B0NOSUCH00/['red']/1/{}", 404, "unknown asin"),
    ("/item_page/fixed_0/B0\u00b2/['red']/1/{}", 404, "unknown asin"),
    ("/item_page/fixed_0/ASIN/['red']/1/{'color': 1}", 400, "options"),
    ("/item_page/fixed_0/ASIN/['red']/1/not a dict", 400, "options"),
    ("/item_page/fixed_0/ASIN/['red']/1/{'no such option': 'x'}", 400, "has no option"),
    ("/item_sub_page/fixed_0/ASIN/['red']/1/Secrets/{}", 404, "unknown sub page"),
    ("/done/fixed_0/B0NOSUCH00/{}", 404, "unknown asin"),
    ("/done/fixed_0/ASIN/{'a': 'b'", 400, "options"),
    ("/fixed_abc", 400, "goal index"),
    ("/fixed_999999999", 404, "out of range"),
    ("/bad.session", 400, "invalid session id"),
    ("/a/b/c/d/e/f/g/h", 404, "not found"),
]


@pytest.mark.parametrize(("path", "status", "message"), BAD_PAGES)
def test_bad_page_urls_get_4xx_json(
    http: requests.Session, base_url: str, world: Any, path: str, status: int, message: str
) -> None:
    path = path.replace("ASIN", world.goals[0]["asin"])
    error = api(http, "GET", base_url + path, status)
    assert message.lower() in error["error"].lower(), error


def test_search_form_rejects_100kb_queries_and_runs_blank_ones(http: requests.Session, base_url: str) -> None:
    error = api(http, "POST", f"{base_url}/fixed_0", 400, data={"search_query": "a" * 100_000})
    assert "limit is 1000" in error["error"]
    blank = http.post(f"{base_url}/fixed_0", data={"search_query": "   "})  # upstream runs it: no results
    assert blank.status_code == 200 and "Page 1 (Total results: 0)" in blank.text


@pytest.mark.parametrize(
    "raw_path",
    [
        "/static/../session.py",
        "/static/%2e%2e/session.py",
        "/static/..%2fsession.py",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/../../etc/passwd",
    ],
)
def test_path_traversal_is_refused(base_url: str, raw_path: str) -> None:
    # http.client sends the path as written (requests would normalise the dots away).
    connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=10)
    try:
        connection.request("GET", raw_path)
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
    finally:
        connection.close()
    assert 400 <= response.status < 500, (raw_path, response.status)
    assert "root:" not in body and "import" not in body


def test_sessions_are_bounded_without_dropping_one_in_use(world: Any) -> None:
    from servers.webshop.app import create_app
    from servers.webshop.session import ShopConfig

    # A full server refuses a new session (503) rather than push out an episode in use.
    client = create_app(world, ShopConfig(max_sessions=2)).test_client()
    ids = [client.post("/api/sessions", json={"goal_index": i}).get_json()["session_id"] for i in range(2)]
    refused = client.post("/api/sessions", json={"goal_index": 2})
    assert refused.status_code == 503 and "the server is full" in refused.get_json()["error"]
    assert client.get("/fixed_5").status_code == 503  # an anonymous page visit is refused too
    assert all(client.get(f"/api/sessions/{i}").status_code == 200 for i in ids)

    # An anonymous page session idle for evict_idle_seconds makes room; a pinned one never does.
    app = create_app(world, ShopConfig(max_sessions=3, evict_idle_seconds=30))
    client, store = app.test_client(), app.extensions["webshop"].sessions
    pinned = client.post("/api/sessions", json={"goal_index": 0}).get_json()["session_id"]
    assert client.get("/visitor_a").status_code == client.get("/visitor_b").status_code == 200
    assert client.get("/visitor_c").status_code == 503  # both visitors were active just now
    store.get(pinned).last_used -= 600
    store.get("visitor_a").last_used -= 60
    store.get("visitor_b")  # used again: visitor_a is now the least recently used
    assert client.get("/visitor_c").status_code == 200
    assert client.get("/api/sessions/visitor_a").status_code == 404
    assert client.get(f"/api/sessions/{pinned}").status_code == 200

    # Sessions idle for session_idle_seconds expire, whatever their kind.
    app = create_app(world, ShopConfig(session_idle_seconds=100))
    client, store = app.test_client(), app.extensions["webshop"].sessions
    stale = client.post("/api/sessions", json={"goal_index": 0}).get_json()["session_id"]
    store.get(stale).last_used -= 101
    fresh = client.post("/api/sessions", json={"goal_index": 1}).get_json()["session_id"]
    error = client.get(f"/api/sessions/{stale}").get_json()
    assert error["status"] == 404 and "expired after 100 s idle" in error["error"]
    assert client.get(f"/api/sessions/{fresh}").status_code == 200


def test_visited_products_are_marked_in_text_rich(http: requests.Session, base_url: str, world: Any) -> None:
    session_id = api(http, "POST", f"{base_url}/api/sessions", 201, json={"goal_index": 0})["session_id"]
    step_url = f"{base_url}/api/sessions/{session_id}/step"
    title = world.product(world.goals[0]["asin"])["Title"]
    results = api(http, "POST", step_url, json={"action": f"search[{title}]"})
    first = results["available_actions"]["clickables"][2]
    assert f"\n[button] {first.upper()} [button_]\n" in results["observation"]["text_rich"], results
    item = api(http, "POST", step_url, json={"action": f"click[{first}]"})
    assert item["action_valid"] and item["url"].startswith(f"/item_page/{session_id}/{first.upper()}/"), item
    back = api(http, "POST", step_url, json={"action": "click[< prev]"})
    assert f"\n[clicked button] {first.upper()} [clicked button_]\n" in back["observation"]["text_rich"], back
    assert back["observation"]["text"] == results["observation"]["text"], (results, back)


def test_one_session_one_state_through_both_doors(
    http: requests.Session, base_url: str, world: Any, winning: WinningCase
) -> None:
    """A session played through the web pages and the JSON API in turns has one state; reading it
    through the API (a GET) never changes it."""
    # Played through the pages only: the API reads where the browser is, however often it reads.
    http.get(f"{base_url}/fixed_{winning.goal_index}")
    results = http.get(f"{base_url}/search_results/fixed_{winning.goal_index}/red+shoes/2")
    assert results.status_code == 200
    first, second = (api(http, "GET", f"{base_url}/api/sessions/fixed_{winning.goal_index}") for _ in range(2))
    assert first == second and first["url"].startswith(f"/search_results/fixed_{winning.goal_index}/")
    assert first["observation"]["text"].startswith("Instruction: [SEP] ") and "Page 2 (Total" in first["observation"]["text"]

    # API steps, then a page visit, then API steps again: each continues from the other's page.
    session_id = api(http, "POST", f"{base_url}/api/sessions", 201, json={"goal_index": winning.goal_index})["session_id"]
    step_url = f"{base_url}/api/sessions/{session_id}/step"
    api(http, "POST", step_url, json={"action": f"search[{winning.product['Title']}]"})
    item_url = f"/item_page/{session_id}/{winning.goal['asin']}/red+shoes/1/{{}}"
    assert http.get(base_url + item_url).status_code == 200
    state = api(http, "GET", f"{base_url}/api/sessions/{session_id}")
    assert state["url"].startswith(f"/item_page/{session_id}/{winning.goal['asin']}/") and not state["done"]
    for value in winning.options.values():
        assert api(http, "POST", step_url, json={"action": f"click[{value}]"})["action_valid"]
    # Bought through the page: the API shows the purchase (score and the done page's observation).
    options = quote(str(winning.options), safe="")
    done = http.post(f"{base_url}/done/{session_id}/{winning.goal['asin']}/{options}")
    assert done.status_code == 200
    state = api(http, "GET", f"{base_url}/api/sessions/{session_id}")
    assert state["done"] and state["score"] == 1.0 and state["reward_info"] is not None
    assert state["observation"]["text"].endswith("Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] 1.0")
    api(http, "POST", step_url, 409, json={"action": "click[buy now]"})
