"""Imitation warm start: collect expert demonstrations, fit the policy to them.

Used before RL when the policy cannot yet produce the action format (a tiny model
built from scratch, or a base model): the issue's "short imitation warm-start from
expert actions". Demonstrations come from the env's own expert
(``info["expert_action"]``), rendered through the same memory and prompt as RL.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from hgpo.policy import collate, response_logits, token_logprobs
from hgpo.rollout import Decision, collect_rollouts, expert_decider, random_decider
from memory import Memory
from memory.prompts import build_chat_prompt

log = logging.getLogger(__name__)


def action_target(action: str, prompt_format: str = "think", first_turn: bool = False, task: str = "") -> str:
    """The response the policy is taught to give for ``action``.

    The ``think`` format teaches only the answer part (``<action>...</action>``; set
    ``generation.require_think=false`` for such a policy). The ``hiper`` format keeps
    one sub-goal per episode, the task itself: SWITCH to it on the first turn, KEEP after.
    """
    if prompt_format == "hiper":
        switch = "SWITCH" if first_turn else "KEEP"
        return f"<switch>{switch}</switch><subgoal>{task}</subgoal><action>{action}</action>"
    return f"<action>{action}</action>"


def collect_demonstrations(
    envs, memory: Memory, *, episodes: int, seed: int, max_steps: int, noise: float = 0.0
) -> tuple[list[tuple[str, str]], float]:
    """(prompt text, target response) pairs from ``episodes`` expert episodes, and the
    demonstrator's success rate. Targets follow ``memory.prompt_format`` (:func:`action_target`).

    With ``noise`` > 0 each step takes, with that chance, a uniformly random admissible
    action instead of the expert's; the pair teaches the action taken.
    """
    pairs: list[tuple[str, str]] = []
    rng = np.random.default_rng(seed)
    explore = random_decider(seed)

    def record(idx, prompts, observations, infos) -> list[Decision]:
        decisions = expert_decider(idx, prompts, observations, infos)
        if noise > 0:
            random_actions = explore(idx, prompts, observations, infos)
            decisions = [r if rng.random() < noise else d for d, r in zip(decisions, random_actions, strict=True)]
        for i, p, d in zip(idx, prompts, decisions, strict=True):
            target = action_target(d.action, memory.prompt_format, memory.steps_taken(i) == 0, memory.task(i))
            pairs.append((p, target))
        return decisions

    wins = []
    rounds = -(-episodes // envs.num_envs)
    for r in tqdm(range(rounds), desc="expert demonstrations", unit="batch"):
        rollout = collect_rollouts(envs, memory, record, seed=seed + r * envs.num_groups, max_steps=max_steps)
        wins.extend(rollout.won.tolist())
    return pairs, float(np.mean(wins)) if wins else 0.0


def behaviour_cloning(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> list[float]:
    """Maximise log p(target response | prompt) with AdamW; returns the mean loss per epoch."""
    device = next(model.parameters()).device
    prompts = [
        tokenizer(build_chat_prompt(tokenizer, p), add_special_tokens=False)["input_ids"] for p, _ in pairs
    ]
    targets = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for _, t in pairs]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    model.train()
    losses = []
    for epoch in range(epochs):
        order = rng.permutation(len(pairs))
        total, count = 0.0, 0
        bar = tqdm(
            range(0, len(order), batch_size), desc=f"behaviour cloning {epoch + 1}/{epochs}", unit="batch"
        )
        for start in bar:
            rows = order[start : start + batch_size]
            batch = collate([prompts[i] for i in rows], [targets[i] for i in rows], tokenizer.pad_token_id)
            batch = type(batch)(*(t.to(device) for t in vars(batch).values()))
            logp = token_logprobs(response_logits(model, batch), batch.response_ids)
            mask = batch.response_mask.float()
            loss = -(logp * mask).sum() / mask.sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
            count += len(rows)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        losses.append(total / max(count, 1))
        log.info("behaviour cloning epoch %d: loss %.4f", epoch + 1, losses[-1])
    return losses
