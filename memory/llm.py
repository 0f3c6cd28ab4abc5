"""``LLMSummariser``: a Hugging Face causal LM writes the running summary."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from memory.base import Record
from memory.prompts import build_chat_prompt
from memory.summarisers import Summariser

_WHITESPACE = re.compile(r"\s+")

DEFAULT_INSTRUCTION = (
    "You keep a short running summary of an agent's progress on a task.\n"
    "Task: {task}\n"
    "Summary so far: {summary}\n"
    "New steps:\n{steps}\n"
    "Write the updated summary in at most three sentences: where the agent has been, what it holds or has "
    "selected, and what it has achieved towards the task. Write only the summary."
)
"""Template of the summariser's user message; fields ``task``, ``summary``, ``steps``."""


@dataclass(frozen=True)
class LLMSummary:
    """State of :class:`LLMSummariser` for one episode."""

    env: str
    task: str
    text: str = ""


class LLMSummariser(Summariser):
    """Running summaries written by any causal LM (``model.generate``) and its tokenizer.

    Each fold sends the task, the summary so far and the new records (each
    observation cut to ``max_observation_chars``) through the tokenizer's chat
    template (:func:`memory.prompts.build_chat_prompt`) and decodes greedily
    (``do_sample=False``), so a summary is a deterministic function of its
    prompt for a given model. :meth:`fold_many` left-pads prompts into batches
    of ``batch_size`` and generates each distinct prompt once, so env slots
    with identical histories get identical summaries (and equal context keys)
    whatever the batch layout.

    Args:
        model: a ``transformers`` causal LM (anything with ``generate`` and ``device``).
        tokenizer: its tokenizer (``__call__``, ``decode``, ``pad_token_id`` or
            ``eos_token_id``, optional ``chat_template``).
        max_new_tokens: summary length limit in tokens.
        max_observation_chars: observations are cut to this many characters.
        batch_size: prompts per ``generate`` call.
        instruction: user-message template with ``{task}``, ``{summary}``, ``{steps}``.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_new_tokens: int = 96,
        max_observation_chars: int = 600,
        batch_size: int = 16,
        instruction: str = DEFAULT_INSTRUCTION,
    ) -> None:
        for name, value in (
            ("max_new_tokens", max_new_tokens),
            ("max_observation_chars", max_observation_chars),
            ("batch_size", batch_size),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LLMSummariser: {name} must be a positive int, got {value!r}")
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad_id is None:
            raise ValueError("LLMSummariser: the tokenizer has neither pad_token_id nor eos_token_id")
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.max_observation_chars = max_observation_chars
        self.batch_size = batch_size
        self.instruction = instruction
        self._pad_id = int(pad_id)

    def start(self, env: str, task: str) -> LLMSummary:
        return LLMSummary(env=env, task=task)

    def text(self, state: LLMSummary) -> str:
        return state.text

    def fold(self, state: LLMSummary, records: Sequence[Record]) -> LLMSummary:
        return self.fold_many([state], [records])[0]

    def prompt(self, state: LLMSummary, records: Sequence[Record]) -> str:
        """The full generation prompt for folding ``records`` into ``state``."""
        limit = self.max_observation_chars
        steps = "\n".join(
            f"Step {r.step}: observation: '{r.obs[:limit]}{'...' if len(r.obs) > limit else ''}'; "
            f"action: '{r.action}'"
            for r in records
        )
        message = self.instruction.format(task=state.task, summary=state.text or "nothing yet", steps=steps)
        return build_chat_prompt(self.tokenizer, message)

    def fold_many(
        self, states: Sequence[LLMSummary], records: Sequence[Sequence[Record]]
    ) -> list[LLMSummary]:
        prompts = [self.prompt(s, r) for s, r in zip(states, records, strict=True)]
        distinct = list(dict.fromkeys(p for p, r in zip(prompts, records, strict=True) if r))
        written: dict[str, str] = {}
        for start in range(0, len(distinct), self.batch_size):
            batch = distinct[start : start + self.batch_size]
            written.update(zip(batch, self._generate(batch), strict=True))
        return [
            replace(s, text=written[p]) if r and written[p] else s
            for s, p, r in zip(states, prompts, records, strict=True)
        ]

    def _generate(self, prompts: list[str]) -> list[str]:
        import torch  # only this summariser needs torch

        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        # Chat templates write their special tokens as text already.
        ids = [self.tokenizer(p, add_special_tokens=not has_template)["input_ids"] for p in prompts]
        width = max(len(x) for x in ids)
        # Left padding, so every prompt ends where generation starts.
        input_ids = torch.tensor([[self._pad_id] * (width - len(x)) + list(x) for x in ids], dtype=torch.long)
        attention_mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], dtype=torch.long)
        output = self.model.generate(
            input_ids=input_ids.to(self.model.device),
            attention_mask=attention_mask.to(self.model.device),
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self._pad_id,
        )
        texts = [self.tokenizer.decode(row[width:], skip_special_tokens=True) for row in output.tolist()]
        return [_WHITESPACE.sub(" ", t).strip() for t in texts]
