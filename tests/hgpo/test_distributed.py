"""Two CPU ranks (gloo) with torchrun: DDP and FSDP2 learners, resume, export, vLLM under FSDP.

All 2-rank jobs run in ONE torchrun launch (tests/hgpo/distributed_runs.py), shared by
the tests of this module; a single-process run of the same job is the third arm of the
DDP / FSDP / one-process comparison.

Why the runs can be compared at all: sampling is greedy, so rollouts do not depend on
how envs are split over ranks or on any RNG; and each iteration makes one optimiser
step on one mini-batch of all steps, whose token-mean gradient is the same sum in
every layout. What differs is float32 summation order (gradient all-reduce vs
reduce-scatter, per-rank partial sums), about 1e-7 relative per step.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hgpo.config import ModelConfig, load_config
from hgpo.metrics import read_metrics
from hgpo.policy import load_pretrained
from hgpo.trainer import train
from tests.hgpo.distributed_runs import probe_logprobs
from tests.hgpo.test_trainer import _final_weights, assert_same_run, corridor_overrides

REPO = Path(__file__).resolve().parents[2]

#: Parameters of the three layouts after 3 AdamW updates (lr 1e-3): measured max |diff| 6e-8
#: between DDP and FSDP and 1.3e-6 between either and one process, while training moved them
#: by up to 3e-3 (a single step of lr moves a parameter by up to 1e-3): 1e-5 separates "the
#: same training" from any real difference.
PARAM_ATOL = 1e-5


def _job(out: Path, **extra) -> list[str]:
    base = {
        "env.num_groups": 8,
        "env.max_steps": 6,
        "model.tiny.heads": 2,  # head size 32: vLLM's CPU kernels need >= 32
        "generation.temperature": 0.0,  # greedy: rollouts independent of the rank layout
        # Greedy members of a group would play identical episodes (zero group-relative
        # advantage): one rollout per task, and GRPO over trajectories, whose advantage of a
        # lone trajectory is its return (the reference's rule), so successes carry signal.
        "env.group_size": 1,
        "algo.name": "grpo",
        "algo.options": "{episode_stats: trajectory}",
        "algo.invalid_action_penalty": 0.0,
        "ppo.lr": 1e-3,
        "ppo.kl_coef": 0.01,
        "ppo.mini_batch_size": 4096,  # one optimiser step per iteration
        "warm_start.episodes": 24,
        "warm_start.epochs": 8,  # greedy imitation then wins about half the tasks
        "warm_start.env_kwargs": "{expert: true, expert_noise: 0.0}",
        "save_every": 1,
    }
    base.update(extra)
    return corridor_overrides(out, **base)


RUNS = {
    "ddp": dict(iterations=3),
    "fsdp": dict(iterations=3, **{"distributed.strategy": "fsdp"}),
    "fsdp_split": dict(iterations=2, **{"distributed.strategy": "fsdp"}),
    "ddp_lora": dict(iterations=3, **{"model.lora": "{r: 4, alpha: 8}", "generation.temperature": 1.0}),
    "ddp_lora_split": dict(iterations=2, **{"model.lora": "{r: 4, alpha: 8}", "generation.temperature": 1.0}),
    "fsdp_vllm": dict(
        iterations=2, **{"distributed.strategy": "fsdp", "generation.backend": "vllm", "generation.temperature": 1.0}
    ),
    "fsdp_hiper_lora": dict(
        iterations=1,
        **{
            "distributed.strategy": "fsdp",
            "algo.name": "hiper",
            "memory.prompt_format": "hiper",
            "generation.max_new_tokens": 24,
            "generation.temperature": 1.0,
            "model.lora": "{r: 4, alpha: 8}",
        },
    ),
}
#: The second launch of a split run: resume to the full length.
RESUMED = {"fsdp_split": "fsdp", "ddp_lora_split": "ddp_lora"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dist")
    outs = {name: root / name for name in RUNS}
    spec = [{"overrides": _job(outs[n], **kw), "probe": n == "fsdp"} for n, kw in RUNS.items() if n != "fsdp_vllm"]
    spec += [
        {"overrides": _job(outs[split], **{**RUNS[split], "iterations": RUNS[full]["iterations"]})}
        for split, full in RESUMED.items()
    ]
    spec.append({"overrides": _job(outs["fsdp_vllm"], **RUNS["fsdp_vllm"])})  # last: see distributed_runs.py
    spec_file = root / "spec.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(REPO / "tests" / "hgpo" / "distributed_runs.py"), str(spec_file)]  # fmt: skip
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stderr[-6000:]
    return outs


def test_ddp_keeps_replicas_identical(runs):
    records = read_metrics(runs["ddp"] / "metrics.jsonl")
    assert len(records) == 3
    for r in records:
        assert r["dist/param_divergence"] == 0.0
        assert r["rollout/steps"] >= 4 * 2  # both ranks' steps (2 groups x 2 envs each) are counted


def test_fsdp_ddp_and_one_process_train_the_same_parameters(runs, tmp_path):
    single = tmp_path / "single"
    train(load_config(None, _job(single, **RUNS["ddp"])))
    weights = {name: _final_weights(runs[name]) for name in ("ddp", "fsdp")}
    weights["single"] = _final_weights(single)
    start = _final_weights_of_reference(runs["ddp"])
    moved = max(float((weights["single"][k] - start[k]).abs().max()) for k in start)
    assert moved > 100 * PARAM_ATOL  # the updates did move the parameters
    for other in ("ddp", "fsdp"):
        assert weights[other].keys() == weights["single"].keys()
        for k in weights["single"]:
            assert torch.allclose(weights[other][k], weights["single"][k], atol=PARAM_ATOL, rtol=0), (other, k)
    # Same rollouts in all three (greedy): the success curves are identical.
    curves = [[r["rollout/success_rate"] for r in read_metrics(p / "metrics.jsonl")] for p in (runs["ddp"], runs["fsdp"], single)]
    assert curves[0] == curves[1] == curves[2]


def _final_weights_of_reference(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "reference" / "model.safetensors"))


@pytest.mark.parametrize("split,full", list(RESUMED.items()))
def test_resume_two_ranks_equals_uninterrupted(runs, split, full):
    """2 + 1 iterations equal 3: FSDP (sharded model and optimizer) and DDP with LoRA after a
    warm start (base from the saved start-of-RL weights, adapter, every rank's own RNG)."""
    assert_same_run(runs[full], runs[split])


def test_fsdp_export_reloads_in_transformers_with_the_same_logprobs(runs):
    model, _ = load_pretrained(str(runs["fsdp"] / "checkpoint" / "policy"), ModelConfig(), torch.device("cpu"))
    assert type(model).__name__ == "LlamaForCausalLM"
    expected = torch.load(runs["fsdp"] / "probe.pt")
    assert torch.allclose(probe_logprobs(model.eval(), torch.device("cpu")), expected, atol=1e-5)
    assert (runs["fsdp"] / "checkpoint" / "actor" / ".metadata").is_file()  # DCP shards beside it


def test_vllm_engines_follow_fsdp_updates(runs):
    """Each rank's engine gets the full (gathered) weights after every update."""
    records = read_metrics(runs["fsdp_vllm"] / "metrics.jsonl")
    assert len(records) == 2
    for r in records:
        assert r["rollout/logprob_abs_diff_mean"] < 1e-4
        assert r["rollout/logprob_abs_diff_max"] < 1e-3


def test_hiper_critic_and_lora_under_fsdp(runs):
    (record,) = read_metrics(runs["fsdp_hiper_lora"] / "metrics.jsonl")
    for head in ("high", "low", "term"):
        assert np.isfinite(record[f"critic/loss_{head}"])
    assert (runs["fsdp_hiper_lora"] / "checkpoint" / "critic" / ".metadata").is_file()
    assert (runs["fsdp_hiper_lora"] / "checkpoint" / "policy" / "config.json").is_file()
