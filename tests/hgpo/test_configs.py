"""The ready configs reproduce the reference run scripts, setting by setting.

``REFERENCE`` below is read off the scripts (verl-agent ``examples/grpo_trainer/run_*.sh``,
``examples/gigpo_trainer/run_*.sh``, ``recipe/hgpo/run_qwen2.5_1.5b_*_train.sh``; HiPER-agent
``example_scripts/HiPER_trainer/run_*.sh``) and the verl-agent defaults they keep
(``ppo_trainer.yaml``: actor weight decay 0.01, env.history_length 2, critic cliprange_value
0.5, GRPO's norm_adv_by_std_in_grpo=True). A config may deviate only where its header says
why; the known deviations are listed in ``DEVIATIONS``. Variants under configs/variants may
differ from their base file only in the settings their header names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hgpo.config import AlgoConfig, HiperConfig, PPOConfig, TrainConfig, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# Shared by every reference script (verl-agent defaults the scripts keep or set).
COMMON = {
    "ppo.lr": 1e-6,
    "ppo.weight_decay": 0.01,
    "ppo.clip_low": 0.2,
    "ppo.clip_high": 0.2,
    "ppo.dual_clip": 3.0,
    "ppo.kl_coef": 0.01,
    "ppo.entropy_coef": 0.001,
    "ppo.epochs": 1,
    "ppo.max_grad_norm": 1.0,
    "ppo.loss_agg": "token-mean",
    "generation.temperature": 1.0,
    "generation.eval_temperature": 0.4,
    "generation.max_new_tokens": 512,
    "eval.every": 5,
    "memory.key_mode": "obs",  # the reference groups on anchor_obs: observations only
}
GROUPED = {  # GRPO, GiGPO, HGPO: 16 tasks x 8 rollouts, invalid-action penalty 0.1 in the reward
    "env.num_groups": 16,
    "env.group_size": 8,
    "algo.gamma": 0.95,
    "algo.invalid_action_penalty": 0.1,
    "algo.invalid_penalty_placement": "reward",
    "memory.prompt_format": "think",
}
HIPER = {  # 128 independent envs, HAE with the critic of verl's defaults
    "env.num_groups": 128,
    "env.group_size": 1,
    "env.max_steps": 50,
    "memory.history_length": 2,
    "memory.max_prompt_tokens": 2048,
    "memory.prompt_format": "hiper",
    "ppo.mini_batch_size": 256,
    "algo.hiper.gamma": 1.0,
    "algo.hiper.lam": 1.0,
    "algo.hiper.lam_seg": 0.95,
    "algo.hiper.invalid_penalty": 0.1,
    "algo.hiper.keep_penalty_mode": "normalized",
    "algo.hiper.consistency_penalty": -0.3,
    "algo.hiper.normalize": True,
    "algo.hiper.critic_lr": 1e-5,
    "algo.hiper.critic_mini_batch_size": 256,
    "algo.hiper.critic_max_grad_norm": 1.0,
    "algo.hiper.value_clip": 0.5,
    "iterations": 150,
    "eval.at_start": True,
}
REFERENCE: dict[str, dict[str, Any]] = {
    "alfworld_grpo": {**GROUPED, "algo.name": "grpo", "algo.mode": "mean_std_norm", "env.max_steps": 50,
                      "memory.history_length": 2, "memory.max_prompt_tokens": 2048, "ppo.mini_batch_size": 256,
                      "iterations": 150, "eval.at_start": True},
    "webshop_grpo": {**GROUPED, "algo.name": "grpo", "algo.mode": "mean_std_norm", "env.max_steps": 15,
                     "memory.history_length": 2, "memory.max_prompt_tokens": 4096, "ppo.mini_batch_size": 64,
                     "iterations": 150, "eval.at_start": True},
    "alfworld_gigpo": {**GROUPED, "algo.name": "gigpo", "algo.mode": "mean_std_norm", "env.max_steps": 50,
                       "algo.options.step_advantage_w": 1.0, "algo.options.episode_stats": "step",
                       "memory.history_length": 2, "memory.max_prompt_tokens": 2048, "ppo.mini_batch_size": 256,
                       "iterations": 150, "eval.at_start": True},
    "webshop_gigpo": {**GROUPED, "algo.name": "gigpo", "algo.mode": "mean_norm", "env.max_steps": 15,
                      "algo.options.step_advantage_w": 1.0, "algo.options.episode_stats": "step",
                      "memory.history_length": 2, "memory.max_prompt_tokens": 4096, "ppo.mini_batch_size": 64,
                      "iterations": 150, "eval.at_start": True},
    "alfworld_hgpo": {**GROUPED, "algo.name": "hgpo", "algo.mode": "mean_std_norm", "env.max_steps": 50,
                      "algo.options.alpha": 1.0, "algo.options.base_group": False,
                      "algo.options.weighting": "reference", "memory.history_length": 2,
                      "memory.max_prompt_tokens": 4096, "ppo.mini_batch_size": 256, "iterations": 160,
                      "eval.at_start": False},
    "webshop_hgpo": {**GROUPED, "algo.name": "hgpo", "algo.mode": "mean_norm", "env.max_steps": 30,
                     "algo.options.alpha": 1.0, "algo.options.base_group": False,
                     "algo.options.weighting": "reference", "memory.history_length": 2,
                     "memory.max_prompt_tokens": 4096, "ppo.mini_batch_size": 64, "iterations": 160,
                     "eval.at_start": False},
    "alfworld_hiper": {**HIPER, "algo.name": "hiper", "algo.hiper.keep_penalty": -0.3,
                       "algo.hiper.bootstrap_truncated": True},
    "webshop_hiper": {**HIPER, "algo.name": "hiper", "algo.hiper.keep_penalty": -3.5,
                      "algo.hiper.bootstrap_truncated": False},
}  # fmt: skip
# Deliberate deviations, each explained in the file's header.
DEVIATIONS: dict[str, dict[str, Any]] = {
    "alfworld_hgpo": {"memory.history_length": 4},  # the paper's K of the published numbers
    "webshop_hgpo": {"memory.history_length": 4},
}
VARIANTS = {  # variant -> (base, the settings it changes)
    "alfworld_hgpo_obs_action_keys": ("alfworld_hgpo", {"memory.key_mode": "obs_action"}),
    "webshop_hgpo_obs_action_keys": ("webshop_hgpo", {"memory.key_mode": "obs_action"}),
    "alfworld_hgpo_adaptive": ("alfworld_hgpo", {"algo.options.weighting": "adaptive"}),
    "webshop_hgpo_adaptive": ("webshop_hgpo", {"algo.options.weighting": "adaptive"}),
}


def get(cfg: TrainConfig, dotted: str) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        node = node[key] if isinstance(node, dict) else getattr(node, key)
    return node


def flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_config_matches_its_reference_script(name: str) -> None:
    cfg = load_config(CONFIGS / f"{name}.yaml")
    expected = {**COMMON, **REFERENCE[name], **DEVIATIONS.get(name, {})}
    wrong = {key: (get(cfg, key), value) for key, value in expected.items() if get(cfg, key) != value}
    assert not wrong, f"{name}: (config, expected) {wrong}"
    assert cfg.output_dir == Path(f"runs/{name}")


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_header_states_the_papers_k_the_scripts_k_and_its_own(name: str) -> None:
    text = (CONFIGS / f"{name}.yaml").read_text()
    cfg = load_config(CONFIGS / f"{name}.yaml")
    header = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    match = re.search(r"History K: (.+?) paper: (.+?); reference script: (\d+).*?; this file: (\d+)", header)
    assert match, f"{name}: no 'History K: ... paper ...; reference script: N ...; this file: N' header"
    assert int(match.group(3)) == REFERENCE[name]["memory.history_length"]
    assert int(match.group(4)) == cfg.memory.history_length
    for key in DEVIATIONS.get(name, {}):  # every deviation is named in the header
        assert key.split(".")[-1] in header, f"{name}: header does not explain {key}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_differs_from_its_base_only_where_it_says(variant: str) -> None:
    base_name, changes = VARIANTS[variant]
    path = CONFIGS / "variants" / f"{variant}.yaml"
    base = flat(load_config(CONFIGS / f"{base_name}.yaml").model_dump(mode="json"))
    mine = flat(load_config(path).model_dump(mode="json"))
    differ = {key for key in base.keys() | mine.keys() if base.get(key) != mine.get(key)}
    assert differ == {*changes, "output_dir"}
    assert all(mine[key] == value for key, value in changes.items())
    assert mine["output_dir"] == f"runs/{variant}"
    assert f"VARIANT of configs/{base_name}.yaml" in path.read_text()


def test_every_config_file_loads() -> None:
    files = sorted(CONFIGS.glob("*.yaml")) + sorted((CONFIGS / "variants").glob("*.yaml"))
    assert len(files) >= len(REFERENCE) + len(VARIANTS) + 1  # + the demo
    for path in files:
        load_config(path)
        assert isinstance(yaml.safe_load(path.read_text()), dict)
    assert {p.stem for p in (CONFIGS / "variants").glob("*.yaml")} == set(VARIANTS)


def test_defaults_follow_the_reference() -> None:
    assert PPOConfig().weight_decay == 0.01  # verl's actor optim.weight_decay
    assert AlgoConfig().invalid_penalty_placement == "reward"  # verl-agent's apply_invalid_action_penalty
    assert HiperConfig().value_clip == 0.5  # verl's critic.cliprange_value


SCALE = {  # configs/scale/<name>.yaml -> (base, the keys it sets)
    f"{env}_hgpo_qwen2.5-{size}": (f"{env}_hgpo", keys)
    for env in ("alfworld", "webshop")
    for size, keys in (
        ("1.5b", {"model.path", "model.gradient_checkpointing", "generation.backend",
                  "generation.vllm.gpu_memory_utilization", "output_dir"}),
        ("7b", {"model.path", "model.gradient_checkpointing", "generation.backend",  # vLLM's share: the default 0.3
                "distributed.strategy", "ppo.micro_batch_size", "output_dir"}),
    )
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCALE))
def test_scale_config_is_its_base_plus_model_backend_and_sharding(name: str) -> None:
    """configs/scale/*.yaml name a base config (`base:`) and change only what scaling needs."""
    base_name, keys = SCALE[name]
    base = flat(load_config(CONFIGS / f"{base_name}.yaml").model_dump(mode="json"))
    mine = flat(load_config(CONFIGS / "scale" / f"{name}.yaml").model_dump(mode="json"))
    assert {key for key in base.keys() | mine.keys() if base.get(key) != mine.get(key)} == keys
    assert mine["generation.backend"] == "vllm"
    assert mine["distributed.strategy"] == ("fsdp" if name.endswith("7b") else "ddp")


def test_config_base_chain_errors_are_clear(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("base: b.yaml\niterations: 3\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="includes itself"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "e.yaml").write_text("ppo: {lr: 0.1, epochs: 2}\nseed: 4\n")
    (tmp_path / "f.yaml").write_text("base: e.yaml\nppo: {lr: 0.5}\n")
    cfg = load_config(tmp_path / "f.yaml", ["seed=5"])
    assert (cfg.ppo.lr, cfg.ppo.epochs, cfg.seed) == (0.5, 2, 5)  # merged section by section, overrides last
