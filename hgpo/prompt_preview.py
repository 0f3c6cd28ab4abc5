"""``hgpo-train --print-prompt``: the first prompts of a config, printed without training.

Builds one env of the config, resets it with the config's seed, renders each
step's user message with the config's memory (its template, history length and
token budget) and, when the model's tokenizer loads cheaply, the full
generation prompt of the model's chat template, exactly as the rollout builds
it. Between steps it plays the env's expert action when the env offers one
(``info["expert_action"]``), else the first admissible action, so that later
prompts show history records. No model weights are loaded and nothing is
written.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from hgpo.config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)

# WebShop's search action placeholder (ours: search[<query>]; verl-agent's: search[<your query>]).
_SEARCH_PLACEHOLDER = re.compile(r"^search\[<[^\]]*>\]$")


@dataclass
class PromptPreview:
    """One step's prompt: the user message, the chat prompt (None without a tokenizer),
    its token count (None without a tokenizer) and the step's context keys."""

    step: int
    text: str
    chat: str | None
    tokens: int | None
    keys: tuple[int, ...]


def preview_tokenizer(model: ModelConfig) -> Any | None:
    """The model's tokenizer when it loads without the weights, else None (a reason is logged).

    ``smollm2`` and ``.gguf`` files: read from the GGUF file (seconds); a model or
    checkpoint folder: its tokenizer files. ``tiny`` trains its tokenizer on the
    warm-start demonstrations during training, so it has none yet.
    """
    from hgpo.policy import prepare_tokenizer, resolve_model_path, smollm2_gguf

    if model.path == "tiny":
        log.info("model.path=tiny trains its tokenizer during the warm start: showing user messages only")
        return None
    try:
        from transformers import AutoTokenizer

        if model.path == "smollm2" or model.path.endswith(".gguf"):
            gguf = smollm2_gguf() if model.path == "smollm2" else Path(model.path).expanduser()
            if not gguf.is_file():
                raise FileNotFoundError(f"model file {gguf} does not exist")
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        else:
            tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model.path))
    except (OSError, ValueError, ImportError) as e:
        log.warning("no tokenizer for model.path=%s (%s): showing user messages only", model.path, e)
        return None
    return prepare_tokenizer(tokenizer)


def _next_action(info: dict[str, Any]) -> str | None:
    if info.get("expert_action"):
        return str(info["expert_action"])
    actions = [str(a) for a in info.get("admissible_actions", []) if a != "help"]
    if not actions:
        return None
    if _SEARCH_PLACEHOLDER.match(actions[0]):  # search for the goal's first words instead
        return f"search[{' '.join(str(info.get('task', '')).split()[:6]) or 'item'}]"
    return actions[0]


def preview_prompts(cfg: TrainConfig, *, steps: int = 2, tokenizer: Any | None = None) -> list[PromptPreview]:
    """The prompts of the first ``steps`` steps of one episode of ``cfg``'s training env
    (fewer if the episode ends first), rendered as the trainer renders them."""
    import gymnasium as gym

    from agentenv.registration import register_envs
    from hgpo.rollout import make_memory
    from memory.prompts import build_chat_prompt

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    register_envs()
    env = gym.make(cfg.env.id, **{"max_steps": cfg.env.max_steps, **cfg.env.kwargs})
    memory = make_memory(cfg, tokenizer)
    out: list[PromptPreview] = []
    try:
        obs, info = env.reset(seed=cfg.seed)
        memory.reset(1, [str(info.get("task", ""))])
        for t in range(steps):
            text = memory.render(0, obs, [str(a) for a in info.get("admissible_actions", [])])
            keys = memory.context_keys(0, obs)
            chat = tokens = None
            if tokenizer is not None:
                chat = build_chat_prompt(tokenizer, text)
                tokens = len(tokenizer(chat, add_special_tokens=False)["input_ids"])
            out.append(PromptPreview(t, text, chat, tokens, keys))
            action = _next_action(info)
            if t + 1 == steps or action is None:
                break
            memory.store(0, obs, action)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
    finally:
        env.close()
    return out


def print_prompts(cfg: TrainConfig, *, steps: int = 2, stream: TextIO | None = None) -> list[PromptPreview]:
    """Write :func:`preview_prompts` to ``stream`` (stdout): per step a header with the
    token count and context keys, then the chat prompt (or the user message)."""
    stream = stream or sys.stdout
    tokenizer = preview_tokenizer(cfg.model)
    previews = preview_prompts(cfg, steps=steps, tokenizer=tokenizer)
    template = cfg.memory.template
    source = "built-in prompt" if template is None else f"template {template.source or '(inline)'}"
    for p in previews:
        what = (
            "chat prompt" if p.chat is not None else "user message (no tokenizer: chat template not applied)"
        )
        size = f", {p.tokens} tokens" if p.tokens is not None else ""
        keys = " ".join(f"{k:016x}" for k in p.keys)
        stream.write(f"===== step {p.step}: {what}{size}; {source}; context keys: {keys}\n")
        stream.write((p.chat if p.chat is not None else p.text) + "\n")
    stream.write(f"===== end ({len(previews)} prompt(s))\n")
    stream.flush()
    return previews
