"""The WebShop shop: pages, sessions and the step logic shared by the HTML site and the JSON API.

A page is addressed by its WebShop URL (``/search_results/<session_id>/<keywords>/<page>`` ...);
:class:`Page` is that URL parsed and validated. A step of the text environment follows what a
browser does: ``click[x]`` looks up the element ``x`` on the current page, takes the URL its link,
form or radio button points at, and renders that page (``text.parse_page`` reads the clickables
from the HTML, so the JSON API can never offer a click the page does not show).

URL parts ``keywords`` (a Python list literal of strings, or upstream's plain ``red+shoes`` form)
and ``options`` (a dict literal of strings) are read by :func:`parse_str_list` /
:func:`parse_str_dict`, a strict parser of exactly those literals: WebShop itself passed them to
``literal_eval``, which we never do.

One session has one state whichever door it is used through: a page served to a browser becomes
the session's current page for the JSON API too, and reading a session never changes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import jinja2
import numpy as np
from pydantic import BaseModel, Field
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from .text import PageView, parse_action, parse_page

logger = logging.getLogger(__name__)

#: WebShop's page routes (endpoint -> rule). ``options`` is a ``path`` part so an option name
#: holding ``/`` still routes; ``keywords`` never holds ``/`` (see :meth:`Page.results`).
PAGE_RULES: dict[str, str] = {
    "index": "/<session_id>",
    "search_results": "/search_results/<session_id>/<keywords>/<page>",
    "item_page": "/item_page/<session_id>/<asin>/<keywords>/<page>/<path:options>",
    "item_sub_page": "/item_sub_page/<session_id>/<asin>/<keywords>/<page>/<sub_page>/<path:options>",
    "done": "/done/<session_id>/<asin>/<path:options>",
}
SUB_PAGES = ("Description", "Features", "Reviews", "Attributes")
RESULTS_PER_PAGE = 10
TOP_K = 50
MAX_QUERY_CHARS = 1_000  # Lucene refuses queries over 1,024 clauses; 1,000 characters stay below
MAX_ACTION_CHARS = 2_000
MAX_LITERAL_CHARS = 8_000  # a keywords/options URL part
MAX_PAGE = 1_000
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# ASCII only: str.isdigit() accepts "²" and "①", which int() refuses.
PAGE_NUMBER_RE = re.compile(r"[0-9]{1,7}")
ASIN_RE = re.compile(r"[A-Za-z0-9]{1,20}")
TEMPLATES_DIR = Path(__file__).with_name("templates")


class ShopError(Exception):
    """A request the shop refuses: ``status`` is the HTTP status (4xx), ``message`` says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def check_text(value: str, what: str) -> None:
    """Refuse (400) a string that is not valid Unicode text: a lone surrogate cannot be encoded for
    Lucene, SQLite or a URL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ShopError(
            400,
            f"{what} is not valid text: it holds the lone surrogate {value[error.start]!r} "
            f"at character {error.start}",
        ) from None


class WorldLike(Protocol):
    """What the shop needs from :class:`servers.webshop.world.World`."""

    goals: Any

    def product(self, asin: str) -> dict: ...
    def __contains__(self, asin: str) -> bool: ...
    def search(self, query: str, k: int = 50) -> list[str]: ...
    def price(self, asin: str) -> float: ...
    def reward(self, asin: str, options: dict[str, str], goal: dict) -> tuple[float, dict]: ...


class ShopConfig(BaseModel):
    """Settings of the web layer (the catalogue is configured by ``WorldConfig``)."""

    max_sessions: int = Field(
        10_000, ge=1, description="sessions kept; when full, a new one is refused (503) unless an idle "
        "anonymous page session can make room (see SessionStore)"
    )
    session_idle_seconds: float = Field(3_600.0, gt=0, description="sessions idle this long expire")
    evict_idle_seconds: float = Field(
        60.0, ge=0, description="when full, an anonymous page session idle this long may make room"
    )
    goal_seed: int = Field(0, description="seeds the weighted goal draw for session ids without 'fixed'")
    search_cache_size: int = Field(4_096, ge=0, description="queries whose top-50 results are cached")


# --------------------------------------------------------------------------------------------------
# Strict parser of the literals WebShop puts in URLs: str(list_of_str) and str(dict_of_str_to_str).

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<punct>[\[\]{},:])
      | (?P<string>[uU]?(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"))
    )""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\n": "",
}


def _decode_escape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code[0] in "xuU" and len(code) > 1:
        value = int(code[1:], 16)
        if value > 0x10FFFF:
            raise ValueError(f"escape \\{code} is not a valid character")
        return chr(value)
    if code in ("x", "u", "U"):
        raise ValueError(f"truncated \\{code} escape")
    if code == "N":  # \N{NAME}: valid Python, never produced by repr(); refused rather than misread
        raise ValueError("\\N{...} escapes are not supported")
    if code[0] in "01234567":
        return chr(int(code, 8))
    # Python keeps the backslash of an unknown escape such as "\d".
    return _SIMPLE_ESCAPES.get(code, "\\" + code)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected {text[pos : pos + 20]!r} at character {pos}")
        if match.group("punct"):
            tokens.append(("punct", match.group("punct")))
        else:
            raw = match.group("string").lstrip("uU")
            tokens.append(("string", _ESCAPE_RE.sub(_decode_escape, raw[1:-1])))
        pos = match.end()
    return tokens


def _parse_literal(text: str, opening: str, closing: str, what: str) -> list[tuple[str, ...]]:
    """Items of a ``[...]`` (1-tuples) or ``{...}`` (key, value) literal whose atoms are strings."""
    example = "['red', 'shoes']" if opening == "[" else "{'size': 'large'}"
    if len(text) > MAX_LITERAL_CHARS:
        raise ValueError(f"{what} is {len(text)} characters long; the limit is {MAX_LITERAL_CHARS}")
    try:
        tokens = _tokens(text)
    except ValueError as error:
        raise ValueError(f"{what}: {error} (expected a literal such as {example})") from None
    if len(tokens) < 2 or tokens[0] != ("punct", opening) or tokens[-1] != ("punct", closing):
        raise ValueError(
            f"{what} must be a literal {opening}...{closing} of quoted strings, such as {example}"
        )
    items, body, i = [], tokens[1:-1], 0
    arity = 2 if opening == "{" else 1
    while i < len(body):
        item = []
        for position in range(arity):
            kind, value = body[i] if i < len(body) else ("end", "")
            if kind != "string":
                raise ValueError(f"{what}: expected a quoted string, found {value or 'the end'!r}")
            item.append(value)
            i += 1
            if position + 1 < arity:
                if i >= len(body) or body[i] != ("punct", ":"):
                    raise ValueError(f"{what}: expected ':' after key {value!r}")
                i += 1
        items.append(tuple(item))
        if i < len(body):
            if body[i] != ("punct", ","):
                raise ValueError(f"{what}: expected ',' after {item[-1]!r}, found {body[i][1]!r}")
            i += 1
    return items


def parse_str_list(text: str, what: str = "keywords") -> list[str]:
    """Parse ``str(list_of_str)`` such as ``['red', "men's", 'shoes']`` without evaluating anything.

    Accepts what ``ast.literal_eval`` accepts for a list of plain string literals (either quote,
    Python escapes, a trailing comma); anything else raises ``ValueError`` naming the problem.
    """
    return [item[0] for item in _parse_literal(text, "[", "]", what)]


def parse_str_dict(text: str, what: str = "options") -> dict[str, str]:
    """Parse ``str(dict_of_str_to_str)`` such as ``{'size': 'large'}`` without evaluating anything."""
    return dict(_parse_literal(text, "{", "}", what))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Pages


@dataclass(frozen=True)
class Page:
    """One WebShop page, as its URL names it."""

    endpoint: str
    keywords: tuple[str, ...] = ()
    page: int = 1
    asin: str = ""
    options: tuple[tuple[str, str], ...] = ()
    sub_page: str = ""

    @classmethod
    def results(cls, query: str, page: int = 1) -> Page:
        """Results of a search box query: lowercased and split on spaces as WebShop does.

        A blank query runs, as upstream (no results). ``/`` becomes a space first: it would split
        the URL path (upstream answered 404 for ``1/2 inch``), and Lucene's analyser splits on it
        anyway, so the results are the same. Refused (400): over MAX_QUERY_CHARS characters, or
        not valid text (a lone surrogate).
        """
        query = query.lower().replace("/", " ")
        check_text(query, "the search query")
        if len(query) > MAX_QUERY_CHARS:
            raise ShopError(
                400, f"the search query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}"
            )
        return cls("search_results", keywords=tuple(query.split(" ")), page=page)

    @property
    def query(self) -> str:
        return " ".join(self.keywords)

    @property
    def option_dict(self) -> dict[str, str]:
        return dict(self.options)

    def with_options(self, options: Mapping[str, str]) -> Page:
        return Page(self.endpoint, self.keywords, self.page, self.asin, tuple(options.items()), self.sub_page)

    def path(self, session_id: str) -> str:
        """The page's URL path, built as WebShop's ``url_for`` did (``str()`` of the list / dict)."""
        keywords, options = str(list(self.keywords)), str(dict(self.options))
        parts = {
            "index": [session_id],
            "search_results": ["search_results", session_id, keywords, str(self.page)],
            "item_page": ["item_page", session_id, self.asin, keywords, str(self.page), options],
            "item_sub_page": [
                "item_sub_page",
                session_id,
                self.asin,
                keywords,
                str(self.page),
                self.sub_page,
                options,
            ],
            "done": ["done", session_id, self.asin, options],
        }[self.endpoint]
        return "/" + "/".join(quote(part, safe="") for part in parts)


@dataclass(frozen=True)
class StepResult:
    """The outcome of one text-env action: ``valid`` (it changed the page), ``reward`` (the score on
    the buying step, else 0.0) and ``message`` (why we refused it, when we did; else None)."""

    valid: bool
    reward: float
    message: str | None = None


# --------------------------------------------------------------------------------------------------
# Sessions


@dataclass(eq=False)
class Session:
    """One shopper: a goal, the page it is on (through the web pages or the JSON API), and the
    outcome once bought.

    ``pinned``: created or played through the JSON API (an env's episode): never pushed out to make
    room, only expired after ``session_idle_seconds`` or deleted. Hold ``lock`` while reading or
    changing a session: waitress serves from many threads.
    """

    id: str
    goal_index: int
    goal: dict
    page: Page = field(default_factory=lambda: Page("index"))
    view: PageView | None = None
    done: bool = False
    score: float = 0.0
    reward_info: dict | None = None
    steps: int = 0
    visited: set[str] = field(default_factory=set)
    pinned: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    last_used: float = field(default_factory=time.monotonic)

    def restart(self, goal_index: int, goal: dict) -> None:
        self.goal_index, self.goal = goal_index, goal
        self.page, self.view = Page("index"), None
        self.done, self.score, self.reward_info, self.steps = False, 0.0, None, 0
        self.visited = set()


class SessionStore:
    """Sessions by id, bounded without ever dropping a session in use.

    Two kinds, each kept in least-recently-used order: *pinned* sessions (created or played through
    the JSON API) and *anonymous* ones (made by visiting a page URL with a new id, WebShop's own
    way, as browsers and upstream's clients do). Housekeeping runs when a session is added:

    1. sessions of either kind idle for ``idle_seconds`` expire;
    2. if the store is still full, the least recently used anonymous session idle for at least
       ``evict_idle_seconds`` makes room;
    3. otherwise the new session is refused with ShopError 503: a page visit never pushes out a
       session in use, and a pinned session is never pushed out at all.
    """

    def __init__(self, max_sessions: int, idle_seconds: float, evict_idle_seconds: float = 60.0):
        self.max_sessions, self.idle_seconds = max_sessions, idle_seconds
        self.evict_idle_seconds = evict_idle_seconds
        self._pinned: OrderedDict[str, Session] = OrderedDict()
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pinned) + len(self._anonymous)

    def _kind(self, session: Session) -> OrderedDict[str, Session]:
        return self._pinned if session.pinned else self._anonymous

    def get(self, session_id: str) -> Session | None:
        """The session ``session_id`` (marked as just used), or None."""
        with self._lock:
            session = self._pinned.get(session_id) or self._anonymous.get(session_id)
            if session is not None:
                session.last_used = time.monotonic()
                self._kind(session).move_to_end(session_id)
            return session

    def pin(self, session: Session) -> None:
        """Mark ``session`` as played through the JSON API: never pushed out to make room."""
        with self._lock:
            if not session.pinned and self._anonymous.pop(session.id, None) is not None:
                session.pinned = True
                self._pinned[session.id] = session

    def add(self, session: Session) -> Session:
        """Store ``session`` unless one with its id exists; return the stored one.

        Raises ShopError(503) when the store is full of sessions in use.
        """
        with self._lock:
            existing = self._pinned.get(session.id) or self._anonymous.get(session.id)
            if existing is not None:
                return existing
            self._make_room()
            self._kind(session)[session.id] = session
            return session

    def remove(self, session_id: str) -> bool:
        with self._lock:
            return (self._pinned.pop(session_id, None) or self._anonymous.pop(session_id, None)) is not None

    def _make_room(self) -> None:
        now = time.monotonic()
        for sessions in (self._pinned, self._anonymous):
            while sessions:
                oldest_id, oldest = next(iter(sessions.items()))
                if now - oldest.last_used < self.idle_seconds:
                    break
                del sessions[oldest_id]
                logger.debug("session %s expired after %.0f s idle", oldest_id, now - oldest.last_used)
        if len(self) < self.max_sessions:
            return
        if self._anonymous:
            oldest_id, oldest = next(iter(self._anonymous.items()))
            if now - oldest.last_used >= self.evict_idle_seconds:
                del self._anonymous[oldest_id]
                logger.debug("anonymous session %s made room for a new one", oldest_id)
                return
        raise ShopError(
            503,
            f"the server is full: it holds its maximum of {self.max_sessions} sessions, all in use "
            f"({len(self._pinned)} played through the JSON API, {len(self._anonymous)} page sessions used "
            f"in the last {self.evict_idle_seconds:g} s). Delete finished sessions "
            "(DELETE /api/sessions/<id>, or env.close()), wait for idle ones to expire "
            f"(after {self.idle_seconds:g} s), or restart the server with a larger --max-sessions",
        )


def new_session_id() -> str:
    return uuid.uuid4().hex


def validate_session_id(session_id: str) -> str:
    if not SESSION_ID_RE.fullmatch(session_id):
        raise ShopError(400, f"invalid session id {session_id[:80]!r}: use 1-64 letters, digits, '_' or '-'")
    return session_id


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def price_tag(product: Mapping[str, Any]) -> str:
    """WebShop's price text: ``$a`` or ``$a to $b`` from the float prices (``str(float)``, e.g. ``$32.5``)."""
    for key in ("price_tag", "Price"):
        if isinstance(product.get(key), str):
            return product[key]
    prices = product.get("Price")
    prices = list(prices or [100.0])
    return f"${prices[0]}" if len(prices) == 1 else f"${prices[0]} to ${prices[1]}"


# --------------------------------------------------------------------------------------------------
# The shop


class Shop:
    """The WebShop site logic over a ``World``: sessions, page rendering, and text-env steps."""

    def __init__(self, world: WorldLike, config: ShopConfig | None = None):
        self.world = world
        self.config = config or ShopConfig()
        self.sessions = SessionStore(
            self.config.max_sessions, self.config.session_idle_seconds, self.config.evict_idle_seconds
        )
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Reward details may hold tuples or sets: show them as JSON lists.
        self.templates.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}
        self._router = Map([Rule(rule, endpoint=name) for name, rule in PAGE_RULES.items()]).bind("localhost")
        self._search = lru_cache(maxsize=self.config.search_cache_size)(self._search_uncached)

    # ---- goals and sessions

    @property
    def num_goals(self) -> int:
        return len(self.world.goals)

    def check_goal_index(self, goal_index: int, status: int = 400) -> int:
        if not 0 <= goal_index < self.num_goals:
            raise ShopError(
                status,
                f"goal index {goal_index} is out of range: this world has {self.num_goals} goals "
                f"(0..{self.num_goals - 1})",
            )
        return goal_index

    @cached_property
    def _cumulative_goal_weights(self) -> np.ndarray:
        weights = getattr(self.world, "goal_weights", None)
        if weights is None:
            weights = [float(goal.get("weight", 1.0)) for goal in self.world.goals]
        return np.cumsum(np.asarray(weights, dtype=np.float64))

    def goal_for_session_id(self, session_id: str) -> int:
        """WebShop's rule: ids containing ``fixed`` take ``goals[int(id.split('_')[-1])]``; others a
        weighted random goal, here drawn from a generator seeded by the id (upstream: global random)."""
        if "fixed" in session_id:
            suffix = session_id.split("_")[-1]
            if not suffix.isdigit():
                raise ShopError(
                    400, f"session id {session_id!r} contains 'fixed' but does not end in _<goal index>"
                )
            return self.check_goal_index(int(suffix), status=404)
        digest = hashlib.blake2b(f"{self.config.goal_seed}:{session_id}".encode(), digest_size=8).digest()
        cumulative = self._cumulative_goal_weights
        draw = random.Random(int.from_bytes(digest, "big")).random() * cumulative[-1]
        return min(int(np.searchsorted(cumulative, draw, side="right")), self.num_goals - 1)

    def session(self, session_id: str, create: bool = True, pin: bool = False) -> Session:
        """The session ``session_id``; with ``create`` an unknown id starts one (WebShop's pages do).

        ``pin``: the caller plays it through the JSON API, so it is never pushed out to make room.
        """
        validate_session_id(session_id)
        session = self.sessions.get(session_id)
        if session is None:
            if not create:
                raise ShopError(
                    404,
                    f"unknown session {session_id!r} (never created, deleted, or expired after "
                    f"{self.config.session_idle_seconds:g} s idle)",
                )
            goal_index = self.goal_for_session_id(session_id)
            session = self.sessions.add(Session(session_id, goal_index, self.world.goals[goal_index]))
        if pin:
            self.sessions.pin(session)
        return session

    def new_session(self, goal_index: int | None = None) -> Session:
        """A fresh pinned session with a new random id, reset to ``goal_index`` (default: WebShop's
        weighted draw). Raises ShopError(503) when the server is full."""
        session_id = new_session_id()
        if goal_index is None:
            goal_index = self.goal_for_session_id(session_id)
        self.check_goal_index(goal_index)
        session = Session(session_id, goal_index, self.world.goals[goal_index], pinned=True)
        session = self.sessions.add(session)
        with session.lock:
            self.reset(session, goal_index)
        return session

    def reset(self, session: Session, goal_index: int | None = None) -> None:
        """Start ``session`` over on the search page (same goal unless ``goal_index`` is given)."""
        goal_index = session.goal_index if goal_index is None else self.check_goal_index(goal_index)
        session.restart(goal_index, self.world.goals[goal_index])
        self.show(session, Page("index"))

    # ---- the text environment

    def step(self, session: Session, action: str) -> StepResult:
        """Apply one action as WebShop's text env does (upstream's parsing, see ``text.parse_action``).

        ``search[q]`` runs on every page; ``click[x]`` follows the element ``x`` of the current page
        (not ``click[search]``). Anything else changes nothing (``valid`` False), as upstream; so do
        actions we refuse, with the reason in ``message``: a query over MAX_QUERY_CHARS, an action
        over MAX_ACTION_CHARS, a query that is not valid text. Every action counts as a step.
        """
        if session.done:
            raise ShopError(
                409, f"session {session.id!r} has bought already; reset it to start a new episode"
            )
        if session.view is None:
            self.show(session, session.page)
        session.steps += 1
        if len(action) > MAX_ACTION_CHARS:
            return StepResult(
                False, 0.0, f"the action is {len(action)} characters long; the limit is {MAX_ACTION_CHARS}"
            )
        name, argument = parse_action(action)
        if name == "search" and argument is not None:
            try:
                target = Page.results(argument)
            except ShopError as error:
                return StepResult(False, 0.0, error.message)
        elif name == "click" and argument != "search" and session.view.clickables.get(argument):
            target = self.resolve(session.view.clickables[argument])
        else:
            return StepResult(False, 0.0, None)
        self.show(session, target)
        return StepResult(True, session.score if session.done else 0.0, None)

    def resolve(self, url: str) -> Page:
        """The page a link, form or radio button of ours points at."""
        try:
            endpoint, args = self._router.match(unquote(urlsplit(url).path), method="GET")
        except HTTPException as error:
            raise ShopError(404, f"no page at {url[:200]!r}") from error
        return self.page_from_route(endpoint, args)

    def show(self, session: Session, page: Page) -> str:
        """Render ``page`` and make it the session's current page, for both doors; returns the HTML.

        (Rendering the ``done`` page scores the purchase.) Call with ``session.lock`` held.
        """
        if page.endpoint == "index":
            session.visited.clear()  # upstream's "back to search" starts its list of visited products over
        html = self.render(session, page)
        session.page, session.view = page, parse_page(html)
        return html

    # ---- pages

    def page_from_route(self, endpoint: str, args: Mapping[str, str]) -> Page:
        """Validate the parts of a page URL (as routed by ``PAGE_RULES``) into a :class:`Page`.

        ``keywords`` is a list literal (``['red', 'shoes']``, as upstream's pages write it) or, as
        upstream also accepts, a plain segment taken as one keyword (``red+shoes``, as upstream's
        text env writes it; Lucene splits it on ``+``). Bad parts: 400, unknown things: 404.
        """
        if endpoint == "index":
            return Page("index")
        keywords: tuple[str, ...] = ()
        if "keywords" in args:
            raw = args["keywords"]
            if len(raw) > MAX_LITERAL_CHARS:
                raise ShopError(400, f"keywords are {len(raw)} characters long; the limit is {MAX_LITERAL_CHARS}")
            if raw.startswith("["):
                try:
                    keywords = tuple(parse_str_list(raw))
                except ValueError as error:
                    raise ShopError(400, str(error)) from error
                if not keywords:
                    raise ShopError(400, "keywords must hold at least one word, as in ['red', 'shoes']")
            else:
                keywords = (raw,)
            query = " ".join(keywords)
            check_text(query, "the keywords")
            if len(query) > MAX_QUERY_CHARS:
                raise ShopError(
                    400, f"the search query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}"
                )
        try:
            options = parse_str_dict(args["options"]) if "options" in args else {}
        except ValueError as error:
            raise ShopError(400, str(error)) from error
        page = 1
        if "page" in args:
            raw_page = args["page"]
            if not PAGE_NUMBER_RE.fullmatch(raw_page) or not 1 <= int(raw_page) <= MAX_PAGE:
                raise ShopError(400, f"page must be a whole number from 1 to {MAX_PAGE}, not {raw_page[:40]!r}")
            page = int(raw_page)
        asin = args.get("asin", "")
        if asin:
            if not ASIN_RE.fullmatch(asin) or asin.upper() not in self.world:
                raise ShopError(404, f"unknown asin {asin[:40]!r}")
            asin = asin.upper()
            product_options = self.world.product(asin).get("options") or {}
            for name, value in options.items():
                if value not in product_options.get(name, ()):
                    raise ShopError(400, f"product {asin} has no option {name!r} with value {value!r}")
        sub_page = ""
        if "sub_page" in args:
            sub_page = args["sub_page"].capitalize()
            if sub_page not in SUB_PAGES:
                raise ShopError(
                    404, f"unknown sub page {args['sub_page'][:40]!r}: one of {', '.join(SUB_PAGES)}"
                )
        return Page(endpoint, keywords, page, asin, tuple(options.items()), sub_page)

    def _search_uncached(self, query: str) -> tuple[str, ...]:
        return tuple(self.world.search(query, k=TOP_K))

    def render(self, session: Session, page: Page) -> str:
        """The HTML of ``page`` for ``session``; rendering the ``done`` page scores the purchase."""
        context: dict[str, Any] = {
            "instruction_text": session.goal["instruction_text"],
            "session_id": session.id,
            "back_url": Page("index").path(session.id),
        }
        results_page = Page("search_results", page.keywords, page.page)
        if page.endpoint == "index":
            template = "search_page.html"
            context["search_url"] = Page("index").path(session.id)
        elif page.endpoint == "search_results":
            template = "results_page.html"
            asins = self._search(page.query)
            start = (page.page - 1) * RESULTS_PER_PAGE
            context.update(
                page=page.page,
                total=len(asins),
                prev_url=Page("search_results", page.keywords, page.page - 1).path(session.id)
                if page.page > 1
                else None,
                next_url=Page("search_results", page.keywords, page.page + 1).path(session.id),
                products=[
                    self._summary(session, asin, page) for asin in asins[start : start + RESULTS_PER_PAGE]
                ],
            )
        elif page.endpoint in ("item_page", "item_sub_page"):
            product = self.world.product(page.asin)
            item_page = Page("item_page", page.keywords, page.page, page.asin, page.options)
            session.visited.add(page.asin)
            context.update(product=product, price=price_tag(product))
            if page.endpoint == "item_page":
                template = "item_page.html"
                selected = page.option_dict
                context.update(
                    prev_url=results_page.path(session.id),
                    options=[
                        (name, [self._option(session, item_page, selected, name, value) for value in values])
                        for name, values in (product.get("options") or {}).items()
                    ],
                    sub_page_urls=[
                        (
                            name,
                            Page(
                                "item_sub_page", page.keywords, page.page, page.asin, page.options, name
                            ).path(session.id),
                        )
                        for name in SUB_PAGES[:3]  # upstream's item page has no Attributes button
                    ],
                    buy_url=Page("done", asin=page.asin, options=page.options).path(session.id),
                )
            else:
                template = "item_sub_page.html"
                context.update(prev_url=item_page.path(session.id), sub_page=page.sub_page)
        elif page.endpoint == "done":
            template = "done_page.html"
            options = page.option_dict
            score, info = self.world.reward(page.asin, options, session.goal)
            info = json.loads(json.dumps(info, default=_json_default))
            session.done, session.score, session.reward_info = True, float(score), info
            context.update(
                score=float(score),
                asin=page.asin,
                options=options,
                price=self.world.price(page.asin),
                reward_info=info,
                goal=session.goal,
            )
        else:  # pragma: no cover - routes only produce the endpoints above
            raise ShopError(404, f"unknown page {page.endpoint!r}")
        return self.templates.get_template(template).render(context)

    def _summary(self, session: Session, asin: str, results: Page) -> dict[str, Any]:
        product = self.world.product(asin)
        return {
            "asin": asin,
            "title": product.get("Title") or product.get("name", ""),
            "price": price_tag(product),
            "image": product.get("MainImage") or "",
            "visited": asin in session.visited,
            "url": Page("item_page", results.keywords, results.page, asin).path(session.id),
        }

    def _option(self, session: Session, item: Page, selected: dict[str, str], name: str, value: str) -> dict:
        return {
            "value": value,
            "checked": selected.get(name) == value,
            "url": item.with_options({**selected, name: value}).path(session.id),
        }
