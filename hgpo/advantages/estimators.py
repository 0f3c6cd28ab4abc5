"""GRPO, GiGPO and HGPO advantages: vectorised, one float32 advantage per step.

Definitions, every deviation between the papers and the public reference code
(verl-agent ``gigpo/core_gigpo.py`` and ``recipe/hgpo/core_hgpo.py``) and the
choice of defaults are written out in docs/advantages.md.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from hgpo.advantages.batch import StepBatch, _Canonical, _discounted_returns, check_gamma
from hgpo.advantages.segments import FloatArray, IntArray, centre, dense_ids, group_moments, normalise

Mode = Literal["mean_norm", "mean_std_norm"]
Weighting = Literal["reference", "paper", "adaptive"]
EpisodeStats = Literal["step", "trajectory"]
Diagnostics = dict[str, float]

ESTIMATORS: tuple[str, ...] = ("grpo", "gigpo", "hgpo")
MODES: tuple[str, ...] = ("mean_norm", "mean_std_norm")
WEIGHTINGS: tuple[str, ...] = ("reference", "paper", "adaptive")
EPISODE_STATS: tuple[str, ...] = ("step", "trajectory")


@overload
def estimate_advantages(
    name: str,
    batch: StepBatch,
    *,
    gamma: float = ...,
    mode: Mode = ...,
    history_length: int | None = ...,
    alpha: float = ...,
    base_group: bool = ...,
    weighting: Weighting = ...,
    step_advantage_w: float = ...,
    episode_stats: EpisodeStats = ...,
    epsilon: float = ...,
    return_diagnostics: Literal[False] = ...,
) -> npt.NDArray[np.float32]: ...


@overload
def estimate_advantages(
    name: str,
    batch: StepBatch,
    *,
    gamma: float = ...,
    mode: Mode = ...,
    history_length: int | None = ...,
    alpha: float = ...,
    base_group: bool = ...,
    weighting: Weighting = ...,
    step_advantage_w: float = ...,
    episode_stats: EpisodeStats = ...,
    epsilon: float = ...,
    return_diagnostics: Literal[True],
) -> tuple[npt.NDArray[np.float32], Diagnostics]: ...


def estimate_advantages(
    name: str,
    batch: StepBatch,
    *,
    gamma: float = 0.95,
    mode: Mode = "mean_std_norm",
    history_length: int | None = None,
    alpha: float = 1.0,
    base_group: bool = False,
    weighting: Weighting = "reference",
    step_advantage_w: float = 1.0,
    episode_stats: EpisodeStats = "step",
    epsilon: float = 1e-6,
    return_diagnostics: bool = False,
) -> npt.NDArray[np.float32] | tuple[npt.NDArray[np.float32], Diagnostics]:
    """One advantage per step of ``batch``: float32 (N,), in the batch's row order.

    Args:
        name: ``"grpo"``, ``"gigpo"`` or ``"hgpo"`` (case-insensitive).
        batch: the steps; the result does not depend on their order. ``batch.penalty``
            (optional) is subtracted from each step's own score and return before the
            group statistics (verl-agent's invalid-action penalty).
        gamma: discount of the step returns R_t (GiGPO's step level, HGPO's levels).
        mode: ``"mean_norm"``: x - mean; ``"mean_std_norm"``: (x - mean) / (std + epsilon).
        history_length: HGPO's K: levels 0..K read ``batch.keys[:, :K+1]``; None uses every column.
        alpha: HGPO's level-weight exponent (reference and paper weighting).
        base_group: HGPO adds the episode-level advantage as one more item, of weight 1.
        weighting: HGPO's level weights. ``"reference"``: the public code (level k weighs
            (k+2)^alpha; exact-zero advantages dropped; divided by the weight sum + epsilon).
            ``"paper"``: (k+1)^alpha, exact renormalisation. ``"adaptive"``: credibility weights
            from each group's size and the batch's variance components (beyond the paper).
        step_advantage_w: GiGPO's weight of the step-level advantage.
        episode_stats: episode-level mean and std over every step sample (``"step"``, the
            reference code) or one entry per trajectory (``"trajectory"``, the papers; it takes
            no ``batch.penalty``). Used by GRPO, GiGPO's episode term and HGPO's base group.
        epsilon: added to every std, and to the weight sum of reference weighting.
        return_diagnostics: also return a dict of floats (group sizes per level, share of steps
            whose deepest level is shared, ...; see docs/advantages.md).

    Options that do not apply to ``name`` are validated and otherwise ignored.

    Raises:
        ValueError: an unknown estimator or option value, ``history_length`` above the keys' K,
            or ``episode_stats="trajectory"`` with a penalty where an episode term is used.
        TypeError: ``batch`` is not a StepBatch.
    """
    options = _Options.check(
        name, batch, gamma, mode, history_length, alpha, base_group, weighting,
        step_advantage_w, episode_stats, epsilon,
    )  # fmt: skip
    rows = batch._canonical
    if len(batch) == 0:
        advantages, diagnostics = np.zeros(0), {}
    elif options.name == "grpo":
        advantages, diagnostics = _grpo(rows, options)
    elif options.name == "gigpo":
        advantages, diagnostics = _gigpo(rows, options)
    else:
        advantages, diagnostics = _hgpo(rows, options, diagnose=return_diagnostics)
    advantages = rows.to_caller(advantages.astype(np.float32))
    if not return_diagnostics:
        return advantages
    diagnostics["zero_advantage_share"] = float(np.mean(advantages == 0)) if advantages.size else 0.0
    return advantages, diagnostics


def group_sizes(batch: StepBatch, history_length: int | None = None) -> IntArray:
    """Size of each step's level-k group: int64 (N, K+1), 0 where level k is unused (k > step).

    The level-k group of a step is the set of steps with the same ``group`` and the same
    ``keys[:, k]`` among the steps with ``step >= k``.
    """
    depth = batch.history_length if history_length is None else history_length
    _check_history_length(depth, batch)
    rows = batch._canonical
    levels = _Levels.of(rows, depth)
    sizes = np.zeros((len(batch), depth + 1), dtype=np.int64)
    sizes[levels.row, levels.level] = levels.size
    return rows.to_caller(sizes)


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class _Options:
    name: str
    gamma: float
    std: bool
    depth: int
    alpha: float
    base_group: bool
    weighting: str
    step_advantage_w: float
    episode_stats: str
    epsilon: float

    @classmethod
    def check(
        cls, name: object, batch: object, gamma: float, mode: str, history_length: int | None, alpha: float,
        base_group: bool, weighting: str, step_advantage_w: float, episode_stats: str, epsilon: float,
    ) -> _Options:  # fmt: skip
        if not isinstance(batch, StepBatch):
            raise TypeError(f"batch must be a StepBatch, got {type(batch).__name__}")
        key = name.lower() if isinstance(name, str) else name
        _check_choice("estimator name", key, ESTIMATORS)
        _check_choice("mode", mode, MODES)
        _check_choice("weighting", weighting, WEIGHTINGS)
        _check_choice("episode_stats", episode_stats, EPISODE_STATS)
        check_gamma(gamma)
        for label, value in (("alpha", alpha), ("step_advantage_w", step_advantage_w), ("epsilon", epsilon)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{label} must be a finite number, got {value!r}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0 (it guards divisions by a zero std), got {epsilon!r}")
        if not isinstance(base_group, (bool, np.bool_)):
            raise ValueError(f"base_group must be True or False, got {base_group!r}")
        depth = batch.history_length if history_length is None else history_length
        _check_history_length(depth, batch)
        uses_episode_term = key in ("grpo", "gigpo") or bool(base_group)
        if episode_stats == "trajectory" and uses_episode_term and batch.has_penalty:
            raise ValueError(
                "episode_stats='trajectory' does not combine with a per-step StepBatch.penalty: its "
                "statistics come from one entry per trajectory, so with mean_std_norm a penalised step "
                "of a group whose trajectories score alike is divided by epsilon (-0.1 / 1e-6 = -1e5; "
                "the reference's compute_mean_std_cross_steps=False does that). Use episode_stats='step' "
                "(the reference default), or leave the penalty out of the batch and subtract it from "
                "the advantages (trainer: algo.invalid_penalty_placement=advantage)"
            )
        if key == "hgpo" and weighting != "adaptive":
            offset = 2 if weighting == "reference" else 1
            with np.errstate(over="ignore", under="ignore"):
                weights = (np.arange(int(depth) + 1, dtype=np.float64) + offset) ** float(alpha)
            if not np.all(np.isfinite(weights) & (weights > 0)):
                raise ValueError(
                    f"alpha={alpha} makes the level weights (k+{offset})^alpha overflow or vanish in float64 "
                    f"for K={depth}; use a smaller |alpha| (alpha=50 already keeps only the deepest level)"
                )
        if key == "hgpo" and weighting == "adaptive" and base_group:
            raise ValueError(
                "base_group=True does not combine with weighting='adaptive' (the adaptive weights shrink "
                "level k toward level k-1 and leave no place for the episode advantage); use "
                "weighting='reference' or 'paper' with base_group, or base_group=False"
            )
        return cls(
            str(key), float(gamma), mode == "mean_std_norm", int(depth), float(alpha), bool(base_group),
            weighting, float(step_advantage_w), episode_stats, float(epsilon),
        )  # fmt: skip


def _check_choice(label: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{label} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def _check_history_length(depth: object, batch: StepBatch) -> None:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ValueError(f"history_length must be an integer >= 0, got {depth!r}")
    if depth > batch.history_length:
        raise ValueError(
            f"history_length={depth} needs {depth + 1} key columns, but batch.keys has "
            f"{batch.keys.shape[1]} (K={batch.history_length})"
        )


# ----------------------------------------------------------------------- estimators


def _episode_advantages(rows: _Canonical, options: _Options) -> FloatArray:
    """GRPO's advantage, which is also GiGPO's episode term and HGPO's base group.

    A step's score is its trajectory's undiscounted total reward (the reference writes it
    on every step sample) minus the step's own ``penalty``. The group's mean and std are
    taken over every step's score (``episode_stats="step"``) or over one entry per
    trajectory, its total (``"trajectory"``, which takes no penalties); every step is then
    normalised with its own score. A group with a single entry keeps mean 0 and std 1
    (reference).
    """
    total = np.bincount(rows.traj, rows.reward, minlength=rows.n_trajectories)
    score = total[rows.traj] - rows.penalty
    if options.episode_stats == "trajectory":
        entries, ids = total, rows.traj_group
    else:
        entries, ids = score, rows.group
    pivot, mean, sum_sq, size = group_moments(entries, ids, rows.n_groups)
    deviation = (score - pivot[rows.group]) - mean[rows.group]
    alone = (size == 1)[rows.group]
    advantage = np.where(alone, score, deviation)
    if options.std:
        spread = np.where(size == 1, 1.0, np.sqrt(sum_sq / np.maximum(size - 1, 1)))
        advantage = advantage / (spread[rows.group] + options.epsilon)
    return advantage


def _penalised_returns(rows: _Canonical, options: _Options) -> FloatArray:
    """R_t minus the step's own penalty, after discounting (the penalty reaches no earlier step)."""
    return _discounted_returns(rows, options.gamma) - rows.penalty


def _grpo(rows: _Canonical, options: _Options) -> tuple[FloatArray, Diagnostics]:
    diagnostics = {
        "groups": float(rows.n_groups),
        "mean_group_size": rows.n_trajectories / rows.n_groups,  # trajectories per group
    }
    return _episode_advantages(rows, options), diagnostics


def _gigpo(rows: _Canonical, options: _Options) -> tuple[FloatArray, Diagnostics]:
    returns = _penalised_returns(rows, options)
    ids, n_groups = dense_ids(rows.group, rows.keys[0])
    deviation, sum_sq, size = centre(returns, ids, n_groups)
    # Unbiased std, as GiGPO's step_norm_reward; a singleton's deviation is 0, so its advantage is 0.
    step_advantage = normalise(deviation, sum_sq, size, std=options.std, ddof=1, epsilon=options.epsilon)
    advantages = _episode_advantages(rows, options) + options.step_advantage_w * step_advantage
    diagnostics = {
        "level0/groups": float(n_groups),
        "level0/mean_group_size": float(size.mean()),
        "level0/eligible_share": 1.0,
        "level0/shared_share": float(np.mean(size > 1)),
    }
    diagnostics["deepest_shared_share"] = diagnostics["level0/shared_share"]
    return advantages, diagnostics


@dataclass(frozen=True)
class _Levels:
    """HGPO's level groups, one entry per (step, level) pair with level k <= min(K, step).

    A step's pairs are consecutive, levels ascending, so pair p - 1 is the same step one
    level up whenever ``level[p] > 0``.
    """

    row: IntArray  # the step of each pair
    level: IntArray  # its level k
    group: IntArray  # dense id of its level-k group: same group, same level, same keys[:, k]
    n_groups: int
    size: IntArray  # size of that group
    depth: int  # K

    @classmethod
    def of(cls, rows: _Canonical, depth: int) -> _Levels:
        count = np.minimum(rows.step, depth) + 1  # the reference uses level k only when k <= t
        row = np.repeat(np.arange(rows.step.size), count)
        level = np.arange(row.size) - np.repeat(np.cumsum(count) - count, count)
        keys = np.take(rows.keys.ravel(), level * rows.step.size + row)  # rows.keys is (K+1, N)
        group, n_groups = dense_ids(rows.group[row] * (depth + 1) + level, keys)
        return cls(row, level, group, n_groups, np.bincount(group, minlength=n_groups)[group], depth)

    def per_level(self, values: npt.ArrayLike | None = None) -> FloatArray:
        """Sum of ``values`` (default: 1) over the pairs of each level, shape (K+1,)."""
        return np.bincount(self.level, values, minlength=self.depth + 1)


def _hgpo(rows: _Canonical, options: _Options, diagnose: bool = True) -> tuple[FloatArray, Diagnostics]:
    levels = _Levels.of(rows, options.depth)
    returns = _penalised_returns(rows, options)[levels.row]
    deviation, sum_sq, size = centre(returns, levels.group, levels.n_groups)
    # Population std, as the HGPO reference; a singleton's advantage is 0 (it is skipped later).
    advantage = normalise(deviation, sum_sq, size, std=options.std, ddof=0, epsilon=options.epsilon)
    if options.weighting == "adaptive":
        advantages, diagnostics = _adaptive_combination(rows, levels, returns, deviation, advantage)
    else:
        advantages, diagnostics = _length_weighted_combination(rows, levels, advantage, options)
    if not diagnose:  # the per-level summaries cost about a tenth of the estimate
        return advantages, diagnostics
    diagnostics.update(_level_diagnostics(levels, rows.step.size))
    deepest = np.cumsum(np.minimum(rows.step, options.depth) + 1) - 1  # each step's last pair
    diagnostics["deepest_shared_share"] = float(np.mean(levels.size[deepest] > 1))
    return advantages, diagnostics


def _length_weighted_combination(
    rows: _Canonical, levels: _Levels, advantage: FloatArray, options: _Options
) -> tuple[FloatArray, Diagnostics]:
    """A = sum w_k A_k / sum w_k over a step's items (reference and paper weighting).

    Items: level k when its group has more than one member and A_k != 0 (exact zeros are
    dropped, as in the reference), plus the base group (weight 1) when enabled and non-zero.
    """
    n = rows.step.size
    keep = (levels.size > 1) & (advantage != 0)
    offset = 2 if options.weighting == "reference" else 1  # the reference counts states, plus one
    weight = ((np.arange(options.depth + 1, dtype=np.float64) + offset) ** options.alpha)[levels.level] * keep
    weighted = np.bincount(levels.row, weight * advantage, minlength=n)
    total = np.bincount(levels.row, weight, minlength=n)
    items = np.bincount(levels.row, keep, minlength=n)
    if options.base_group:
        base = _episode_advantages(rows, options)
        weighted += base
        total += base != 0
        items += base != 0
    if options.weighting == "reference":
        advantages = weighted / (total + options.epsilon)
    else:
        advantages = np.divide(weighted, total, out=np.zeros(n), where=total > 0)
    return advantages, {"mean_items": float(items.mean())}


def _adaptive_combination(
    rows: _Canonical, levels: _Levels, returns: FloatArray, deviation: FloatArray, advantage: FloatArray
) -> tuple[FloatArray, Diagnostics]:
    """Credibility weights: trust level k over level k-1 by Z_k = n_k / (n_k + sigma2_k / tau2_k).

    A level-k group mean estimates its context's value with variance sigma2 / n; its parent
    (level k-1) mean pools contexts whose values spread with variance tau2. Their
    inverse-variance combination weighs the child by Z = n / (n + sigma2 / tau2). Chained
    from the deepest level a step has down to level 0: w_deepest = Z, w_k = Z_k prod_{j>k}
    (1 - Z_j), w_0 = the rest, and A = sum_k w_k A_k. sigma2_k (pooled within-group variance)
    and tau2_k (spread of child means inside each parent) are the one-way random-effects
    moment estimates over the whole batch (Searle, Casella & McCulloch 1992, ch. 3; the
    Buhlmann-Straub credibility model). Singletons are kept (A_k = 0): one return is weak
    evidence about its context, and exact zeros are not dropped.
    """
    n, depth = rows.step.size, levels.depth
    pairs = levels.per_level()
    groups = np.bincount(_level_of_group(levels), minlength=depth + 1)
    # Level k >= 1 pairs: parent = the same step's level-(k-1) group (pair p - 1); cell = (parent, child).
    deep = np.flatnonzero(levels.level > 0)
    parent, n_parent = dense_ids(levels.group[deep - 1])
    cell, n_cell = dense_ids(levels.group[deep - 1], levels.group[deep])  # = the child when keys nest
    cell_dev, _, cell_size = centre(returns[deep], cell, n_cell)
    parent_dev, _, parent_size = centre(returns[deep], parent, n_parent)
    level = levels.level[deep]
    cells = np.bincount(level[_firsts(cell, n_cell)], minlength=depth + 1)
    parents = np.bincount(level[_firsts(parent, n_parent)], minlength=depth + 1)
    within_ss = np.bincount(level, cell_dev * cell_dev, minlength=depth + 1)
    # Per row, parent_dev - cell_dev = m_cell - m_parent, so these sums run over cells:
    # between_ss = sum_c n_c (m_c - m_P)^2 and spread_df = N_k - sum_c n_c^2 / N_P.
    between_ss = np.bincount(level, (parent_dev - cell_dev) ** 2, minlength=depth + 1)
    spread_df = pairs - np.bincount(level, cell_size / parent_size, minlength=depth + 1)
    level0_ss = float(np.sum(deviation[levels.level == 0] ** 2))
    sigma2 = level0_ss / (pairs[0] - groups[0]) if pairs[0] > groups[0] else 0.0
    kappa = np.full(depth + 1, np.inf)
    diagnostics: Diagnostics = {}
    for k in range(1, depth + 1):  # K scalars
        if pairs[k] > cells[k]:  # else keep the shallower estimate (within variance shrinks with depth)
            sigma2 = within_ss[k] / (pairs[k] - cells[k])
        # A parent with a single child cell adds nothing to spread_df: its child mean is its mean.
        tau2 = 0.0
        if spread_df[k] > 0:
            tau2 = max(0.0, (between_ss[k] - (cells[k] - parents[k]) * sigma2) / spread_df[k])
        kappa[k] = sigma2 / tau2 if tau2 > 0 else np.inf  # tau2 = 0: nothing to gain over the parent
        diagnostics[f"level{k}/kappa"] = float(kappa[k])
    credibility = np.where(levels.level == 0, 1.0, levels.size / (levels.size + kappa[levels.level]))
    weight, remaining = np.zeros(levels.row.size), np.ones(n)
    for k in range(depth, -1, -1):  # from each step's deepest level up
        at_k = np.flatnonzero(levels.level == k)
        weight[at_k] = remaining[levels.row[at_k]] * credibility[at_k]
        remaining[levels.row[at_k]] -= weight[at_k]
    for k, total in enumerate(levels.per_level(weight)):
        diagnostics[f"level{k}/mean_weight"] = float(total / n)
    return np.bincount(levels.row, weight * advantage, minlength=n), diagnostics


def _level_of_group(levels: _Levels) -> IntArray:
    out = np.empty(levels.n_groups, dtype=np.int64)
    out[levels.group] = levels.level
    return out


def _firsts(ids: IntArray, n_ids: int) -> IntArray:
    """One member index per id."""
    out = np.empty(n_ids, dtype=np.int64)
    out[ids] = np.arange(ids.size)
    return out


def _level_diagnostics(levels: _Levels, n: int) -> Diagnostics:
    pairs = levels.per_level()
    groups = np.bincount(_level_of_group(levels), minlength=levels.depth + 1)
    sizes = levels.per_level(levels.size)
    shared = levels.per_level(levels.size > 1)
    diagnostics: Diagnostics = {}
    for k in range(levels.depth + 1):
        prefix = f"level{k}/"
        diagnostics[prefix + "groups"] = float(groups[k])
        diagnostics[prefix + "mean_group_size"] = float(sizes[k] / pairs[k]) if pairs[k] else 0.0
        diagnostics[prefix + "eligible_share"] = float(pairs[k] / n)
        diagnostics[prefix + "shared_share"] = float(shared[k] / n)
    return diagnostics
