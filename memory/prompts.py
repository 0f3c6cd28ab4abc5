"""Prompt text for ALFWorld and WebShop agents, and the chat-template step.

The layout follows the prompts of verl-agent (the reference code of GiGPO and
HGPO; see ../shared/notes/algorithms.md section 4), reworded: at step 0 the
task, the current observation and the admissible actions; later the task,
"you have already taken N step(s)", the last records as
``[Observation n: '...', Action n: '...']`` with absolute step numbers, "You
are now at step t+1" with the current observation, the admissible actions
(quoted, one per line; ALFWorld's ``help`` left out), then the instruction to
reason in ``<think> </think>`` and answer in ``<action> </action>``.

The HiPER format (arXiv 2602.16165) has no think block: the policy writes
``<switch>KEEP|SWITCH</switch><subgoal>...</subgoal><action>...</action>`` and
the prompt shows "Your current sub-goal is: ..." (``None`` at step 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

EnvName = Literal["alfworld", "webshop"]
ENVS: tuple[str, ...] = ("alfworld", "webshop")
PromptFormat = Literal["think", "hiper"]
PROMPT_FORMATS: tuple[str, ...] = ("think", "hiper")

_INTRO = {
    "alfworld": "You are an expert agent operating in the ALFRED embodied household environment.",
    "webshop": "You are an expert autonomous agent operating in the WebShop e-commerce platform.",
}

_THINK_INSTRUCTION = {
    "alfworld": (
        "Now it's your turn to take an action.\n"
        "You should first reason step-by-step about the current situation. "
        "This reasoning process MUST be enclosed within <think> </think> tags.\n"
        "Once you've finished your reasoning, you should choose an admissible action for the current step "
        "and present it within <action> </action> tags."
    ),
    "webshop": (
        "Now it's your turn to take one action for the current step.\n"
        "You should first reason step-by-step about the current situation, then think carefully which "
        "admissible action best advances the shopping goal. "
        "This reasoning process MUST be enclosed within <think> </think> tags.\n"
        "Once you've finished your reasoning, you should choose an admissible action for the current step "
        "and present it within <action> </action> tags."
    ),
}

_HIPER_INSTRUCTION = (
    "Now it's your turn to act. Answer in three parts and nothing else:\n"
    "1. Decide whether to keep your current sub-goal or switch to a new one: write KEEP or SWITCH "
    "within <switch> </switch> tags (when you have no sub-goal yet, SWITCH).\n"
    "2. Write the sub-goal you will pursue within <subgoal> </subgoal> tags; on KEEP copy the current "
    "sub-goal exactly.\n"
    "3. Choose one admissible action for the current step and present it within <action> </action> tags."
)


@dataclass(slots=True)
class PromptParts:
    """Everything a prompt shows; :func:`render_prompt` turns it into text.

    Attributes:
        env: ``"alfworld"`` or ``"webshop"``.
        task: the goal text (empty: no task line).
        steps_taken: t, the number of actions taken before this step.
        observation: the current observation, shown in full.
        admissible_actions: shown in full, in the given order.
        history_lines: the shown records, oldest first, already formatted.
        summary: the running summary of older steps, or None.
        summary_until: the last step number the summary covers.
        dropped_records: records left out to fit a token budget.
        dropped_summary: whether the summary was left out to fit a token budget.
        prompt_format: ``"think"`` (reference) or ``"hiper"``.
        subgoal: the current HiPER sub-goal (None at step 0).
    """

    env: str
    task: str
    steps_taken: int
    observation: str
    admissible_actions: Sequence[str]
    history_lines: Sequence[str] = ()
    summary: str | None = None
    summary_until: int = 0
    dropped_records: int = 0
    dropped_summary: bool = False
    prompt_format: str = "think"
    subgoal: str | None = None


def format_record(step: int, obs: str, action: str) -> str:
    """One history record, as in the reference: ``[Observation n: '...', Action n: '...']``."""
    return f"[Observation {step}: '{obs}', Action {step}: '{action}']"


def format_admissible(env: str, actions: Sequence[str]) -> str:
    """Admissible actions quoted, one per line; ALFWorld's ``help`` is left out as in the reference."""
    shown = [a for a in actions if not (env == "alfworld" and a == "help")]
    return "\n".join(f"'{a}'" for a in shown)


def history_notes(parts: PromptParts) -> list[str]:
    """The lines shown above the history records: a left-out summary, the summary, left-out records."""
    p = parts
    notes = []
    if p.dropped_summary:
        notes.append(f"(The summary of steps 1-{p.summary_until} was omitted to fit the prompt length limit.)")
    if p.summary is not None:
        notes.append(f"Summary of steps 1-{p.summary_until}: {p.summary}")
    if p.dropped_records:
        notes.append(
            f"({p.dropped_records} earlier observation-action record(s) omitted to fit the prompt length limit.)"
        )
    return notes


def render_prompt(parts: PromptParts) -> str:
    """The user-message text of one step (before any chat template)."""
    p = parts
    lines = [_INTRO[p.env] + (f" Your task is to: {p.task}" if p.task else "")]
    has_history = bool(p.history_lines) or p.summary is not None or p.dropped_records or p.dropped_summary
    if p.steps_taken == 0:
        lines.append(f"Your current observation is: {p.observation}")
    else:
        lines.append(f"Prior to this step, you have already taken {p.steps_taken} step(s).")
        lines.extend(history_notes(p))
        if p.history_lines:
            n = len(p.history_lines)
            noun = (
                "observation and the corresponding action"
                if n == 1
                else "observations and the corresponding actions"
            )
            lines.append(f"Below are the most recent {n} {noun} you took:")
            lines.extend(p.history_lines)
        elif not has_history:
            lines.append("No earlier observations are shown.")
        lines.append(
            f"You are now at step {p.steps_taken + 1} and your current observation is: {p.observation}"
        )
    if p.prompt_format == "hiper":
        lines.append(f"Your current sub-goal is: {p.subgoal if p.subgoal is not None else 'None'}")
    lines.append(
        f"Your admissible actions of the current situation are: [\n{format_admissible(p.env, p.admissible_actions)}\n]."
    )
    lines.append("")
    lines.append(_HIPER_INSTRUCTION if p.prompt_format == "hiper" else _THINK_INSTRUCTION[p.env])
    return "\n".join(lines)


def build_chat_prompt(tokenizer: Any, text: str, *, system: str | None = None, **template_kwargs: Any) -> str:
    """The generation prompt for one user message.

    With a tokenizer that has a chat template (``tokenizer.chat_template``),
    ``tokenizer.apply_chat_template(messages, tokenize=False,
    add_generation_prompt=True, **template_kwargs)`` (e.g. Qwen3's
    ``enable_thinking=False``); otherwise a plain ``User: ...`` /
    ``Assistant:`` layout for base models. Any object with those attributes
    works (duck typing); ``None`` gives the plain layout.
    """
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": text})
        prompt = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **template_kwargs
        )
        if not isinstance(prompt, str):
            raise TypeError(
                f"tokenizer.apply_chat_template(tokenize=False) returned {type(prompt).__name__}, expected str"
            )
        return prompt
    head = f"{system}\n\n" if system else ""
    return f"{head}User: {text}\nAssistant:"


def chat_token_counter(
    tokenizer: Any, *, system: str | None = None, **template_kwargs: Any
) -> Callable[[str], int]:
    """A ``count_tokens`` callable for :meth:`memory.Memory.render` token budgets.

    It counts the tokens of the full generation prompt
    (:func:`build_chat_prompt`), tokenised with ``add_special_tokens=False``
    because chat templates already write their special tokens as text.
    """

    def count_tokens(text: str) -> int:
        prompt = build_chat_prompt(tokenizer, text, system=system, **template_kwargs)
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])

    return count_tokens
