"""Hand-computed checks of HiPER's hierarchical advantage estimation (hgpo.advantages.hiper).

Every expected number is worked out in the comment above it. Turn patterns spell one
trajectory: S = boundary turn (SWITCH, or the first turn), K = KEEP turn, C = KEEP turn
whose sub-goal text changed. Values are small binary fractions and gamma is 0.5 or 1,
so the arithmetic is exact. ``x`` marks a v_high the estimator must not read (NaN).
At the end, hypothesis compares the vectorised code with a plain restatement of the
formulas (explicit sums over segments, no recursion) on random batches.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hgpo.advantages.hiper import HAEResult, HiperBatch, hierarchical_advantages

x = math.nan
NO_SHAPING = {"invalid_penalty": 0.0, "keep_penalty": 0.0, "consistency_penalty": 0.0}
STREAMS = ("action_adv", "subgoal_adv", "term_adv", "v_low_target", "v_high_target", "v_term_target")
FLAGS = ("valid", "boundary", "keep_changed", "truncated", "has_action", "has_subgoal", "has_switch")
FIELDS = ("traj", "step", "reward", "v_high", "v_low", "v_term", *FLAGS)


def fields_of(batch: HiperBatch) -> dict[str, np.ndarray]:
    return {name: getattr(batch, name) for name in FIELDS}


def make(*trajectories: dict) -> HiperBatch:
    """Rows in trajectory order; each dict has ``pattern`` and per-turn lists (defaults below)."""
    rows: dict[str, list] = {name: [] for name in (
        "traj", "step", "reward", "valid", "boundary", "keep_changed", "v_high", "v_low", "v_term",
        "truncated", "has_action", "has_subgoal", "has_switch")}  # fmt: skip
    for i, spec in enumerate(trajectories):
        pattern = spec["pattern"]
        n = len(pattern)
        rows["traj"] += [i] * n
        rows["step"] += list(range(n))
        rows["boundary"] += [c == "S" for c in pattern]
        rows["keep_changed"] += [c == "C" for c in pattern]
        rows["truncated"] += [False] * (n - 1) + [spec.get("truncated", False)]
        for name in ("reward", "v_high", "v_low", "v_term"):
            rows[name] += list(spec.get(name, [0.0] * n))
        for name in ("valid", "has_action", "has_subgoal", "has_switch"):
            rows[name] += list(spec.get(name, [True] * n))
    return HiperBatch(**{name: np.array(values) for name, values in rows.items()})


def hae(batch: HiperBatch, **options) -> HAEResult:
    """Raw advantages (no normalisation) and no reward shaping unless asked for."""
    return hierarchical_advantages(batch, **{"normalize": False, **NO_SHAPING, **options})


def close(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- segments


def test_single_segment_is_turn_level_gae() -> None:
    # "SKK", terminated, rewards 0 1 2, v_low 1 2 4, gamma 0.5, lam 0.5.
    # delta_2 = 2 + 0 - 4 = -2                       A_2 = -2
    # delta_1 = 1 + 0.5 * 4 - 2 = 1                  A_1 = 1 + 0.25 * -2 = 0.5
    # delta_0 = 0 + 0.5 * 2 - 1 = 0                  A_0 = 0 + 0.25 * 0.5 = 0.125
    # G_2 = 2, G_1 = 1 + 0.5 * 2 = 2, G_0 = 0 + 0.5 * 2 = 1; term = G - v_term (0.5 1 1) = 0.5 1 1
    # planner: one segment, delta = G_0 - v_high_0 = 1 - 3 = -2, nothing after it: A = -2
    batch = make({"pattern": "SKK", "reward": [0, 1, 2], "v_low": [1, 2, 4], "v_high": [3, x, x],
                  "v_term": [0.5, 1, 1]})  # fmt: skip
    res = hae(batch, gamma=0.5, lam=0.5)
    close(res.action_adv, [0.125, 0.5, -2])
    close(res.subgoal_adv, [-2, 0, 0])
    close(res.term_adv, [0.5, 1, 1])
    # targets: v_low + A_low = 1.125 2.5 2; v_high + A_high = 1 on the boundary; v_term target = G
    close(res.v_low_target, [1.125, 2.5, 2])
    close(res.v_high_target, [1, 0, 0])
    close(res.v_term_target, [1, 2, 2])
    np.testing.assert_array_equal(res.subgoal_mask, [True, False, False])


def test_several_segments_bootstrap_to_the_next_boundary() -> None:
    # "SKSSK" = segments [0, 1], [2], [3, 4]; terminated; gamma 0.5, lam 1, lam_seg 0.5.
    # rewards 1 0 2 0 4; v_low 1 2 1 2 2; v_high 2 x 4 1 x; v_term 0.
    # executor, segment [3, 4]: A_4 = 4 - 2 = 2; delta_3 = 0 + 0.5 * 2 - 2 = -1, A_3 = -1 + 0.5 * 2 = 0
    #   segment [2] ends before boundary 3: A_2 = 2 + 0.5 * v_high_3 (1) - 1 = 1.5
    #   segment [0, 1]: A_1 = 0 + 0.5 * v_high_2 (4) - 2 = 0; delta_0 = 1 + 0.5 * 2 - 1 = 1, A_0 = 1 + 0.5 * 0 = 1
    # G: G_4 = 4, G_3 = 0.5 * 4 = 2; G_2 = 2 + 0.5 * 1 = 2.5; G_1 = 0.5 * 4 = 2, G_0 = 1 + 0.5 * 2 = 2
    # planner, last segment first: A(seg 3) = G_3 - v_high_3 = 2 - 1 = 1
    #   A(seg 2) = (2.5 - 4) + 0.5^1 * 0.5 * 1 = -1.25
    #   A(seg 0) = (G_0 - v_high_0 = 2 - 2 = 0) + 0.5^2 * 0.5 * -1.25 = -0.15625
    #   (G_0 is the segment-level delta written out: 1 + 0.5 * 0 + 0.5^2 * v_high_2 = 1 + 1 = 2)
    batch = make({"pattern": "SKSSK", "reward": [1, 0, 2, 0, 4], "v_low": [1, 2, 1, 2, 2],
                  "v_high": [2, x, 4, 1, x]})  # fmt: skip
    res = hae(batch, gamma=0.5, lam=1.0, lam_seg=0.5)
    close(res.action_adv, [1, 0, 1.5, 0, 2])
    close(res.subgoal_adv, [-0.15625, 0, -1.25, 1, 0])
    close(res.term_adv, [2, 2, 2.5, 2, 4])
    close(res.v_high_target, [2 - 0.15625, 0, 4 - 1.25, 1 + 1, 0])
    # with lam 1 the executor is a Monte Carlo return inside the segment: v_low target = G
    close(res.v_low_target, [2, 2, 2.5, 2, 4])
    close(res.v_term_target, [2, 2, 2.5, 2, 4])
    assert res.stats["segments"] == 3 and res.stats["keep_share"] == pytest.approx(2 / 5)


TRUNCATED = {"pattern": "SKSK", "reward": [0, 1, 0, 0], "v_low": [1, 2, 3, 5], "v_high": [2, x, 4, x],
             "v_term": [1, 1, 1, 1], "truncated": True}  # fmt: skip


def test_truncated_without_bootstrap_ends_like_a_terminal_state() -> None:
    # "SKSK" cut by the step limit; gamma = lam = lam_seg = 1; the state after the cut is worth 0.
    # segment [2, 3]: A_3 = 0 + 0 - 5 = -5; A_2 = (0 + 5 - 3) + -5 = -3
    # segment [0, 1]: A_1 = 1 + v_high_2 (4) - 2 = 3; A_0 = (0 + 2 - 1) + 3 = 4
    # G: G_3 = G_2 = 0; G_1 = 1 + 4 = 5, G_0 = 5. term = G - 1 = 4 4 -1 -1
    # planner: A(seg 2) = 0 - 4 = -4; A(seg 0) = (5 - 2) + 1 * 1 * -4 = -1
    res = hae(make(TRUNCATED), gamma=1.0, lam=1.0, lam_seg=1.0, bootstrap_truncated=False)
    close(res.action_adv, [4, 3, -3, -5])
    close(res.term_adv, [4, 4, -1, -1])
    close(res.subgoal_adv, [-1, 0, -4, 0])


def test_truncated_with_bootstrap_uses_the_reference_proxies() -> None:
    # As above, but the last turn bootstraps: executor with its own v_low (5), the segment
    # return with the last segment's v_high (v_high_2 = 4), as the reference does.
    # A_3 = 0 + 5 - 5 = 0; A_2 = (0 + 5 - 3) + 0 = 2; segment [0, 1] unchanged: 3, 4
    # G_3 = 0 + 4 = 4, G_2 = 4; term = 4 4 3 3
    # planner: A(seg 2) = 4 - 4 = 0; A(seg 0) = 3 + 0 = 3
    res = hae(make(TRUNCATED), gamma=1.0, lam=1.0, lam_seg=1.0, bootstrap_truncated=True)
    close(res.action_adv, [4, 3, 2, 0])
    close(res.term_adv, [4, 4, 3, 3])
    close(res.subgoal_adv, [3, 0, 0, 0])
    close(res.v_term_target, [5, 5, 4, 4])


def test_bootstrap_option_leaves_terminated_trajectories_alone() -> None:
    terminated = {**TRUNCATED, "truncated": False}
    on = hae(make(terminated), gamma=1.0, lam=1.0, lam_seg=1.0, bootstrap_truncated=True)
    off = hae(make(TRUNCATED), gamma=1.0, lam=1.0, lam_seg=1.0, bootstrap_truncated=False)
    for name in STREAMS:
        np.testing.assert_array_equal(getattr(on, name), getattr(off, name))


def test_all_keep_is_flat_gae_with_v_low_and_one_planner_decision() -> None:
    # "SKKK", rewards 0 0 0 10, v_low 2 4 6 8, gamma 1, lam 0.5: every delta is 2
    # (10 - 8, 0 + 8 - 6, 0 + 6 - 4, 0 + 4 - 2); A_3 = 2, A_2 = 2 + 0.5 * 2 = 3,
    # A_1 = 2 + 0.5 * 3 = 3.5, A_0 = 2 + 0.5 * 3.5 = 3.75.
    # G = 10 10 10 10; planner: A = G_0 - v_high_0 = 10 - 5 = 5; term = 10 - 9 = 1.
    batch = make({"pattern": "SKKK", "reward": [0, 0, 0, 10], "v_low": [2, 4, 6, 8], "v_high": [5, x, x, x],
                  "v_term": [9, 9, 9, 9]})  # fmt: skip
    res = hae(batch, gamma=1.0, lam=0.5)
    close(res.action_adv, [3.75, 3.5, 3, 2])
    close(res.subgoal_adv, [5, 0, 0, 0])
    close(res.term_adv, [1, 1, 1, 1])


def test_all_switch_makes_every_turn_a_segment() -> None:
    # "SSSS", rewards 0 0 0 10, v_high 2 4 6 8, v_low 3, v_term 1, gamma 1, lam_seg 0.5.
    # executor (one-turn segments, lam plays no part): A_j = r_j + v_high_{j+1} - 3 = 1 3 5 7 (A_3 = 10 - 3)
    # G_j = r_j + v_high_{j+1} = 4 6 8 10; term = G - 1 = 3 5 7 9
    # planner: every delta = G_j - v_high_j = 2; A_3 = 2, A_2 = 2 + 0.5 * 2 = 3,
    #   A_1 = 2 + 0.5 * 3 = 3.5, A_0 = 2 + 0.5 * 3.5 = 3.75 (GAE(0.5) on V_high, turn by turn)
    batch = make({"pattern": "SSSS", "reward": [0, 0, 0, 10], "v_high": [2, 4, 6, 8], "v_low": [3] * 4,
                  "v_term": [1] * 4})  # fmt: skip
    for lam in (0.0, 1.0):
        res = hae(batch, gamma=1.0, lam=lam, lam_seg=0.5)
        close(res.action_adv, [1, 3, 5, 7])
        close(res.term_adv, [3, 5, 7, 9])
        close(res.subgoal_adv, [3.75, 3.5, 3, 2])
        assert res.subgoal_mask.all()


# ----------------------------------------------------------------------------- reward shaping


def test_invalid_turn_penalty_enters_the_returns() -> None:
    # "SKK", rewards 0 0 10, turn 1 invalid, penalty 0.1: shaped rewards 0 -0.1 10.
    # Values 0, gamma = lam = 1: A = return within the segment = 9.9 9.9 10 (the penalty
    # flows back to turn 0, as in the HiPER reference; GiGPO's reference adds it after the returns).
    batch = make({"pattern": "SKK", "reward": [0, 0, 10], "valid": [True, False, True]})
    res = hae(batch, invalid_penalty=0.1)
    close(res.turn_reward, [0, -0.1, 10])
    close(res.action_adv, [9.9, 9.9, 10])
    close(res.subgoal_adv, [9.9, 0, 0])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # plain: -0.3 on every KEEP turn
        ("plain", [*(0, -0.3, -0.3, 0, -0.3), *(0, 0), *(0, -0.3, -0.3)]),
        # normalized: trajectory total -0.3 x #KEEP / T spread over the KEEP turns = -0.3 / T each:
        # SKKSK: -0.3 / 5 = -0.06 (total -0.18 = -0.3 x 3/5); SS: none; SKK: -0.1 (total -0.2 = -0.3 x 2/3)
        ("normalized", [*(0, -0.06, -0.06, 0, -0.06), *(0, 0), *(0, -0.1, -0.1)]),
    ],
)
def test_keep_penalty_modes(mode: str, expected: list[float]) -> None:
    batch = make({"pattern": "SKKSK"}, {"pattern": "SS"}, {"pattern": "SKK"})
    res = hae(batch, keep_penalty=-0.3, keep_penalty_mode=mode)
    close(res.turn_reward, expected)
    # values 0, gamma = lam = 1: the executor advantage is the return to the segment's end.
    # plain SKKSK: segment [0..2] -> -0.6 -0.6 -0.3, segment [3, 4] -> -0.3 -0.3
    if mode == "plain":
        close(res.action_adv[:5], [-0.6, -0.6, -0.3, -0.3, -0.3])


def test_consistency_penalty_on_changed_keep_turns() -> None:
    # "SCK": turn 1 is a KEEP that changed the sub-goal. keep -0.3 plain + consistency -0.3:
    # shaped rewards 0, -0.3 - 0.3 = -0.6, -0.3.
    batch = make({"pattern": "SCK"})
    res = hae(batch, keep_penalty=-0.3, keep_penalty_mode="plain", consistency_penalty=-0.3)
    close(res.turn_reward, [0, -0.6, -0.3])
    close(hae(batch, consistency_penalty=-0.3).turn_reward, [0, -0.3, 0])


def test_default_options_are_the_reference_alfworld_run() -> None:
    # defaults: invalid 0.1, keep -0.3 normalized, consistency -0.3; "SCK" with turn 2 invalid:
    # turn 1: -0.3 / 3 - 0.3 = -0.4; turn 2: -0.1 - 0.1 = -0.2
    batch = make({"pattern": "SCK", "valid": [True, True, False]})
    res = hierarchical_advantages(batch, normalize=False)
    close(res.turn_reward, [0, -0.4, -0.2])


# ----------------------------------------------------------------------------- normalisation and masks


FOUR = [{"pattern": "S", "v_low": [v_low], "v_high": [v_high], "v_term": [v_term]}
        for v_low, v_high, v_term in ((0, 1, -4), (0, -1, 0), (-2, 1, 0), (-2, -1, 0))]  # fmt: skip


def test_each_stream_is_normalised_on_its_own() -> None:
    # Four one-turn trajectories with reward 0: action = -v_low = 0 0 2 2, planner = -v_high
    # = -1 1 -1 1, term = -v_term = 4 0 0 0.
    # action: mean 1, deviations -1 -1 1 1, population std 1 -> -1 -1 1 1
    # planner: mean 0, std 1 -> unchanged
    # term: mean 1, deviations 3 -1 -1 -1, variance (9 + 1 + 1 + 1) / 4 = 3 -> 3/sqrt 3, -1/sqrt 3 ...
    res = hierarchical_advantages(make(*FOUR), **NO_SHAPING)
    close(res.action_adv, [-1, -1, 1, 1])
    close(res.subgoal_adv, [-1, 1, -1, 1])
    s = math.sqrt(3)
    close(res.term_adv, [3 / s, -1 / s, -1 / s, -1 / s])
    # value targets are never normalised
    close(res.v_term_target, [0, 0, 0, 0])


def test_planner_stream_is_normalised_over_boundary_turns_only() -> None:
    # "SK" + "S": planner raw = G_0 - v_high_0 on the boundaries: 10 - 2 = 8 and 0 - 4 = -4
    # (the KEEP row has no planner advantage and must not count): mean 2, std 6 -> 1, -1.
    batch = make({"pattern": "SK", "reward": [0, 10], "v_high": [2, x]}, {"pattern": "S", "v_high": [4]})
    res = hierarchical_advantages(batch, **NO_SHAPING)
    close(res.subgoal_adv, [1, 0, -1])


def test_span_masks_limit_each_stream() -> None:
    # As FOUR, but only the first two rows have sub-goal tokens and row 3 no switch tokens:
    # planner over -1 1 -> -1 1, rows 3-4 -> 0; term over 4 0 0 -> mean 4/3, deviations
    # 8/3 -4/3 -4/3, variance (64 + 16 + 16) / 27 = 32/9, std 4 sqrt(2)/3 -> sqrt 2, -1/sqrt 2, -1/sqrt 2.
    specs = [dict(spec) for spec in FOUR]
    for spec, has_subgoal, has_switch in zip(specs, (1, 1, 0, 0), (1, 1, 1, 0), strict=True):
        spec["has_subgoal"], spec["has_switch"] = [bool(has_subgoal)], [bool(has_switch)]
    specs[2]["v_high"] = specs[3]["v_high"] = [100.0]  # out of the planner's mask: no effect
    res = hierarchical_advantages(make(*specs), **NO_SHAPING)
    close(res.subgoal_adv, [-1, 1, 0, 0])
    r = math.sqrt(2)
    close(res.term_adv, [r, -1 / r, -1 / r, 0])
    np.testing.assert_array_equal(res.subgoal_mask, [True, True, False, False])
    np.testing.assert_array_equal(res.term_mask, [True, True, True, False])
    # the planner's value target exists on every boundary turn: v_high + (G - v_high) = G = 0
    close(res.v_high_target, [0, 0, 0, 0])


def test_constant_stream_normalises_to_exact_zeros() -> None:
    # Seven executor advantages of 0.1 (lam 0, values 0, every reward 0.1): a float mean of
    # seven 0.1s is not exactly 0.1, yet the normalised stream must be exactly 0, not
    # a rounding residue divided by epsilon.
    batch = make({"pattern": "SKK", "reward": [0.1] * 3}, *[{"pattern": "S", "reward": [0.1]}] * 4)
    res = hierarchical_advantages(batch, **NO_SHAPING, lam=0.0, gamma=0.0)
    np.testing.assert_array_equal(res.action_adv, np.zeros(7))


# ----------------------------------------------------------------------------- batch handling


def test_rows_in_any_order_give_identical_results() -> None:
    rng = np.random.default_rng(0)
    batch = random_batch(rng, n_traj=12, max_len=9)
    order = rng.permutation(len(batch))
    shuffled = HiperBatch(**{name: getattr(batch, name)[order] for name in FIELDS})
    for normalize in (False, True):
        a = hierarchical_advantages(batch, normalize=normalize, lam=0.9, lam_seg=0.95, gamma=0.9)
        b = hierarchical_advantages(shuffled, normalize=normalize, lam=0.9, lam_seg=0.95, gamma=0.9)
        for name in (*STREAMS, "turn_reward", "action_mask", "subgoal_mask", "term_mask"):
            np.testing.assert_array_equal(getattr(a, name)[order], getattr(b, name))
        assert a.stats == b.stats


def test_v_high_off_boundaries_is_never_read() -> None:
    rng = np.random.default_rng(1)
    batch = random_batch(rng, n_traj=6, max_len=7)
    other = dict(fields_of(batch), v_high=np.where(batch.boundary, batch.v_high, np.nan))
    a = hierarchical_advantages(batch, normalize=False)
    b = hierarchical_advantages(HiperBatch(**other), normalize=False)
    for name in STREAMS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_empty_batch() -> None:
    empty = {name: np.zeros(0, dtype=bool if name in FLAGS else np.int64) for name in FIELDS}
    res = hierarchical_advantages(HiperBatch(**empty))
    assert res.action_adv.shape == (0,) and res.action_adv.dtype == np.float32
    assert res.stats["segments"] == 0


def test_outputs_are_float32_in_row_order() -> None:
    res = hae(make({"pattern": "SK", "reward": [0, 1]}, {"pattern": "S", "reward": [2]}))
    assert all(getattr(res, name).dtype == np.float32 for name in (*STREAMS, "turn_reward"))
    close(res.action_adv, [1, 1, 2])


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"boundary": [False, False, True]}, ValueError, "boundary must be True on the first turn"),
        ({"keep_changed": [True, False, False]}, ValueError, "keep_changed marks a KEEP turn"),
        (
            {"truncated": [True, False, False]},
            ValueError,
            "truncated may only be True on a trajectory's last",
        ),
        ({"step": [0, 2, 3]}, ValueError, r"trajectory 0 has steps \[0, 2, 3\]"),
        ({"step": [0, 1, 1]}, ValueError, "without gaps or repeats"),
        ({"reward": [0.0, math.inf, 0.0]}, ValueError, "reward must be finite, row 1"),
        ({"v_low": [0.0, math.nan, 0.0]}, ValueError, "v_low must be finite"),
        ({"v_high": [math.nan, 0.0, 0.0]}, ValueError, "v_high must be finite, row 0"),
        ({"reward": ["a", "b", "c"]}, TypeError, "reward must hold real numbers"),
        ({"valid": [1, 2, 0]}, TypeError, "valid must hold booleans"),
        ({"traj": [0.0, 0.0, 0.0]}, TypeError, "traj must hold integers"),
        ({"v_term": [0.0, 0.0]}, ValueError, r"v_term must be shape \(3,\) like traj"),
    ],
)
def test_bad_batches_raise_clear_errors(change: dict, error: type, message: str) -> None:
    good = fields_of(make({"pattern": "SKS"}))
    with pytest.raises(error, match=message):
        HiperBatch(**{**good, **{k: np.array(v) for k, v in change.items()}})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gamma": 1.5}, "gamma must be a number in"),
        ({"lam": -0.1}, "lam must be a number in"),
        ({"lam_seg": True}, "lam_seg must be a number in"),
        ({"keep_penalty_mode": "fixed"}, "keep_penalty_mode must be one of"),
        ({"keep_penalty": math.nan}, "keep_penalty must be a finite number"),
        ({"invalid_penalty": "0.1"}, "invalid_penalty must be a finite number"),
        ({"epsilon": -1.0}, "epsilon must be a number >= 0"),
    ],
)
def test_bad_options_raise_clear_errors(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hierarchical_advantages(make({"pattern": "SK"}), **options)


def test_integer_flags_are_accepted() -> None:
    spec = fields_of(make({"pattern": "SKS", "reward": [0, 0, 1]}))
    as_ints = {**spec, **{name: spec[name].astype(np.int8) for name in FLAGS}}
    a, b = hae(HiperBatch(**spec)), hae(HiperBatch(**as_ints))
    np.testing.assert_array_equal(a.action_adv, b.action_adv)


# ----------------------------------------------------------------------------- properties


def random_batch(rng: np.random.Generator, n_traj: int, max_len: int) -> HiperBatch:
    specs = []
    for _ in range(n_traj):
        n = int(rng.integers(1, max_len + 1))
        letters = rng.choice(list("SKC"), size=n)
        letters[0] = "S"
        specs.append({
            "pattern": "".join(letters), "reward": rng.integers(-2, 11, n) / 2, "v_low": rng.normal(size=n),
            "v_high": rng.normal(size=n), "v_term": rng.normal(size=n), "valid": rng.random(n) < 0.8,
            "truncated": bool(rng.random() < 0.5), "has_subgoal": rng.random(n) < 0.9,
        })  # fmt: skip
    batch = make(*specs)
    ids = rng.permutation(10 * n_traj)[:n_traj] - 3  # arbitrary, possibly negative ids
    return HiperBatch(**dict(fields_of(batch), traj=ids[batch.traj]))


def straightforward(b: HiperBatch, *, gamma: float, lam: float, lam_seg: float, invalid_penalty: float,
                    keep_penalty: float, keep_penalty_mode: str, consistency_penalty: float,
                    bootstrap_truncated: bool) -> dict[str, list[float]]:  # fmt: skip
    """The formulas of docs/hiper.md with plain lists, one trajectory and one segment at a time."""
    n = len(b)
    out = {name: [0.0] * n for name in ("action", "planner", "term", "reward")}
    for tid in sorted(set(b.traj.tolist())):
        rows = sorted((i for i in range(n) if b.traj[i] == tid), key=lambda i: b.step[i])
        T = len(rows)
        r = []
        for i in rows:
            keep = (
                0.0 if b.boundary[i] else (keep_penalty if keep_penalty_mode == "plain" else keep_penalty / T)
            )
            value = (
                b.reward[i]
                - invalid_penalty * (not b.valid[i])
                + keep
                + consistency_penalty * b.keep_changed[i]
            )
            r.append(value)
            out["reward"][i] = value
        starts = [p for p in range(T) if b.boundary[rows[p]]]
        segments = [(s, (starts[k + 1] if k + 1 < len(starts) else T) - 1) for k, s in enumerate(starts)]
        cut = bool(b.truncated[rows[-1]]) and bootstrap_truncated
        deltas = []
        for s, e in segments:
            if e < T - 1:
                exec_boot = seg_boot = b.v_high[rows[e + 1]]
            elif cut:
                exec_boot, seg_boot = b.v_low[rows[e]], b.v_high[rows[s]]
            else:
                exec_boot = seg_boot = 0.0
            v = [b.v_low[rows[p]] for p in range(s, e + 1)] + [exec_boot]
            td = [r[p] + gamma * v[p - s + 1] - v[p - s] for p in range(s, e + 1)]
            for p in range(s, e + 1):
                out["action"][rows[p]] = sum((gamma * lam) ** (q - p) * td[q - s] for q in range(p, e + 1))
                to_go = (
                    sum(gamma ** (q - p) * r[q] for q in range(p, e + 1)) + gamma ** (e - p + 1) * seg_boot
                )
                out["term"][rows[p]] = to_go - b.v_term[rows[p]]
                if p == s:
                    deltas.append(to_go - b.v_high[rows[s]])
        for k, (s, _) in enumerate(segments):
            total, weight = 0.0, 1.0
            for m in range(k, len(segments)):
                total += weight * deltas[m]
                weight *= gamma ** (segments[m][1] - segments[m][0] + 1) * lam_seg
            out["planner"][rows[s]] = total
    return out


@st.composite
def batches(draw) -> HiperBatch:
    seed = draw(st.integers(0, 2**32 - 1))
    return random_batch(np.random.default_rng(seed), draw(st.integers(1, 5)), draw(st.integers(1, 9)))


OPTIONS = st.fixed_dictionaries({
    "gamma": st.sampled_from([0.0, 0.5, 0.9, 1.0]), "lam": st.sampled_from([0.0, 0.5, 0.95, 1.0]),
    "lam_seg": st.sampled_from([0.0, 0.5, 0.95, 1.0]), "invalid_penalty": st.sampled_from([0.0, 0.1]),
    "keep_penalty": st.sampled_from([0.0, -0.3, -3.5]), "keep_penalty_mode": st.sampled_from(["plain", "normalized"]),
    "consistency_penalty": st.sampled_from([0.0, -0.3]), "bootstrap_truncated": st.booleans(),
})  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(batch=batches(), options=OPTIONS)
def test_matches_a_plain_restatement_of_the_formulas(batch: HiperBatch, options: dict) -> None:
    res = hierarchical_advantages(batch, normalize=False, **options)
    want = straightforward(batch, **options)
    tol = {"rtol": 1e-5, "atol": 1e-4}
    np.testing.assert_allclose(res.turn_reward, want["reward"], **tol)
    np.testing.assert_allclose(res.action_adv, want["action"], **tol)
    np.testing.assert_allclose(res.term_adv, want["term"], **tol)
    planner = np.where(batch.has_subgoal, want["planner"], 0.0)
    np.testing.assert_allclose(res.subgoal_adv, planner, **tol)
    np.testing.assert_allclose(
        res.v_high_target, np.where(batch.boundary, np.add(want["planner"], batch.v_high), 0), **tol
    )
    np.testing.assert_allclose(res.v_low_target, np.add(want["action"], batch.v_low), **tol)
    np.testing.assert_allclose(res.v_term_target, np.add(want["term"], batch.v_term), **tol)


@settings(max_examples=100, deadline=None)
@given(batch=batches(), options=OPTIONS)
def test_normalised_streams_are_the_raw_streams_standardised(batch: HiperBatch, options: dict) -> None:
    res = hierarchical_advantages(batch, normalize=True, **options)
    want = straightforward(batch, **options)
    streams = (("action_adv", res.action_mask, want["action"]), ("subgoal_adv", res.subgoal_mask, want["planner"]),
               ("term_adv", res.term_mask, want["term"]))  # fmt: skip
    for name, mask, raw in streams:
        values = np.asarray(raw)[mask]
        if values.size and values.std() > 1e-6:  # below that, rounding decides the direction
            want_normalised = (values - values.mean()) / (values.std() + 1e-8)
            np.testing.assert_allclose(getattr(res, name)[mask], want_normalised, rtol=1e-4, atol=1e-4)
        assert not getattr(res, name)[~mask].any()


@settings(max_examples=100, deadline=None)
@given(batch=batches(), options=OPTIONS)
def test_trajectories_do_not_interact_without_normalisation(batch: HiperBatch, options: dict) -> None:
    whole = hierarchical_advantages(batch, normalize=False, **options)
    for tid in np.unique(batch.traj):
        rows = batch.traj == tid
        alone = hierarchical_advantages(
            HiperBatch(**{name: value[rows] for name, value in fields_of(batch).items()}),
            normalize=False,
            **options,
        )
        for name in STREAMS:
            np.testing.assert_array_equal(getattr(whole, name)[rows], getattr(alone, name))


@settings(max_examples=100, deadline=None)
@given(batch=batches(), gamma=st.sampled_from([0.5, 1.0]))
def test_lambda_one_telescopes_to_returns(batch: HiperBatch, gamma: float) -> None:
    # lam = 1: the executor advantage is the segment's return to go minus v_low (the term
    # stream's G), when no truncation bootstrap is in play; lam_seg = 1: the planner's is
    # the whole remaining discounted return minus v_high of the segment's first turn.
    res = hierarchical_advantages(batch, normalize=False, gamma=gamma, lam=1.0, lam_seg=1.0,
                                  bootstrap_truncated=False)  # fmt: skip
    np.testing.assert_allclose(res.action_adv, res.v_term_target - batch.v_low, rtol=1e-5, atol=1e-4)
    for tid in np.unique(batch.traj):
        rows = np.flatnonzero(batch.traj == tid)
        rows = rows[np.argsort(batch.step[rows])]
        discount = gamma ** np.arange(rows.size)
        for p in np.flatnonzero(batch.boundary[rows] & batch.has_subgoal[rows]):
            rest = res.turn_reward[rows[p:]].astype(np.float64) @ discount[: rows.size - p]
            assert res.subgoal_adv[rows[p]] == pytest.approx(rest - batch.v_high[rows[p]], rel=1e-5, abs=1e-4)
