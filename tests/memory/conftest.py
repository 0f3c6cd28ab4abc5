"""A tiny random Llama and a tokenizer trained here, for tests that need a real HF model (no hub)."""

from __future__ import annotations

import pytest

from tests.memory.transcripts import ALFWORLD_OBSERVATIONS, WEBSHOP_EPISODE

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _train_tokenizer(chat_template: str | None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    corpus = ALFWORLD_OBSERVATIONS + [obs for obs, _ in WEBSHOP_EPISODE] + ["You are an expert agent."] * 3
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>")
    fast.chat_template = chat_template
    return fast


@pytest.fixture(scope="session")
def chat_tokenizer():
    """A byte-level BPE tokenizer trained on ALFWorld/WebShop text, with a ChatML template."""
    return _train_tokenizer(CHATML)


@pytest.fixture(scope="session")
def plain_tokenizer():
    """The same kind of tokenizer without a chat template (a base model's)."""
    return _train_tokenizer(None)


@pytest.fixture(scope="session")
def tiny_llama(chat_tokenizer):
    """A random 2-layer LlamaForCausalLM (hidden 64) sized to ``chat_tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(chat_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=chat_tokenizer.pad_token_id,
        eos_token_id=chat_tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()
