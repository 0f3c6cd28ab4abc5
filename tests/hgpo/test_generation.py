"""The HF generation backend samples from exactly the distribution the trainer scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hgpo.config import ModelConfig, TinyModelConfig
from hgpo.generation import HFBackend, Sampling, trim_response
from hgpo.policy import (
    build_tiny_model,
    collate,
    load_pretrained,
    prepare_tokenizer,
    response_logits,
    token_logprobs,
    train_tokenizer,
)

CORPUS = [
    "You are in the middle of a room. Looking quickly around you, you see a cabinet 1 and a countertop 1.",
    "<action>go to countertop 1</action> <action>take mug 1 from countertop 1</action>",
] * 20
PROMPTS = ["You are in the middle", "Looking quickly around you, you see a", "<action>go to", "take mug 1"] * 4

#: Float32 log-probs of the same weights, the sampler's and our scoring forward (different
#: padding, KV cache vs. full forward): measured max 2e-6 here. The hidden 1.1 repetition
#: penalty of the control test moved them by 0.03 on this near-uniform random model.
ON_POLICY_ATOL = 1e-4


@pytest.fixture(scope="module")
def folder_with_sampling_settings(tmp_path_factory):
    """A model folder whose generation_config.json asks for what Qwen2.5-Instruct folders ship."""
    torch.manual_seed(0)
    tok = prepare_tokenizer(train_tokenizer(CORPUS, vocab_size=300))
    model = build_tiny_model(tok, TinyModelConfig(layers=2, hidden=64, heads=2, intermediate=128), seed=0)
    folder = tmp_path_factory.mktemp("policy")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    settings = json.loads((folder / "generation_config.json").read_text())
    settings.update({"repetition_penalty": 1.1, "top_k": 20, "temperature": 0.7, "do_sample": True})
    (folder / "generation_config.json").write_text(json.dumps(settings))
    return folder


def _recomputed(model, tokenizer, responses, temperature: float) -> list[torch.Tensor]:
    with torch.no_grad():
        batch = collate([r.prompt_ids for r in responses], [r.response_ids for r in responses], tokenizer.pad_token_id)
        logp = token_logprobs(response_logits(model, batch, temperature), batch.response_ids)
    return [logp[i, : len(r.response_ids)] for i, r in enumerate(responses)]


def _max_gap(responses, recomputed) -> float:
    return max(
        float((torch.tensor(r.logprobs) - logp).abs().max())
        for r, logp in zip(responses, recomputed, strict=True)
        if r.response_ids
    )


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_sampled_logprobs_equal_recomputed_despite_folder_generation_config(
    folder_with_sampling_settings, temperature
):
    model, tok = load_pretrained(str(folder_with_sampling_settings), ModelConfig(), torch.device("cpu"))
    model.eval()
    backend = HFBackend(model, tok, batch_size=8)
    responses = backend.generate(PROMPTS, Sampling(temperature=temperature, max_new_tokens=12), seed=0)
    assert sum(len(r.response_ids) for r in responses) > 3 * len(PROMPTS)
    assert all(len(r.logprobs) == len(r.response_ids) for r in responses)
    assert _max_gap(responses, _recomputed(model, tok, responses, temperature)) < ON_POLICY_ATOL


def test_the_check_catches_a_hidden_repetition_penalty(folder_with_sampling_settings):
    """Control: with the folder's penalty put back, the same comparison fails."""
    model, tok = load_pretrained(str(folder_with_sampling_settings), ModelConfig(), torch.device("cpu"))
    model.eval()
    backend = HFBackend(model, tok, batch_size=8)
    model.generation_config.repetition_penalty = 1.1  # what generate() would take from the folder
    responses = backend.generate(PROMPTS, Sampling(temperature=1.0, max_new_tokens=12), seed=0)
    assert _max_gap(responses, _recomputed(model, tok, responses, 1.0)) > 100 * ON_POLICY_ATOL


def test_top_p_is_applied_by_the_sampler():
    """top_p=0.5 on a random model: every sampled token lies in the top-p nucleus."""
    tok = prepare_tokenizer(train_tokenizer(CORPUS, vocab_size=300))
    model = build_tiny_model(tok, TinyModelConfig(layers=1, hidden=64, heads=2, intermediate=128), seed=1).eval()
    responses = HFBackend(model, tok).generate(PROMPTS, Sampling(temperature=1.0, top_p=0.5, max_new_tokens=6), seed=3)
    for r, logp in zip(responses, _recomputed(model, tok, responses, 1.0), strict=True):
        # Renormalised over the nucleus, each sampled token's probability is >= its unfiltered one.
        assert np.all(np.array(r.logprobs) >= logp.numpy() - 1e-5)


def test_trim_response_cuts_at_eos_and_trailing_padding():
    assert trim_response([5, 6, 2, 0, 0], eos_id=2, pad_id=0) == [5, 6, 2]
    assert trim_response([5, 6, 0, 0], eos_id=2, pad_id=0) == [5, 6]
    assert trim_response([0, 0], eos_id=2, pad_id=0) == []
    assert trim_response([5, 6], eos_id=None, pad_id=None) == [5, 6]
