"""Memory modules: what history an agent's prompt shows, and which steps saw the same context.

``FixedSizeMemory`` shows the last K (observation, action) records verbatim;
``SummaryMemory`` shows the last W and a running summary of older ones
(``RuleSummariser`` by default, ``LLMSummariser`` with any causal LM). Both
render ALFWorld/WebShop prompts (built-in wording, or a user's ``PromptTemplate``)
and emit HGPO context keys. See docs/memory.md.

Imports nothing from agentenv, hgpo or servers; ``transformers``/``torch`` are
imported only when an ``LLMSummariser`` generates.
"""

from __future__ import annotations

from memory.base import Memory, Record
from memory.config import MemoryConfig
from memory.fixed import FixedSizeMemory
from memory.llm import LLMSummariser
from memory.parsing import HiperTurn, ParsedAction, parse_action, parse_hiper_turn, project_action
from memory.prompts import build_chat_prompt, chat_token_counter
from memory.summarisers import RuleSummariser, Summariser
from memory.summary import SummaryMemory
from memory.templates import PromptTemplate

__all__ = [
    "FixedSizeMemory",
    "HiperTurn",
    "LLMSummariser",
    "Memory",
    "MemoryConfig",
    "ParsedAction",
    "PromptTemplate",
    "Record",
    "RuleSummariser",
    "Summariser",
    "SummaryMemory",
    "build_chat_prompt",
    "chat_token_counter",
    "parse_action",
    "parse_hiper_turn",
    "project_action",
]
