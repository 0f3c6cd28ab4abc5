"""PPO policy loss pieces (verl conventions, see notes in docs/trainer.md).

All tensors are (B, R): B response rows, R response tokens; ``mask`` marks real tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def masked_sum(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum()


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def low_var_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """The k3 estimator of KL(pi || ref): e^d - d - 1 with d = ref - logp, clamped to [-10, 10].

    Unbiased for sampled tokens and always >= 0 (Schulman, "Approximating KL divergence").
    """
    d = (ref_logp - logp).clamp(-20.0, 20.0)
    return (d.exp() - d - 1.0).clamp(-10.0, 10.0)


@dataclass
class PolicyLoss:
    """Per-token policy-gradient loss and the diagnostics of its clipping."""

    loss: torch.Tensor  # (B, R)
    clipped: torch.Tensor  # (B, R) bool: the clip bound was active
    dual_clipped: torch.Tensor  # (B, R) bool: the dual-clip cap was active
    ratio: torch.Tensor  # (B, R)


def clipped_policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = 3.0,
) -> PolicyLoss:
    """PPO's clipped surrogate with dual clip (Ye et al. 2020).

    loss = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high)); for A < 0 the loss is
    further capped at -A c, so a huge ratio on a bad token cannot dominate.
    """
    ratio = torch.exp((logp - old_logp).clamp(-20.0, 20.0))
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    clip_active = clipped > unclipped
    dual_active = torch.zeros_like(clip_active)
    if dual_clip is not None:
        if dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1.0, got {dual_clip}")
        cap = -advantages * dual_clip
        dual_active = (advantages < 0) & (loss > cap)
        loss = torch.where(advantages < 0, torch.minimum(loss, cap), loss)
    return PolicyLoss(loss, clip_active, dual_active, ratio)


def aggregate(token_loss: torch.Tensor, mask: torch.Tensor, mode: str, normaliser: float) -> torch.Tensor:
    """Reduce a (B, R) loss for one micro-batch so that micro-batch results add up to the
    mini-batch loss.

    ``token-mean``: sum over tokens / ``normaliser`` (the number of response tokens in
    the whole mini-batch), so gradient accumulation gives exactly the mini-batch token
    mean (verl averages micro-batch means instead, which weighs short micro-batches more).
    ``seq-mean-token-mean``: each row's token mean, summed / ``normaliser`` (rows in the
    mini-batch): every step sample weighs the same whatever its length.
    """
    if mode == "token-mean":
        return masked_sum(token_loss, mask) / normaliser
    if mode == "seq-mean-token-mean":
        per_row = (token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1)
        return per_row.sum() / normaliser
    raise ValueError(f"unknown loss aggregation {mode!r}")
