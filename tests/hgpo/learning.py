"""The learning proof's arms: the same corridor run with real, zeroed or sign-flipped advantages.

Shared by ``tests/hgpo/test_trainer.py`` (one seed, in CI) and
``benchmarks/learning_proof.py`` (every seed, the margins in BENCHMARKS.md). Both arms
start from the same imitation of a noisy expert and see the same tasks; the control
arm gets every advantage set to 0 (so only the update's other terms act, here none:
KL and entropy are off), the flipped arm gets them negated.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from hgpo.config import load_config
from hgpo.trainer import TokenAdvantages, Trainer

#: Iterations of RL and evaluation episodes (sampled, temperature 1) per arm.
ITERATIONS = 12
EVAL_EPISODES = 128
#: The proof subtracts the invalid-action penalty from the advantage (``advantage``), not from
#: the reward before the group statistics (the reference's default): on this task the
#: reference's placement learns too, but more slowly (margins in BENCHMARKS.md).
OVERRIDES = ["algo.invalid_penalty_placement=advantage"]
#: What the trained arm must beat the control arm by (evaluation success; half of it on the
#: last three training iterations): below the smallest margin measured at seeds 0-4.
MARGIN = 0.15


class ScaledAdvantageTrainer(Trainer):
    """A trainer whose advantages are multiplied by ``scale`` (0: control arm, -1: flipped)."""

    scale = 1.0

    def advantages(self, rollout) -> TokenAdvantages:
        adv = super().advantages(rollout)
        return replace(adv, advs=[a * self.scale for a in adv.advs], per_step=adv.per_step * self.scale)


def learning_arm(
    out: Path,
    *,
    seed: int,
    scale: float,
    overrides: list[str],
    iterations: int = ITERATIONS,
    eval_episodes: int = EVAL_EPISODES,
) -> dict[str, float]:
    """Train one arm; return its success before RL, after RL (sampled evaluation) and the
    training-rollout curve. ``overrides`` are the corridor job's (tests.hgpo.test_trainer)."""
    settings = [f"seed={seed}", f"iterations={iterations}", f"eval.episodes={eval_episodes}"]
    cfg = load_config(None, [*OVERRIDES, *overrides, *settings])  # later entries win
    trainer = type("Arm", (ScaledAdvantageTrainer,), {"scale": scale})(cfg)
    try:
        before = trainer.evaluate()["eval/success_rate"]
        trainer.train()
        after = trainer.evaluate()["eval/success_rate"]
    finally:
        trainer.close()
    from hgpo.metrics import read_metrics

    curve = [r["rollout/success_rate"] for r in read_metrics(out / "metrics.jsonl")]
    return {
        "before": before,
        "after": after,
        "train_first": curve[0],
        "train_last3": float(np.mean(curve[-3:])),
    }
