"""The step batch all estimators read, and the returns computed from it."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hgpo.advantages.segments import FloatArray, IntArray, dense_ids


def _integers(name: str, value: npt.ArrayLike) -> IntArray:
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"StepBatch.{name} must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"StepBatch.{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _reals(name: str, value: npt.ArrayLike, n: int) -> FloatArray:
    array = np.asarray(value)
    if array.shape != (n,):
        raise ValueError(f"StepBatch.{name} must have shape ({n},) like group, got {array.shape}")
    if array.size and array.dtype.kind not in "iuf":
        raise TypeError(f"StepBatch.{name} must be real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"StepBatch.{name} must be finite, row {bad} is {array[bad]}")
    return array


def _keys(value: npt.ArrayLike, n: int) -> npt.NDArray[np.uint64]:
    array = np.asarray(value)
    if array.dtype == object:  # Python ints >= 2**63 (64-bit digests) may arrive as objects
        try:
            array = np.array(value, dtype=np.uint64)
        except (OverflowError, TypeError, ValueError) as error:
            raise TypeError(f"StepBatch.keys must hold integers in [0, 2**64): {error}") from None
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[0] != n or array.shape[1] < 1:
        raise ValueError(f"StepBatch.keys must have shape (N, K+1) with N={n}, got {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"StepBatch.keys must hold integers (uint64 digests), got dtype {array.dtype}")
    return array.astype(np.uint64, copy=False)  # int64 wraps consistently; only equality matters


@dataclass(frozen=True)
class _Canonical:
    """The batch's rows sorted by (group, traj, step), with dense ids.

    Estimators work on this order so that every sum runs over rows in the same order
    whatever the caller's row order: results are bit-identical under row shuffles.
    """

    order: IntArray  # canonical row i is the caller's row order[i]
    group: IntArray  # dense group id 0..G-1
    traj: IntArray  # dense trajectory id 0..T-1 (a trajectory is a (group, traj) pair)
    step: IntArray
    reward: FloatArray
    keys: npt.NDArray[np.uint64]  # level-major (K+1, N): a row of keys per level, cheap to gather
    penalty: FloatArray  # subtracted from the step's own score and return (0: none)
    remaining: IntArray  # steps after this one in its trajectory
    traj_group: IntArray  # dense group id of each trajectory
    n_groups: int
    n_trajectories: int

    def to_caller(self, values: npt.NDArray) -> npt.NDArray:
        """Put per-row ``values`` back in the caller's row order."""
        out = np.empty_like(values)
        out[self.order] = values
        return out


@dataclass(frozen=True, eq=False)
class StepBatch:
    """One row per environment step, rows in any order.

    Attributes:
        group: int (N,). Rollouts of one task and seed share a group id.
        traj: int (N,). Trajectory id; a trajectory is the pair (group, traj), so ids may
            be global or restart in every group.
        step: int (N,). Time index t within the trajectory: 0..T-1, no gaps or repeats.
        reward: float (N,). The environment reward of that step (sparse: 10 on success).
        keys: uint64 (N, K+1). Context keys from memory: ``keys[:, k]`` identifies the
            current observation plus the last k (observation, action) records, and
            ``keys[:, 0]`` is GiGPO's anchor state. Only equality of keys is used. A
            1-D array means K = 0.
        penalty: optional float (N,), default None (no penalty). Subtracted from this
            step's episode score and from its discounted return R_t *after* discounting,
            so it reaches no other step: verl-agent's placement of the invalid-action
            penalty (0.1 x (1 - valid), applied to the step's ``token_level_scores`` and
            ``step_rewards`` before the group statistics). See docs/advantages.md.

    Arrays are converted to int64 / float64 / uint64 on construction, which checks
    shapes, dtypes, finiteness and step numbering and raises ``ValueError`` or
    ``TypeError`` naming the field (and the offending trajectory).
    """

    group: IntArray
    traj: IntArray
    step: IntArray
    reward: FloatArray
    keys: npt.NDArray[np.uint64]
    penalty: FloatArray | None = None
    _canonical: _Canonical = field(init=False, repr=False)
    _has_penalty: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        group = _integers("group", self.group)
        n = group.shape[0]
        traj, step = _integers("traj", self.traj), _integers("step", self.step)
        for name, array in (("traj", traj), ("step", step)):
            if array.shape != (n,):
                raise ValueError(f"StepBatch.{name} must have shape ({n},) like group, got {array.shape}")
        reward = _reals("reward", self.reward, n)
        keys = _keys(self.keys, n)
        object.__setattr__(self, "_has_penalty", self.penalty is not None)
        penalty = np.zeros(n) if self.penalty is None else _reals("penalty", self.penalty, n)
        for name, value in (
            ("group", group),
            ("traj", traj),
            ("step", step),
            ("reward", reward),
            ("keys", keys),
            ("penalty", penalty),
        ):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_canonical", _canonicalise(group, traj, step, reward, keys, penalty))

    def __len__(self) -> int:
        return self.group.shape[0]

    @property
    def history_length(self) -> int:
        """K, the deepest context level the keys provide (``keys.shape[1] - 1``)."""
        return self.keys.shape[1] - 1

    @property
    def has_penalty(self) -> bool:
        """Whether a ``penalty`` array was given (``penalty`` reads as zeros when not)."""
        return self._has_penalty

    @property
    def n_groups(self) -> int:
        return self._canonical.n_groups

    @property
    def n_trajectories(self) -> int:
        return self._canonical.n_trajectories


def _canonicalise(
    group: IntArray,
    traj: IntArray,
    step: IntArray,
    reward: FloatArray,
    keys: npt.NDArray[np.uint64],
    penalty: FloatArray,
) -> _Canonical:
    n = group.shape[0]
    traj_id, n_traj = dense_ids(group, traj)
    # Sort the trajectories (not the rows) by (group, traj); each row's place is then its
    # trajectory's start plus its step, which must be 0..T-1 for that to be a permutation.
    first = np.empty(n_traj, dtype=np.int64)
    first[traj_id] = np.arange(n)  # any row of each trajectory
    traj_order = np.lexsort((traj[first], group[first]))
    rank = np.empty(n_traj, dtype=np.int64)
    rank[traj_order] = np.arange(n_traj)
    traj_id = rank[traj_id]
    traj_length = np.bincount(traj_id, minlength=n_traj)
    traj_start = np.cumsum(traj_length) - traj_length
    place = traj_start[traj_id] + step
    valid = (step >= 0) & (step < traj_length[traj_id])
    if not valid.all() or np.bincount(place[valid], minlength=n).max(initial=0) > 1:
        _raise_bad_steps(group, traj, step, traj_id, valid, place)
    order = np.empty(n, dtype=np.int64)
    order[place] = np.arange(n)
    traj_group_value = group[first[traj_order]]
    new_group = np.ones(n_traj, dtype=bool)
    new_group[1:] = traj_group_value[1:] != traj_group_value[:-1]
    traj_group = np.cumsum(new_group) - 1
    traj_id = traj_id[order]
    return _Canonical(
        order=order,
        group=traj_group[traj_id],
        traj=traj_id,
        step=step[order],
        reward=reward[order],
        keys=np.ascontiguousarray(np.take(keys, order, axis=0).T),  # take: ~7x faster than keys[order]
        penalty=penalty[order],
        remaining=traj_length[traj_id] - 1 - step[order],
        traj_group=traj_group,
        n_groups=int(new_group.sum()),
        n_trajectories=n_traj,
    )


def _raise_bad_steps(
    group: IntArray,
    traj: IntArray,
    step: IntArray,
    traj_id: IntArray,
    valid: npt.NDArray[np.bool_],
    place: IntArray,
) -> None:
    if valid.all():  # two rows claim one place: a repeated step
        seen = np.bincount(place, minlength=place.size)
        bad = int(np.flatnonzero(seen[place] > 1)[0])
    else:
        bad = int(np.flatnonzero(~valid)[0])
    steps = sorted(step[traj_id == traj_id[bad]].tolist())
    raise ValueError(
        f"StepBatch.step: trajectory (group={group[bad]}, traj={traj[bad]}) has steps {steps}; "
        "steps must be 0..T-1 without gaps or repeats"
    )


def discounted_returns(batch: StepBatch, gamma: float) -> npt.NDArray[np.float32]:
    """R_t = r_t + gamma R_{t+1} within each trajectory, 0 after its last step (GiGPO Eq. 5).

    Returns float32 (N,) in the batch's row order. No bootstrapping: a truncated
    trajectory is treated like a finished one, as in the reference code.
    """
    check_gamma(gamma)
    rows = batch._canonical
    return rows.to_caller(_discounted_returns(rows, float(gamma))).astype(np.float32)


def episode_returns(batch: StepBatch) -> npt.NDArray[np.float32]:
    """Undiscounted total reward of each row's trajectory (the per-step "score" of GRPO/GiGPO), float32 (N,)."""
    rows = batch._canonical
    total = np.bincount(rows.traj, rows.reward, minlength=rows.n_trajectories)
    return rows.to_caller(total[rows.traj]).astype(np.float32)


def check_gamma(gamma: object) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")


def _discounted_returns(rows: _Canonical, gamma: float) -> FloatArray:
    # A doubling scan: after the pass with shift s each row holds its discounted sum
    # over the next 2s steps, so ceil(log2(T)) vectorised passes replace the per-step
    # backward loop. Unlike rescaling by gamma**t it cannot under/overflow, and rows
    # with equal reward suffixes get bit-identical returns (same order of operations).
    out = rows.reward.copy()
    shift, factor = 1, gamma
    longest = int(rows.remaining.max()) if rows.remaining.size else 0
    while shift <= longest and factor != 0.0:
        later = np.flatnonzero(rows.remaining >= shift)  # rows with a step `shift` ahead
        out[later] += factor * out[later + shift]  # the right side is read before the update
        shift, factor = 2 * shift, factor * factor
    return out
