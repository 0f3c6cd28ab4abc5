"""``SummaryMemory``: the last W records verbatim, older ones folded into a summary."""

from __future__ import annotations

from collections import deque

from memory.base import Context, Memory, Record, TokenCounter
from memory.keys import KeyMode, text_digest
from memory.summarisers import RuleSummariser, Summariser
from memory.templates import TemplateLike


class SummaryMemory(Memory):
    """The last ``window`` records verbatim, and a running summary of all older ones.

    When a record leaves the window it is folded into the episode's summary by
    the ``summariser`` (default: the deterministic :class:`RuleSummariser`).
    Folding is lazy: :meth:`render` and :meth:`context_keys` fold a slot's
    pending records; call :meth:`flush` after storing a step for all slots to
    fold every slot in one :meth:`Summariser.fold_many` call (one batched
    ``generate`` for :class:`memory.LLMSummariser`).

    Context keys have ``window + 2`` levels (``history_length = window + 1``):
    levels ``0..window`` cover the current observation and the last k verbatim
    records, exactly as in :class:`memory.FixedSizeMemory`; level ``window + 1``
    reaches into the summarised history and also binds the digest of the
    summary text the prompt shows. Before anything was summarised it equals
    the deepest verbatim level's content (all history is verbatim).

    Args:
        window: W >= 0 records shown verbatim.
        env, key_mode, prompt_format, max_prompt_tokens, count_tokens, template: see
            :class:`memory.Memory`.
        summariser: a :class:`Summariser`; default ``RuleSummariser()``.
    """

    def __init__(
        self,
        window: int = 2,
        env: str = "alfworld",
        *,
        summariser: Summariser | None = None,
        key_mode: KeyMode = "obs_action",
        prompt_format: str = "think",
        max_prompt_tokens: int | None = None,
        count_tokens: TokenCounter | None = None,
        template: TemplateLike | None = None,
    ) -> None:
        if not isinstance(window, int) or window < 0:
            raise ValueError(f"window must be an int >= 0, got {window!r}")
        super().__init__(
            env,
            key_mode=key_mode,
            prompt_format=prompt_format,
            max_prompt_tokens=max_prompt_tokens,
            count_tokens=count_tokens,
            template=template,
        )
        self.window = window
        self.summariser: Summariser = summariser if summariser is not None else RuleSummariser()
        self._records: list[deque[Record]] = []
        self._pending: list[list[Record]] = []
        self._states: list[object] = []
        self._summaries: list[tuple[str, bytes, int] | None] = []  # (text, digest, last step covered)

    @property
    def history_length(self) -> int:
        return self.window + 1

    def _on_reset(self, i: int) -> None:
        if len(self._records) != self.n_envs:
            n = self.n_envs
            self._records, self._pending = [deque() for _ in range(n)], [[] for _ in range(n)]
            self._states, self._summaries = [None] * n, [None] * n
        self._records[i] = deque()
        self._pending[i] = []
        self._states[i] = self.summariser.start(self.env, self.task(i))
        self._summaries[i] = None

    def _on_store(self, i: int, record: Record) -> None:
        records = self._records[i]
        records.append(record)
        if len(records) > self.window:
            self._pending[i].append(records.popleft())

    def flush(self) -> None:
        """Fold the pending records of every slot, in one :meth:`Summariser.fold_many` call."""
        slots = [i for i, pending in enumerate(self._pending) if pending]
        if not slots:
            return
        states = self.summariser.fold_many(
            [self._states[i] for i in slots], [self._pending[i] for i in slots]
        )
        for i, state in zip(slots, states, strict=True):
            self._set_summary(i, state)

    def summary(self, i: int) -> str | None:
        """The current summary text of slot ``i`` (None while nothing is summarised)."""
        i = self._check_index(i)
        self._fold(i)
        entry = self._summaries[i]
        return entry[0] if entry else None

    def _fold(self, i: int) -> None:
        if self._pending[i]:
            self._set_summary(i, self.summariser.fold(self._states[i], self._pending[i]))

    def _set_summary(self, i: int, state: object) -> None:
        last_step = self._pending[i][-1].step
        self._states[i] = state
        self._pending[i] = []
        text = self.summariser.text(state)
        if not isinstance(text, str):
            raise TypeError(
                f"{type(self.summariser).__name__}.text() returned {type(text).__name__}, expected str"
            )
        self._summaries[i] = (text, text_digest(text), last_step)

    def _context(self, i: int) -> Context:
        self._fold(i)
        entry = self._summaries[i]
        if entry is None:
            return Context(records=self._records[i])
        text, digest, until = entry
        return Context(records=self._records[i], summary=text, summary_digest=digest, summary_until=until)
