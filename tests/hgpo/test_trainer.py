"""The trainer end to end on the corridor env with a tiny random model (CPU).

The corridor needs multi-step credit assignment (reward only at the last step, a
tight step limit) and its expert is noisy, so imitation alone gives a mediocre
policy: RL has to improve it for the learning test to pass.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hgpo.config import load_config
from hgpo.metrics import read_metrics
from hgpo.trainer import Trainer, train
from tests.hgpo import learning
from tests.hgpo.learning import learning_arm

REPO = Path(__file__).resolve().parents[2]
ENV_ID = "tests.hgpo.corridor:Corridor-v0"


def corridor_overrides(out: Path, **extra) -> list[str]:
    base = {
        "env.id": ENV_ID,
        "env.num_groups": 8,
        "env.group_size": 4,
        "env.asynchronous": False,
        "env.max_steps": 10,
        "model.path": "tiny",
        "model.tiny.vocab_size": 400,
        "model.tiny.intermediate": 128,
        "memory.env": "alfworld",
        "memory.history_length": 2,
        "memory.max_prompt_tokens": "null",
        "generation.max_new_tokens": 12,
        "generation.require_think": "false",
        "generation.eval_temperature": 1.0,
        "ppo.lr": 5e-4,
        "ppo.mini_batch_size": 64,
        "ppo.micro_batch_size": 32,
        "ppo.kl_coef": 0.0,
        "ppo.entropy_coef": 0.0,
        "warm_start.episodes": 32,
        "warm_start.epochs": 6,
        "warm_start.lr": 3e-3,
        "warm_start.env_kwargs": "{expert: true, expert_noise: 0.4}",
        "eval.every": 0,
        "eval.episodes": 32,
        "save_every": 100,
        "output_dir": str(out),
        "torch_threads": 1,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def test_hgpo_beats_the_same_run_with_zeroed_advantages(tmp_path):
    """The learning proof, with a control arm: the same run (same imitation start, same tasks,
    same evaluation episodes) with every advantage set to 0. Only the advantages differ, so
    the margin is what RL learned. benchmarks/learning_proof.py runs both arms at seeds 0-4
    (and the sign-flipped arm, which must fail this test): BENCHMARKS.md, "Learning proof"."""
    trained = learning_arm(
        tmp_path / "trained", seed=0, scale=1.0, overrides=corridor_overrides(tmp_path / "trained")
    )
    control = learning_arm(
        tmp_path / "control", seed=0, scale=0.0, overrides=corridor_overrides(tmp_path / "control")
    )
    assert trained["before"] == control["before"]  # one starting policy, one set of evaluation episodes
    assert trained["after"] - control["after"] >= learning.MARGIN, (trained, control)
    assert trained["train_last3"] - control["train_last3"] >= learning.MARGIN / 2, (trained, control)


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "checkpoint" / "policy" / "model.safetensors"))


def test_resume_matches_uninterrupted_run(tmp_path):
    common = {"warm_start.episodes": 8, "warm_start.epochs": 1, "save_every": 1, "ppo.kl_coef": 0.01}
    straight = tmp_path / "straight"
    train(load_config(None, corridor_overrides(straight, iterations=3, **common)))
    split = tmp_path / "split"
    train(load_config(None, corridor_overrides(split, iterations=2, **common)))
    train(load_config(None, corridor_overrides(split, iterations=3, **common)))  # resumes at iteration 2

    assert_same_run(straight, split)


#: Metrics a resumed run must reproduce exactly (rollouts, sampling and the update).
RESUME_KEYS = (
    "rollout/success_rate",
    "rollout/steps",
    "rollout/response_tokens",
    "actor/pg_loss",
    "actor/kl_ref",
)


def assert_same_run(straight: Path, split: Path, keys: tuple[str, ...] = RESUME_KEYS) -> None:
    """A run interrupted after 2 iterations and resumed to 3 equals the uninterrupted one:
    bit-identical final weights and metrics."""
    a, b = _final_weights(straight), _final_weights(split)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    ma, mb = read_metrics(straight / "metrics.jsonl"), read_metrics(split / "metrics.jsonl")
    assert [r["iteration"] for r in mb] == [r["iteration"] for r in ma] == [0, 1, 2]
    for ra, rb in zip(ma, mb, strict=True):
        for key in keys:
            assert ra[key] == rb[key], (key, ra["iteration"])


def test_baseline_evaluation_is_written_once_before_the_first_update(tmp_path):
    out = tmp_path / "baseline"
    common = {"warm_start.episodes": 8, "warm_start.epochs": 1, "save_every": 1, "eval.at_start": "true",
              "eval.every": 2, "eval.episodes": 8}  # fmt: skip
    train(load_config(None, corridor_overrides(out, iterations=1, **common)))
    train(load_config(None, corridor_overrides(out, iterations=2, **common)))  # resumes at iteration 1
    records = read_metrics(out / "metrics.jsonl")
    assert [r["iteration"] for r in records] == [-1, 0, 1]
    assert "rollout/success_rate" not in records[0]
    assert 0.0 <= records[0]["eval/success_rate"] <= 1.0
    # Iteration 0 was the last of the first run, iteration 1 is a multiple of eval.every and the last.
    assert "eval/success_rate" in records[1] and "eval/success_rate" in records[2]
    assert (out / "learning_curve.png").stat().st_size > 1000


def test_lora_policy_uses_adapter_off_as_reference(tmp_path):
    out = tmp_path / "lora"
    overrides = corridor_overrides(
        out,
        iterations=2,
        **{
            "warm_start.episodes": 8,
            "warm_start.epochs": 1,
            "ppo.kl_coef": 0.05,
            "ppo.mini_batch_size": 1024,  # one optimiser step per iteration: iteration 0 is scored before it
            "model.lora": "{r: 4, alpha: 8}",
        },
    )
    cfg = load_config(None, overrides)
    trainer = Trainer(cfg)
    try:
        assert trainer.ref_model is None  # the reference is the base model (adapter disabled)
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in trainer.model.parameters())
        assert 0 < trainable < total / 2
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.train()
        changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())]
    finally:
        trainer.close()
    assert changed and all("lora_" in n for n in changed)
    records = read_metrics(out / "metrics.jsonl")
    assert records[0]["actor/kl_ref"] == pytest.approx(0.0, abs=1e-6)  # adapter starts as a no-op
    assert records[-1]["actor/kl_ref"] > 0.0
    # The checkpoint keeps the adapter for resume and a merged plain folder for users and vLLM.
    assert (out / "checkpoint" / "adapter" / "adapter_config.json").is_file()
    assert (out / "checkpoint" / "policy" / "config.json").is_file()
    assert not (out / "checkpoint" / "policy" / "adapter_config.json").exists()


def test_hiper_iteration_trains_policy_and_critic(tmp_path):
    out = tmp_path / "hiper"
    overrides = corridor_overrides(
        out,
        iterations=2,
        **{
            "algo.name": "hiper",
            "memory.prompt_format": "hiper",
            "generation.max_new_tokens": 24,
            "warm_start.epochs": 8,
            "algo.hiper.critic_lr": 1e-3,
        },
    )
    trainer = Trainer(load_config(None, overrides))
    try:
        rollout = trainer.rollout(0)
        adv = trainer.advantages(rollout)
        res, batch, tokens = adv.hiper
        assert batch.boundary[rollout.step == 0].all()
        # Spans found in real tokenizer output: masked tokens decode to the three elements.
        valid = [i for i, t in enumerate(rollout.turns) if t is not None and t.valid]
        assert len(valid) > len(rollout) / 2  # the warm start taught the turn format
        # Well-formed turns only: a sampled "<action>se KEEP</switch><subgoal>..." is valid for the
        # parser but nests the sub-goal inside the action span.
        well_formed = re.compile(r"<switch>\w+</switch>(<subgoal>[^<]*</subgoal>)?<action>[^<]*</action>")
        valid = [
            i
            for i in valid
            if well_formed.fullmatch(
                trainer.tokenizer.decode(rollout.response_ids[i], skip_special_tokens=True)
            )
        ]
        assert len(valid) > len(rollout) / 3
        for i in valid[:20]:
            ids = np.array(rollout.response_ids[i])
            text = trainer.tokenizer.decode(ids[adv.masks[i] > 0].tolist())
            assert "<switch>" in text and "<action>" in text and "</action>" in text, text
            # A sub-goal is trained only where it was chosen (boundary turns), never when copied on KEEP.
            assert ("<subgoal>" in text) == bool(batch.boundary[i]), text
            a0, a1 = tokens[i].action
            assert np.all(adv.advs[i][a0:a1] == res.action_adv[i])
        # The critic regresses on HAE's targets: on a fixed batch its loss falls.
        losses = [
            trainer.critic.update(rollout, tokens, res, batch, np.random.default_rng(0)) for _ in range(6)
        ]
        assert losses[-1]["critic/loss_term"] < losses[0]["critic/loss_term"]
        assert losses[-1]["critic/loss_low"] < losses[0]["critic/loss_low"]
        trainer.train()
    finally:
        trainer.close()
    records = read_metrics(out / "metrics.jsonl")
    assert len(records) == 2
    for r in records:
        for head in ("high", "low", "term"):
            assert np.isfinite(r[f"critic/loss_{head}"])
        assert r["rollout/invalid_action_rate"] < 0.5
    assert (out / "checkpoint" / "critic" / "state.pt").is_file()


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, **kw)


def test_cli_train_then_eval_checkpoint_expert_and_random(tmp_path):
    out = tmp_path / "cli"
    overrides = corridor_overrides(out, iterations=1, **{"warm_start.episodes": 8, "warm_start.epochs": 1})
    bin_dir = Path(sys.executable).parent
    res = _run([str(bin_dir / "hgpo-train"), *overrides])
    assert res.returncode == 0, res.stderr[-3000:]
    assert (out / "metrics.jsonl").is_file() and (out / "learning_curve.png").is_file()

    evals = {}
    for policy in ("expert", "random", str(out / "checkpoint")):
        res = _run(
            [str(bin_dir / "hgpo-eval"), "--policy", policy, "--episodes", "8", "--seeds", "0", "1", "--json",
             *[o for o in overrides if not o.startswith("model.path")]]
        )  # fmt: skip
        assert res.returncode == 0, res.stderr[-3000:]
        evals[policy] = json.loads(res.stdout.strip().splitlines()[-1])
    assert evals["expert"]["success_rate"] == 1.0
    assert evals["expert"]["episodes"] == 16
    assert evals["random"]["success_rate"] < 0.5
    assert 0.0 <= evals[str(out / "checkpoint")]["success_rate"] <= 1.0


def test_cli_rejects_bad_config_with_clear_message(tmp_path):
    bin_dir = Path(sys.executable).parent
    res = _run([str(bin_dir / "hgpo-train"), "ppo.micro_batch_size=512", "ppo.mini_batch_size=8"])
    assert res.returncode == 2
    assert "micro_batch_size" in res.stderr
    res = _run([str(bin_dir / "hgpo-train"), "--config", str(tmp_path / "missing.yaml")])
    assert res.returncode == 2 and "does not exist" in res.stderr
    res = _run([str(bin_dir / "hgpo-train"), "algo.name=ppo2"])
    assert res.returncode == 2 and "algo.name" in res.stderr
