"""Prompt templates users bring: named ``str.format``-style fields, validated when loaded.

A :class:`PromptTemplate` replaces the built-in wording of
:func:`memory.prompts.render_prompt` with the user's text, so a published
prompt (e.g. verl-agent's ALFWorld/WebShop templates) can be used verbatim.
It holds two templates, ``with_history`` and an optional ``no_history`` (step
0, as in the reference), and the layout of the two lists shown inside them:
the history records (``record_format``/``record_separator``) and the
admissible actions (``actions_layout``, ``action_format``,
``action_separator``, ``hidden_actions``).

Fields are ``str.format`` replacement fields named after the reference's
(:data:`TEMPLATE_FIELDS`). A template is parsed once with
:class:`string.Formatter` when it is loaded: attribute and index access
(``{task.__class__}``, ``{x[0]}``), positional fields, nested fields and
unknown names are refused, so rendering (``str.format_map`` with plain
``str``/``int`` values) can never reach into Python objects. Conversions
(``!r``) and format specs (``{step_count:>3}``) are allowed and checked by a
trial render at load time.

Nothing here touches context keys: keys are digests of the observations and
actions a prompt shows (:mod:`memory.keys`), never of template text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from memory.prompts import ENVS, PromptParts, history_notes

TEMPLATE_FIELDS: dict[str, str] = {
    "task_description": "the task (goal) text",
    "step_count": "t: the number of actions taken before this step",
    "current_step": "t + 1: the number of the current step",
    "history_length": "the number of history records shown",
    "action_history": "the shown history: the records (and any summary or omission notes)",
    "current_observation": "the current observation, in full (required)",
    "admissible_actions": "the admissible actions, laid out by actions_layout",
    "available_actions": "the same as admissible_actions (verl-agent's WebShop name)",
    "current_subgoal": "the current HiPER sub-goal ('None' before the first; prompt_format=hiper only)",
}
"""Fields of the ``with_history`` and ``no_history`` templates, with what they hold."""

REQUIRED_FIELDS: tuple[str, ...] = ("current_observation",)
"""Fields every template must show."""

RECORD_FIELDS: dict[str, str] = {
    "step": "the record's absolute step number (1-based)",
    "observation": "the observation the action was taken in",
    "action": "the action taken",
}
"""Fields of ``record_format`` (one history record)."""

ACTION_FIELDS: dict[str, str] = {
    "action": "the admissible action",
    "index": "its 1-based position in the shown list",
}
"""Fields of ``action_format`` (one admissible action)."""

DEFAULT_RECORD_FORMAT = "[Observation {step}: '{observation}', Action {step}: '{action}']"
_INT_FIELDS = frozenset({"step_count", "current_step", "history_length", "step", "index"})
_DEFAULT_SEPARATORS = {"lines": "\n", "inline": ", "}
_DEFAULT_HIDDEN = {"alfworld": ("help",), "webshop": ()}
_HIPER_ONLY = "current_subgoal"
_LONG_NUMBER = re.compile(r"\d{5,}")  # widths this large would allocate huge strings


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A template that passed :func:`_compile`: its text and the fields it uses."""

    text: str
    fields: frozenset[str]

    def render(self, values: Mapping[str, str | int]) -> str:
        # Safe only because _compile admitted nothing but plain names from a fixed set
        # (no attribute/index access, no nested fields) and values are str/int.
        return self.text.format_map(values)


@dataclass(frozen=True, slots=True)
class _Parsed:
    with_history: _Compiled
    no_history: _Compiled
    record: _Compiled
    action: _Compiled


def _compile(text: str, allowed: Mapping[str, str], what: str) -> _Compiled:
    """Parse ``text`` and check its fields against ``allowed``; errors name ``what``."""
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as e:  # unmatched braces
        raise ValueError(f"{what} is malformed: {e} (write {{{{ and }}}} for literal braces)") from None
    fields = set()
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise ValueError(
                f"{what} has a positional field {{{name}}}: name the field, e.g. {{{next(iter(allowed))}}}"
            )
        if any(c in name for c in ".[]"):
            raise ValueError(f"{what} has field {{{name}}}: attribute and index access are not allowed")
        if name not in allowed:
            raise ValueError(
                f"{what} has unknown field {{{name}}}; known fields: {', '.join(sorted(allowed))}"
            )
        if spec and ("{" in spec or "}" in spec):
            raise ValueError(
                f"{what} has field {{{name}}} with a nested field in its format spec: not allowed"
            )
        if spec and _LONG_NUMBER.search(spec):
            raise ValueError(f"{what} has field {{{name}}} with a width or precision over 9999: not allowed")
        if conversion not in (None, "r", "s", "a"):
            raise ValueError(f"{what} has field {{{name}}} with conversion !{conversion}: use !r, !s or !a")
        fields.add(name)
    compiled = _Compiled(text, frozenset(fields))
    sample = {name: 1 if name in _INT_FIELDS else "x" for name in allowed}
    try:  # bad format specs and conversions show up here, at load time, not mid-training
        compiled.render(sample)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{what} cannot be rendered: {e}") from None
    return compiled


class PromptTemplate(BaseModel):
    """A user prompt: two templates with named fields, and the layout of the lists inside them.

    Attributes:
        with_history: the prompt of steps that have history to show; fields
            in :data:`TEMPLATE_FIELDS`; must contain ``{current_observation}``.
        no_history: the prompt at step 0 and, as in the reference, at every
            step of a memory with K = 0; None: ``with_history`` (its history
            fields are then empty and 0).
        record_format: one history record; fields ``{step}``,
            ``{observation}``, ``{action}`` (default: the reference's
            ``[Observation n: '...', Action n: '...']``).
        record_separator: between records (default a newline).
        actions_layout: ``"lines"`` (one action per line, default) or
            ``"inline"`` (one comma-separated line: bracket it in the template).
        action_format: one admissible action; fields ``{action}``, ``{index}``
            (default ``'{action}'``, quoted as in the reference).
        action_separator: between actions; None: by layout (a newline for
            ``lines``, ``", "`` for ``inline``).
        hidden_actions: admissible actions left out of the list; None: ALFWorld's
            ``help`` (as in the reference), nothing on WebShop.
        env: the env the template is written for (checked against the memory's), or None.
        prompt_format: the prompt format it is written for (checked), or None.
        source: the file it was loaded from (set by :meth:`from_file`; used in error messages).

    Build one from strings (``PromptTemplate(with_history="...")``) or load a
    YAML file with these keys (:meth:`from_file`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    with_history: str
    no_history: str | None = None
    record_format: str = DEFAULT_RECORD_FORMAT
    record_separator: str = "\n"
    actions_layout: Literal["lines", "inline"] = "lines"
    action_format: str = "'{action}'"
    action_separator: str | None = None
    hidden_actions: tuple[str, ...] | None = None
    env: Literal["alfworld", "webshop"] | None = None
    prompt_format: Literal["think", "hiper"] | None = None
    source: str | None = None

    _parsed: _Parsed = PrivateAttr()

    @model_validator(mode="after")
    def _parse(self) -> PromptTemplate:
        where = f"template file {self.source}" if self.source else "prompt template"
        compiled = {}
        for key in ("with_history", "no_history"):
            text = getattr(self, key)
            if text is None:
                continue
            c = _compile(text, TEMPLATE_FIELDS, f"{where}: {key}")
            for field in REQUIRED_FIELDS:
                if field not in c.fields:
                    raise ValueError(f"{where}: {key} must contain the field {{{field}}}")
            compiled[key] = c
        action = _compile(self.action_format, ACTION_FIELDS, f"{where}: action_format")
        self._parsed = _Parsed(
            with_history=compiled["with_history"],
            no_history=compiled.get("no_history", compiled["with_history"]),
            record=_compile(self.record_format, RECORD_FIELDS, f"{where}: record_format"),
            action=action,
        )
        if "action" not in action.fields:
            raise ValueError(f"{where}: action_format must contain the field {{action}}")
        return self

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PromptTemplate:
        """Load a template file.

        ``.yaml``/``.yml``: a mapping with this class's keys (``with_history``,
        ``no_history``, ``record_format``...). Any other file: its whole text
        is the ``with_history`` template, used at every step. Errors name the
        file and the key or field at fault.
        """
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"template file {p} does not exist")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"template file {p} cannot be read: {e}") from None
        if p.suffix.lower() not in (".yaml", ".yml"):
            return cls._validated({"with_history": text, "source": str(p)}, p)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"template file {p} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(
                f"template file {p} must hold a mapping with a 'with_history' key, got {type(data).__name__}"
            )
        if "source" in data:
            raise ValueError(f"template file {p}: 'source' is set by the loader, remove it")
        return cls._validated({**data, "source": str(p)}, p)

    @classmethod
    def _validated(cls, data: dict[str, Any], path: Path) -> PromptTemplate:
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            ours = f"template file {path}: "  # the prefix of this class's own checks
            problems = []
            for err in e.errors():
                key = ".".join(str(part) for part in err["loc"])
                msg = str(err["msg"]).removeprefix("Value error, ").removeprefix(ours)
                problems.append(f"{key}: {msg}" if key else msg)
            raise ValueError(ours + "; ".join(problems)) from None

    # -------------------------------------------------------------- validation
    def check_for(self, env: str, prompt_format: str, history_length: int | None = None) -> None:
        """Raise ``ValueError`` if this template does not fit a memory of ``env`` and ``prompt_format``.

        ``{current_subgoal}`` is only filled with ``prompt_format="hiper"``,
        and a HiPER prompt must show it at steps with history (and, with
        ``history_length == 0``, where ``no_history`` serves every step).
        """
        where = f"template file {self.source}" if self.source else "prompt template"
        if self.env is not None and self.env != env:
            raise ValueError(f"{where} is written for env={self.env!r}, the memory's env is {env!r}")
        if self.prompt_format is not None and self.prompt_format != prompt_format:
            raise ValueError(
                f"{where} is written for prompt_format={self.prompt_format!r}, the memory's is {prompt_format!r}"
            )
        templates = {"with_history": self._parsed.with_history, "no_history": self._parsed.no_history}
        if prompt_format != "hiper":
            for key, compiled in templates.items():
                if _HIPER_ONLY in compiled.fields:
                    raise ValueError(
                        f"{where}: {key} uses {{{_HIPER_ONLY}}}, which is only filled with prompt_format='hiper'"
                    )
            return
        need = ["with_history"] + (["no_history"] if history_length == 0 else [])
        for key in need:
            if _HIPER_ONLY not in templates[key].fields:
                raise ValueError(
                    f"{where}: {key} must contain {{{_HIPER_ONLY}}} with prompt_format='hiper' "
                    "(the policy copies the sub-goal on KEEP)"
                )

    # --------------------------------------------------------------- rendering
    def format_record(self, step: int, obs: str, action: str) -> str:
        """One history record line, by ``record_format``."""
        return self._parsed.record.render({"step": step, "observation": obs, "action": action})

    def format_actions(self, env: str, actions: Sequence[str]) -> str:
        """The admissible actions, by ``actions_layout``/``action_format``/``action_separator``."""
        hidden = _DEFAULT_HIDDEN.get(env, ()) if self.hidden_actions is None else self.hidden_actions
        shown = [a for a in actions if a not in hidden]
        separator = (
            _DEFAULT_SEPARATORS[self.actions_layout]
            if self.action_separator is None
            else self.action_separator
        )
        text = self._parsed.action.text
        return separator.join(text.format(action=a, index=n) for n, a in enumerate(shown, start=1))

    def render(self, parts: PromptParts, *, history_configured: bool = True) -> str:
        """The user message for ``parts``.

        ``no_history`` serves step 0 and every step when ``history_configured``
        is False (a memory with K = 0), as in the reference; ``with_history``
        the others, with the shown history in ``{action_history}``.
        """
        if parts.env not in ENVS:
            raise ValueError(f"env must be one of {list(ENVS)}, got {parts.env!r}")
        notes = history_notes(parts)
        records = self.record_separator.join(parts.history_lines)
        history = "\n".join(notes + ([records] if parts.history_lines else []))
        actions = self.format_actions(parts.env, parts.admissible_actions)
        values = {
            "task_description": parts.task,
            "step_count": parts.steps_taken,
            "current_step": parts.steps_taken + 1,
            "history_length": len(parts.history_lines),
            "action_history": history,
            "current_observation": parts.observation,
            "admissible_actions": actions,
            "available_actions": actions,
            "current_subgoal": parts.subgoal if parts.subgoal is not None else "None",
        }
        first = parts.steps_taken == 0 or not history_configured
        parsed = self._parsed
        return (parsed.no_history if first else parsed.with_history).render(values)


TemplateLike = PromptTemplate | str | os.PathLike | Mapping[str, Any]
"""What ``template=`` accepts: a :class:`PromptTemplate`, a path to a template file, or a mapping of its keys."""


def as_template(template: TemplateLike | None) -> PromptTemplate | None:
    """Coerce ``template=`` arguments: a str or path is a template *file*, a mapping its keys."""
    if template is None or isinstance(template, PromptTemplate):
        return template
    if isinstance(template, (str, os.PathLike)):
        return PromptTemplate.from_file(template)
    if isinstance(template, Mapping):
        return PromptTemplate.model_validate(dict(template))
    raise TypeError(
        f"template must be a PromptTemplate, a path to a template file or a mapping, got {type(template).__name__}"
    )
