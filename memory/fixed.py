"""``FixedSizeMemory``: the last K records verbatim, as in the reference."""

from __future__ import annotations

from collections import deque

from memory.base import Context, Memory, Record, TokenCounter
from memory.keys import KeyMode
from memory.templates import TemplateLike


class FixedSizeMemory(Memory):
    """The last ``history_length`` (observation, action) records, shown verbatim.

    This is the memory of verl-agent's GiGPO/HGPO runs: the prompt shows the
    last K records as ``[Observation n: '...', Action n: '...']`` with absolute
    step numbers, and :meth:`context_keys` returns K + 1 keys, level k covering
    the current observation and the last k records (fewer early in an episode).

    Args:
        history_length: K >= 0 (default 4, the HGPO paper's main setting; it also uses 2).
        env, key_mode, prompt_format, max_prompt_tokens, count_tokens, template: see
            :class:`memory.Memory`.

    Example:
        >>> mem = FixedSizeMemory(history_length=2, env="alfworld")
        >>> mem.reset(1, ["put a clean mug in coffeemachine."])
        >>> keys = mem.context_keys(0, "You are in the middle of a room.")
        >>> len(keys)
        3
    """

    def __init__(
        self,
        history_length: int = 4,
        env: str = "alfworld",
        *,
        key_mode: KeyMode = "obs_action",
        prompt_format: str = "think",
        max_prompt_tokens: int | None = None,
        count_tokens: TokenCounter | None = None,
        template: TemplateLike | None = None,
    ) -> None:
        if not isinstance(history_length, int) or history_length < 0:
            raise ValueError(f"history_length must be an int >= 0, got {history_length!r}")
        super().__init__(
            env,
            key_mode=key_mode,
            prompt_format=prompt_format,
            max_prompt_tokens=max_prompt_tokens,
            count_tokens=count_tokens,
            template=template,
        )
        self._history_length = history_length
        if self.template is not None and history_length == 0:
            # With K = 0 the no_history template serves every step: HiPER needs the sub-goal there.
            self.template.check_for(self.env, self.prompt_format, history_length)
        self._records: list[deque[Record]] = []

    @property
    def history_length(self) -> int:
        return self._history_length

    def _on_reset(self, i: int) -> None:
        if len(self._records) != self.n_envs:
            self._records = [deque(maxlen=self._history_length) for _ in range(self.n_envs)]
        self._records[i] = deque(maxlen=self._history_length)

    def _on_store(self, i: int, record: Record) -> None:
        self._records[i].append(record)

    def _context(self, i: int) -> Context:
        return Context(records=self._records[i])
