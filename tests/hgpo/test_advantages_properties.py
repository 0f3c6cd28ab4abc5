"""Property tests of hgpo.advantages against a plain-Python restatement of the definitions.

``straightforward`` below recomputes every estimator step by step with lists and
dicts (O(N^2), no numpy), following docs/advantages.md; hypothesis then checks the
vectorised code against it on random batches, plus invariances and the equivalences
between estimators. Rewards are small integers, penalties 0, 0.5 or 1 and gamma is 0,
0.5 or 1, so returns are exact in both implementations and exact-zero tests agree.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hgpo.advantages import StepBatch, estimate_advantages, segments
from hgpo.advantages.segments import dense_ids

EPS = 1e-6
SETTINGS = settings(max_examples=100, deadline=None)


def straightforward(name: str, b: StepBatch, *, gamma: float, mode: str, depth: int, alpha: float = 1.0,
                    base_group: bool = False, weighting: str = "reference", w: float = 1.0,
                    episode_stats: str = "step") -> list[float]:  # fmt: skip
    rows = range(len(b))
    group, step, reward = b.group.tolist(), b.step.tolist(), b.reward.tolist()
    penalty = b.penalty.tolist()  # subtracted from the step's own score and return, after discounting
    keys = b.keys.tolist()
    trajectories: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in rows:
        trajectories[(group[i], int(b.traj[i]))].append(i)
    ret = [0.0] * len(b)
    for members in trajectories.values():
        running = 0.0
        for i in sorted(members, key=lambda i: -step[i]):
            running = reward[i] + gamma * running
            ret[i] = running - penalty[i]
    total = {tid: sum(reward[i] for i in members) for tid, members in trajectories.items()}
    score = [total[(group[i], int(b.traj[i]))] - penalty[i] for i in rows]

    def mean_std(values: list[float], ddof: int) -> tuple[float, float]:
        mean = sum(values) / len(values)
        return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values) - ddof, 1))

    def episode(i: int) -> float:
        mine = score[i]
        if episode_stats == "step":
            entries = [score[j] for j in rows if group[j] == group[i]]
        else:  # one entry per trajectory: its total (no penalties in this mode)
            entries = [s for (g, _), s in total.items() if g == group[i]]
        mean, std = (0.0, 1.0) if len(entries) == 1 else mean_std(entries, 1)
        return mine - mean if mode == "mean_norm" else (mine - mean) / (std + EPS)

    def members(i: int, k: int) -> list[int]:
        return [j for j in rows if group[j] == group[i] and step[j] >= k and keys[j][k] == keys[i][k]]

    def level(i: int, k: int, ddof: int) -> float:
        mean, std = mean_std([ret[j] for j in members(i, k)], ddof)
        return ret[i] - mean if mode == "mean_norm" else (ret[i] - mean) / (std + EPS)

    if name == "grpo":
        return [episode(i) for i in rows]
    if name == "gigpo":
        return [episode(i) + w * (level(i, 0, 1) if len(members(i, 0)) > 1 else 0.0) for i in rows]
    if weighting == "adaptive":
        kappa = adaptive_kappas(b, ret, depth)
        out = []
        for i in rows:
            total, remaining = 0.0, 1.0
            for k in range(min(depth, step[i]), -1, -1):
                n = len(members(i, k))
                z = 1.0 if k == 0 else n / (n + kappa[k])
                total += remaining * z * (level(i, k, 0) if n > 1 else 0.0)
                remaining -= remaining * z
            out.append(total)
        return out
    out = []
    for i in rows:
        items = [(1.0, episode(i))] if base_group else []
        offset = 2 if weighting == "reference" else 1
        for k in range(min(depth, step[i]) + 1):
            if len(members(i, k)) > 1:
                items.append(((k + offset) ** alpha, level(i, k, 0)))
        items = [(wk, a) for wk, a in items if a != 0]
        weights = sum(wk for wk, _ in items)
        weighted = sum(wk * a for wk, a in items)
        if weighting == "reference":
            out.append(weighted / (weights + EPS))
        else:
            out.append(weighted / weights if items else 0.0)
    return out


def adaptive_kappas(b: StepBatch, ret: list[float], depth: int) -> dict[int, float]:
    """sigma2 / tau2 per level by the one-way random-effects moment formulas, with dicts."""

    def cells(key_of) -> dict:
        out = defaultdict(list)
        for i in range(len(b)):
            if key_of(i) is not None:
                out[key_of(i)].append(ret[i])
        return out

    def within(groups: dict) -> tuple[float, int]:
        ss = sum(sum((v - sum(vs) / len(vs)) ** 2 for v in vs) for vs in groups.values())
        return ss, sum(len(vs) for vs in groups.values()) - len(groups)

    g, keys, step = b.group.tolist(), b.keys.tolist(), b.step.tolist()
    ss, df = within(cells(lambda i: (g[i], keys[i][0])))
    sigma2 = ss / df if df > 0 else 0.0
    kappa = {}
    for k in range(1, depth + 1):
        child = cells(lambda i, k=k: (g[i], keys[i][k - 1], keys[i][k]) if step[i] >= k else None)
        parent = cells(lambda i, k=k: (g[i], keys[i][k - 1]) if step[i] >= k else None)
        ss, df = within(child)
        if df > 0:
            sigma2 = ss / df
        parent_mean = {p: sum(vs) / len(vs) for p, vs in parent.items()}
        between = sum(len(vs) * (sum(vs) / len(vs) - parent_mean[c[:2]]) ** 2 for c, vs in child.items())
        spread = sum(len(vs) for vs in parent.values()) - sum(
            len(vs) ** 2 / len(parent[c[:2]]) for c, vs in child.items()
        )
        tau2 = max(0.0, (between - (len(child) - len(parent)) * sigma2) / spread) if spread > 0 else 0.0
        kappa[k] = sigma2 / tau2 if tau2 > 0 else math.inf
    return kappa


@st.composite
def batches(draw: st.DrawFn, penalties: bool = False) -> StepBatch:
    """1-3 groups of 1-4 trajectories of 1-6 steps over a small alphabet, so groups get shared.

    Keys are either nested history windows (as memory makes them) or arbitrary per level.
    With ``penalties`` some steps carry a penalty (0.5 or 1), else none.
    """
    depth = draw(st.integers(0, 3))
    nested = draw(st.booleans())
    per_group_ids = draw(st.booleans())
    alphabet = draw(st.integers(1, 3))
    codes: dict[tuple, int] = {}
    rows = []
    traj_id = 0
    for group in range(draw(st.integers(1, 3))):
        for t in range(draw(st.integers(1, 4))):
            length = draw(st.integers(1, 6))
            symbols = st.integers(0, alphabet - 1)
            obs = draw(st.lists(symbols, min_size=length, max_size=length))
            act = draw(st.lists(st.integers(0, 1), min_size=length, max_size=length))
            rewards = draw(st.lists(st.sampled_from([0, 0, 0, 1, 10]), min_size=length, max_size=length))
            penalty = [0.0] * length
            if penalties:
                penalty = draw(st.lists(st.sampled_from([0.0, 0.0, 0.5, 1.0]), min_size=length, max_size=length))
            for s in range(length):
                if nested:
                    key = [
                        codes.setdefault(
                            (obs[s], tuple(zip(obs[s - k : s], act[s - k : s], strict=True))), len(codes)
                        )
                        for k in range(depth + 1)
                    ]
                else:
                    key = draw(st.lists(symbols, min_size=depth + 1, max_size=depth + 1))
                rows.append((group * 10, t if per_group_ids else traj_id, s, rewards[s], key, penalty[s]))
            traj_id += 1
    group, traj, step, reward, keys, penalty = (list(c) for c in zip(*rows, strict=True))
    return StepBatch(
        group=np.array(group), traj=np.array(traj), step=np.array(step),
        reward=np.array(reward, dtype=np.float32), keys=np.array(keys, dtype=np.uint64).reshape(len(rows), -1),
        penalty=np.array(penalty) if penalties else None,
    )  # fmt: skip


options = st.fixed_dictionaries(
    {
        "gamma": st.sampled_from([0.0, 0.5, 1.0]),
        "mode": st.sampled_from(["mean_norm", "mean_std_norm"]),
        "episode_stats": st.sampled_from(["step", "trajectory"]),
    }
)
hgpo_options = st.fixed_dictionaries(
    {
        "alpha": st.sampled_from([0.0, 0.5, 1.0, 2.0]),
        "weighting": st.sampled_from(["reference", "paper", "adaptive"]),
        "base_group": st.booleans(),
    }
)


@SETTINGS
@given(batch=batches(penalties=True), opts=options, hopts=hgpo_options, w=st.sampled_from([1.0, 0.5]))
def test_every_estimator_matches_the_straightforward_definition(
    batch: StepBatch, opts: dict, hopts: dict, w: float
) -> None:
    if hopts["weighting"] == "adaptive":
        hopts["base_group"] = False
    if opts["episode_stats"] == "trajectory":  # takes no penalties: a clear error, then the same batch without
        with pytest.raises(ValueError, match=r"does not combine with a per-step StepBatch\.penalty"):
            estimate_advantages("grpo", batch, **opts)
        batch = StepBatch(batch.group, batch.traj, batch.step, batch.reward, batch.keys)
    depth = batch.history_length
    expected = straightforward("grpo", batch, depth=depth, **opts)
    np.testing.assert_allclose(estimate_advantages("grpo", batch, **opts), expected, rtol=1e-5, atol=1e-5)
    expected = straightforward("gigpo", batch, depth=depth, w=w, **opts)
    got = estimate_advantages("gigpo", batch, step_advantage_w=w, **opts)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    expected = straightforward("hgpo", batch, depth=depth, **opts, **hopts)
    np.testing.assert_allclose(
        estimate_advantages("hgpo", batch, **opts, **hopts), expected, rtol=1e-5, atol=1e-5
    )


def _permuted(batch: StepBatch, order: np.ndarray) -> StepBatch:
    return StepBatch(
        batch.group[order], batch.traj[order], batch.step[order], batch.reward[order], batch.keys[order],
        batch.penalty[order],
    )  # fmt: skip


@SETTINGS
@given(batch=batches(penalties=True), opts=options, hopts=hgpo_options, seed=st.integers(0, 2**32 - 1))
def test_shuffling_rows_permutes_the_advantages_bit_for_bit(
    batch: StepBatch, opts: dict, hopts: dict, seed: int
) -> None:
    hopts["base_group"] &= hopts["weighting"] != "adaptive"
    opts["episode_stats"] = "step"  # the one that takes penalties
    order = np.random.default_rng(seed).permutation(len(batch))
    shuffled = _permuted(batch, order)
    for name in ("grpo", "gigpo", "hgpo"):
        expected = estimate_advantages(name, batch, **opts, **hopts)
        np.testing.assert_array_equal(estimate_advantages(name, shuffled, **opts, **hopts), expected[order])


@SETTINGS
@given(batch=batches(), opts=options, hopts=hgpo_options, seed=st.integers(0, 2**32 - 1))
def test_renaming_groups_trajectories_and_keys_changes_nothing(
    batch: StepBatch, opts: dict, hopts: dict, seed: int
) -> None:
    hopts["base_group"] &= hopts["weighting"] != "adaptive"
    rng = np.random.default_rng(seed)
    # Injective renamings: groups and trajectories to random distinct ids, keys XOR a random mask per level.
    groups = rng.choice(10**9, size=batch.group.max() + 1, replace=False)
    trajs = rng.choice(10**9, size=batch.traj.max() + 1, replace=False)
    masks = rng.integers(0, 2**63, size=batch.keys.shape[1], dtype=np.uint64)
    renamed = StepBatch(groups[batch.group], trajs[batch.traj], batch.step, batch.reward, batch.keys ^ masks)
    for name in ("grpo", "gigpo", "hgpo"):
        expected = estimate_advantages(name, batch, **opts, **hopts)
        np.testing.assert_allclose(
            estimate_advantages(name, renamed, **opts, **hopts), expected, rtol=1e-6, atol=1e-6
        )


@SETTINGS
@given(batch=batches(penalties=True), opts=options, hopts=hgpo_options)
def test_mean_norm_advantages_scale_with_the_rewards(batch: StepBatch, opts: dict, hopts: dict) -> None:
    hopts["base_group"] &= hopts["weighting"] != "adaptive"
    opts["mode"], opts["episode_stats"] = "mean_norm", "step"
    scaled = StepBatch(batch.group, batch.traj, batch.step, 4.0 * batch.reward, batch.keys, 4.0 * batch.penalty)
    for name in ("grpo", "gigpo", "hgpo"):
        expected = 4.0 * estimate_advantages(name, batch, **opts, **hopts)
        np.testing.assert_allclose(
            estimate_advantages(name, scaled, **opts, **hopts), expected, rtol=1e-5, atol=1e-5
        )


@SETTINGS
@given(batch=batches(penalties=True), opts=options, hopts=hgpo_options)
def test_groups_do_not_influence_each_other(batch: StepBatch, opts: dict, hopts: dict) -> None:
    # True for every estimator except adaptive HGPO, which pools its variance components over the batch.
    if hopts["weighting"] == "adaptive":
        hopts["weighting"] = "paper"
    opts["episode_stats"] = "step"
    keep = batch.group != batch.group[0]
    if not keep.any():
        return
    rest = StepBatch(
        batch.group[keep], batch.traj[keep], batch.step[keep], batch.reward[keep], batch.keys[keep],
        batch.penalty[keep],
    )  # fmt: skip
    for name in ("grpo", "gigpo", "hgpo"):
        full = estimate_advantages(name, batch, **opts, **hopts)
        np.testing.assert_array_equal(estimate_advantages(name, rest, **opts, **hopts), full[keep])


@SETTINGS
@given(batch=batches(), opts=options)
def test_grpo_per_trajectory_mean_norm_advantages_sum_to_zero_in_each_group(
    batch: StepBatch, opts: dict
) -> None:
    adv = estimate_advantages("grpo", batch, mode="mean_norm", episode_stats="trajectory")
    first = batch.step == 0  # one row per trajectory
    for g in np.unique(batch.group):
        in_group = first & (batch.group == g)
        if in_group.sum() > 1:
            assert abs(adv[in_group].astype(np.float64).sum()) < 1e-4


@SETTINGS
@given(batch=batches(), opts=options, alpha=st.sampled_from([0.0, 1.0]))
def test_hgpo_k0_with_base_group_is_gigpo_with_averaged_terms(
    batch: StepBatch, opts: dict, alpha: float
) -> None:
    # mean_norm, K = 0. HGPO's level 0 is GiGPO's anchor-state group, so with the same mode:
    #   HGPO(K=0, no base group, paper weighting) = GiGPO step term A_step,
    #   GRPO = GiGPO episode term A_ep, and GiGPO = A_ep + A_step.
    # With base_group, HGPO averages the non-zero terms instead of adding them:
    #   paper:     (A_ep + A_step) / (#non-zero terms)                           -> GiGPO / 2 when both are non-zero
    #   reference: (A_ep + 2^alpha A_step) / (1 [A_ep != 0] + 2^alpha [A_step != 0] + 1e-6)
    opts["mode"] = "mean_norm"
    common = {**opts, "history_length": 0}
    episode = estimate_advantages("grpo", batch, **opts).astype(np.float64)
    step = estimate_advantages("hgpo", batch, weighting="paper", **common).astype(np.float64)
    gigpo = estimate_advantages("gigpo", batch, **opts)
    np.testing.assert_allclose(gigpo, episode + step, rtol=1e-5, atol=1e-5)
    paper = estimate_advantages("hgpo", batch, weighting="paper", base_group=True, **common)
    both = (episode != 0) & (step != 0)
    np.testing.assert_allclose(paper, (episode + step) / np.where(both, 2, 1), rtol=1e-5, atol=1e-5)
    reference = estimate_advantages(
        "hgpo", batch, weighting="reference", base_group=True, alpha=alpha, **common
    )
    weight = 2.0**alpha
    expected = (episode + weight * step) / ((episode != 0) + weight * (step != 0) + EPS)
    np.testing.assert_allclose(reference, expected, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(batch=batches(), opts=options, weighting=st.sampled_from(["reference", "paper"]))
def test_large_alpha_keeps_only_the_deepest_surviving_level(
    batch: StepBatch, opts: dict, weighting: str
) -> None:
    # As alpha grows, (k+2)^alpha (or (k+1)^alpha) of the deepest level with a non-zero advantage
    # outweighs the rest: the result tends to that level's advantage alone.
    deepest = np.zeros(len(batch))
    for k in range(batch.history_length + 1):
        level_k = np.asarray(straightforward_level(batch, k, opts))
        deepest = np.where(level_k != 0, level_k, deepest)
    got = estimate_advantages("hgpo", batch, alpha=200.0, weighting=weighting, **opts)
    np.testing.assert_allclose(got, deepest, rtol=1e-4, atol=1e-4)


def straightforward_level(batch: StepBatch, k: int, opts: dict) -> list[float]:
    """Level k's advantage alone (0 for singletons and when k > step), by the definition.

    Paper weighting with a single level returns that level's advantage (0 when it has no item).
    """
    gamma, mode = opts["gamma"], opts["mode"]
    return straightforward("hgpo", _only_level(batch, k), gamma=gamma, mode=mode, depth=0, weighting="paper")


def _only_level(batch: StepBatch, k: int) -> StepBatch:
    # Rows below step k would join level k's groups if we just moved column k to 0; give them unique keys.
    keys = batch.keys[:, k].copy()
    early = batch.step < k
    keys[early] = np.uint64(2**63) + np.arange(early.sum(), dtype=np.uint64)
    return StepBatch(batch.group, batch.traj, batch.step, batch.reward, keys)


@SETTINGS
@given(batch=batches(), opts=options, hopts=hgpo_options)
def test_advantages_are_finite_float32_and_bounded_by_the_level_advantages(
    batch: StepBatch, opts: dict, hopts: dict
) -> None:
    hopts["base_group"] = False
    adv = estimate_advantages("hgpo", batch, **opts, **hopts)
    assert adv.dtype == np.float32 and adv.shape == (len(batch),) and np.isfinite(adv).all()
    # Every weighting is a convex combination (or less, with epsilon) of the level advantages.
    bound = np.zeros(len(batch))
    for k in range(batch.history_length + 1):
        bound = np.maximum(bound, np.abs(straightforward_level(batch, k, opts)))
    assert (np.abs(adv) <= bound + 1e-4).all()


# ------------------------------------------------------------------ grouping kernel

columns_strategy = st.integers(1, 60).flatmap(
    lambda n: st.lists(st.lists(st.integers(-3, 3), min_size=n, max_size=n), min_size=1, max_size=3)
)


@SETTINGS
@given(columns=columns_strategy)
def test_dense_ids_number_exactly_the_distinct_rows(columns: list[list[int]]) -> None:
    arrays = [np.array(c, dtype=np.int64) for c in columns]
    ids, n = dense_ids(*arrays)
    rows = list(zip(*columns, strict=True))
    assert n == len(set(rows))
    assert sorted(set(ids.tolist())) == list(range(n))
    # Same id <=> same row.
    first = {}
    for i, row in zip(ids.tolist(), rows, strict=True):
        assert first.setdefault(i, row) == row


def _colliding_pair() -> tuple[int, int]:
    """A second-column value that makes rows (1, 0) and (2, value) share a 64-bit hash."""
    golden = int(segments._GOLDEN)
    return 0, ((golden * 1) % 2**64) ^ ((golden * 2) % 2**64)


def test_dense_ids_stay_exact_when_hashes_collide() -> None:
    zero, colliding = _colliding_pair()
    first = np.array([1, 2, 1, 2, 3], dtype=np.int64)
    second = np.array([zero, colliding, zero, colliding, 5], dtype=np.uint64)
    ids, n = dense_ids(first, second)
    assert n == 3
    assert ids[0] == ids[2] and ids[1] == ids[3] and len({ids[0], ids[1], ids[4]}) == 3


def test_estimators_are_exact_under_a_hash_collision() -> None:
    # K = 0: the level-0 grouping hashes (dense group id, key). Groups 1 and 2 (dense ids 1 and 2)
    # get keys 0 and `colliding`, whose hashes coincide; each group must still stand alone.
    zero, colliding = _colliding_pair()
    group = np.repeat([0, 1, 2], 2)
    keys = np.array([7, 7, zero, zero, colliding, colliding], dtype=np.uint64)
    reward = np.array([10.0, 0.0, 10.0, 0.0, 0.0, 4.0])
    batch = StepBatch(
        group, np.zeros(6, dtype=np.int64) + np.tile([0, 1], 3), np.zeros(6, dtype=np.int64), reward, keys
    )
    # Each group: two one-step trajectories sharing the key -> returns [10, 0] or [0, 4] -> +-5 or -+2.
    np.testing.assert_allclose(
        estimate_advantages("hgpo", batch, mode="mean_norm", weighting="paper"), [5, -5, 5, -5, -2, 2]
    )
