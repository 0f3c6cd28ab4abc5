"""PPO policy and value loss pieces (verl conventions, see notes in docs/trainer.md).

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


def clipped_value_loss(
    pred: torch.Tensor, old: torch.Tensor, target: torch.Tensor, clip: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's clipped value loss per element: max((V - G)^2, (clip(V, V_old - c, V_old + c) - G)^2).

    The second term stops a value from moving more than ``clip`` away from the value the
    rollout was scored with (verl ``compute_value_loss``, ``cliprange_value``; the HiPER
    reference keeps verl's 0.5). ``clip=None`` gives the plain squared error. Returns the
    per-element loss (no 1/2 factor, as verl) and a bool tensor: where the clipped term is
    the larger one (verl's ``vf_clipfrac`` is its mean over the mask).
    """
    unclipped = (pred - target) ** 2
    if clip is None:
        return unclipped, torch.zeros_like(unclipped, dtype=torch.bool)
    if clip <= 0:
        raise ValueError(f"value clip must be > 0 or None, got {clip}")
    clipped = (torch.clamp(pred, min=old - clip, max=old + clip) - target) ** 2
    return torch.maximum(unclipped, clipped), clipped > unclipped
