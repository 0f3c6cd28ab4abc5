"""PPO loss pieces against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from hgpo.loss import aggregate, clipped_policy_loss, low_var_kl


def test_clipped_loss_hand_computed():
    # Four tokens: (ratio, advantage) = (1.5, +1), (0.5, +1), (1.5, -1), (5.0, -1).
    ratio = torch.tensor([[1.5, 0.5, 1.5, 5.0]])
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    old = torch.zeros_like(ratio)
    out = clipped_policy_loss(ratio.log(), old, adv, clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    # token 1: max(-1.5, -1.2) = -1.2 (clip active)
    # token 2: max(-0.5, -0.8) = -0.5 (unclipped wins)
    # token 3: max(1.5, 1.2) = 1.5; dual cap 3.0 not reached
    # token 4: max(5.0, 1.2) = 5.0, capped by dual clip at 3.0
    assert torch.allclose(out.loss, torch.tensor([[-1.2, -0.5, 1.5, 3.0]]), atol=1e-6)
    assert out.clipped.tolist() == [[True, False, False, False]]
    assert out.dual_clipped.tolist() == [[False, False, False, True]]


def test_no_dual_clip_keeps_large_negative_advantage_loss():
    ratio = torch.tensor([[5.0]])
    out = clipped_policy_loss(ratio.log(), torch.zeros(1, 1), torch.tensor([[-1.0]]), dual_clip=None)
    assert out.loss.item() == pytest.approx(5.0)


def test_dual_clip_must_exceed_one():
    with pytest.raises(ValueError, match="dual_clip"):
        clipped_policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), dual_clip=0.5)


def test_loss_gradient_vanishes_outside_clip_range():
    logp = torch.tensor([[math.log(1.5)]], requires_grad=True)
    out = clipped_policy_loss(logp, torch.zeros(1, 1), torch.tensor([[1.0]]))
    out.loss.sum().backward()
    assert logp.grad.item() == 0.0  # ratio 1.5 > 1.2 with A > 0: clipped, no gradient


def test_low_var_kl_hand_computed():
    logp = torch.tensor([0.0, -1.0, -2.0])
    ref = torch.tensor([0.0, -2.0, -1.0])
    d = ref - logp  # [0, -1, 1]
    expected = torch.exp(d) - d - 1  # [0, e^-1, e - 2]
    assert torch.allclose(low_var_kl(logp, ref), expected)
    assert (low_var_kl(logp, ref) >= 0).all()
    assert low_var_kl(torch.tensor([0.0]), torch.tensor([50.0])).item() == 10.0  # clamped


def test_token_mean_over_micro_batches_equals_mini_batch_mean():
    torch.manual_seed(0)
    loss = torch.randn(6, 5)
    mask = torch.tensor(
        [[1] * 5, [1] * 2 + [0] * 3, [1] * 4 + [0], [1] + [0] * 4, [1] * 5, [1] * 3 + [0] * 2]
    ).float()
    total_tokens = float(mask.sum())
    whole = (loss * mask).sum() / total_tokens
    parts = aggregate(loss[:2], mask[:2], "token-mean", total_tokens) + aggregate(
        loss[2:], mask[2:], "token-mean", total_tokens
    )
    assert torch.allclose(whole, parts)
    per_row = (loss * mask).sum(1) / mask.sum(1)
    seq = aggregate(loss[:3], mask[:3], "seq-mean-token-mean", 6) + aggregate(
        loss[3:], mask[3:], "seq-mean-token-mean", 6
    )
    assert torch.allclose(seq, per_row.mean())
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(loss, mask, "sum", 1.0)
