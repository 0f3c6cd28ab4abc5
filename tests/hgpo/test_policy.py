"""Token layout, log-probs and sampling of the policy helpers on a tiny random Llama."""

from __future__ import annotations

import pytest
import torch

from hgpo.config import TinyModelConfig
from hgpo.generation import HFBackend, Sampling
from hgpo.policy import (
    build_tiny_model,
    collate,
    prepare_tokenizer,
    response_logits,
    token_entropy,
    token_logprobs,
    train_tokenizer,
)

CORPUS = [
    "You are in the middle of a room. Looking quickly around you, you see a cabinet 1 and a countertop 1.",
    "Your task is to: put a clean mug in coffeemachine.",
    "<action>go to countertop 1</action> <action>take mug 1 from countertop 1</action>",
    "You arrive at countertop 1. On the countertop 1, you see a mug 1, and a apple 2.",
] * 20


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    tok = prepare_tokenizer(train_tokenizer(CORPUS, vocab_size=300))
    model = build_tiny_model(tok, TinyModelConfig(layers=2, hidden=64, heads=4, intermediate=128), seed=0)
    model.eval()
    return model, tok


def test_tokenizer_has_chat_template_and_roundtrips(tiny):
    _, tok = tiny
    text = tok.apply_chat_template(
        [{"role": "user", "content": "go to cabinet 1"}], tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>user\n") and text.endswith("<|im_start|>assistant\n")
    ids = tok("take mug 1 from countertop 1", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "take mug 1 from countertop 1"
    assert tok.padding_side == "left" and tok.pad_token_id is not None


def test_collate_layout():
    b = collate([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], pad_id=0)
    assert b.input_ids.tolist() == [[5, 6, 7, 1, 2, 0], [0, 0, 8, 3, 4, 9]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]]
    assert b.position_ids.tolist() == [[0, 1, 2, 3, 4, 4], [0, 0, 0, 1, 2, 3]]
    assert b.response_mask.tolist() == [[1, 1, 0], [1, 1, 1]]


def test_padded_logprobs_match_unpadded_forward(tiny):
    model, tok = tiny
    prompts = [
        tok(t, add_special_tokens=False)["input_ids"]
        for t in ["Your task is to: put", "You arrive at countertop 1. On the"]
    ]
    responses = [tok(t, add_special_tokens=False)["input_ids"] for t in ["<action>go to", " a mug 1"]]
    with torch.no_grad():
        batch = collate(prompts, responses, tok.pad_token_id)
        logp = token_logprobs(response_logits(model, batch, temperature=0.7), batch.response_ids)
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            ids = torch.tensor([p + r])
            full = model(input_ids=ids).logits[0, len(p) - 1 : len(p) + len(r) - 1] / 0.7
            expected = torch.log_softmax(full, -1).gather(-1, torch.tensor(r).unsqueeze(-1)).squeeze(-1)
            assert torch.allclose(logp[i, : len(r)], expected, atol=1e-5)


def test_entropy_of_uniform_logits():
    logits = torch.zeros(1, 2, 8)
    assert torch.allclose(token_entropy(logits), torch.full((1, 2), torch.log(torch.tensor(8.0))))


def test_generate_greedy_is_deterministic_and_trimmed(tiny):
    model, tok = tiny
    prompts = ["Your task is to: put a clean mug", "You arrive at"]
    greedy = Sampling(temperature=0.0, max_new_tokens=6)
    a = HFBackend(model, tok, batch_size=1).generate(prompts, greedy)
    b = HFBackend(model, tok, batch_size=2).generate(prompts, greedy)
    assert [r.response_ids for r in a] == [r.response_ids for r in b]  # padding does not change greedy output
    for r, p in zip(a, prompts, strict=True):
        assert 1 <= len(r.response_ids) <= 6
        assert tok.decode(r.prompt_ids) == p
        assert tok.pad_token_id not in r.response_ids or r.response_ids[-1] == tok.eos_token_id


def test_generate_sampling_follows_its_seed_and_leaves_global_rng_alone(tiny):
    model, tok = tiny
    backend, sampling = HFBackend(model, tok), Sampling(temperature=1.0, max_new_tokens=8)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = backend.generate(["You arrive at"] * 4, sampling, seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # the trainer's RNG stream is untouched
    b = backend.generate(["You arrive at"] * 4, sampling, seed=1)
    c = backend.generate(["You arrive at"] * 4, sampling, seed=2)
    assert [r.response_ids for r in a] == [r.response_ids for r in b]
    assert [r.response_ids for r in a] != [r.response_ids for r in c]
