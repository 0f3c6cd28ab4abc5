"""The invalid-action penalty: verl-agent's placement (in the step's score and return,
before the group statistics) and ours (subtracted from the advantage), by hand.

verl-agent's ``apply_invalid_action_penalty`` subtracts 0.1 x (1 - valid) from the
step sample's ``token_level_scores`` (whose sum is the episode score GRPO/GiGPO
normalise) and from its ``step_rewards`` (the discounted return R_t, computed before),
so the penalty enters the group statistics and reaches no earlier step.
Every expected number is worked out in the comment above it.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hgpo.advantages import StepBatch, estimate_advantages
from hgpo.config import load_config
from hgpo.trainer import Trainer

EPS = 1e-6


def make_batch(trajectories: dict[str, tuple[str, list[float], list[float]]], depth: int) -> StepBatch:
    """One group; name -> (observation per step, reward per step, penalty per step).

    keys[:, k] numbers the last k+1 observations. Rows: T1_0, T1_1, ..., T2_0, ...
    """
    codes: dict[str, int] = {}
    rows = []
    for traj, (observations, rewards, penalties) in enumerate(trajectories.values()):
        for t, (reward, penalty) in enumerate(zip(rewards, penalties, strict=True)):
            keys = [
                codes.setdefault(observations[max(0, t - k) : t + 1], len(codes)) for k in range(depth + 1)
            ]
            rows.append((traj, t, reward, keys, penalty))
    traj, step, reward, keys, penalty = zip(*rows, strict=True)
    return StepBatch(
        group=np.zeros(len(rows), dtype=np.int64), traj=np.array(traj), step=np.array(step),
        reward=np.array(reward), keys=np.array(keys, dtype=np.uint64), penalty=np.array(penalty),
    )  # fmt: skip


# Two failing trajectories through A then B; T1's second response is invalid (penalty 0.1).
# Rows: T1_0, T1_1, T2_0, T2_1. Returns R (any gamma) are 0; with the penalty R' = [0, -0.1, 0, 0].
FAILING = {"T1": ("AB", [0, 0], [0, 0.1]), "T2": ("AB", [0, 0], [0, 0])}


def test_grpo_normalises_the_penalised_step_scores() -> None:
    batch = make_batch(FAILING, depth=0)
    # Step scores [0, -0.1, 0, 0], mean -0.025 -> mean_norm [0.025, -0.075, 0.025, 0.025].
    got = estimate_advantages("grpo", batch, mode="mean_norm")
    np.testing.assert_allclose(got, [0.025, -0.075, 0.025, 0.025], rtol=1e-6)
    # Unbiased std: deviations^2 sum 3 * 0.000625 + 0.005625 = 0.0075, / 3 -> std 0.05:
    # [0.5, -1.5, 0.5, 0.5] (an all-failing group: the penalty alone sets the spread).
    got = estimate_advantages("grpo", batch, mode="mean_std_norm")
    np.testing.assert_allclose(got, np.array([0.025, -0.075, 0.025, 0.025]) / (0.05 + EPS), rtol=1e-6)


def test_gigpo_step_term_takes_the_penalty_after_discounting() -> None:
    batch = make_batch(FAILING, depth=0)
    # Anchor group A {T1_0, T2_0}: R' = 0, 0 -> 0 (the penalty at T1_1 does not flow back to T1_0).
    # Anchor group B {T1_1 -0.1, T2_1 0}: mean -0.05 -> -0.05, +0.05.
    # mean_norm: episode [0.025, -0.075, 0.025, 0.025] + step [0, -0.05, 0, 0.05].
    for gamma in (0.5, 1.0):
        got = estimate_advantages("gigpo", batch, gamma=gamma, mode="mean_norm")
        np.testing.assert_allclose(got, [0.025, -0.125, 0.025, 0.075], rtol=1e-6)
    # mean_std_norm: episode as GRPO's; step group B unbiased std sqrt(0.005 / 1) = 0.0707107 -> -+0.7071.
    step = 0.05 / (np.sqrt(0.005) + EPS)
    episode = np.array([0.025, -0.075, 0.025, 0.025]) / (0.05 + EPS)
    got = estimate_advantages("gigpo", batch, gamma=0.95, mode="mean_std_norm")
    np.testing.assert_allclose(got, episode + np.array([0, -step, 0, step]), rtol=1e-6)


def test_hgpo_levels_take_the_penalised_returns() -> None:
    batch = make_batch(FAILING, depth=1)
    # Step 1: level 0 (B) and level 1 (AB) both hold {T1_1 -0.1, T2_1 0}: population std 0.05,
    # advantages -+0.05 / (0.05 + 1e-6) each. Reference weights 2 and 3: (2a + 3a) / (5 + 1e-6).
    # Step 0: level 0 (A) holds {0, 0}: exactly 0, dropped -> 0.
    level = 0.05 / (0.05 + EPS)
    expected = 5 * level / (5 + EPS)
    got = estimate_advantages("hgpo", batch, gamma=0.95, mode="mean_std_norm")
    np.testing.assert_allclose(got, [0, -expected, 0, expected], rtol=1e-6)
    got = estimate_advantages("hgpo", batch, gamma=0.95, mode="mean_norm")
    np.testing.assert_allclose(got, [0, -0.25 / (5 + EPS), 0, 0.25 / (5 + EPS)], rtol=1e-6)


def test_without_a_penalty_array_nothing_changes() -> None:
    # penalty=None and all-zero penalties give bit-identical advantages.
    with_zeros = make_batch({name: (o, r, [0.0] * len(r)) for name, (o, r, _) in FAILING.items()}, depth=1)
    plain = StepBatch(with_zeros.group, with_zeros.traj, with_zeros.step, with_zeros.reward, with_zeros.keys)
    assert not plain.has_penalty and with_zeros.has_penalty
    for name in ("grpo", "gigpo", "hgpo"):
        for mode in ("mean_norm", "mean_std_norm"):
            np.testing.assert_array_equal(
                estimate_advantages(name, with_zeros, mode=mode), estimate_advantages(name, plain, mode=mode)
            )


def test_hgpo_penalty_revives_levels_that_would_be_dropped() -> None:
    # gamma 1, K = 1, mean_norm, reference weighting. T1 A B succeeds (10 at step 1); T2 and T3
    # take C B and fail, T3's second response is invalid; T4 takes D B and fails.
    # Step 1, level 0 (B): R' = {T1 10, T2 0, T3 -0.1, T4 0}, mean 2.475 -> 7.525, -2.475, -2.575, -2.475.
    # Level 1: AB {T1} and DB {T4} are singletons; CB {T2 0, T3 -0.1}: mean -0.05 -> +0.05, -0.05.
    #   T1_1: 2 * 7.525 / (2 + eps); T4_1: 2 * -2.475 / (2 + eps)
    #   T2_1: (2 * -2.475 + 3 * 0.05) / (5 + eps) = -4.8 / 5 = -0.96
    #   T3_1: (2 * -2.575 + 3 * -0.05) / (5 + eps) = -5.3 / 5 = -1.06
    # Without the penalty CB is {0, 0}: exactly 0, dropped, and T2_1 = T3_1 = T4_1 = 2 * -2.5 / (2 + eps).
    # So the penalised T3_1 ends up 1.4 above the valid T4_1: the penalty gives the CB level a
    # non-zero advantage, which the reference's rule keeps, with the larger weight.
    cases = {
        "T1": ("AB", [0, 10], [0, 0]),
        "T2": ("CB", [0, 0], [0, 0]),
        "T3": ("CB", [0, 0], [0, 0.1]),
        "T4": ("DB", [0, 0], [0, 0]),
    }
    got = estimate_advantages("hgpo", make_batch(cases, depth=1), gamma=1.0, mode="mean_norm")
    np.testing.assert_allclose(got[1::2], [15.05 / (2 + EPS), -0.96, -1.06, -4.95 / (2 + EPS)], rtol=1e-5)
    np.testing.assert_array_equal(got[0::2], [0, 0, 0, 0])  # step 0: singletons and an all-zero group
    no_penalty = {name: (o, r, [0, 0]) for name, (o, r, _) in cases.items()}
    got = estimate_advantages("hgpo", make_batch(no_penalty, depth=1), gamma=1.0, mode="mean_norm")
    np.testing.assert_allclose(got[1::2], [15.0 / (2 + EPS)] + 3 * [-5.0 / (2 + EPS)], rtol=1e-6)


def test_trajectory_statistics_reject_a_penalty() -> None:
    batch = make_batch(FAILING, depth=0)
    for name, options in (("grpo", {}), ("gigpo", {}), ("hgpo", {"base_group": True})):
        with pytest.raises(ValueError, match="episode_stats='trajectory' does not combine with a per-step"):
            estimate_advantages(name, batch, episode_stats="trajectory", **options)
    # HGPO without the base group has no episode term: the option does not apply.
    estimate_advantages("hgpo", batch, episode_stats="trajectory")


@pytest.mark.parametrize(
    ("penalty", "error", "message"),
    [
        ([0.0, 0.1], ValueError, r"StepBatch.penalty must have shape \(4,\)"),
        ([0.0, np.inf, 0.0, 0.0], ValueError, "StepBatch.penalty must be finite, row 1"),
        (["a", "b", "c", "d"], TypeError, "StepBatch.penalty must be real numbers"),
    ],
)
def test_bad_penalties_are_rejected(penalty: list, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        StepBatch([0, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 1], [0.0] * 4, [1, 2, 1, 2], penalty)


# --------------------------------------------------------------------------- trainer


def _advantages(placement: str, name: str, coefficient: float = 0.1, **algo) -> np.ndarray:
    """Trainer.advantages on FAILING's steps, rows shuffled, responses of 3 tokens."""
    overrides = [
        f"algo.name={name}",
        f"algo.invalid_penalty_placement={placement}",
        f"algo.invalid_action_penalty={coefficient}",
        "algo.gamma=0.5",
        "algo.mode=mean_norm",
    ] + [f"algo.{key}={value}" for key, value in algo.items()]
    cfg = load_config(None, overrides)
    order = np.array([3, 0, 2, 1])  # rows T2_1, T1_0, T2_0, T1_1
    rollout = SimpleNamespace(
        group=np.zeros(4, dtype=np.int64),
        traj=np.array([0, 0, 1, 1])[order],
        step=np.array([0, 1, 0, 1])[order],
        reward=np.zeros(4),
        keys=np.array([[1, 1], [2, 3], [1, 1], [2, 3]], dtype=np.uint64)[order],
        valid=np.array([True, False, True, True])[order],
        response_ids=[[5, 6, 7]] * 4,
    )
    out = Trainer.advantages(SimpleNamespace(cfg=cfg), rollout)  # only cfg is read for these estimators
    for tokens, mask, value in zip(out.advs, out.masks, out.per_step, strict=True):
        np.testing.assert_array_equal(tokens, [value] * 3)
        np.testing.assert_array_equal(mask, [1, 1, 1])
    return out.per_step[np.argsort(order)]  # back to T1_0, T1_1, T2_0, T2_1


def test_trainer_places_the_penalty_in_the_reward_by_default() -> None:
    assert load_config(None, []).algo.invalid_penalty_placement == "reward"
    # As test_gigpo_step_term_takes_the_penalty_after_discounting (mean_norm).
    np.testing.assert_allclose(_advantages("reward", "gigpo"), [0.025, -0.125, 0.025, 0.075], rtol=1e-6)
    np.testing.assert_allclose(_advantages("reward", "grpo"), [0.025, -0.075, 0.025, 0.025], rtol=1e-6)


def test_trainer_advantage_placement_subtracts_afterwards() -> None:
    # Without the penalty every return is 0: all advantages 0, then -0.1 on the invalid step.
    for name in ("grpo", "gigpo", "hgpo"):
        np.testing.assert_allclose(_advantages("advantage", name), [0, -0.1, 0, 0], rtol=1e-6)
    # A zero coefficient: both placements give no penalty at all.
    for placement in ("reward", "advantage"):
        np.testing.assert_array_equal(_advantages(placement, "gigpo", coefficient=0.0), [0, 0, 0, 0])


def test_config_rejects_trajectory_statistics_with_the_reward_placement() -> None:
    with pytest.raises(ValueError, match="episode_stats=trajectory takes no per-step penalty"):
        load_config(None, ["algo.name=grpo", "algo.options={episode_stats: trajectory}"])
    # Fine with the other placement, without a penalty, or where no episode term is used.
    load_config(None, ["algo.name=grpo", "algo.options={episode_stats: trajectory}",
                       "algo.invalid_penalty_placement=advantage"])  # fmt: skip
    load_config(
        None, ["algo.name=grpo", "algo.options={episode_stats: trajectory}", "algo.invalid_action_penalty=0"]
    )
    load_config(None, ["algo.name=hgpo", "algo.options={episode_stats: trajectory}"])
    np.testing.assert_allclose(
        _advantages("advantage", "grpo", options="{episode_stats: trajectory}"), [0, -0.1, 0, 0], rtol=1e-6
    )
