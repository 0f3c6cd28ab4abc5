"""Group-by reductions on flat arrays (the numpy kernels behind every estimator).

Rows are numbered by the distinct values of one or more columns (a 64-bit row hash,
sorted once); sums per group are ``np.bincount`` calls. Nothing here loops over rows
or groups.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def dense_ids(*columns: npt.NDArray[np.integer]) -> tuple[IntArray, int]:
    """Number the distinct rows of ``columns`` (equal-length 1-D integer arrays) as 0..G-1.

    Returns ``(ids, G)``: rows with equal values in every column share an id. The
    numbering is arbitrary but a deterministic function of the input arrays.

    Each row is hashed to one 64-bit integer and the hashes are sorted once: a single
    ``argsort`` of uint64 is several times faster than ``np.lexsort`` over the columns.
    Rows whose hashes are equal are then compared column by column, so the grouping is
    exact; on a hash collision it falls back to ``np.lexsort``.
    """
    n = columns[0].shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    row_hash = np.zeros(n, dtype=np.uint64)
    for column in columns:  # uint64 arithmetic wraps around; the odd multiplier is a bijection
        row_hash = (row_hash ^ column.astype(np.uint64)) * _GOLDEN
    order = np.argsort(row_hash)
    ordered = row_hash[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    # Neighbours that share a hash must share every column. Checking all but the last
    # column is enough: with the others equal, the hash is a bijection of the last one.
    for column in columns[:-1]:
        in_order = column[order]
        if np.any((in_order[1:] != in_order[:-1]) & ~starts[1:]):
            return _dense_ids_by_sorting(columns)
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.cumsum(starts) - 1
    return ids, int(ids[order[-1]]) + 1


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio, odd


def _dense_ids_by_sorting(columns: tuple[npt.NDArray[np.integer], ...]) -> tuple[IntArray, int]:
    n = columns[0].shape[0]
    order = np.lexsort(columns[::-1])
    starts = np.zeros(n, dtype=bool)
    starts[0] = True
    for column in columns:
        ordered = column[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.cumsum(starts) - 1
    return ids, int(starts.sum())


def group_moments(
    values: FloatArray, ids: IntArray, n_groups: int
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Per group: ``(pivot, shifted mean, sum of squared deviations, size)``, each (G,).

    ``pivot`` is one member's value and ``shifted mean`` the mean of ``values - pivot``,
    so ``(x - pivot) - shifted mean`` is x's deviation from the group mean, computed
    without cancellation: a group whose values are all equal gets exactly 0.0 (a plain
    float32 mean, as in the reference code, can leave ~1 ulp, which mean_std_norm then
    divides by ~1e-6). ``x`` may be any value, not only a member (see
    ``_episode_advantages``: one entry per trajectory sets the statistics, every step is
    normalised with them).
    """
    size = np.bincount(ids, minlength=n_groups)
    pivot = np.zeros(n_groups, dtype=np.float64)
    pivot[ids] = values  # any member will do
    shifted = values - pivot[ids]
    mean = np.bincount(ids, shifted, minlength=n_groups) / np.maximum(size, 1)
    deviation = shifted - mean[ids]
    return pivot, mean, np.bincount(ids, deviation * deviation, minlength=n_groups), size


def centre(values: FloatArray, ids: IntArray, n_groups: int) -> tuple[FloatArray, FloatArray, IntArray]:
    """Deviation of each value from its group's mean.

    Returns per row ``(deviation, sum of squared deviations of its group, group size)``;
    equal values give deviations of exactly 0.0 (see :func:`group_moments`).
    """
    pivot, mean, sum_sq, size = group_moments(values, ids, n_groups)
    deviation = (values - pivot[ids]) - mean[ids]
    return deviation, sum_sq[ids], size[ids]


def normalise(
    deviation: FloatArray, sum_sq: FloatArray, size: IntArray, *, std: bool, ddof: int, epsilon: float
) -> FloatArray:
    """``deviation`` (mean_norm) or ``deviation / (std + epsilon)`` (mean_std_norm).

    ``ddof=1`` is the unbiased std (torch.std, used by GRPO/GiGPO), ``ddof=0`` the
    population std (used by the HGPO reference). A group too small for its ddof
    has std 0 (its deviations are 0 too, so its advantages are 0).
    """
    if not std:
        return deviation
    spread = np.sqrt(sum_sq / np.maximum(size - ddof, 1))
    return deviation / (spread + epsilon)
