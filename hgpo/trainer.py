"""The training loop: rollout -> advantages -> PPO update, one readable pass per iteration.

Shapes: N step samples per iteration (one per env step of every trajectory), each
with a prompt of P_i tokens and a response of R_i tokens. Advantages are (N,)
floats broadcast over the response tokens of their sample.

Distributed: under ``torchrun`` (or ``accelerate launch``) every rank runs its own
share of the groups and computes their advantages locally (groups never straddle
ranks, so no gather is needed); ``hgpo.distributed`` replicates the learner (DDP)
or shards it (FSDP2). Generation backends live in ``hgpo.generation`` (HF
``generate``) and ``hgpo.vllm_backend`` (a colocated vLLM engine).
"""

from __future__ import annotations

import copy
import logging
import math
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from agentenv.vector import make_group_vector_env
from hgpo.advantages import StepBatch, estimate_advantages
from hgpo.config import TrainConfig
from hgpo.distributed import Dist, make_strategy
from hgpo.evaluate import evaluate_policy
from hgpo.generation import make_backend
from hgpo.hiper import HiperCritic, hiper_advantages
from hgpo.loss import aggregate, clipped_policy_loss, low_var_kl, masked_mean
from hgpo.metrics import MetricsLog, plot_learning_curve
from hgpo.policy import (
    add_lora,
    build_tiny_model,
    collate,
    load_pretrained,
    pick_device,
    pick_dtype,
    prepare_tokenizer,
    resolve_model_path,
    response_logits,
    token_entropy,
    token_logprobs,
    train_tokenizer,
)
from hgpo.rollout import Rollout, collect_rollouts, lm_decider, make_memory, sampling_of
from hgpo.warm_start import behaviour_cloning, collect_demonstrations

log = logging.getLogger(__name__)

# Seeds for demonstrations live far from the RL seeds so warm-start tasks are not the
# first RL tasks; evaluation uses its own split.
DEMO_SEED_OFFSET = 10_000_000


# ---------------------------------------------------------------- set-up helpers


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- the trainer


@dataclass
class TokenAdvantages:
    """What the update consumes: for step sample i, ``advs[i]`` and ``masks[i]`` are (R_i,)."""

    advs: list[np.ndarray]
    masks: list[np.ndarray]
    diagnostics: dict
    per_step: np.ndarray  # (N,) one summary advantage per step, for logging
    hiper: tuple | None = None  # (HAEResult, HiperBatch, tokens) for the critic update


class Trainer:
    """Builds everything from a :class:`TrainConfig` and runs :meth:`train`.

    ``model`` is the policy itself (peft-wrapped with LoRA; sharded in place under
    FSDP); ``train_model`` is what forward/backward go through (the DDP wrapper under
    DDP, else ``model``); ``generator`` samples the rollouts.
    """

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        fsdp = cfg.distributed.strategy == "fsdp"
        self.dist = Dist(cfg.distributed.timeout_minutes, need_group=fsdp)
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda" and self.dist.world > 1:
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        if cfg.env.num_groups % self.dist.world:
            raise ValueError(
                f"env.num_groups={cfg.env.num_groups} must be divisible by {self.dist.world} ranks"
            )
        self.local_groups = cfg.env.num_groups // self.dist.world
        if self.device.type == "cpu":
            # Idle OpenMP threads spin while env workers, a JVM or Chromium run: on a
            # 2-core machine the default made a small model 8x slower than 1 thread.
            torch.set_num_threads(cfg.torch_threads or 1)
        self.compute_dtype = pick_dtype(cfg.model.dtype, self.device)
        # FSDP keeps float32 parameters and computes in compute_dtype (mixed precision).
        self.param_dtype = torch.float32 if fsdp else self.compute_dtype
        self.strategy = make_strategy(
            cfg.distributed.strategy,
            self.dist,
            self.device,
            compute_dtype=self.compute_dtype,
            cpu_offload=cfg.distributed.cpu_offload,
        )
        self.out = Path(cfg.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed + self.dist.rank)

        env_kwargs = {"max_steps": cfg.env.max_steps, **cfg.env.kwargs}
        self.envs = make_group_vector_env(
            cfg.env.id, self.local_groups, cfg.env.group_size, asynchronous=cfg.env.asynchronous, **env_kwargs
        )
        self.start_iteration = 0
        self.checkpoint = self.out / "checkpoint"
        resuming = cfg.resume and (self.checkpoint / "state.pt").is_file()
        # The policy at the start of RL (after any warm start): the KL anchor, and the base
        # that a LoRA or FSDP resume is rebuilt from. Saved once unless it is model.path itself.
        self.owns_reference = cfg.warm_start.episodes > 0 or cfg.model.path == "tiny"
        self.reference_dir = (
            self.out / "reference" if self.owns_reference else resolve_model_path(cfg.model.path)
        )
        self.model, self.tokenizer = self._build_policy(resuming)
        self.ref_model = self._build_reference(resuming)
        self.memory = make_memory(cfg, self.tokenizer)
        self.critic = None
        if cfg.algo.name == "hiper":  # a copy of the backbone: made before the policy is sharded
            self.critic = HiperCritic(
                self.model, self.tokenizer, cfg.algo.hiper, cfg.ppo.micro_batch_size, self.device, self.strategy
            )
        self.train_model = self.strategy.prepare(self.model)
        if self.ref_model is not None:
            self.ref_model = self.strategy.prepare(self.ref_model, trainable=False)
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=cfg.ppo.lr,
            weight_decay=cfg.ppo.weight_decay,
        )
        self.shuffle_rng = np.random.default_rng(cfg.seed + 7919 * self.dist.rank)
        if resuming:
            self._load_state()
        # Built after the policy's final weights are in place (warm start, resume): the
        # vLLM engine starts from them and is synced after every update.
        self.generator = make_backend(
            cfg, self.model, self.tokenizer, self.out, rank=self.dist.rank, dtype=self.compute_dtype
        )
        self.metrics = MetricsLog(self.out, cfg.tensorboard and self.dist.main) if self.dist.main else None

    # ------------------------------------------------------------ policy set-up

    def _build_policy(self, resuming: bool):
        """The policy at the start of RL (fresh run) or as last checkpointed (resume)."""
        cfg = self.cfg
        lora = cfg.model.lora is not None
        if resuming:
            # Plain weights resume from the checkpoint's export; LoRA (base + adapter) and FSDP
            # (sharded state, loaded later) rebuild the start-of-RL model first.
            exact_export = not lora and self.strategy.name != "fsdp"
            source = self.checkpoint / "policy" if exact_export else self.reference_dir
            model, tokenizer = load_pretrained(str(source), cfg.model, self.device, dtype=self.param_dtype)
            if lora:
                from peft import PeftModel

                adapter = self.checkpoint / "adapter"
                if adapter.is_dir():
                    model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
                else:  # FSDP: the adapter's weights are in the DCP shards
                    model = add_lora(model, cfg.model)
            return self._finish_model(model), tokenizer
        demos = []
        if cfg.warm_start.episodes > 0:
            demos = self._demonstrations()
        if cfg.model.path == "tiny":
            corpus = [p for p, _ in demos] + [t for _, t in demos]
            tokenizer = prepare_tokenizer(train_tokenizer(corpus, cfg.model.tiny.vocab_size))
            model = build_tiny_model(tokenizer, cfg.model.tiny, seed=cfg.seed).to(
                self.device, self.param_dtype
            )
        else:
            model, tokenizer = load_pretrained(cfg.model.path, cfg.model, self.device, dtype=self.param_dtype)
        if demos:
            behaviour_cloning(
                model,
                tokenizer,
                demos,
                epochs=cfg.warm_start.epochs,
                lr=cfg.warm_start.lr,
                batch_size=cfg.warm_start.batch_size,
                seed=cfg.seed,
            )
        if self.owns_reference and self.dist.main:
            self._save_pretrained(model, tokenizer, self.reference_dir)
        self.dist.barrier()
        if lora:
            model = add_lora(model, cfg.model)
        return self._finish_model(model), tokenizer

    def _finish_model(self, model):
        model.to(self.device)
        if self.cfg.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.config.use_cache = True
        return model

    def _demonstrations(self) -> list[tuple[str, str]]:
        cfg = self.cfg
        kwargs = {"max_steps": cfg.env.max_steps, **cfg.env.kwargs, **cfg.warm_start.env_kwargs}
        # Every rank collects the same demonstrations (as many envs as one rank of the job,
        # whatever the world size), so the warm-started policy is the same in every layout.
        groups = min(cfg.warm_start.episodes, cfg.env.num_groups * cfg.env.group_size)
        envs = make_group_vector_env(cfg.env.id, groups, 1, asynchronous=cfg.env.asynchronous, **kwargs)
        try:
            pairs, success = collect_demonstrations(
                envs,
                make_memory(cfg),
                episodes=cfg.warm_start.episodes,
                seed=cfg.seed + DEMO_SEED_OFFSET,
                max_steps=cfg.env.max_steps,
                noise=cfg.warm_start.noise,
            )
        finally:
            envs.close()
        log.info("%d demonstration steps collected (success rate %.2f)", len(pairs), success)
        return pairs

    def _build_reference(self, resuming: bool):
        """The frozen KL anchor: the policy at the start of RL (after any warm start)."""
        if self.cfg.ppo.kl_coef == 0 or self.cfg.model.lora is not None:
            return None  # with LoRA the reference is the base model: the adapter switched off
        if not resuming:
            ref = copy.deepcopy(self.model)
        else:
            ref, _ = load_pretrained(
                str(self.reference_dir), self.cfg.model, self.device, dtype=self.param_dtype
            )
        ref.eval().requires_grad_(False)
        return ref

    def _save_pretrained(self, model, tokenizer, folder: Path) -> None:
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)

    # ------------------------------------------------------------ checkpoints

    def save_checkpoint(self, iteration: int) -> None:
        """Model, optimiser, every rank's RNG and shuffle state, and the next iteration.

        ``checkpoint/policy`` is always a plain (LoRA-merged) ``save_pretrained`` folder
        that transformers, vLLM and ``hgpo-eval`` load; ``adapter/`` (LoRA) or ``dcp/``
        (FSDP shards of model and optimizer) hold what an exact resume needs beyond it.
        """
        tmp = self.out / "checkpoint.tmp"
        fsdp = self.strategy.name == "fsdp"
        if self.dist.main:
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "rng").mkdir(parents=True)
        self.dist.barrier()
        self.strategy.export_pretrained(self.model, self.tokenizer, tmp / "policy")
        if self.dist.main and hasattr(self.model, "peft_config") and not fsdp:
            self.model.save_pretrained(tmp / "adapter")
        self.strategy.save_state(self.model, self.optimizer, tmp / "actor", with_weights=fsdp)
        if self.critic is not None:
            self.strategy.save_state(self.critic.model, self.critic.optimizer, tmp / "critic", with_weights=True)
        rank_state = {"rng": rng_state(), "shuffle_rng": self.shuffle_rng.bit_generator.state}
        torch.save(rank_state, tmp / "rng" / f"rank{self.dist.rank}.pt")
        if self.dist.main:
            state = {
                "iteration": iteration + 1,
                "world_size": self.dist.world,
                "config": self.cfg.model_dump(mode="json"),
            }
            torch.save(state, tmp / "state.pt")
        self.dist.barrier()
        if self.dist.main:
            shutil.rmtree(self.checkpoint, ignore_errors=True)
            tmp.rename(self.checkpoint)
        self.dist.barrier()

    def _load_state(self) -> None:
        state = torch.load(self.checkpoint / "state.pt", weights_only=False)
        saved_world = state.get("world_size", 1)
        if saved_world != self.dist.world:
            raise ValueError(
                f"{self.checkpoint} was written by {saved_world} rank(s); resume it with the same number "
                f"(now {self.dist.world}): the data position and every rank's RNG depend on it"
            )
        fsdp = self.strategy.name == "fsdp"
        self.strategy.load_state(self.model, self.optimizer, self.checkpoint / "actor", with_weights=fsdp)
        if self.critic is not None:
            self.strategy.load_state(self.critic.model, self.critic.optimizer, self.checkpoint / "critic", with_weights=True)
        rank_state = torch.load(self.checkpoint / "rng" / f"rank{self.dist.rank}.pt", weights_only=False)
        set_rng_state(rank_state["rng"])
        self.shuffle_rng.bit_generator.state = rank_state["shuffle_rng"]
        self.start_iteration = state["iteration"]
        log.info("resumed from %s at iteration %d", self.checkpoint, self.start_iteration)

    # ------------------------------------------------------------ one iteration

    def _generating(self):
        """Context for generation: the HF backend needs the sharded policy gathered (FSDP)."""
        return self.strategy.unsharded(self.model) if self.cfg.generation.backend == "hf" else nullcontext()

    def rollout(self, iteration: int) -> Rollout:
        cfg = self.cfg
        # Data position = iteration: consecutive seeds give every group a new task.
        seed = cfg.seed + (iteration * self.dist.world + self.dist.rank) * self.local_groups
        decide = lm_decider(
            self.generator,
            self.tokenizer,
            sampling_of(cfg.generation),
            env_kind=cfg.memory.env,
            seed=seed,  # sampling is a function of the data position too: resume replays it
            require_think=cfg.generation.require_think,
            project=cfg.generation.project_actions,
            hiper=cfg.algo.name == "hiper",
        )
        self.model.eval()
        with self._generating():
            return collect_rollouts(self.envs, self.memory, decide, seed=seed, max_steps=cfg.env.max_steps)

    def advantages(self, rollout: Rollout) -> TokenAdvantages:
        """Per-token advantages and loss masks of every step sample, plus diagnostics.

        GRPO/GiGPO/HGPO give one advantage per step, broadcast over its response
        tokens; HiPER gives one per token span (switch / sub-goal / action).
        """
        cfg = self.cfg
        if cfg.algo.name == "hiper":
            advs, masks, res, batch, tokens = hiper_advantages(
                self.critic, self.tokenizer, rollout, cfg.algo.hiper
            )
            diagnostics = {f"hiper/{k}": v for k, v in res.stats.items()}
            return TokenAdvantages(
                advs,
                masks,
                diagnostics,
                np.array([a[m > 0].mean() if m.any() else 0.0 for a, m in zip(advs, masks, strict=True)]),
                (res, batch, tokens),
            )
        # Invalid-format penalty on the step itself. "reward" (verl-agent): in the step's score
        # and step return, before the group statistics; "advantage": subtracted afterwards.
        penalty = cfg.algo.invalid_action_penalty * (~np.asarray(rollout.valid, dtype=bool))
        in_reward = cfg.algo.invalid_penalty_placement == "reward" and cfg.algo.invalid_action_penalty != 0
        batch = StepBatch(
            group=rollout.group,
            traj=rollout.traj,
            step=rollout.step,
            reward=rollout.reward,
            keys=rollout.keys,
            penalty=penalty if in_reward else None,
        )
        options = {"gamma": cfg.algo.gamma, "mode": cfg.algo.mode, **cfg.algo.options}
        if cfg.algo.name == "hgpo":
            options.setdefault("history_length", rollout.keys.shape[1] - 1)
        adv, diagnostics = estimate_advantages(cfg.algo.name, batch, return_diagnostics=True, **options)
        if not in_reward:
            adv = (adv - penalty).astype(np.float32)
        advs = [np.full(len(r), a, dtype=np.float32) for r, a in zip(rollout.response_ids, adv, strict=True)]
        masks = [np.ones(len(r), dtype=np.float32) for r in rollout.response_ids]
        return TokenAdvantages(advs, masks, {f"advantage/{k}": v for k, v in diagnostics.items()}, adv)

    @torch.no_grad()
    def _logprobs(self, model, rows: np.ndarray, rollout: Rollout, temperature: float) -> list[torch.Tensor]:
        out = []
        mb = self.cfg.ppo.micro_batch_size
        chunks = [rows[s : s + mb] for s in range(0, len(rows), mb)]
        # FSDP: every rank runs as many forwards as the busiest one (the extra ones are discarded).
        for k in range(self.strategy.pad_passes(len(chunks))):
            idx = chunks[k] if k < len(chunks) else rows[:1]
            batch = self._collate(idx, rollout)
            logp = token_logprobs(response_logits(model, batch, temperature), batch.response_ids)
            if k < len(chunks):
                out.extend(logp[j, : len(rollout.response_ids[i])].cpu() for j, i in enumerate(idx))
        return out

    def _collate(self, idx, rollout: Rollout):
        batch = collate(
            [rollout.prompt_ids[i] for i in idx],
            [rollout.response_ids[i] for i in idx],
            self.tokenizer.pad_token_id,
        )
        return type(batch)(*(t.to(self.device) for t in vars(batch).values()))

    def _reference_logprobs(self, rows: np.ndarray, rollout: Rollout, temperature: float):
        if self.cfg.ppo.kl_coef == 0:
            return None
        if self.ref_model is not None:
            return self._logprobs(self.ref_model, rows, rollout, temperature)
        with self.model.disable_adapter():  # LoRA: the base model is the reference
            return self._logprobs(self.train_model, rows, rollout, temperature)

    def update(self, rollout: Rollout, adv: TokenAdvantages) -> dict[str, float]:
        """PPO on the iteration's step samples; returns averaged diagnostics."""
        cfg, ppo = self.cfg, self.cfg.ppo
        temperature = cfg.generation.temperature
        n = len(rollout)
        rows = np.arange(n)
        self.model.eval()  # no dropout when scoring the behaviour policy
        old_logp = self._logprobs(self.train_model, rows, rollout, temperature)
        ref_logp = self._reference_logprobs(rows, rollout, temperature)
        mismatch = self._sampling_mismatch(rollout, old_logp)
        self.model.train()

        # Every rank must take the same number of optimiser steps.
        n_mini = self.dist.max(math.ceil(n / ppo.mini_batch_size))
        sums: dict[str, tuple[float, float]] = {}  # key -> (weighted sum, total weight)

        def add(key: str, value: float, weight: float = 1.0) -> None:
            v, w = sums.get(key, (0.0, 0.0))
            sums[key] = (v + value * weight, w + weight)

        for _ in range(ppo.epochs):
            perm = self.shuffle_rng.permutation(n)
            for mini in np.array_split(perm, n_mini):
                # Sorting by length inside a mini-batch cuts padding; it does not change the sum.
                mini = sorted(mini, key=lambda i: len(rollout.prompt_ids[i]) + len(rollout.response_ids[i]))
                tokens, samples = self.dist.sum(
                    [float(sum(adv.masks[i].sum() for i in mini)), float(len(mini))]
                )
                normaliser = max(tokens if ppo.loss_agg == "token-mean" else samples, 1.0)
                normaliser /= self.dist.world  # DDP and FSDP average gradients over ranks
                micro = [
                    mini[s : s + ppo.micro_batch_size] for s in range(0, len(mini), ppo.micro_batch_size)
                ]
                # Ranks with fewer micro-batches run zero-weight passes: DDP's all-reduce and
                # FSDP's all-gathers need every rank in every synced pass.
                n_micro = max(self.strategy.pad_passes(len(micro)), 1)
                self.optimizer.zero_grad(set_to_none=True)
                for j in range(n_micro):
                    idx, weight = (micro[j], 1.0) if j < len(micro) else ([0], 0.0)
                    with self.strategy.accumulate(self.train_model, last=j == n_micro - 1):
                        stats = self._micro_step(
                            idx, rollout, adv, old_logp, ref_logp, normaliser if weight else 0.0
                        )
                    for key, (value, w) in stats.items():
                        add(key, value, w * weight)
                grad_norm = self.strategy.clip_grad_norm(self.model, ppo.max_grad_norm)
                self.optimizer.step()
                add("actor/grad_norm", grad_norm)
        out = {k: v / max(w, 1e-12) for k, (v, w) in sums.items()}
        out.update(mismatch)
        divergence = self.strategy.replica_divergence(self.model)
        if divergence is not None:  # DDP must keep the replicas identical; a checksum makes drift visible
            out["dist/param_divergence"] = divergence
        return out

    def _sampling_mismatch(self, rollout: Rollout, old_logp: list[torch.Tensor]) -> dict[str, float]:
        """|generator's log-prob - recomputed old log-prob| over all response tokens: mean and max.

        The standard check for an inference/training mismatch (a backend sampling from
        another distribution than the one scored, or an engine with stale weights).
        """
        total, count, worst = 0.0, 0.0, 0.0
        for sampled, old in zip(rollout.sample_logprobs, old_logp, strict=True):
            if len(sampled) and len(sampled) == len(old):
                diff = (torch.as_tensor(sampled, dtype=torch.float32) - old.float()).abs()
                total, count, worst = (
                    total + float(diff.sum()),
                    count + len(diff),
                    max(worst, float(diff.max())),
                )
        total, count = self.dist.sum([total, count])
        (worst,) = self.dist.max_float([worst])
        return {
            "rollout/logprob_abs_diff_mean": total / max(count, 1.0),
            "rollout/logprob_abs_diff_max": worst,
        }

    def _micro_step(self, idx, rollout, adv: TokenAdvantages, old_logp, ref_logp, normaliser: float) -> dict:
        """Forward + backward of one micro-batch; ``normaliser`` 0 means a zero-weight pass."""
        ppo = self.cfg.ppo
        batch = self._collate(idx, rollout)
        R = batch.response_ids.shape[1]

        def pad(rows) -> torch.Tensor:  # list of (R_i,) -> (B, R), zeros after each row's end
            out = torch.zeros(len(rows), R)
            for j, r in enumerate(rows):
                out[j, : len(r)] = torch.as_tensor(r, dtype=torch.float32)
            return out.to(self.device)

        mask = batch.response_mask.float() * pad([adv.masks[i] for i in idx])  # (B, R)
        advantages = pad([adv.advs[i] for i in idx])  # (B, R)
        logits = response_logits(self.train_model, batch, self.cfg.generation.temperature)  # (B, R, V)
        logp = token_logprobs(logits, batch.response_ids)  # (B, R)
        old = pad([old_logp[i] for i in idx])
        pg = clipped_policy_loss(
            logp, old, advantages, clip_low=ppo.clip_low, clip_high=ppo.clip_high, dual_clip=ppo.dual_clip
        )
        token_loss = pg.loss
        entropy = token_entropy(logits)  # (B, R), logged even when not in the loss
        if ppo.entropy_coef:
            token_loss = token_loss - ppo.entropy_coef * entropy
        kl = None
        if ref_logp is not None:
            kl = low_var_kl(logp, pad([ref_logp[i] for i in idx]))
            token_loss = token_loss + ppo.kl_coef * kl
        if normaliser:
            aggregate(token_loss, mask, ppo.loss_agg, normaliser).backward()
        else:
            (token_loss.sum() * 0.0).backward()
        n_tok = float(mask.sum())
        stats = {
            "actor/pg_loss": (float(masked_mean(pg.loss.detach(), mask)), n_tok),
            "actor/clipfrac": (float(masked_mean(pg.clipped.float(), mask)), n_tok),
            "actor/dual_clipfrac": (float(masked_mean(pg.dual_clipped.float(), mask)), n_tok),
            "actor/approx_kl": (float(masked_mean((old - logp).detach(), mask)), n_tok),
            "actor/entropy": (float(masked_mean(entropy.detach(), mask)), n_tok),
        }
        if kl is not None:
            stats["actor/kl_ref"] = (float(masked_mean(kl.detach(), mask)), n_tok)
        return stats

    # ------------------------------------------------------------ the loop

    def train(self) -> Path:
        cfg = self.cfg
        if self.metrics is not None:  # a fresh run also drops an old baseline record (iteration -1)
            self.metrics.truncate(self.start_iteration if self.start_iteration else -1)
            (self.out / "config.yaml").write_text(_yaml(cfg))
        if cfg.eval.every and cfg.eval.at_start and self.start_iteration == 0:
            baseline = {"iteration": -1, **self.evaluate()}
            if self.metrics is not None:
                self.metrics.write(baseline)
        bar = tqdm(
            range(self.start_iteration, cfg.iterations),
            desc=f"{cfg.algo.name} on {cfg.env.id}",
            unit="it",
            disable=not self.dist.main,
            initial=self.start_iteration,
            total=cfg.iterations,
        )
        for iteration in bar:
            t0 = time.perf_counter()
            rollout = self.rollout(iteration)
            t1 = time.perf_counter()
            adv = self.advantages(rollout)
            t2 = time.perf_counter()
            stats = self.update(rollout, adv)
            t_sync = time.perf_counter()
            self.generator.sync_weights()  # the engine samples the next rollout from the new policy
            stats["time/weight_sync_s"] = time.perf_counter() - t_sync
            if self.critic is not None:
                stats.update(
                    self.critic.update(rollout, adv.hiper[2], adv.hiper[0], adv.hiper[1], self.shuffle_rng)
                )
            t3 = time.perf_counter()
            record = self._record(iteration, rollout, adv, stats, (t0, t1, t2, t3))
            if cfg.eval.every and ((iteration + 1) % cfg.eval.every == 0 or iteration + 1 == cfg.iterations):
                record.update(self.evaluate())
            if self.metrics is not None:
                self.metrics.write(record)
            bar.set_postfix(success=f"{record['rollout/success_rate']:.2f}", steps=len(rollout))
            if (iteration + 1) % cfg.save_every == 0 or iteration + 1 == cfg.iterations:
                self.save_checkpoint(iteration)
        if self.metrics is not None:
            self.metrics.close()
            plot_learning_curve(
                self.out / "metrics.jsonl", self.out / "learning_curve.png", f"{cfg.algo.name} {cfg.env.id}"
            )
        return self.out

    def evaluate(self) -> dict[str, float]:
        """Evaluate on every split of ``eval.splits`` on rank 0 (the others wait);
        ``eval/success_rate`` is their mean."""
        cfg = self.cfg
        self.model.eval()
        out: dict[str, float] = {}
        with self._generating():  # collective under FSDP: every rank enters
            if self.dist.main:
                rates = []
                for split in cfg.eval.splits or [None]:
                    result = evaluate_policy(
                        cfg,
                        self.generator,
                        self.tokenizer,
                        episodes=cfg.eval.episodes,
                        seeds=cfg.eval.seeds,
                        split=split,
                    )
                    prefix = f"eval/{split}" if split else "eval"
                    out.update({f"{prefix}/{k}": v for k, v in result.summary().items()})
                    rates.append(result.summary()["success_rate"])
                out["eval/success_rate"] = float(np.mean(rates))
            self.dist.barrier()
        return out

    def _record(self, iteration, rollout, adv: TokenAdvantages, stats, times) -> dict:
        t0, t1, t2, t3 = times
        resp_tokens = sum(len(r) for r in rollout.response_ids)
        local = [
            float(rollout.won.sum()),
            float(len(rollout.won)),
            float(rollout.episode_return.sum()),
            float(rollout.episode_length.sum()),
            float((~rollout.valid).sum()),
            float(len(rollout)),
            float(resp_tokens),
            float(rollout.score.sum()),
            float(rollout.worker_restarts),
        ]
        won, episodes, ret, length, invalid, steps, tokens, score, restarts = self.dist.sum(local)
        record = {
            "iteration": iteration,
            "rollout/success_rate": won / episodes,
            "rollout/score": score / episodes,
            "rollout/return": ret / episodes,
            "rollout/episode_length": length / episodes,
            "rollout/invalid_action_rate": invalid / max(steps, 1),
            "rollout/steps": steps,
            "rollout/response_tokens": tokens,
            "rollout/worker_restarts": restarts,
            "perf/tokens_per_s": tokens / max(rollout.timings["policy_s"], 1e-9),
            "perf/env_steps_per_s": steps / max(rollout.timings["env_s"], 1e-9),
            "time/rollout_s": t1 - t0,
            "time/advantage_s": t2 - t1,
            "time/update_s": t3 - t2,
            "advantage/mean": float(adv.per_step.mean()),
            "advantage/std": float(adv.per_step.std()),
            "advantage/abs_mean": float(np.abs(adv.per_step).mean()),
        }
        for key, value in adv.diagnostics.items():
            if isinstance(value, (int, float, np.floating, np.integer)):
                record[key] = float(value)
            elif isinstance(value, (list, tuple, np.ndarray)):
                for k, v in enumerate(np.asarray(value).ravel().tolist()):
                    record[f"{key}_{k}"] = float(v)
        record.update(stats)
        if torch.cuda.is_available():
            record["perf/max_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        return record

    def close(self) -> None:
        generator = getattr(self, "generator", None)
        if generator is not None:
            generator.close()
        self.envs.close()
        self.dist.close()


def _yaml(cfg: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def train(cfg: TrainConfig) -> Path:
    """Run a whole training job; returns the output folder (metrics, plot, checkpoint)."""
    trainer = Trainer(cfg)
    try:
        return trainer.train()
    finally:
        trainer.close()
