"""The training loop: rollout -> advantages -> PPO update, one readable pass per iteration.

Shapes: N step samples per iteration (one per env step of every trajectory), each
with a prompt of P_i tokens and a response of R_i tokens. Advantages are (N,)
floats broadcast over the response tokens of their sample.

Distributed: under ``torchrun`` (or ``accelerate launch``) every rank runs its own
share of the groups, computes their advantages locally (groups never straddle
ranks, so no gather is needed) and DDP averages the gradients.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from agentenv.vector import make_group_vector_env
from hgpo.advantages import StepBatch, estimate_advantages
from hgpo.config import TrainConfig
from hgpo.evaluate import evaluate_policy
from hgpo.hiper import HiperCritic, hiper_advantages
from hgpo.loss import aggregate, clipped_policy_loss, low_var_kl, masked_mean
from hgpo.metrics import MetricsLog, plot_learning_curve
from hgpo.policy import (
    add_lora,
    build_tiny_model,
    collate,
    load_pretrained,
    pick_device,
    prepare_tokenizer,
    response_logits,
    token_entropy,
    token_logprobs,
    train_tokenizer,
)
from hgpo.rollout import Rollout, collect_rollouts, lm_decider, make_memory
from hgpo.warm_start import behaviour_cloning, collect_demonstrations

log = logging.getLogger(__name__)

# Seeds for demonstrations live far from the RL seeds so warm-start tasks are not the
# first RL tasks; evaluation uses its own split.
DEMO_SEED_OFFSET = 10_000_000


# ---------------------------------------------------------------- set-up helpers


class Dist:
    """Rank bookkeeping; a no-op on one process."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def max_float(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()

    def max(self, value: int) -> int:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.long)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())


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
    """Builds everything from a :class:`TrainConfig` and runs :meth:`train`."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.dist = Dist()
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
        self.model, self.tokenizer = self._build_policy(resuming)
        self.ref_model = self._build_reference(resuming)
        self.memory = make_memory(cfg, self.tokenizer)
        self.critic = None
        if cfg.algo.name == "hiper":
            self.critic = HiperCritic(
                self.model, self.tokenizer, cfg.algo.hiper, cfg.ppo.micro_batch_size, self.device
            )
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=cfg.ppo.lr,
            weight_decay=cfg.ppo.weight_decay,
        )
        self.shuffle_rng = np.random.default_rng(cfg.seed + 7919 * self.dist.rank)
        if resuming:
            self._load_state()
        self.ddp_model = self.model
        if self.dist.world > 1:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.metrics = MetricsLog(self.out, cfg.tensorboard and self.dist.main) if self.dist.main else None

    # ------------------------------------------------------------ policy set-up

    def _build_policy(self, resuming: bool):
        cfg = self.cfg
        if resuming:
            if cfg.model.lora is None:
                model, tokenizer = load_pretrained(str(self.checkpoint / "policy"), cfg.model, self.device)
            else:
                from peft import PeftModel

                base, tokenizer = self._base_model()
                model = PeftModel.from_pretrained(base, self.checkpoint / "policy", is_trainable=True)
            return self._finish_model(model), tokenizer
        demos = []
        if cfg.warm_start.episodes > 0:
            demos = self._demonstrations()
        if cfg.model.path == "tiny":
            corpus = [p for p, _ in demos] + [t for _, t in demos]
            tokenizer = prepare_tokenizer(train_tokenizer(corpus, cfg.model.tiny.vocab_size))
            model = build_tiny_model(tokenizer, cfg.model.tiny, seed=cfg.seed).to(self.device)
        else:
            model, tokenizer = self._base_model()
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
        if cfg.model.lora is not None:
            model = add_lora(model, cfg.model)
        return self._finish_model(model), tokenizer

    def _base_model(self):
        return load_pretrained(self.cfg.model.path, self.cfg.model, self.device)

    def _finish_model(self, model):
        model.to(self.device)
        if self.cfg.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.config.use_cache = True
        return model

    def _demonstrations(self) -> list[tuple[str, str]]:
        cfg = self.cfg
        kwargs = {"max_steps": cfg.env.max_steps, **cfg.env.kwargs, **cfg.warm_start.env_kwargs}
        groups = min(cfg.warm_start.episodes, max(self.local_groups * cfg.env.group_size, 1))
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
        ref_dir = self.out / "reference"
        if resuming:
            ref, _ = load_pretrained(str(ref_dir), self.cfg.model, self.device)
        else:
            ref = copy.deepcopy(self.model)
            if self.dist.main:
                self._save_pretrained(ref, ref_dir)
        ref.eval().requires_grad_(False)
        return ref

    def _save_pretrained(self, model, folder: Path) -> None:
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)

    # ------------------------------------------------------------ checkpoints

    def save_checkpoint(self, iteration: int) -> None:
        """Model, optimiser, RNG states and the next iteration (= data position)."""
        if not self.dist.main:
            return
        tmp = self.out / "checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.model.save_pretrained(tmp / "policy")
        self.tokenizer.save_pretrained(tmp / "policy")
        state = {
            "iteration": iteration + 1,
            "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(),
            "shuffle_rng": self.shuffle_rng.bit_generator.state,
            "config": self.cfg.model_dump(mode="json"),
        }
        if self.critic is not None:
            self.critic.model.save(tmp / "critic")
            state["critic_optimizer"] = self.critic.optimizer.state_dict()
        torch.save(state, tmp / "state.pt")
        shutil.rmtree(self.checkpoint, ignore_errors=True)
        tmp.rename(self.checkpoint)

    def _load_state(self) -> None:
        state = torch.load(self.checkpoint / "state.pt", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        self.shuffle_rng.bit_generator.state = state["shuffle_rng"]
        self.start_iteration = state["iteration"]
        if self.critic is not None:
            self.critic.model.load(self.checkpoint / "critic")
            self.critic.optimizer.load_state_dict(state["critic_optimizer"])
        log.info("resumed from %s at iteration %d", self.checkpoint, self.start_iteration)

    # ------------------------------------------------------------ one iteration

    def rollout(self, iteration: int) -> Rollout:
        cfg = self.cfg
        decide = lm_decider(
            self.model,
            self.tokenizer,
            env_kind=cfg.memory.env,
            temperature=cfg.generation.temperature,
            top_p=cfg.generation.top_p,
            max_new_tokens=cfg.generation.max_new_tokens,
            batch_size=cfg.generation.batch_size,
            stop_strings=cfg.generation.stop_strings,
            require_think=cfg.generation.require_think,
            project=cfg.generation.project_actions,
            hiper=cfg.algo.name == "hiper",
        )
        # Data position = iteration: consecutive seeds give every group a new task.
        seed = cfg.seed + (iteration * self.dist.world + self.dist.rank) * self.local_groups
        self.model.eval()
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
        batch = StepBatch(
            group=rollout.group,
            traj=rollout.traj,
            step=rollout.step,
            reward=rollout.reward,
            keys=rollout.keys,
        )
        options = {"gamma": cfg.algo.gamma, "mode": cfg.algo.mode, **cfg.algo.options}
        if cfg.algo.name == "hgpo":
            options.setdefault("history_length", rollout.keys.shape[1] - 1)
        adv, diagnostics = estimate_advantages(cfg.algo.name, batch, return_diagnostics=True, **options)
        # Invalid-format penalty on the step itself (the reference subtracts it from the
        # step's score before normalising; applying it after keeps its size fixed).
        adv = (adv - cfg.algo.invalid_action_penalty * (~rollout.valid)).astype(np.float32)
        advs = [np.full(len(r), a, dtype=np.float32) for r, a in zip(rollout.response_ids, adv, strict=True)]
        masks = [np.ones(len(r), dtype=np.float32) for r in rollout.response_ids]
        return TokenAdvantages(advs, masks, {f"advantage/{k}": v for k, v in diagnostics.items()}, adv)

    @torch.no_grad()
    def _logprobs(self, model, rows: np.ndarray, rollout: Rollout, temperature: float) -> list[torch.Tensor]:
        out = []
        mb = self.cfg.ppo.micro_batch_size
        for start in range(0, len(rows), mb):
            idx = rows[start : start + mb]
            batch = self._collate(idx, rollout)
            logp = token_logprobs(response_logits(model, batch, temperature), batch.response_ids)
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
            return self._logprobs(self.model, rows, rollout, temperature)

    def update(self, rollout: Rollout, adv: TokenAdvantages) -> dict[str, float]:
        """PPO on the iteration's step samples; returns averaged diagnostics."""
        cfg, ppo = self.cfg, self.cfg.ppo
        temperature = cfg.generation.temperature
        n = len(rollout)
        rows = np.arange(n)
        self.model.eval()  # no dropout when scoring the behaviour policy
        old_logp = self._logprobs(self.model, rows, rollout, temperature)
        ref_logp = self._reference_logprobs(rows, rollout, temperature)
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
                normaliser /= self.dist.world  # DDP averages gradients over ranks
                micro = [
                    mini[s : s + ppo.micro_batch_size] for s in range(0, len(mini), ppo.micro_batch_size)
                ]
                weight = 1.0
                if not micro:  # nothing for this rank: a zero-weight pass still joins DDP's all-reduce
                    micro, weight = [[0]], 0.0
                self.optimizer.zero_grad(set_to_none=True)
                for j, idx in enumerate(micro):
                    sync = j == len(micro) - 1 or self.dist.world == 1
                    with nullcontext() if sync else self.ddp_model.no_sync():
                        stats = self._micro_step(
                            idx, rollout, adv, old_logp, ref_logp, normaliser / weight if weight else 0.0
                        )
                    for key, (value, w) in stats.items():
                        add(key, value, w * weight)
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), ppo.max_grad_norm)
                self.optimizer.step()
                add("actor/grad_norm", float(grad_norm))
        out = {k: v / max(w, 1e-12) for k, (v, w) in sums.items()}
        if self.dist.world > 1:
            # DDP must keep the replicas identical; a cheap checksum makes any drift visible.
            checksum = float(sum(p.detach().double().sum() for p in self.model.parameters()))
            high, neg_low = self.dist.max_float([checksum, -checksum])
            out["dist/param_divergence"] = high + neg_low
        return out

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
        logits = response_logits(self.ddp_model, batch, self.cfg.generation.temperature)  # (B, R, V)
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
        """Evaluate on every split of ``eval.splits``; ``eval/success_rate`` is their mean."""
        cfg = self.cfg
        if not self.dist.main:
            return {}
        self.model.eval()
        out: dict[str, float] = {}
        rates = []
        for split in cfg.eval.splits or [None]:
            result = evaluate_policy(
                cfg, self.model, self.tokenizer, episodes=cfg.eval.episodes, seeds=cfg.eval.seeds, split=split
            )
            prefix = f"eval/{split}" if split else "eval"
            out.update({f"{prefix}/{k}": v for k, v in result.summary().items()})
            rates.append(result.summary()["success_rate"])
        out["eval/success_rate"] = float(np.mean(rates))
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
        ]
        won, episodes, ret, length, invalid, steps, tokens, score = self.dist.sum(local)
        record = {
            "iteration": iteration,
            "rollout/success_rate": won / episodes,
            "rollout/score": score / episodes,
            "rollout/return": ret / episodes,
            "rollout/episode_length": length / episodes,
            "rollout/invalid_action_rate": invalid / max(steps, 1),
            "rollout/steps": steps,
            "rollout/response_tokens": tokens,
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
        self.envs.close()
        if self.dist.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


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
