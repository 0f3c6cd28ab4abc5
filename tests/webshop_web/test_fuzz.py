"""No 5xx for any request: a generated corpus of malformed requests over every route and the JSON API.

The corpus is built from a fixed list of awkward URL parts and bodies (non-ASCII digits, 5,000-digit
numbers, lone surrogates as escapes and as broken UTF-8, deep JSON nesting, huge numbers, literal
syntax errors, traversal attempts...) combined over every route template, plus a seeded random
sample of combinations. Requests are sent byte for byte with ``http.client`` (``requests`` would
normalise the paths).
"""

from __future__ import annotations

import http.client
import json
import random
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest

MIN_REQUESTS = 500

# URL parts, already percent-encoded as they go on the wire.
AWKWARD_PARTS = [
    "",
    "%20",
    "1",
    "0",
    "-1",
    "%C2%B2",  # "²": str.isdigit() is True, int() refuses it
    "%E2%91%A0",  # "①"
    "%D9%A3",  # Arabic-Indic digit three
    "9" * 5000,  # over Python's 4,300-digit int limit
    "1e3",
    "%ED%A0%80",  # a lone surrogate encoded as (invalid) UTF-8
    "%FF%FE",
    "%C0%AF",  # overlong UTF-8 "/"
    "%00",
    "%5B%27%5Cud800%27%5D",  # ['\ud800']
    "%5B%27red%27%2C%20%27%5CudfFF%27%5D",
    "%7B%27color%27%3A%20%27%5Cud800%27%7D",  # {'color': '\ud800'}
    "%5B%27red%27%2C%20%27shoes%27%5D",
    "red+shoes",
    "%5B%5D",
    "%5B",
    "%7B",
    "%7B%7D",
    "%5B%27a%27%2C%5D",
    "%5B%27%5CN%7BDEGREE%20SIGN%7D%27%5D",
    "%5B%27%5Cx4%27%5D",
    "%5B%5B%5B%5B%27deep%27%5D%5D%5D%5D",
    "%7B%27a%27%3A%201%7D",
    "__import__(%27os%27).system(%27true%27)",
    "%5B" + "%27a%27%2C" * 3000 + "%5D",
    "a" * 9000,
    "..",
    "%2e%2e",
    "%2F",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%27%3B%20DROP%20TABLE%20products%3B--",
    "Description",
    "attributes",
    "%F0%9F%98%80",  # an emoji
    "B0%C2%B2",
    "b000000000",
]
SESSION_IDS = ["fuzzfixed_0", "fuzz_session", "fixed_999999999", "bad.id", "%ED%A0%80", "x" * 65, "fixed_%C2%B2"]
ROUTES = [
    "/{s}",
    "/search_results/{s}/{a}/{b}",
    "/item_page/{s}/{asin}/{a}/{b}/{c}",
    "/item_page/{s}/{a}/{b}/1/{c}",
    "/item_sub_page/{s}/{asin}/{a}/{b}/{c}/{d}",
    "/done/{s}/{asin}/{a}",
    "/done/{s}/{a}/{b}",
    "/static/{a}",
    "/api/sessions/{s}",
    "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}",
]
JSON_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b"{}",
    b'"text"',
    b"{" * 50_000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"goal_index": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    b'{"goal_index": 1e400}',
    b'{"goal_index": NaN}',
    b'{"goal_index": 99999999999999999999999999999}',
    b'{"goal_index": -1}',
    b'{"goal_index": "0"}',
    b'{"goal_index": 0, "extra": {"a": [1, 2, {"b": null}]}}',
    b'{"action": null}',
    b'{"action": 5}',
    b'{"action": ["click[buy now]"]}',
    b'{"action": "search[\\ud800]"}',
    b'{"action": "click[\\udfff]"}',
    b'{"action": "search[\\u0000]"}',
    b'{"action": "search[' + b"\\u00b2" * 200 + b']"}',
    b'{"action": "' + b"a[" * 1000 + b'"}',
    b'{"action": "search[' + b"x " * 700 + b']"}',
    b'{"action": "' + b"x" * 50_000 + b'"}',
    b'{"action": "search[red shoes]"}',
    b'{"action": "click[buy now]"}',
    b"\xff\xfe{not utf-8}",
    b'{"action": "\xed\xa0\x80"}',  # a surrogate as raw (invalid) UTF-8 bytes
    b"x" * (2 << 20),  # over the 1 MiB body limit
]
FORM_BODIES: list[bytes] = [  # the search box's form post
    b"search_query=",
    b"search_query=%20%20%20",
    b"search_query=%ED%A0%80",
    b"search_query=%5Cud800",
    b"search_query=" + b"a" * 5000,
    b"search_query=red%2Fshoes%00",
    b"search_query=%FF%FE%FD",
    b"search_query=a&search_query=b",
    b"other=1",
]
API_PATHS = ["/api/sessions", "/api/sessions/{s}/step", "/api/sessions/{s}/reset", "/api/sessions/{s}", "/api/info"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


def fill(template: str, rng: random.Random, asin: str, session_id: str | None = None) -> str:
    parts = {key: rng.choice(AWKWARD_PARTS) for key in "abcdefgh"}
    return template.format(s=session_id or rng.choice(SESSION_IDS), asin=asin, **parts)


def build_corpus(asin: str, live_session: str) -> list[tuple[str, str, bytes | None]]:
    """(method, raw path, body) triples: every awkward part in every slot once, then random mixes."""
    corpus: list[tuple[str, str, bytes | None]] = []
    for template in ROUTES:
        slots = [key for key in "abcdefgh" if "{" + key + "}" in template]
        for slot in slots:
            for part in AWKWARD_PARTS:
                rng = random.Random(f"{template}:{slot}:{part}")
                filled = {key: "1" if key == "b" else "%5B%27red%27%5D" for key in slots}
                filled[slot] = part
                path = template.format(s=rng.choice(SESSION_IDS), asin=asin, **{**dict.fromkeys("abcdefgh", ""), **filled})
                corpus.append(("GET" if rng.random() < 0.7 else "POST", path, None))
    for session_id in [*SESSION_IDS, live_session]:
        for body in FORM_BODIES:
            corpus.append(("POST", f"/{session_id}", body))
        for path in API_PATHS:
            for body in JSON_BODIES:
                corpus.append(("POST", path.format(s=session_id), body))
    rng = random.Random(0)
    for _ in range(300):
        template = rng.choice(ROUTES + API_PATHS)
        body = rng.choice(JSON_BODIES) if rng.random() < 0.5 else None
        corpus.append((rng.choice(METHODS), fill(template, rng, asin), body))
    return corpus


def send(netloc: str, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(netloc, timeout=60)
    try:
        form = body is not None and body.startswith((b"search_query=", b"other="))
        content_type = "application/x-www-form-urlencoded" if form else "application/json"
        headers = {"Content-Type": content_type} if body is not None else {}
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body or b"")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def corpus(base_url: str, world: Any) -> list[tuple[str, str, bytes | None]]:
    status, answer = send(urlsplit(base_url).netloc, "POST", "/api/sessions", b'{"goal_index": 0}')
    assert status == 201
    built = build_corpus(world.goals[0]["asin"], json.loads(answer)["session_id"])
    assert len(built) >= MIN_REQUESTS
    return built


def test_no_request_gets_a_5xx(base_url: str, corpus: list[tuple[str, str, bytes | None]]) -> None:
    netloc = urlsplit(base_url).netloc
    statuses: Counter[int] = Counter()
    server_errors = []
    for method, path, body in corpus:
        status, answer = send(netloc, method, path, body)
        statuses[status] += 1
        if status >= 500:
            server_errors.append((status, method, path[:120], (body or b"")[:80], answer[:200]))
        elif status >= 400 and method != "HEAD" and answer.startswith(b"{"):
            error = json.loads(answer)  # our errors are JSON with a message
            assert error["status"] == status and error["error"], (method, path[:120], error)
    assert not server_errors, f"{len(server_errors)} of {len(corpus)} requests got a 5xx: {server_errors[:10]}"
    assert sum(statuses.values()) >= MIN_REQUESTS
    assert statuses[200] + statuses[201] > 50 and statuses[400] > 50 and statuses[404] > 50, statuses
    assert send(netloc, "GET", "/api/info", None)[0] == 200  # and the server is still up
