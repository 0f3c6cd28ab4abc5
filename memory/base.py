"""The ``Memory`` interface: what history a policy sees, and which steps saw the same.

A memory keeps, per env slot of a vectorised rollout, the episode's
(observation, action) records. Per step the trainer calls, in this order:

1. ``text = mem.render(i, obs, admissible_actions)``: the user message;
2. ``keys = mem.context_keys(i, obs)``: K+1 context keys of that same step;
3. ``mem.store(i, obs, action)`` once the action is known.

``render`` and ``context_keys`` describe the step *before* its own record is
stored: calling ``context_keys`` after ``store`` describes the next step's
history instead.
"""

from __future__ import annotations

import logging
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import NamedTuple

from memory.keys import KEY_MODES, KeyMode, context_keys_from, record_digest
from memory.prompts import ENVS, PROMPT_FORMATS, PromptParts, format_record, render_prompt
from memory.templates import PromptTemplate, TemplateLike, as_template

logger = logging.getLogger(__name__)

TokenCounter = Callable[[str], int]


class Record(NamedTuple):
    """One history record: the observation an action was taken in, and the action.

    ``step`` is the absolute 1-based step number shown in prompts; ``digest``
    the record's 16-byte digest (:func:`memory.keys.record_digest`); ``line``
    the formatted prompt line, made once when the record is stored.
    """

    step: int
    obs: str
    action: str
    digest: bytes
    line: str


@dataclass
class Context:
    """What a prompt of one step may show, before any token budget.

    ``records`` are the verbatim records, oldest first (read only: it may be
    the memory's own deque); ``summary`` the running summary of older steps
    (None for none) with its digest, covering steps ``1..summary_until``.
    """

    records: Sequence[Record]
    summary: str | None = None
    summary_digest: bytes | None = None
    summary_until: int = 0


@dataclass(slots=True)
class _Shown:
    """What the last render of an env slot showed, so keys follow the prompt."""

    steps_taken: int
    n_records: int
    summary: bool


@dataclass
class EpisodeState:
    """Per-slot bookkeeping shared by all memories."""

    task: str
    steps_taken: int = 0
    subgoal: str | None = None
    shown: _Shown | None = None


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, got {type(value).__name__}")
    return value


class Memory(ABC):
    """Base class of the memory modules.

    Args:
        env: ``"alfworld"`` or ``"webshop"``: picks the prompt template.
        key_mode: ``"obs_action"`` (default) keys each history record on its
            observation *and* action, so equal keys mean equal prompts (up to
            step numbers); ``"obs"`` keys on observations only, as the reference
            HGPO code does. See docs/memory.md for why ``obs_action`` is the default.
        prompt_format: ``"think"`` (reference ``<think>``/``<action>``) or
            ``"hiper"`` (``<switch>``/``<subgoal>``/``<action>``, with the
            current sub-goal in the prompt).
        max_prompt_tokens: default token budget for :meth:`render` (None: none).
        count_tokens: default token counter for the budget, e.g.
            :func:`memory.prompts.chat_token_counter`.
        template: a user prompt (:class:`memory.PromptTemplate`, a path to a
            template file, or a mapping of its keys) replacing the built-in
            wording; None (default): the built-in prompts. Checked here, against
            ``env`` and ``prompt_format``. Context keys do not depend on it.

    Subclasses say which records and summary a step shows (:meth:`_context`),
    how many levels there are (:attr:`history_length`), and may react to
    :meth:`store` (:meth:`_on_store`).
    """

    def __init__(
        self,
        env: str = "alfworld",
        *,
        key_mode: KeyMode = "obs_action",
        prompt_format: str = "think",
        max_prompt_tokens: int | None = None,
        count_tokens: TokenCounter | None = None,
        template: TemplateLike | None = None,
    ) -> None:
        if env not in ENVS:
            raise ValueError(f"env must be one of {list(ENVS)}, got {env!r}")
        if key_mode not in KEY_MODES:
            raise ValueError(f"key_mode must be one of {list(KEY_MODES)}, got {key_mode!r}")
        if prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"prompt_format must be one of {list(PROMPT_FORMATS)}, got {prompt_format!r}")
        _check_budget(max_prompt_tokens)
        self.env = env
        self.key_mode: KeyMode = key_mode
        self.prompt_format = prompt_format
        self.max_prompt_tokens = max_prompt_tokens
        self.count_tokens = count_tokens
        self.template: PromptTemplate | None = as_template(template)
        if self.template is not None:
            self.template.check_for(env, prompt_format)
        self._episodes: list[EpisodeState] = []

    # ----------------------------------------------------------------- interface
    @property
    @abstractmethod
    def history_length(self) -> int:
        """K: :meth:`context_keys` returns K + 1 keys (levels 0..K)."""

    @abstractmethod
    def _context(self, i: int) -> Context:
        """The records (and summary) the prompt of env slot ``i`` may show now."""

    @abstractmethod
    def _on_reset(self, i: int) -> None:
        """Hook: slot ``i`` starts a new episode (its EpisodeState is fresh)."""

    @abstractmethod
    def _on_store(self, i: int, record: Record) -> None:
        """Hook: keep ``record`` of slot ``i``."""

    # ------------------------------------------------------------------ episodes
    @property
    def n_envs(self) -> int:
        """Number of env slots since the last :meth:`reset`."""
        return len(self._episodes)

    def reset(self, n_envs: int, tasks: Sequence[str]) -> None:
        """Start new episodes in all ``n_envs`` slots, with one task/goal text per slot."""
        if not isinstance(n_envs, int) or n_envs < 1:
            raise ValueError(f"n_envs must be a positive int, got {n_envs!r}")
        if isinstance(tasks, str) or len(tasks) != n_envs:
            got = "a str" if isinstance(tasks, str) else f"{len(tasks)} tasks"
            raise ValueError(
                f"reset(n_envs={n_envs}, tasks) needs a sequence of {n_envs} task texts, got {got}"
            )
        self._episodes = [EpisodeState(task=_check_text(f"tasks[{j}]", t)) for j, t in enumerate(tasks)]
        for i in range(n_envs):
            self._on_reset(i)

    def reset_env(self, i: int, task: str) -> None:
        """Start a new episode in slot ``i`` only (e.g. after a vector env's autoreset)."""
        i = self._check_index(i)
        self._episodes[i] = EpisodeState(task=_check_text("task", task))
        self._on_reset(i)

    def store(self, i: int, obs: str, action: str, *, subgoal: str | None = None) -> None:
        """Record that env slot ``i`` took ``action`` in observation ``obs``.

        ``subgoal`` (HiPER) becomes the current sub-goal shown from the next step on.
        """
        i = self._check_index(i)
        episode = self._episodes[i]
        obs, action = _check_text("obs", obs), _check_text("action", action)
        step = episode.steps_taken + 1
        line = (
            format_record(step, obs, action)
            if self.template is None
            else self.template.format_record(step, obs, action)
        )
        record = Record(step, obs, action, record_digest(obs, action, self.key_mode), line)
        episode.steps_taken = step
        episode.shown = None
        if subgoal is not None:
            episode.subgoal = _check_text("subgoal", subgoal)
        self._on_store(i, record)

    def steps_taken(self, i: int) -> int:
        """Actions stored in slot ``i`` since its episode started."""
        return self._episode(i).steps_taken

    def task(self, i: int) -> str:
        """The task text of slot ``i``."""
        return self._episode(i).task

    def current_subgoal(self, i: int) -> str | None:
        """The HiPER sub-goal last stored for slot ``i`` (None before the first)."""
        return self._episode(i).subgoal

    # ------------------------------------------------------------------ prompts
    def render(
        self,
        i: int,
        obs: str,
        admissible_actions: Sequence[str],
        *,
        max_prompt_tokens: int | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> str:
        """The user-message text of slot ``i`` for the current observation ``obs``.

        With a token budget (here or in the constructor), history is dropped
        oldest first, the summary before any verbatim record, until
        ``count_tokens(text) <= max_prompt_tokens``; the current observation
        and the admissible actions are never cut, and the prompt says how many
        records were left out. If even the prompt without history is over the
        budget it is returned as is (and a warning is logged). Keys from
        :meth:`context_keys` for this step follow what was shown.
        """
        i = self._check_index(i)
        episode = self._episodes[i]
        obs = _check_text("obs", obs)
        if isinstance(admissible_actions, str):
            raise TypeError("admissible_actions must be a sequence of str, not one str")
        budget = self.max_prompt_tokens if max_prompt_tokens is None else max_prompt_tokens
        counter = count_tokens or self.count_tokens
        _check_budget(budget)
        context = self._context(i)
        keep_summary, n_records = context.summary is not None, len(context.records)
        text = self._render_parts(episode, obs, admissible_actions, context, keep_summary, n_records)
        if budget is not None:
            if counter is None:
                raise ValueError(
                    "a token budget needs count_tokens (e.g. memory.prompts.chat_token_counter(tokenizer))"
                )
            # Drop history oldest first: the summary, then verbatim records one by one.
            while (tokens := counter(text)) > budget and (keep_summary or n_records):
                if keep_summary:
                    keep_summary = False
                else:
                    n_records -= 1
                text = self._render_parts(episode, obs, admissible_actions, context, keep_summary, n_records)
            if tokens > budget:
                logger.warning(
                    "env slot %d: prompt without history is %d tokens, over the budget of %d; sent in full",
                    i,
                    tokens,
                    budget,
                )
        episode.shown = _Shown(episode.steps_taken, n_records, keep_summary)
        return text

    def _render_parts(
        self,
        episode: EpisodeState,
        obs: str,
        admissible_actions: Sequence[str],
        context: Context,
        keep_summary: bool,
        n_records: int,
    ) -> str:
        records = list(islice(context.records, len(context.records) - n_records, None))
        parts = PromptParts(
            env=self.env,
            task=episode.task,
            steps_taken=episode.steps_taken,
            observation=obs,
            admissible_actions=admissible_actions,
            history_lines=[r.line for r in records],
            summary=context.summary if keep_summary else None,
            summary_until=context.summary_until,
            dropped_records=len(context.records) - n_records,
            dropped_summary=context.summary is not None and not keep_summary,
            prompt_format=self.prompt_format,
            subgoal=episode.subgoal,
        )
        if self.template is None:
            return render_prompt(parts)
        return self.template.render(parts, history_configured=self.history_length > 0)

    # --------------------------------------------------------------------- keys
    def context_keys(self, i: int, obs: str) -> tuple[int, ...]:
        """K+1 context keys of slot ``i``'s current step (call before :meth:`store`).

        ``keys[k]`` is a 64-bit BLAKE2b digest of the current observation and
        the last k shown records (see :mod:`memory.keys`): equal keys at level
        k mean equal content at level k, and imply equal keys at every lower
        level. When fewer than k records are shown (early steps, or a token
        budget that dropped some), level k covers those records and the count,
        so it can only equal a level-k key with the same number of records.
        """
        i = self._check_index(i)
        episode = self._episodes[i]
        obs = _check_text("obs", obs)
        context = self._context(i)
        n_records, summary = len(context.records), context.summary is not None
        shown = episode.shown
        if shown is not None and shown.steps_taken == episode.steps_taken:
            n_records, summary = shown.n_records, shown.summary
        return context_keys_from(
            obs,
            (r.digest for r in islice(reversed(context.records), n_records)),
            self.history_length,
            context.summary_digest if summary else None,
        )

    # ------------------------------------------------------------------ helpers
    def _episode(self, i: int) -> EpisodeState:
        return self._episodes[self._check_index(i)]

    def _check_index(self, i: int) -> int:
        if not self._episodes:
            raise RuntimeError(f"{type(self).__name__}: call reset(n_envs, tasks) before using env slots")
        try:
            index = operator.index(i)  # numpy integers too
        except TypeError:
            raise TypeError(f"env slot must be an int, got {type(i).__name__}") from None
        if not 0 <= index < len(self._episodes):
            raise IndexError(f"env slot {i!r} out of range for {len(self._episodes)} env slots")
        return index


def _check_budget(budget: int | None) -> None:
    if budget is not None and (not isinstance(budget, int) or budget < 1):
        raise ValueError(f"max_prompt_tokens must be a positive int or None, got {budget!r}")
