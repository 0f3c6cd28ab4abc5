"""Summarisers that fold old history records into a running summary.

A :class:`Summariser` keeps an opaque per-episode state: :meth:`~Summariser.start`
makes it, :meth:`~Summariser.fold` adds records (oldest first) and
:meth:`~Summariser.text` is what the prompt shows. :class:`RuleSummariser`
needs no model and is deterministic; :class:`memory.llm.LLMSummariser` asks a
causal language model.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memory.base import Record


class Summariser(ABC):
    """Folds history records into a running summary (one state per episode)."""

    @abstractmethod
    def start(self, env: str, task: str) -> Any:
        """A fresh state for a new episode of ``env`` with goal ``task``."""

    @abstractmethod
    def fold(self, state: Any, records: Sequence[Record]) -> Any:
        """The state after adding ``records`` (oldest first); may update ``state`` in place."""

    def fold_many(self, states: Sequence[Any], records: Sequence[Sequence[Record]]) -> list[Any]:
        """:meth:`fold` for many episodes at once (override to batch model calls)."""
        return [self.fold(state, recs) for state, recs in zip(states, records, strict=True)]

    @abstractmethod
    def text(self, state: Any) -> str:
        """The summary shown in the prompt."""


# --------------------------------------------------------------------------- ALFWorld
# Feedback sentences of ALFWorld's grammar (alfworld/data/alfred.twl2, 0.4.2) and of
# older releases ("You put the X in/on the Y.", "You arrive at loc 5.").
_A_ARRIVE = re.compile(r"You arrive at (?P<place>[^.]+?)\.")
_A_ON = re.compile(r"On the (?P<place>[^,.]+?), you see (?P<items>[^.]*)\.")
_A_OPEN_IN = re.compile(r"The (?P<place>[^.]+?) is open\. In it, you see (?P<items>[^.]*)\.")
_A_CLOSED = re.compile(r"The (?P<place>[^.]+?) is closed\.")
_A_OPEN = re.compile(r"You open the (?P<place>[^.]+?)\.")
_A_CLOSE = re.compile(r"You close the (?P<place>[^.]+?)\.")
_A_PICK = re.compile(r"You pick up the (?P<obj>[^.]+?)(?: from the (?P<place>[^.]+?))?\.")
_A_PUT = re.compile(r"You (?:move|put) the (?P<obj>[^.]+?) (?:to|in/on|into|in|on) the (?P<place>[^.]+?)\.")
_A_TREAT = re.compile(r"You (?P<verb>heat|clean|cool) the (?P<obj>[^.]+?) using the (?P<place>[^.]+?)\.")
_A_TOGGLE = re.compile(r"You turn (?P<state>on|off) the (?P<obj>[^.]+?)\.")
_A_SLICE = re.compile(r"You sliced? the (?P<obj>[^.]+?) with the (?P<tool>[^.]+?)\.")
_A_CARRY = re.compile(r"You are carrying: (?P<items>[^.]*)\.")
_LIST_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+")
_ARTICLE = re.compile(r"^(?:a|an|the|some)\s+")
_INSTANCE_NUMBER = re.compile(r"\s+\d+$")
_PAST = {"heat": "heated", "clean": "cleaned", "cool": "cooled"}
_MAX_LISTED = 8


def _items(listing: str) -> list[str]:
    listing = listing.strip()
    if not listing or listing == "nothing":
        return []
    return [_ARTICLE.sub("", part.strip()) for part in _LIST_SPLIT.split(listing) if part.strip()]


def _object_type(name: str) -> str:
    return _INSTANCE_NUMBER.sub("", name)


def _tail(items: list[str], limit: int = _MAX_LISTED) -> str:
    shown = ", ".join(items[-limit:])
    return f"{shown} (and {len(items) - limit} earlier)" if len(items) > limit else shown


@dataclass
class AlfworldSummary:
    """What :class:`RuleSummariser` tracks in ALFWorld."""

    task_words: frozenset[str]
    steps: int = 0
    location: str | None = None
    visited: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    holding: str | None = None
    seen: dict[str, str] = field(default_factory=dict)  # task-relevant object -> where it was seen
    done: list[str] = field(default_factory=list)
    no_effect: list[str] = field(default_factory=list)
    last_action: str | None = None

    def visit(self, place: str) -> None:
        if place.startswith("loc "):  # old releases name the spot, the next sentence names the receptacle
            return
        self.location = place
        if place not in self.visited:
            self.visited.append(place)

    def see(self, place: str, listing: str) -> None:
        for obj in _items(listing):
            if _object_type(obj) in self.task_words:
                self.seen[obj] = place

    def add_done(self, event: str) -> None:
        if not self.done or self.done[-1] != event:
            self.done.append(event)


def _fold_alfworld(state: AlfworldSummary, obs: str, action: str) -> None:
    # `obs` is the feedback to the previous action; `action` was taken after reading it.
    failed = obs.strip() == "Nothing happens." and state.last_action
    if failed and state.last_action not in state.no_effect:
        state.no_effect.append(state.last_action)
    if m := _A_ARRIVE.search(obs):
        state.visit(m["place"])
    if m := _A_OPEN.search(obs):
        state.visit(m["place"])
        if m["place"] not in state.opened:
            state.opened.append(m["place"])
    if m := _A_CLOSE.search(obs):
        state.opened = [p for p in state.opened if p != m["place"]]
    for m in _A_ON.finditer(obs):
        state.visit(m["place"])
        state.see(m["place"], m["items"])
    for m in _A_OPEN_IN.finditer(obs):
        state.visit(m["place"])
        state.see(m["place"], m["items"])
    for m in _A_CLOSED.finditer(obs):
        state.visit(m["place"])
    if m := _A_PICK.search(obs):
        state.holding = m["obj"]
        state.seen.pop(m["obj"], None)
        state.add_done(f"took {m['obj']}" + (f" from {m['place']}" if m["place"] else ""))
    if m := _A_PUT.search(obs):
        state.holding = None
        if _object_type(m["obj"]) in state.task_words:
            state.seen[m["obj"]] = m["place"]
        state.add_done(f"put {m['obj']} in/on {m['place']}")
    if m := _A_TREAT.search(obs):
        state.add_done(f"{_PAST[m['verb']]} {m['obj']} with {m['place']}")
    if m := _A_TOGGLE.search(obs):
        state.add_done(f"turned {m['state']} {m['obj']}")
    if m := _A_SLICE.search(obs):
        state.add_done(f"sliced {m['obj']} with {m['tool']}")
    if m := _A_CARRY.search(obs):
        carried = _items(m["items"])
        state.holding = carried[0] if carried else None
    elif "You are not carrying anything." in obs:
        state.holding = None
    state.last_action = action
    state.steps += 1


def _alfworld_text(state: AlfworldSummary) -> str:
    parts = [f"Visited: {_tail(state.visited) if state.visited else 'nowhere yet'}."]
    if state.location:
        parts.append(f"Last location: {state.location}.")
    parts.append(f"Holding: {state.holding or 'nothing'}.")
    if state.opened:
        parts.append(f"Opened and not closed: {_tail(state.opened)}.")
    if state.seen:
        parts.append("Task objects seen: " + _tail([f"{o} in/on {p}" for o, p in state.seen.items()]) + ".")
    parts.append(f"Progress: {_tail(state.done, 6) if state.done else 'nothing done yet'}.")
    if state.no_effect:
        parts.append("Actions that did nothing: " + _tail([f"'{a}'" for a in state.no_effect], 4) + ".")
    return " ".join(parts)


# --------------------------------------------------------------------------- WebShop
_W_ACTION = re.compile(r"^\s*(?P<verb>search|click)\[(?P<arg>.*)\]\s*$", re.IGNORECASE | re.DOTALL)
_W_NAVIGATION = frozenset(
    {
        "back to search",
        "< prev",
        "next >",
        "description",
        "features",
        "reviews",
        "attributes",
        "buy now",
        "search",
    }
)
_MAX_TITLE = 80


@dataclass
class WebshopSummary:
    """What :class:`RuleSummariser` tracks in WebShop."""

    steps: int = 0
    queries: list[str] = field(default_factory=list)
    viewed: dict[str, str] = field(default_factory=dict)  # asin -> "title ($price)"
    item: str | None = None
    options: list[str] = field(default_factory=list)
    pages_turned: int = 0
    bought: str | None = None
    no_effect: list[str] = field(default_factory=list)


def _fold_webshop(state: WebshopSummary, obs: str, action: str) -> None:
    state.steps += 1
    m = _W_ACTION.match(action)
    if not m:
        if action not in state.no_effect:
            state.no_effect.append(action)
        return
    verb, arg = m["verb"].lower(), m["arg"].strip()
    if verb == "search":
        if arg not in state.queries:
            state.queries.append(arg)
        state.item = None
        return
    target = arg.lower()
    elements = [e.strip() for e in obs.split("[SEP]")]
    lowered = [e.lower() for e in elements]
    if target in lowered:
        at = lowered.index(target)
        # A result row is "ASIN [SEP] title [SEP] $price".
        if at + 2 < len(elements) and elements[at + 2].startswith("$"):
            title = elements[at + 1]
            title = title if len(title) <= _MAX_TITLE else title[: _MAX_TITLE - 3] + "..."
            state.viewed[elements[at]] = f"{title} ({elements[at + 2]})"
            state.item = elements[at]
            return
    if target == "buy now":
        state.bought = state.item or "an item"
    elif target == "back to search":
        state.item = None
    elif target == "next >":
        state.pages_turned += 1
    elif target not in _W_NAVIGATION and "buy now" in lowered:
        chosen = f"{arg}" + (f" for {state.item}" if state.item else "")
        if chosen not in state.options:
            state.options.append(chosen)


def _webshop_text(state: WebshopSummary) -> str:
    parts = [
        "Searched for: "
        + (_tail([f"'{q}'" for q in state.queries], 5) if state.queries else "nothing yet")
        + "."
    ]
    if state.viewed:
        parts.append("Items viewed: " + _tail([f"{a}: {t}" for a, t in state.viewed.items()], 5) + ".")
    if state.options:
        parts.append(f"Options chosen: {_tail(state.options, 6)}.")
    if state.pages_turned:
        parts.append(f"Result pages turned: {state.pages_turned}.")
    if state.bought:
        parts.append(f"Bought: {state.bought}.")
    if state.no_effect:
        parts.append("Malformed actions: " + _tail([f"'{a}'" for a in state.no_effect], 3) + ".")
    return " ".join(parts)


# --------------------------------------------------------------------------- dispatcher
class RuleSummariser(Summariser):
    """Deterministic, model-free summaries of ALFWorld and WebShop histories.

    ALFWorld: places visited, last location, the object held, containers
    opened and not closed, where objects named in the task were seen, task
    progress (objects taken, put, heated/cleaned/cooled, sliced, lamps
    turned on) and actions that did nothing. Parsed from ALFWorld's own
    feedback sentences ("You arrive at countertop 1. On the countertop 1, you
    see ...", "You pick up the apple 1 from the countertop 1.", "You open the
    fridge 1. ...").

    WebShop: queries tried (``search[...]``), items viewed (``click[asin]`` on
    a results page, with title and price read from the page), options chosen
    (``click[value]`` on an item page), result pages turned, purchase.

    The summary text is a pure function of the folded records, so equal
    histories give equal summaries (and equal context keys).
    """

    def start(self, env: str, task: str) -> AlfworldSummary | WebshopSummary:
        if env == "alfworld":
            return AlfworldSummary(task_words=frozenset(re.findall(r"[a-z]+", task.lower())))
        if env == "webshop":
            return WebshopSummary()
        raise ValueError(f"RuleSummariser knows env 'alfworld' and 'webshop', got {env!r}")

    def fold(self, state: Any, records: Sequence[Record]) -> Any:
        fold_one = _fold_alfworld if isinstance(state, AlfworldSummary) else _fold_webshop
        for record in records:
            fold_one(state, record.obs, record.action)
        return state

    def text(self, state: Any) -> str:
        return _alfworld_text(state) if isinstance(state, AlfworldSummary) else _webshop_text(state)
