"""Turning a policy's response text into an environment action.

Reference rules (verl-agent's ALFWorld/WebShop projections; notes/algorithms.md
sections 0 and 4):

- the action is the text between the first ``<action>`` and the following
  ``</action>`` (tags matched case-insensitively), stripped and lowercased;
- without both tags the last 30 (ALFWorld) / 20 (WebShop) characters of the
  lowercased response are sent anyway and the step is invalid;
- a response without a ``<think>...</think>`` pair is invalid (``require_think``);
- a response with CJK characters is invalid.

"Valid" is a *format* check only: admissibility is the environment's business.

Deviations from the reference, on purpose:

- ``</action>`` is searched *after* ``<action>``; the reference takes the first
  ``</action>`` anywhere, so ``"</action> ... <action>x"`` gave an empty but
  "valid" action;
- an empty action (``<action> </action>``) is invalid (the reference called it valid);
- CJK covers CJK ideographs (with extension A and compatibility ideographs),
  CJK punctuation, kana, Hangul and full-width forms; the reference tested
  ``[\\u4e00-\\u9fff]`` only.

HiPER turns (arXiv 2602.16165; notes/algorithms.md section 3) are
``<switch>KEEP|SWITCH</switch><subgoal>...</subgoal><action>...</action>``:
invalid when the subgoal or action tags are missing, the switch is not
KEEP/SWITCH, or CJK is present; a missing or empty switch counts as KEEP; the
first turn of an episode is always a segment boundary.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

FALLBACK_CHARS = {"alfworld": 30, "webshop": 20}
"""Characters of the response tail sent when the action tags are missing (reference)."""

_CJK = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
_ACTION_OPEN = re.compile(r"<action>", re.IGNORECASE)
_ACTION_CLOSE = re.compile(r"</action>", re.IGNORECASE)
_SWITCH = re.compile(r"<switch>(.*?)</switch>", re.IGNORECASE | re.DOTALL)
_SUBGOAL = re.compile(r"<subgoal>(.*?)</subgoal>", re.IGNORECASE | re.DOTALL)
_WHITESPACE = re.compile(r"\s+")

Span = tuple[int, int]


@dataclass(frozen=True)
class ParsedAction:
    """An action extracted from a response.

    Attributes:
        action: the text to send to the environment.
        valid: the reference's format check (tags present, no CJK, think block).
        reason: why the response is invalid; None when valid.
        span: ``(start, end)`` character span of ``<action>...</action>`` in the
            response, tags included; None when the tags are missing.
        projected: True when projection changed the extracted (lowercased)
            action, even if only its spacing, quotes or final full stop.
    """

    action: str
    valid: bool
    reason: str | None = None
    span: Span | None = None
    projected: bool = False


@dataclass(frozen=True)
class HiperTurn:
    """One parsed HiPER turn.

    Attributes:
        switch: ``"KEEP"`` or ``"SWITCH"`` (missing, empty or malformed: ``"KEEP"``).
        subgoal: the sub-goal text, stripped, case kept ("" when missing).
        action: the action to send (reference extraction and fallback, lowercased).
        valid: the format check described in the module docstring.
        reason: why the turn is invalid; None when valid.
        boundary: True when this turn starts a new sub-goal segment: a SWITCH,
            or the first turn of an episode.
        switch_span, subgoal_span, action_span: ``(start, end)`` character spans
            of each element in the response, tags included; None when missing.
            The token after ``subgoal_span[1]`` is where HiPER reads V_low.
        projected: True when projection changed the action text the policy wrote.
    """

    switch: Literal["KEEP", "SWITCH"]
    subgoal: str
    action: str
    valid: bool
    reason: str | None
    boundary: bool
    switch_span: Span | None
    subgoal_span: Span | None
    action_span: Span | None
    projected: bool = False

    def subgoal_changed(self, previous: str | None) -> bool:
        """Whether a KEEP turn altered the sub-goal it should have copied (HiPER's consistency penalty)."""
        return self.switch == "KEEP" and previous is not None and self.subgoal != previous


def _check_env(env: str) -> None:
    if env not in FALLBACK_CHARS:
        raise ValueError(f"env must be one of {sorted(FALLBACK_CHARS)}, got {env!r}")


def has_cjk(text: str) -> bool:
    """Whether ``text`` contains CJK characters (see the module docstring for the ranges)."""
    return _CJK.search(text) is not None


def _extract_action(text: str, env: str) -> tuple[str, Span | None, str | None]:
    """(action, span, reason) by the reference rules; reason is None when the tags are fine."""
    opening = _ACTION_OPEN.search(text)
    closing = _ACTION_CLOSE.search(text, opening.end()) if opening else None
    if opening is None or closing is None:
        missing = "<action>" if opening is None else "</action>"
        return text.lower()[-FALLBACK_CHARS[env] :], None, f"missing {missing} tag"
    action = text[opening.end() : closing.start()].strip().lower()
    reason = None if action else "empty action"
    return action, (opening.start(), closing.end()), reason


def _normalise(action: str) -> str:
    return _WHITESPACE.sub(" ", action.strip().strip("'\"`.").strip()).lower()


def project_action(action: str, admissible: Sequence[str], env: str) -> str:
    """The admissible action closest to ``action`` (opt-in projection).

    An exact match after normalisation (lowercase, collapsed whitespace,
    surrounding quotes and full stop removed) wins; on WebShop a
    ``search[...]`` with a non-empty query is kept as typed when a search is
    admissible (the admissible list holds a ``search[<your query>]``
    placeholder); otherwise the most similar admissible action by
    :func:`difflib.get_close_matches` ratio (placeholders excluded). With no
    admissible actions, ``action`` is returned unchanged.
    """
    _check_env(env)
    if not admissible:
        return action
    wanted = _normalise(action)
    by_normal = {_normalise(a): a for a in reversed(admissible)}
    if wanted in by_normal:
        return by_normal[wanted]
    if env == "webshop":
        can_search = any(a.lower().startswith("search[") for a in admissible)
        if can_search and re.fullmatch(r"search\[\s*\S.*\]", wanted):
            return wanted
        by_normal = {n: a for n, a in by_normal.items() if not n.startswith("search[<")}
        if not by_normal:
            return action
    best = difflib.get_close_matches(wanted, list(by_normal), n=1, cutoff=0.0)
    return by_normal[best[0]] if best else action


def parse_action(
    response: str,
    env: str = "alfworld",
    *,
    admissible: Sequence[str] | None = None,
    project: bool = False,
    require_think: bool = True,
) -> ParsedAction:
    """Extract the action of a ``<think>``/``<action>`` response by the reference rules.

    Args:
        response: the decoded response text.
        env: ``"alfworld"`` or ``"webshop"`` (sets the 30/20-character fallback).
        admissible: the step's admissible actions (needed for ``project``).
        project: replace the action by the closest admissible one
            (:func:`project_action`). ``valid`` stays the format check.
        require_think: demand a ``<think>...</think>`` pair (reference: True).

    Returns:
        A :class:`ParsedAction`; never raises on any response text.
    """
    _check_env(env)
    if not isinstance(response, str):
        raise TypeError(f"response must be str, got {type(response).__name__}")
    action, span, reason = _extract_action(response, env)
    if reason is None and require_think:
        think_open, think_close = response.find("<think>"), response.find("</think>")
        if think_open == -1 or think_close == -1:
            reason = "missing <think> or </think> tag"
    if reason is None and has_cjk(response):
        reason = "CJK characters in the response"
    projected = False
    if project:
        if admissible is None:
            raise ValueError("parse_action(project=True) needs the admissible actions")
        chosen = project_action(action, admissible, env)
        projected, action = chosen != action, chosen
    return ParsedAction(action=action, valid=reason is None, reason=reason, span=span, projected=projected)


def parse_hiper_turn(
    response: str,
    env: str = "alfworld",
    *,
    first_turn: bool = False,
    admissible: Sequence[str] | None = None,
    project: bool = False,
) -> HiperTurn:
    """Parse a HiPER ``<switch>``/``<subgoal>``/``<action>`` response.

    Args:
        response: the decoded response text.
        env: ``"alfworld"`` or ``"webshop"`` (action fallback length).
        first_turn: the first turn of an episode is a segment boundary whatever the switch says.
        admissible, project: as in :func:`parse_action`.

    Returns:
        A :class:`HiperTurn`; never raises on any response text. The first
        ``<switch>``, ``<subgoal>`` and ``<action>`` elements count.
    """
    _check_env(env)
    if not isinstance(response, str):
        raise TypeError(f"response must be str, got {type(response).__name__}")
    action, action_span, reason = _extract_action(response, env)

    switch: Literal["KEEP", "SWITCH"] = "KEEP"
    switch_match = _SWITCH.search(response)
    if switch_match:
        word = switch_match.group(1).strip().upper()
        if word == "SWITCH":
            switch = "SWITCH"
        elif word not in ("", "KEEP") and reason is None:
            reason = f"switch must be KEEP or SWITCH, got {switch_match.group(1).strip()!r}"

    subgoal_match = _SUBGOAL.search(response)
    if subgoal_match is None and reason is None:
        reason = "missing <subgoal> element"
    if reason is None and has_cjk(response):
        reason = "CJK characters in the response"

    projected = False
    if project:
        if admissible is None:
            raise ValueError("parse_hiper_turn(project=True) needs the admissible actions")
        chosen = project_action(action, admissible, env)
        projected, action = chosen != action, chosen
    return HiperTurn(
        switch=switch,
        subgoal=subgoal_match.group(1).strip() if subgoal_match else "",
        action=action,
        valid=reason is None,
        reason=reason,
        boundary=first_turn or switch == "SWITCH",
        switch_span=switch_match.span() if switch_match else None,
        subgoal_span=subgoal_match.span() if subgoal_match else None,
        action_span=action_span,
        projected=projected,
    )
