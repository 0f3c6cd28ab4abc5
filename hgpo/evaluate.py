"""Evaluation of a policy (an LM, the env's expert, or random) on a split, over several seeds."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agentenv.vector import make_group_vector_env
from hgpo.config import TrainConfig
from hgpo.generation import GenerationBackend
from hgpo.rollout import (
    Decider,
    collect_rollouts,
    expert_decider,
    lm_decider,
    make_memory,
    random_decider,
    sampling_of,
)

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """Success (and WebShop score) per seed and per task type."""

    success_by_seed: list[float]
    score_by_seed: list[float]
    length_by_seed: list[float]
    by_task_type: dict[str, list[bool]] = field(default_factory=dict)
    episodes: int = 0

    def summary(self) -> dict[str, float]:
        out = {
            "success_rate": float(np.mean(self.success_by_seed)),
            "success_rate_std": float(np.std(self.success_by_seed)),
            "score": float(np.mean(self.score_by_seed)),
            "score_std": float(np.std(self.score_by_seed)),
            "episode_length": float(np.mean(self.length_by_seed)),
            "episodes": float(self.episodes),
        }
        for task_type, wins in sorted(self.by_task_type.items()):
            if task_type:
                out[f"success/{task_type}"] = float(np.mean(wins))
        return out

    def table(self) -> str:
        """A markdown table: overall and per task type."""
        s = self.summary()
        lines = [
            "| metric | value |",
            "|---|---|",
            f"| episodes | {self.episodes} ({len(self.success_by_seed)} seed(s)) |",
            f"| success rate | {s['success_rate']:.3f} ± {s['success_rate_std']:.3f} |",
            f"| score | {s['score']:.3f} ± {s['score_std']:.3f} |",
            f"| episode length | {s['episode_length']:.1f} |",
        ]
        for task_type, wins in sorted(self.by_task_type.items()):
            if task_type:
                lines.append(f"| {task_type} | {np.mean(wins):.3f} ({len(wins)}) |")
        return "\n".join(lines)


def run_evaluation(
    cfg: TrainConfig,
    decide: Decider,
    *,
    episodes: int,
    seeds: Sequence[int],
    env_overrides: dict | None = None,
    tokenizer=None,
) -> EvalResult:
    """``episodes`` episodes per seed on the eval split (``env.eval_kwargs``), one env per task,
    played ``eval.num_envs`` at a time."""
    kwargs = {"max_steps": cfg.env.max_steps, **cfg.env.kwargs, **cfg.env.eval_kwargs, **(env_overrides or {})}
    n_envs = min(episodes, cfg.eval.num_envs)
    envs = make_group_vector_env(cfg.env.id, n_envs, 1, asynchronous=cfg.env.asynchronous, **kwargs)
    memory = make_memory(cfg, tokenizer)
    result = EvalResult([], [], [], defaultdict(list))
    try:
        for seed in seeds:
            # Seed s covers tasks s*episodes .. (s+1)*episodes-1 of the split, in rounds of n_envs.
            won, score, length = [], [], []
            for start in range(0, episodes, n_envs):
                rollout = collect_rollouts(
                    envs, memory, decide, seed=seed * episodes + start, max_steps=cfg.env.max_steps
                )
                keep = min(n_envs, episodes - start)
                won.extend(rollout.won[:keep].tolist())
                score.extend(rollout.score[:keep].tolist())
                length.extend(rollout.episode_length[:keep].tolist())
                for task_type, w in zip(rollout.task_type[:keep], rollout.won[:keep], strict=True):
                    result.by_task_type[task_type].append(bool(w))
            result.success_by_seed.append(float(np.mean(won)))
            result.score_by_seed.append(float(np.mean(score)))
            result.length_by_seed.append(float(np.mean(length)))
            result.episodes += len(won)
    finally:
        envs.close()
    result.by_task_type = dict(result.by_task_type)
    return result


def evaluate_policy(
    cfg: TrainConfig,
    backend: GenerationBackend,
    tokenizer,
    *,
    episodes: int,
    seeds: Sequence[int],
    split: str | None = None,
) -> EvalResult:
    """Evaluate an LM policy (through its generation backend) with the eval temperature
    (greedy when 0) on ``split`` (None: the split of ``env.eval_kwargs``)."""
    g = cfg.generation
    decide = lm_decider(
        backend,
        tokenizer,
        sampling_of(g, evaluation=True),
        env_kind=cfg.memory.env,
        seed=cfg.seed + 1_000_003,  # its own sampling stream, the same at every evaluation
        require_think=g.require_think,
        project=g.project_actions,
        hiper=cfg.algo.name == "hiper",
    )
    overrides = {"split": split} if split else None
    return run_evaluation(
        cfg, decide, episodes=episodes, seeds=seeds, tokenizer=tokenizer, env_overrides=overrides
    )


def evaluate_baseline(cfg: TrainConfig, policy: str, *, episodes: int, seeds: Sequence[int]) -> EvalResult:
    """Evaluate the env's expert (``policy="expert"``) or uniformly random admissible actions."""
    if policy == "expert":
        return run_evaluation(
            cfg, expert_decider, episodes=episodes, seeds=seeds, env_overrides={"expert": True}
        )
    if policy == "random":
        return run_evaluation(cfg, random_decider(cfg.seed), episodes=episodes, seeds=seeds)
    raise ValueError(f"unknown baseline policy {policy!r} (expected 'expert' or 'random')")
