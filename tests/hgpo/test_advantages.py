"""Hand-computed checks of hgpo.advantages (GRPO, GiGPO, HGPO), edge cases and input errors.

Every expected number is worked out in the comment above it. Returns use gamma 0.5
or 1 so that the arithmetic is exact. Notation: T1_2 = trajectory T1 at step 2.
"""

from __future__ import annotations

import numpy as np
import pytest

from hgpo.advantages import StepBatch, discounted_returns, episode_returns, estimate_advantages, group_sizes

EPS = 1e-6


def make_batch(trajectories: dict[str, tuple[str, list[float]]], depth: int, group: int = 0) -> StepBatch:
    """One group; trajectory name -> (observation per step, reward per step).

    keys[:, k] numbers the last k+1 observations (the window is shorter early on).
    Rows come out in trajectory order: T1_0, T1_1, ..., T2_0, ...
    """
    codes: dict[str, int] = {}
    rows = []
    for traj, (observations, rewards) in enumerate(trajectories.values()):
        for t, reward in enumerate(rewards):
            keys = [
                codes.setdefault(observations[max(0, t - k) : t + 1], len(codes) + 1)
                for k in range(depth + 1)
            ]
            rows.append((group, traj, t, reward, keys))
    group_, traj_, step, reward, keys = zip(*rows, strict=True)
    return StepBatch(
        group=np.array(group_), traj=np.array(traj_), step=np.array(step),
        reward=np.array(reward, dtype=np.float32), keys=np.array(keys, dtype=np.uint64),
    )  # fmt: skip


# T1: A B C, success at the end; T2: A D C, fails; T3: A B C, fails. gamma 0.5:
#   R(T1) = [2.5, 5, 10], R(T2) = R(T3) = [0, 0, 0].
# Level-0 groups (current observation): A {T1_0 2.5, T2_0 0, T3_0 0}, B {T1_1 5, T3_1 0},
#   D {T2_1} (singleton), C {T1_2 10, T2_2 0, T3_2 0}.
# Level 1 (steps >= 1): AB {T1_1, T3_1}, AD {T2_1}, BC {T1_2, T3_2}, DC {T2_2}.
# Level 2 (steps >= 2): ABC {T1_2, T3_2}, ADC {T2_2}.
THREE = {"T1": ("ABC", [0, 0, 10]), "T2": ("ADC", [0, 0, 0]), "T3": ("ABC", [0, 0, 0])}


def hgpo(batch: StepBatch, **options) -> np.ndarray:
    return estimate_advantages("hgpo", batch, **options)


# ----------------------------------------------------------------------------- returns


def test_discounted_returns_by_hand() -> None:
    # rewards 0, 0, 10: gamma 0.95 -> [0.95^2 * 10, 0.95 * 10, 10] = [9.025, 9.5, 10]
    # gamma 1 -> [10, 10, 10]; gamma 0 -> the rewards themselves.
    batch = make_batch({"T": ("ABC", [0, 0, 10]), "U": ("AB", [1, 2])}, depth=0)
    np.testing.assert_allclose(discounted_returns(batch, 0.95)[:3], [9.025, 9.5, 10.0], rtol=1e-7)
    np.testing.assert_array_equal(discounted_returns(batch, 1.0), [10, 10, 10, 3, 2])
    np.testing.assert_array_equal(discounted_returns(batch, 0.0), [0, 0, 10, 1, 2])
    # U: rewards 1, 2 with gamma 0.5 -> [1 + 0.5 * 2, 2] = [2, 2]
    np.testing.assert_array_equal(discounted_returns(batch, 0.5)[3:], [2, 2])
    np.testing.assert_array_equal(episode_returns(batch), [10, 10, 10, 3, 3])


def test_discounted_returns_of_long_shuffled_trajectories_match_a_backward_loop() -> None:
    rng = np.random.default_rng(1)
    lengths = [3000, 1, 17, 64]
    rewards = [rng.integers(0, 3, size=n).astype(np.float64) for n in lengths]
    expected = []
    for r in rewards:
        out, running = np.zeros(len(r)), 0.0
        for t in range(len(r) - 1, -1, -1):
            running = r[t] + 0.95 * running
            out[t] = running
        expected.append(out)
    traj = np.concatenate([np.full(n, i) for i, n in enumerate(lengths)])
    step = np.concatenate([np.arange(n) for n in lengths])
    order = rng.permutation(traj.size)
    batch = StepBatch(
        group=np.zeros(traj.size, dtype=np.int64)[order], traj=traj[order], step=step[order],
        reward=np.concatenate(rewards)[order], keys=np.zeros(traj.size, dtype=np.uint64),
    )  # fmt: skip
    np.testing.assert_allclose(discounted_returns(batch, 0.95), np.concatenate(expected)[order], rtol=1e-6)


# -------------------------------------------------------------------------------- GRPO

# One group: a: 1 step, reward 10 (score 10); b: 3 steps, fails (score 0); c: 2 steps, reward 10.
GRPO_CASE = {"a": ("A", [10]), "b": ("ABC", [0, 0, 0]), "c": ("AB", [0, 10])}


def test_grpo_by_hand() -> None:
    batch = make_batch(GRPO_CASE, depth=0)
    # Per trajectory (the papers): scores [10, 0, 10], mean 20/3.
    #   mean_norm: a, c -> 10 - 20/3 = 3.3333; b -> -6.6667.
    #   unbiased std: deviations (3.333, -6.667, 3.333), sum of squares 66.667, /2 = 33.333, std 5.7735
    #   -> a, c: 3.3333 / 5.7735 = 0.57735; b: -1.1547.
    a, b, c = [10 - 20 / 3], 3 * [-20 / 3], 2 * [10 - 20 / 3]
    trajectory = estimate_advantages("grpo", batch, mode="mean_norm", episode_stats="trajectory")
    np.testing.assert_allclose(trajectory, [a[0], *b, *c], rtol=1e-6)
    std = np.sqrt(200 / 3 / 2)
    trajectory_std = estimate_advantages("grpo", batch, mode="mean_std_norm", episode_stats="trajectory")
    np.testing.assert_allclose(trajectory_std, np.array([a[0], *b, *c]) / (std + EPS), rtol=1e-6)
    # Per step sample (reference default): entries 10 (x1), 0 (x3), 10 (x2); mean 30/6 = 5.
    #   mean_norm: a, c -> +5; b -> -5. Unbiased std: 6 * 25 / 5 = 30 -> 5.4772 -> +-0.91287.
    step = estimate_advantages("grpo", batch, mode="mean_norm", episode_stats="step")
    np.testing.assert_allclose(step, [5, -5, -5, -5, 5, 5], rtol=1e-6)
    step_std = estimate_advantages("grpo", batch, mode="mean_std_norm", episode_stats="step")
    np.testing.assert_allclose(step_std, np.array([5, -5, -5, -5, 5, 5]) / (np.sqrt(30) + EPS), rtol=1e-6)


def test_grpo_singleton_group_keeps_mean_0_and_std_1() -> None:
    # A group with one trajectory of one step (score 10) is a single entry either way:
    # reference: mean 0, std 1 -> 10 (mean_norm), 10 / (1 + 1e-6) (mean_std_norm).
    lone = make_batch({"a": ("A", [10])}, depth=0)
    assert estimate_advantages("grpo", lone, mode="mean_norm")[0] == np.float32(10)
    assert estimate_advantages("grpo", lone, mode="mean_std_norm")[0] == np.float32(10 / (1 + EPS))
    # With 3 steps, "step" statistics have 3 equal entries (advantage 0) while "trajectory"
    # statistics have one entry (the raw score): a quirk of the reference, kept on purpose.
    longer = make_batch({"a": ("ABC", [0, 0, 10])}, depth=0)
    np.testing.assert_array_equal(estimate_advantages("grpo", longer, mode="mean_norm"), [0, 0, 0])
    by_trajectory = estimate_advantages("grpo", longer, mode="mean_norm", episode_stats="trajectory")
    np.testing.assert_array_equal(by_trajectory, [10, 10, 10])


# ------------------------------------------------------------------------------- GiGPO

# T1 revisits A ("Nothing happens."): A A B, reward 10 at the end; T2: A B, fails. gamma 0.5:
#   R(T1) = [2.5, 5, 10], R(T2) = [0, 0].
# Anchor groups: A {T1_0 2.5, T1_1 5, T2_0 0} (mean 2.5), B {T1_2 10, T2_1 0} (mean 5).
GIGPO_CASE = {"T1": ("AAB", [0, 0, 10]), "T2": ("AB", [0, 0])}


def test_gigpo_by_hand_mean_norm() -> None:
    batch = make_batch(GIGPO_CASE, depth=0)
    # Step level: T1_0 0, T1_1 +2.5, T1_2 +5, T2_0 -2.5, T2_1 -5.
    # Episode level, per step: entries 10 x3, 0 x2, mean 6 -> T1 +4, T2 -6.
    #   Sum: T1 [4, 6.5, 9], T2 [-8.5, -11].
    got = estimate_advantages("gigpo", batch, gamma=0.5, mode="mean_norm")
    np.testing.assert_allclose(got, [4, 6.5, 9, -8.5, -11], rtol=1e-6)
    # Per trajectory: scores 10, 0, mean 5 -> T1 +5, T2 -5; step_advantage_w 0.5 halves the step part:
    #   T1 [5, 5 + 1.25, 5 + 2.5], T2 [-5 - 1.25, -5 - 2.5].
    got = estimate_advantages(
        "gigpo", batch, gamma=0.5, mode="mean_norm", episode_stats="trajectory", step_advantage_w=0.5
    )
    np.testing.assert_allclose(got, [5, 6.25, 7.5, -6.25, -7.5], rtol=1e-6)


def test_gigpo_by_hand_mean_std_norm_uses_unbiased_std() -> None:
    batch = make_batch(GIGPO_CASE, depth=0)
    # Episode: entries [10, 10, 10, 0, 0], deviations [4, 4, 4, -6, -6], SS 120, /4 = 30 -> std 5.47723.
    episode_t1, episode_t2 = 4 / (np.sqrt(30) + EPS), -6 / (np.sqrt(30) + EPS)  # 0.730297, -1.095445
    # Step group A [2.5, 5, 0]: deviations [0, 2.5, -2.5], SS 12.5, /2 = 6.25 -> std 2.5 -> [0, 1, -1].
    # Step group B [10, 0]: deviations [5, -5], SS 50, /1 -> std 7.07107 -> [0.707107, -0.707107].
    a_std, b_std = 2.5 + EPS, np.sqrt(50) + EPS
    expected = [
        episode_t1 + 0.0,
        episode_t1 + 2.5 / a_std,
        episode_t1 + 5 / b_std,
        episode_t2 - 2.5 / a_std,
        episode_t2 - 5 / b_std,
    ]  # = [0.730297, 1.730297, 1.437404, -2.095445, -1.802552]
    got = estimate_advantages("gigpo", batch, gamma=0.5, mode="mean_std_norm")
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# -------------------------------------------------------------------------------- HGPO


def test_hgpo_reference_weighting_by_hand() -> None:
    batch = make_batch(THREE, depth=2)

    # mean_norm level advantages:
    #   L0: A mean 5/6: T1_0 +1.6667, T2_0 -0.8333, T3_0 -0.8333; B mean 2.5: T1_1 +2.5, T3_1 -2.5;
    #       C mean 10/3: T1_2 +6.6667, T2_2 -3.3333, T3_2 -3.3333.
    #   L1: AB: T1_1 +2.5, T3_1 -2.5; BC (mean 5): T1_2 +5, T3_2 -5.   L2: ABC: T1_2 +5, T3_2 -5.
    # Reference weights (k+2)^1 = 2, 3, 4; each divided by (sum of weights + 1e-6).
    #   T1_0 = 2 * 1.6667 / 2 = 1.6667        T1_1 = (2 * 2.5 + 3 * 2.5) / 5 = 2.5
    #   T1_2 = (2 * 6.6667 + 3 * 5 + 4 * 5) / 9 = 48.333 / 9 = 5.3704
    #   T2_1: D and AD are singletons -> no item -> 0.   T2_2 = -3.3333 (DC, ADC singletons)
    #   T3_2 = (2 * -3.3333 + 3 * -5 + 4 * -5) / 9 = -41.667 / 9 = -4.6296
    def ref(*pairs: tuple[float, float]) -> float:
        return sum(w * a for w, a in pairs) / (sum(w for w, _ in pairs) + EPS)

    expected = [
        ref((2, 5 / 3)), ref((2, 2.5), (3, 2.5)), ref((2, 20 / 3), (3, 5), (4, 5)),
        ref((2, -5 / 6)), 0.0, ref((2, -10 / 3)),
        ref((2, -5 / 6)), ref((2, -2.5), (3, -2.5)), ref((2, -10 / 3), (3, -5), (4, -5)),
    ]  # fmt: skip
    got = hgpo(batch, gamma=0.5, mode="mean_norm", weighting="reference", alpha=1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got[[2, 8]], [48.333333 / 9, -41.666667 / 9], rtol=1e-6)


def test_hgpo_paper_weighting_by_hand() -> None:
    batch = make_batch(THREE, depth=2)
    # Paper weights (k+1)^1 = 1, 2, 3, exact renormalisation:
    #   T1_2 = (6.6667 + 2 * 5 + 3 * 5) / 6 = 5.2778; T3_2 = (-3.3333 - 10 - 15) / 6 = -4.7222;
    #   with a single item the weight cancels: T1_0 1.6667, T1_1 2.5, T2_2 -3.3333.
    got = hgpo(batch, gamma=0.5, mode="mean_norm", weighting="paper")
    expected = [5 / 3, 2.5, 31.666667 / 6, -5 / 6, 0, -10 / 3, -5 / 6, -2.5, -28.333333 / 6]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # alpha 0 makes the weights uniform: T1_2 = (6.6667 + 5 + 5) / 3 = 5.5556.
    uniform = hgpo(batch, gamma=0.5, mode="mean_norm", weighting="paper", alpha=0.0)
    assert uniform[2] == pytest.approx(16.666667 / 3, rel=1e-6)


def test_hgpo_mean_std_norm_uses_population_std() -> None:
    batch = make_batch(THREE, depth=2)
    # Population std: A [2.5, 0, 0]: mean 0.8333, var (2.7778 + 2 * 0.6944) / 3 = 1.3889, std 1.17851
    #   -> T1_0 1.41421, T2_0 = T3_0 = -0.70711. C [10, 0, 0] -> T1_2 1.41421, others -0.70711.
    #   Two-member groups [x, 0] -> +-1 (B, AB, BC, ABC).
    # Reference: T1_2 = (2 * 1.41421 + 3 * 1 + 4 * 1) / 9 = 1.09205; T3_2 = -8.41421 / 9 = -0.93491.
    a_std, c_std = np.sqrt(25 / 18), np.sqrt(200 / 9)  # population stds of A and C
    a_hi, a_lo = (5 / 3) / (a_std + EPS), (-5 / 6) / (a_std + EPS)
    c_hi, c_lo = (20 / 3) / (c_std + EPS), (-10 / 3) / (c_std + EPS)
    one = 2.5 / (2.5 + EPS)  # [5, 0] and [10, 0] groups: deviation / std = 1 (x / (x + eps))
    expected = [
        2 * a_hi / (2 + EPS), 5 * one / (5 + EPS), (2 * c_hi + 7 * 5 / (5 + EPS)) / (9 + EPS),
        2 * a_lo / (2 + EPS), 0.0, 2 * c_lo / (2 + EPS),
        2 * a_lo / (2 + EPS), -5 * one / (5 + EPS), (2 * c_lo - 7 * 5 / (5 + EPS)) / (9 + EPS),
    ]  # fmt: skip
    got = hgpo(batch, gamma=0.5, mode="mean_std_norm")
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got[[0, 2, 8]], [1.41421, 1.09205, -0.93491], atol=1e-5)


def test_hgpo_base_group_by_hand() -> None:
    batch = make_batch(THREE, depth=2)
    # Episode level per step: scores 10 (x3), 0 (x6), mean 3.3333 -> T1 +6.6667, T2 and T3 -3.3333.
    # The base group is one more item of weight 1 (reference):
    #   T1_2 = (6.6667 + 2 * 6.6667 + 3 * 5 + 4 * 5) / (1 + 2 + 3 + 4) = 55 / 10 = 5.5
    #   T2_1 (no level item) = -3.3333 / (1 + 1e-6)
    got = hgpo(batch, gamma=0.5, mode="mean_norm", base_group=True)
    assert got[2] == pytest.approx(55 / (10 + EPS), rel=1e-6)
    assert got[4] == pytest.approx(-10 / 3 / (1 + EPS), rel=1e-6)
    # T1_0 = (6.6667 + 2 * 1.6667) / 3 = 3.3333
    assert got[0] == pytest.approx(10 / (3 + EPS), rel=1e-6)


# T1: A B, reward 10 at step 1; T2: C B, fails; T3: A B, reward 5 at step 1. gamma 1:
#   R(T1) = [10, 10], R(T2) = [0, 0], R(T3) = [5, 5].
# L0: A {T1_0 10, T3_0 5} -> +2.5, -2.5; C {T2_0} singleton; B {10, 0, 5} mean 5 -> +5, -5, 0.
# L1: AB {T1_1 10, T3_1 5} mean 7.5 -> +2.5, -2.5; CB {T2_1} singleton.
ZERO_CASE = {"T1": ("AB", [0, 10]), "T2": ("CB", [0, 0]), "T3": ("AB", [0, 5])}


def test_hgpo_drops_exact_zero_level_advantages() -> None:
    batch = make_batch(ZERO_CASE, depth=1)
    # Reference: T1_1 = (2 * 5 + 3 * 2.5) / 5 = 3.5; T3_1: its level-0 advantage is exactly 0 and is
    # dropped, leaving 3 * -2.5 / 3 = -2.5 (keeping it would give (2 * 0 + 3 * -2.5) / 5 = -1.5).
    # T2_1 = 2 * -5 / 2 = -5; T1_0 = 2.5; T2_0 = 0; T3_0 = -2.5.
    got = hgpo(batch, gamma=1.0, mode="mean_norm")
    np.testing.assert_allclose(got, [2.5, 3.5, 0, -5, -2.5, -2.5], rtol=1e-6)
    # Paper: T1_1 = (5 + 2 * 2.5) / 3 = 3.3333; the rest have one item each.
    got = hgpo(batch, gamma=1.0, mode="mean_norm", weighting="paper")
    np.testing.assert_allclose(got, [2.5, 10 / 3, 0, -5, -2.5, -2.5], rtol=1e-6)


def test_history_longer_than_the_trajectories_uses_only_the_levels_they_have() -> None:
    # Same steps as ZERO_CASE but keys up to K = 4: trajectories of 2 steps only reach level 1,
    # so K = 4 gives the K = 1 numbers above, and levels 2..4 have no steps.
    batch = make_batch(ZERO_CASE, depth=4)
    got = hgpo(batch, gamma=1.0, mode="mean_norm", history_length=4)
    np.testing.assert_allclose(got, [2.5, 3.5, 0, -5, -2.5, -2.5], rtol=1e-6)
    sizes = group_sizes(batch)
    np.testing.assert_array_equal(sizes[:, 2:], 0)
    np.testing.assert_array_equal(sizes[:, :2], [[2, 0], [3, 2], [1, 0], [3, 1], [2, 0], [3, 2]])


def test_hgpo_adaptive_weighting_by_hand() -> None:
    # Four rollouts take a different first action from the same start S (the level-1 context X or Y),
    # then see the same observation: gamma 1, rewards at step 1: X -> 10, 6; Y -> 0, 4.
    codes = {"S": 1, "C": 2, "XC": 3, "YC": 4}
    context = ["XC", "XC", "YC", "YC"]
    final = [10.0, 6.0, 0.0, 4.0]
    batch = StepBatch(
        group=np.zeros(8, dtype=np.int64), traj=np.repeat(np.arange(4), 2), step=np.tile([0, 1], 4),
        reward=np.array([r for f in final for r in (0.0, f)]),
        keys=np.array([k for c in context for k in ([1, 1], [2, codes[c]])], dtype=np.uint64),
    )  # fmt: skip
    # Level 0 before the loop: groups S and C both hold [10, 6, 0, 4] (SS 52 each): sigma2 = 104 / 6.
    # Level 1 (step-1 rows): parent C (mean 5), cells X [10, 6] (mean 8), Y [0, 4] (mean 2).
    #   within: SS 8 + 8 = 16 over 4 - 2 = 2 df -> sigma2 = 8
    #   between: 2 (8 - 5)^2 + 2 (2 - 5)^2 = 36; cells - parents = 1; spread df = 4 - (4/4 + 4/4) = 2
    #   tau2 = (36 - 1 * 8) / 2 = 14 -> kappa = 8 / 14; Z = 2 / (2 + 4/7) = 7/9.
    # Step-1 advantages = 7/9 * (R - cell mean) + 2/9 * (R - 5):
    #   X10: 7/9 * 2 + 2/9 * 5 = 24/9; X6: -14/9 + 2/9 = -12/9; Y0: -24/9; Y4: 12/9.
    # Step 0 has level 0 only (group S, mean 5): [5, 1, -5, -1].
    adv, diagnostics = estimate_advantages(
        "hgpo", batch, gamma=1.0, mode="mean_norm", weighting="adaptive", return_diagnostics=True
    )
    np.testing.assert_allclose(adv, [5, 24 / 9, 1, -12 / 9, -5, -24 / 9, -1, 12 / 9], rtol=1e-6)
    assert diagnostics["level1/kappa"] == pytest.approx(4 / 7)
    assert diagnostics["level1/mean_weight"] == pytest.approx(4 * 7 / 9 / 8)
    # Reference weighting on the same steps: X10 = (2 * 5 + 3 * 2) / 5 = 3.2 (level 0 weighs 2/5, not 2/9).
    assert hgpo(batch, gamma=1.0, mode="mean_norm")[1] == pytest.approx(16 / (5 + EPS), rel=1e-6)


def test_adaptive_falls_back_to_level_0_when_contexts_do_not_differ() -> None:
    # THREE has no evidence of between-context spread at level 1 or 2 (tau2 = 0 -> kappa = inf),
    # so adaptive HGPO equals the level-0 (GiGPO step) advantage: T1_2 = +6.6667, T3_2 = -3.3333.
    adv, diagnostics = estimate_advantages(
        "hgpo", make_batch(THREE, depth=2), gamma=0.5, mode="mean_norm", weighting="adaptive",
        return_diagnostics=True,
    )  # fmt: skip
    np.testing.assert_allclose(
        adv, [5 / 3, 2.5, 20 / 3, -5 / 6, 0, -10 / 3, -5 / 6, -2.5, -10 / 3], rtol=1e-6
    )
    assert diagnostics["level1/kappa"] == np.inf
    assert diagnostics["level0/mean_weight"] == 1.0


def test_all_equal_returns_give_exact_zeros() -> None:
    # Ten identical successful rollouts of 5 steps: every group at every level holds equal returns
    # 10 * 0.95^(4-t). The reference's float32 torch mean of six or more copies of 9.025 is one ulp
    # off (9.5e-7), which mean_std_norm divides by (0 + 1e-6): every member gets -0.488. Even a
    # float64 mean of ten copies of 9.025 is 1.8e-15 off, enough to defeat the exact-zero rule.
    # Here every advantage is exactly 0.
    batch = make_batch({f"T{i}": ("ABCDE", [0, 0, 0, 0, 10]) for i in range(10)}, depth=2)
    for name in ("grpo", "gigpo", "hgpo"):
        for mode in ("mean_norm", "mean_std_norm"):
            for weighting in ("reference", "paper", "adaptive"):
                adv = estimate_advantages(name, batch, gamma=0.95, mode=mode, weighting=weighting)
                np.testing.assert_array_equal(adv, np.zeros(50, dtype=np.float32))


def test_singleton_groups() -> None:
    # Every trajectory sees different observations: no shared group at any level.
    batch = make_batch({"T1": ("AB", [0, 10]), "T2": ("CD", [0, 0])}, depth=1)
    # GiGPO: step part 0 (singletons); episode part per step: [10, 10, 0, 0] mean 5 -> +-5.
    np.testing.assert_allclose(estimate_advantages("gigpo", batch, mode="mean_norm"), [5, 5, -5, -5])
    # HGPO: all levels are singletons and are skipped -> 0 (reference, paper and adaptive).
    for weighting in ("reference", "paper", "adaptive"):
        np.testing.assert_array_equal(hgpo(batch, mode="mean_norm", weighting=weighting), np.zeros(4))
    # ... except the base group, which then is the whole advantage: 5 / (1 + 1e-6).
    np.testing.assert_allclose(hgpo(batch, mode="mean_norm", base_group=True), [5, 5, -5, -5], rtol=1e-6)


def test_diagnostics_by_hand() -> None:
    adv, diagnostics = estimate_advantages(
        "hgpo", make_batch(THREE, depth=2), gamma=0.5, mode="mean_norm", return_diagnostics=True
    )
    # Level-0 group sizes per step: T1 [3, 2, 3], T2 [3, 1, 3], T3 [3, 2, 3] -> mean 23/9, groups A B D C.
    assert diagnostics["level0/groups"] == 4
    assert diagnostics["level0/mean_group_size"] == pytest.approx(23 / 9)
    assert diagnostics["level0/shared_share"] == pytest.approx(8 / 9)
    # Level 1 (6 steps): sizes [2, 2, 1, 1, 2, 2]; level 2 (3 steps): [2, 1, 2].
    assert diagnostics["level1/mean_group_size"] == pytest.approx(10 / 6)
    assert diagnostics["level1/eligible_share"] == pytest.approx(6 / 9)
    assert diagnostics["level1/shared_share"] == pytest.approx(4 / 9)
    assert diagnostics["level2/groups"] == 2
    assert diagnostics["level2/shared_share"] == pytest.approx(2 / 9)
    # Deepest level shared: all but T2_1 (AD) and T2_2 (ADC) -> 7/9. Items per step sum to 14 -> 14/9.
    assert diagnostics["deepest_shared_share"] == pytest.approx(7 / 9)
    assert diagnostics["mean_items"] == pytest.approx(14 / 9)
    assert diagnostics["zero_advantage_share"] == pytest.approx(1 / 9)
    assert np.count_nonzero(adv == 0) == 1


def test_group_sizes_by_hand() -> None:
    sizes = group_sizes(make_batch(THREE, depth=2))
    np.testing.assert_array_equal(
        sizes,
        [[3, 0, 0], [2, 2, 0], [3, 2, 2], [3, 0, 0], [1, 1, 0], [3, 1, 1], [3, 0, 0], [2, 2, 0], [3, 2, 2]],
    )


def test_shuffled_rows_and_global_or_per_group_traj_ids_give_the_same_advantages() -> None:
    # Two groups whose trajectory ids restart at 0 in each group: (group, traj) is the trajectory.
    first, second = make_batch(THREE, depth=2, group=7), make_batch(ZERO_CASE, depth=1, group=3)
    keys = np.concatenate([first.keys, np.pad(second.keys, ((0, 0), (0, 1)))])
    parts = [
        np.concatenate([getattr(first, f), getattr(second, f)]) for f in ("group", "traj", "step", "reward")
    ]
    batch = StepBatch(*parts, keys=keys)
    order = np.random.default_rng(0).permutation(len(batch))
    shuffled = StepBatch(*(p[order] for p in parts), keys=keys[order])
    for weighting in ("reference", "paper", "adaptive"):
        adv = hgpo(batch, gamma=0.5, mode="mean_norm", weighting=weighting, history_length=1)
        np.testing.assert_array_equal(
            hgpo(shuffled, gamma=0.5, mode="mean_norm", weighting=weighting, history_length=1), adv[order]
        )
    # Group 7 alone (non-adaptive weightings do not look across groups): T1_1 is 2.5 as in THREE.
    assert hgpo(batch, gamma=0.5, mode="mean_norm", history_length=1)[1] == pytest.approx(2.5, rel=1e-6)


def test_empty_batch() -> None:
    empty = StepBatch(group=[], traj=[], step=[], reward=[], keys=np.zeros((0, 3), dtype=np.uint64))
    adv, diagnostics = estimate_advantages("hgpo", empty, return_diagnostics=True)
    assert adv.dtype == np.float32 and adv.shape == (0,)
    assert diagnostics == {"zero_advantage_share": 0.0}
    assert discounted_returns(empty, 0.95).shape == (0,)


def test_keys_accept_python_ints_up_to_2_64() -> None:
    big = [[2**64 - 1], [2**64 - 1], [2**63]]
    batch = StepBatch(group=[0, 0, 0], traj=[0, 1, 2], step=[0, 0, 0], reward=[10.0, 0.0, 0.0], keys=big)
    assert batch.keys.dtype == np.uint64
    # Group {10, 0} on the shared key -> +-5; the third step is a singleton -> 0 step advantage.
    np.testing.assert_allclose(hgpo(batch, mode="mean_norm", weighting="paper"), [5, -5, 0])


# ------------------------------------------------------------------------------ errors


def _batch(**changes) -> StepBatch:
    fields = {
        "group": [0, 0, 0],
        "traj": [0, 0, 1],
        "step": [0, 1, 0],
        "reward": [0.0, 1.0, 0.0],
        "keys": [1, 2, 1],
    }
    return StepBatch(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"step": [0, 2, 0]}, ValueError, r"trajectory \(group=0, traj=0\) has steps \[0, 2\]"),
        ({"step": [0, 0, 0]}, ValueError, r"has steps \[0, 0\]"),
        ({"step": [1, 2, 0]}, ValueError, r"has steps \[1, 2\]"),
        ({"group": [0.0, 0.0, 0.0]}, TypeError, "StepBatch.group must hold integers"),
        ({"traj": [0, 0]}, ValueError, r"StepBatch.traj must have shape \(3,\)"),
        ({"reward": [0.0, np.nan, 0.0]}, ValueError, "StepBatch.reward must be finite, row 1"),
        ({"reward": ["a", "b", "c"]}, TypeError, "StepBatch.reward must be real numbers"),
        ({"keys": np.zeros((3, 2, 1))}, ValueError, r"StepBatch.keys must have shape \(N, K\+1\)"),
        ({"keys": [0.5, 1.5, 2.5]}, TypeError, "StepBatch.keys must hold integers"),
        ({"keys": [[-1], [2**64], [0]]}, TypeError, r"StepBatch.keys must hold integers in \[0, 2\*\*64\)"),
        ({"group": [[0, 0, 0]]}, ValueError, "StepBatch.group must be 1-D"),
    ],
)
def test_bad_batches_are_rejected_with_a_clear_error(changes: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _batch(**changes)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("ppo", {}, "estimator name must be one of 'grpo', 'gigpo', 'hgpo'; got 'ppo'"),
        ("hgpo", {"mode": "std"}, "mode must be one of"),
        ("hgpo", {"weighting": "uniform"}, "weighting must be one of"),
        ("gigpo", {"episode_stats": "episode"}, "episode_stats must be one of"),
        ("hgpo", {"gamma": 1.5}, r"gamma must be a number in \[0, 1\]"),
        ("hgpo", {"alpha": float("nan")}, "alpha must be a finite number"),
        ("hgpo", {"epsilon": 0.0}, "epsilon must be > 0"),
        ("hgpo", {"history_length": 1}, "history_length=1 needs 2 key columns, but batch.keys has 1"),
        ("hgpo", {"history_length": -1}, "history_length must be an integer >= 0"),
        ("hgpo", {"base_group": "yes"}, "base_group must be True or False"),
        ("hgpo", {"weighting": "adaptive", "base_group": True}, "base_group=True does not combine"),
        ("hgpo", {"alpha": 2000.0}, r"alpha=2000.0 makes the level weights \(k\+2\)\^alpha overflow"),
    ],
)
def test_bad_options_are_rejected_with_a_clear_error(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_advantages(name, _batch(), **options)


def test_batch_must_be_a_step_batch() -> None:
    with pytest.raises(TypeError, match="batch must be a StepBatch, got dict"):
        estimate_advantages("grpo", {"group": [0]})  # type: ignore[arg-type]


def test_name_is_case_insensitive_and_inapplicable_options_are_ignored() -> None:
    batch = _batch()
    plain = estimate_advantages("grpo", batch)
    np.testing.assert_array_equal(estimate_advantages("GRPO", batch, alpha=3.0, weighting="paper"), plain)
