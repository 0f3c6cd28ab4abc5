"""HiPER's hierarchical advantage estimation (HAE) as a pure numpy function of per-turn arrays.

HiPER (arXiv 2602.16165; reference code JonP07/HiPER-agent) has the policy write
``<switch>KEEP|SWITCH</switch><subgoal>...</subgoal><action>...</action>`` every turn.
A *segment* is a run of turns under one sub-goal: it starts at a boundary turn (a
SWITCH, or the first turn of the episode) and lasts until the turn before the next
boundary. HAE gives three advantages per turn, one per token span:

>>> from hgpo.advantages.hiper import HiperBatch, hierarchical_advantages
>>> batch = HiperBatch(traj=traj, step=step, reward=reward, valid=valid, boundary=boundary,
...                    keep_changed=keep_changed, v_high=v_high, v_low=v_low, v_term=v_term,
...                    truncated=truncated)                                   # doctest: +SKIP
>>> res = hierarchical_advantages(batch, gamma=1.0, lam=1.0, lam_seg=0.95)   # doctest: +SKIP
>>> res.action_adv, res.subgoal_adv, res.term_adv                            # doctest: +SKIP

Inputs (:class:`HiperBatch`, one row per turn, rows in any order, whole trajectories):
``traj``/``step`` (int), ``reward`` (env reward of the turn), ``valid`` (format check),
``boundary`` (the turn starts a segment; must be True on step 0), ``keep_changed`` (a
KEEP turn whose sub-goal text differs from the previous turn's), ``v_high`` (critic at
the first token of a boundary turn; read on boundary rows only), ``v_low`` (critic at
the first token after ``</subgoal>``), ``v_term`` (critic at the first token of the
turn), ``truncated`` (True on the last turn of a trajectory cut by the step limit; a
last turn with False is a terminal state). Optional ``has_action``/``has_subgoal``/
``has_switch``: whether the response has tokens for that stream (default: all True);
they only decide where each stream is defined (zero elsewhere, left out of its
normalisation), as the reference does with its token masks.

Per turn j of a trajectory, s(j) the first turn of j's segment, e(j) its last turn:

- shaped reward ``r_j = reward_j - invalid_penalty * (1 - valid_j) + keep_j + consistency_penalty
  * keep_changed_j``, with ``keep_j = keep_penalty`` on every non-boundary (KEEP) turn
  ("plain"), or ``keep_penalty / T`` on each KEEP turn of a trajectory of T turns
  ("normalized": the trajectory's total ``keep_penalty * #KEEP / T`` spread evenly);
- bootstrap at a segment's end ``B_e``: ``v_high`` of the next boundary turn when the
  trajectory goes on; 0 at the end of a terminated trajectory, and at the end of a
  truncated one unless ``bootstrap_truncated`` (then see below);
- executor (action tokens), GAE inside the segment:
  ``delta_j = r_j + gamma * next_j - v_low_j`` with ``next_j = v_low_{j+1}`` inside the
  segment and ``B_e`` at its end (``v_low_j`` itself when bootstrapping a truncation);
  ``A_j = delta_j + gamma * lam * A_{j+1}`` inside the segment, ``A_e = delta_e``;
- segment return-to-go ``G_j = r_j + gamma * G_{j+1}`` inside the segment,
  ``G_e = r_e + gamma * B_e`` (``B_e = v_high`` of the segment's own first turn when
  bootstrapping a truncation);
- planner (sub-goal tokens of boundary turns), segment-level GAE over the segments k
  of a trajectory: ``delta_k = G_{s_k} - v_high_{s_k}`` (= sum_j gamma^(j-s) r_j +
  gamma^d_k B - V_high(start)); ``A_k = delta_k + gamma^d_k * lam_seg * A_{k+1}``,
  d_k the segment's length, A after the last segment 0;
- switch tokens (every turn): ``A_term_j = G_j - v_term_j``;
- value targets: ``v_low_target = A_low + v_low``, ``v_high_target = A_high + v_high``
  (boundary rows; 0 elsewhere), ``v_term_target = G``, all before normalisation;
- ``normalize``: each stream is shifted and scaled to mean 0, population std 1 over the
  rows where it is defined (``(x - mean) / (std + epsilon)``, epsilon 1e-8) and is 0
  elsewhere.

Everything runs on a (trajectories x max length) grid with one vectorised pass per
turn index t (backwards); there is no Python loop over trajectories or rows, and the
result does not depend on the row order (bit for bit). docs/hiper.md explains the
defaults and every difference from the paper and the reference code.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

KeepPenaltyMode = Literal["plain", "normalized"]
KEEP_PENALTY_MODES: tuple[str, ...] = ("plain", "normalized")

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Grid:
    """Where each caller row sits on the (trajectory, step) grid.

    Trajectories are numbered by sorted ``traj`` id, so the grid (and every sum taken
    over it in C order) is the same whatever the order of the caller's rows.
    """

    row: IntArray  # trajectory index of each caller row
    col: IntArray  # its step
    present: BoolArray  # (n_trajectories, max_length + 1); the last column is always empty
    length: IntArray  # turns per trajectory

    def put(self, values: npt.NDArray, fill: float | bool = 0) -> npt.NDArray:
        """Per-row ``values`` on the grid, ``fill`` in the empty cells."""
        out = np.full(self.present.shape, fill, dtype=values.dtype)
        out[self.row, self.col] = values
        return out

    def take(self, grid: npt.NDArray) -> npt.NDArray:
        """Grid values back in the caller's row order."""
        return grid[self.row, self.col]


@dataclass(frozen=True, eq=False)
class HiperBatch:
    """One row per turn (env step) of whole trajectories, rows in any order.

    Attributes:
        traj: int (N,). Trajectory id (unique across the batch).
        step: int (N,). Turn index within the trajectory: 0..T-1, no gaps or repeats.
        reward: float (N,). Environment reward of the turn.
        valid: bool (N,). Format validity of the response (``HiperTurn.valid``).
        boundary: bool (N,). The turn starts a segment: a SWITCH, or the first turn
            (``HiperTurn.boundary``). Must be True on step 0.
        keep_changed: bool (N,). A KEEP turn whose sub-goal text changed
            (``HiperTurn.subgoal_changed(previous)``). Must be False on boundary turns.
        v_high: float (N,). V_high read-out (first response token of a boundary turn).
            Read on boundary rows only: other rows may hold anything, NaN included.
        v_low: float (N,). V_low read-out (first token after ``</subgoal>``).
        v_term: float (N,). V_term read-out (first response token).
        truncated: bool (N,). True on the last turn of a trajectory cut by the step
            limit; False everywhere else (a last turn with False ended the episode).
        has_action, has_subgoal, has_switch: optional bool (N,). Whether the response has
            tokens of that span; a stream is defined (non-zero and normalised) only where
            its span exists. None means every row has it.

    The arrays are validated and converted (int64 / float64 / bool) on construction;
    bad input raises ``ValueError`` or ``TypeError`` naming the field and, where it
    applies, the trajectory.
    """

    traj: IntArray
    step: IntArray
    reward: FloatArray
    valid: BoolArray
    boundary: BoolArray
    keep_changed: BoolArray
    v_high: FloatArray
    v_low: FloatArray
    v_term: FloatArray
    truncated: BoolArray
    has_action: BoolArray | None = None
    has_subgoal: BoolArray | None = None
    has_switch: BoolArray | None = None
    _grid: _Grid = field(init=False, repr=False)

    def __post_init__(self) -> None:
        traj = _integers("traj", self.traj, None)
        n = traj.shape[0]
        fields: dict[str, npt.NDArray] = {"traj": traj, "step": _integers("step", self.step, n)}
        for name in ("reward", "v_low", "v_term"):
            fields[name] = _reals(name, getattr(self, name), n)
        for name in ("valid", "boundary", "keep_changed", "truncated"):
            fields[name] = _flags(name, getattr(self, name), n)
        for name in ("has_action", "has_subgoal", "has_switch"):
            value = getattr(self, name)
            fields[name] = np.ones(n, dtype=bool) if value is None else _flags(name, value, n)
        fields["v_high"] = _reals("v_high", self.v_high, n, where=fields["boundary"])
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_grid", _layout(traj, fields["step"]))
        self._check_structure()

    def __len__(self) -> int:
        return self.traj.shape[0]

    @property
    def n_trajectories(self) -> int:
        return self._grid.length.shape[0]

    def _check_structure(self) -> None:
        first = self.step == 0
        if not self.boundary[first].all():
            bad = int(np.flatnonzero(first & ~self.boundary)[0])
            raise ValueError(
                f"HiperBatch.boundary must be True on the first turn of every trajectory "
                f"(trajectory {self.traj[bad]}, step 0, is False)"
            )
        both = self.keep_changed & self.boundary
        if both.any():
            bad = int(np.flatnonzero(both)[0])
            raise ValueError(
                f"HiperBatch.keep_changed marks a KEEP turn and must be False on boundary turns "
                f"(trajectory {self.traj[bad]}, step {self.step[bad]})"
            )
        not_last = self.step != self._grid.length[self._grid.row] - 1
        early = self.truncated & not_last
        if early.any():
            bad = int(np.flatnonzero(early)[0])
            raise ValueError(
                f"HiperBatch.truncated may only be True on a trajectory's last turn "
                f"(trajectory {self.traj[bad]}, step {self.step[bad]} of "
                f"{self._grid.length[self._grid.row[bad]]})"
            )


@dataclass(frozen=True, eq=False)
class HAEResult:
    """Output of :func:`hierarchical_advantages`, float32 (N,) arrays in the batch's row order.

    Attributes:
        action_adv: executor advantage, for the action tokens (0 where ``has_action`` is False).
        subgoal_adv: planner advantage, for the sub-goal tokens of boundary turns (0 elsewhere).
        term_adv: termination advantage, for the switch tokens (0 where ``has_switch`` is False).
        v_low_target, v_high_target, v_term_target: regression targets of the three value
            read-outs (``v_high_target`` on boundary rows, 0 elsewhere: its loss mask is
            ``batch.boundary``).
        turn_reward: the shaped per-turn reward HAE used (env reward + penalties).
        action_mask, subgoal_mask, term_mask: bool (N,), where each stream is defined.
        stats: diagnostics for logging (segment counts and lengths, KEEP share, the raw
            mean and std of each stream before normalisation).
    """

    action_adv: Float32Array
    subgoal_adv: Float32Array
    term_adv: Float32Array
    v_low_target: Float32Array
    v_high_target: Float32Array
    v_term_target: Float32Array
    turn_reward: Float32Array
    action_mask: BoolArray
    subgoal_mask: BoolArray
    term_mask: BoolArray
    stats: dict[str, float]


def hierarchical_advantages(
    batch: HiperBatch,
    *,
    gamma: float = 1.0,
    lam: float = 1.0,
    lam_seg: float = 0.95,
    invalid_penalty: float = 0.1,
    keep_penalty: float = -0.3,
    keep_penalty_mode: KeepPenaltyMode = "normalized",
    consistency_penalty: float = -0.3,
    bootstrap_truncated: bool = True,
    normalize: bool = True,
    epsilon: float = 1e-8,
) -> HAEResult:
    """HiPER's hierarchical advantages and value targets (formulas in the module docstring).

    Args:
        batch: the turns (:class:`HiperBatch`).
        gamma: discount per turn (reference and paper: 1.0).
        lam: GAE lambda of the executor inside a segment (reference ``lam``: 1.0).
        lam_seg: GAE lambda across segments for the planner (reference: 0.95).
        invalid_penalty: subtracted from the reward of a turn with ``valid`` False (0.1).
        keep_penalty: added on KEEP (non-boundary) turns; negative penalises (-0.3).
        keep_penalty_mode: ``"plain"`` (``keep_penalty`` on every KEEP turn) or
            ``"normalized"`` (``keep_penalty / T`` on each KEEP turn of a T-turn trajectory).
        consistency_penalty: added on ``keep_changed`` turns; negative penalises (-0.3).
        bootstrap_truncated: at the end of a truncated trajectory bootstrap the executor
            with the last turn's ``v_low`` and the planner and switch returns with the last
            segment's ``v_high`` (the reference's proxies: the state after the last turn has
            no read-out); False treats the step limit like a terminal state (value 0).
        normalize: normalise each stream separately over the rows where it is defined.
        epsilon: added to the std in the normalisation (reference: 1e-8).

    Returns:
        An :class:`HAEResult`.
    """
    _check_unit("gamma", gamma)
    _check_unit("lam", lam)
    _check_unit("lam_seg", lam_seg)
    for name, value in (
        ("invalid_penalty", invalid_penalty),
        ("keep_penalty", keep_penalty),
        ("consistency_penalty", consistency_penalty),
    ):
        _check_real(name, value)
    if keep_penalty_mode not in KEEP_PENALTY_MODES:
        raise ValueError(f"keep_penalty_mode must be one of {KEEP_PENALTY_MODES}, got {keep_penalty_mode!r}")
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not epsilon >= 0:
        raise ValueError(f"epsilon must be a number >= 0, got {epsilon!r}")

    g = batch._grid
    present = g.present
    boundary = g.put(batch.boundary, False)
    keep = present & ~boundary
    v_low = g.put(batch.v_low)
    v_term = g.put(batch.v_term)
    v_high = g.put(np.where(batch.boundary, batch.v_high, 0.0))  # other rows are never read

    reward = g.put(batch.reward) - float(invalid_penalty) * g.put(~batch.valid, False)
    # normalized: the trajectory's keep_penalty * #KEEP / T spread over its #KEEP turns = keep_penalty / T each
    per_keep = float(keep_penalty) / g.length[:, None] if keep_penalty_mode == "normalized" else keep_penalty
    reward = reward + np.where(keep, per_keep, 0.0)
    reward = reward + float(consistency_penalty) * g.put(batch.keep_changed, False)

    # Where each turn's successor stands. Column t + 1 exists for every t: the grid has an
    # empty last column, so the last turn of every trajectory has an empty successor.
    follows = np.zeros_like(present)
    follows[:, :-1] = present[:, 1:]
    next_boundary = np.zeros_like(present)
    next_boundary[:, :-1] = boundary[:, 1:]
    inside = follows & ~next_boundary  # the next turn is in the same segment
    to_next_segment = follows & next_boundary  # this turn ends a segment and another follows
    bootstrap = present & ~follows & g.put(batch.truncated, False) & bool(bootstrap_truncated)

    v_low_next = _shift_left(v_low)
    v_high_next = _shift_left(v_high)
    # v_high of the first turn of each turn's segment (step 0 is always a boundary).
    columns = np.arange(present.shape[1])
    segment_start = np.maximum.accumulate(np.where(boundary, columns, 0), axis=1)
    own_v_high = np.take_along_axis(v_high, segment_start, axis=1)

    next_value = np.where(inside, v_low_next, np.where(to_next_segment, v_high_next, 0.0))
    next_value = np.where(bootstrap, v_low, next_value)  # reference proxy for the state after the cut
    delta = np.where(present, reward + gamma * next_value - v_low, 0.0)
    segment_end_value = np.where(to_next_segment, v_high_next, np.where(bootstrap, own_v_high, 0.0))

    action = np.zeros(present.shape)
    to_go = np.zeros(present.shape)  # G: return to go within the segment, bootstrapped at its end
    planner = np.zeros(present.shape)
    carried = np.zeros(present.shape)  # gamma^(turns to the next segment) * A of the next segment
    for t in range(present.shape[1] - 2, -1, -1):
        stay = inside[:, t]
        action[:, t] = delta[:, t] + np.where(stay, gamma * lam * action[:, t + 1], 0.0)
        to_go[:, t] = reward[:, t] + gamma * np.where(stay, to_go[:, t + 1], segment_end_value[:, t])
        later = np.where(to_next_segment[:, t], planner[:, t + 1], 0.0)
        carried[:, t] = gamma * np.where(stay, carried[:, t + 1], later)
        planner[:, t] = np.where(boundary[:, t], to_go[:, t] - v_high[:, t] + lam_seg * carried[:, t], 0.0)
    term = np.where(present, to_go - v_term, 0.0)

    action_mask = present & g.put(batch.has_action, False)
    subgoal_mask = boundary & g.put(batch.has_subgoal, False)
    term_mask = present & g.put(batch.has_switch, False)
    stats = _stats(
        g, boundary, keep, reward, ((action, action_mask), (planner, subgoal_mask), (term, term_mask))
    )
    streams = []
    for values, mask in ((action, action_mask), (planner, subgoal_mask), (term, term_mask)):
        streams.append(_normalise(values, mask, float(epsilon)) if normalize else np.where(mask, values, 0.0))

    def out(grid: npt.NDArray) -> Float32Array:
        return g.take(grid).astype(np.float32)

    return HAEResult(
        action_adv=out(streams[0]),
        subgoal_adv=out(streams[1]),
        term_adv=out(streams[2]),
        v_low_target=out(action + v_low),
        v_high_target=out(np.where(boundary, planner + v_high, 0.0)),
        v_term_target=out(to_go),
        turn_reward=out(reward),
        action_mask=g.take(action_mask),
        subgoal_mask=g.take(subgoal_mask),
        term_mask=g.take(term_mask),
        stats=stats,
    )


def _shift_left(grid: FloatArray) -> FloatArray:
    out = np.zeros_like(grid)
    out[:, :-1] = grid[:, 1:]
    return out


def _normalise(values: FloatArray, mask: BoolArray, epsilon: float) -> FloatArray:
    """``(x - mean) / (population std + epsilon)`` over ``mask``, 0 elsewhere."""
    out = np.zeros_like(values)
    if mask.any():
        chosen = values[mask]
        chosen = chosen - chosen[0]  # equal values give exactly 0, not a rounding residue / epsilon
        deviation = chosen - chosen.mean()
        out[mask] = deviation / (np.sqrt(np.mean(deviation * deviation)) + epsilon)
    return out


def _stats(
    g: _Grid,
    boundary: BoolArray,
    keep: BoolArray,
    reward: FloatArray,
    streams: tuple[tuple[FloatArray, BoolArray], ...],
) -> dict[str, float]:
    turns = int(g.length.sum())
    segments = int(boundary.sum())
    stats = {
        "trajectories": float(g.length.shape[0]),
        "segments": float(segments),
        "segment_length_mean": turns / segments if segments else 0.0,
        "keep_share": float(keep.sum()) / turns if turns else 0.0,
        "turn_reward_mean": float(reward[g.present].mean()) if turns else 0.0,
    }
    for name, (values, mask) in zip(("action", "subgoal", "term"), streams, strict=True):
        chosen = values[mask]
        stats[f"{name}_adv_raw_mean"] = float(chosen.mean()) if chosen.size else 0.0
        stats[f"{name}_adv_raw_std"] = float(chosen.std()) if chosen.size else 0.0
    return stats


# ----------------------------------------------------------------------------- validation


def _layout(traj: IntArray, step: IntArray) -> _Grid:
    ids, row = np.unique(traj, return_inverse=True)
    row = row.reshape(-1).astype(np.int64)
    length = np.bincount(row, minlength=ids.size).astype(np.int64)
    good = (step >= 0) & (step < length[row])
    if good.all() and traj.size:
        seen = np.bincount(row * (length.max() + 1) + step)
        good = seen[row * (length.max() + 1) + step] == 1
    if not good.all():
        bad = int(np.flatnonzero(~good)[0])
        steps = sorted(step[row == row[bad]].tolist())
        raise ValueError(
            f"HiperBatch.step: trajectory {traj[bad]} has steps {steps}; steps must be 0..T-1 "
            "without gaps or repeats"
        )
    present = np.zeros((ids.size, int(length.max(initial=0)) + 1), dtype=bool)
    present[row, step] = True
    return _Grid(row=row, col=step, present=present, length=length)


def _integers(name: str, value: npt.ArrayLike, n: int | None) -> IntArray:
    array = np.asarray(value)
    _check_shape(name, array, n)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"HiperBatch.{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64)


def _reals(name: str, value: npt.ArrayLike, n: int, where: BoolArray | None = None) -> FloatArray:
    array = np.asarray(value)
    _check_shape(name, array, n)
    if array.size and array.dtype.kind not in "iuf":
        raise TypeError(f"HiperBatch.{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    checked = np.isfinite(array) if where is None else np.isfinite(array) | ~where
    if not checked.all():
        bad = int(np.flatnonzero(~checked)[0])
        raise ValueError(f"HiperBatch.{name} must be finite, row {bad} is {array[bad]}")
    return array


def _flags(name: str, value: npt.ArrayLike, n: int) -> BoolArray:
    array = np.asarray(value)
    _check_shape(name, array, n)
    if array.dtype == bool:
        return array.copy()
    if array.size and (array.dtype.kind not in "iu" or not np.isin(array, (0, 1)).all()):
        raise TypeError(f"HiperBatch.{name} must hold booleans (or 0/1 integers), got {array.dtype}")
    return array.astype(bool)


def _check_shape(name: str, array: npt.NDArray, n: int | None) -> None:
    if array.ndim != 1 or (n is not None and array.shape[0] != n):
        expected = "1-D" if n is None else f"shape ({n},) like traj"
        raise ValueError(f"HiperBatch.{name} must be {expected}, got shape {array.shape}")


def _check_unit(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_real(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
