"""``MemoryConfig``: a pydantic description of a memory, for YAML configs and the CLI."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from memory.base import Memory, TokenCounter
from memory.fixed import FixedSizeMemory
from memory.summarisers import Summariser
from memory.summary import SummaryMemory
from memory.templates import PromptTemplate


class MemoryConfig(BaseModel):
    """Which memory a run uses. ``build()`` makes it.

    Attributes:
        kind: ``"fixed"`` (:class:`FixedSizeMemory`) or ``"summary"`` (:class:`SummaryMemory`).
        env: ``"alfworld"`` or ``"webshop"``.
        history_length: K for ``"fixed"`` (HGPO uses 2 or 4).
        window: verbatim records for ``"summary"`` (its K is ``window + 1``).
        key_mode: ``"obs_action"`` (default) or ``"obs"`` (reference HGPO keys).
        prompt_format: ``"think"`` or ``"hiper"``.
        max_prompt_tokens: token budget of the rendered user message, None for none.
        template: a user prompt replacing the built-in wording: a path to a
            template file (``.yaml`` with :class:`memory.PromptTemplate`'s keys,
            or a text file used as ``with_history``; relative paths are read
            from the current directory), or those keys inline. The file is
            read and checked when the config loads (unknown or missing fields,
            malformed text: a ``ValueError`` naming the file and the field) and
            the config keeps its text. None: the built-in prompts. See
            docs/memory.md, "Bring your own prompt".
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fixed", "summary"] = "fixed"
    env: Literal["alfworld", "webshop"] = "alfworld"
    history_length: int = Field(4, ge=0)
    window: int = Field(2, ge=0)
    key_mode: Literal["obs_action", "obs"] = "obs_action"
    prompt_format: Literal["think", "hiper"] = "think"
    max_prompt_tokens: int | None = Field(None, ge=1)
    template: PromptTemplate | None = None

    @field_validator("template", mode="before")
    @classmethod
    def _load_template(cls, value: Any) -> Any:
        if isinstance(value, (str, os.PathLike)):
            return PromptTemplate.from_file(value)
        return value

    @model_validator(mode="after")
    def _check_template(self) -> MemoryConfig:
        if self.template is not None:
            k = self.history_length if self.kind == "fixed" else self.window + 1
            self.template.check_for(self.env, self.prompt_format, k)
        return self

    def build(
        self, *, count_tokens: TokenCounter | None = None, summariser: Summariser | None = None
    ) -> Memory:
        """The configured memory. ``count_tokens`` is needed with ``max_prompt_tokens``;
        ``summariser`` (e.g. an :class:`memory.LLMSummariser`) only applies to ``"summary"``."""
        if self.max_prompt_tokens is not None and count_tokens is None:
            raise ValueError("MemoryConfig.max_prompt_tokens is set: build() needs count_tokens")
        common = dict(
            env=self.env,
            key_mode=self.key_mode,
            prompt_format=self.prompt_format,
            max_prompt_tokens=self.max_prompt_tokens,
            count_tokens=count_tokens,
            template=self.template,
        )
        if self.kind == "fixed":
            if summariser is not None:
                raise ValueError("a summariser only applies to kind='summary'")
            return FixedSizeMemory(self.history_length, **common)
        return SummaryMemory(self.window, summariser=summariser, **common)
