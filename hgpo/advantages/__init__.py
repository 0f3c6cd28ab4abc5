"""Group-relative advantage estimators for multi-step agents: GRPO, GiGPO, HGPO.

>>> from hgpo.advantages import StepBatch, estimate_advantages
>>> batch = StepBatch(group=group, traj=traj, step=step, reward=reward, keys=keys)  # doctest: +SKIP
>>> adv = estimate_advantages("hgpo", batch, gamma=0.95, mode="mean_std_norm")   # doctest: +SKIP

All estimators are pure numpy functions of the flat step arrays, vectorised with
sorting and ``np.bincount`` (no Python loop over steps or groups). See
docs/advantages.md for the definitions, the deviations between the papers and the
reference code, and the defaults.
"""

from __future__ import annotations

from hgpo.advantages.batch import StepBatch, discounted_returns, episode_returns
from hgpo.advantages.estimators import (
    EPISODE_STATS,
    ESTIMATORS,
    MODES,
    WEIGHTINGS,
    estimate_advantages,
    group_sizes,
)

__all__ = [
    "EPISODE_STATS",
    "ESTIMATORS",
    "MODES",
    "WEIGHTINGS",
    "StepBatch",
    "discounted_returns",
    "episode_returns",
    "estimate_advantages",
    "group_sizes",
]
