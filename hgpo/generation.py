"""Generation backends: sample the rollout's responses from exactly the distribution the trainer scores.

A backend turns chat-formatted prompts into :class:`Response` objects (prompt ids,
response ids, text, and the log-probability of every sampled token as the sampler
computed it). Two backends share this contract:

- :class:`HFBackend`: ``model.generate`` on the policy itself (no copy, nothing to sync);
- :class:`hgpo.vllm_backend.VLLMBackend`: a vLLM engine in the trainer's process, whose
  weights are replaced by the policy's after every update (``sync_weights``).

On-policy sampling: the trainer scores a response with ``log_softmax(logits / T)`` and
nothing else, so a backend must sample from that distribution: no repetition penalty,
top-k or other processor from a model folder's ``generation_config.json``. Both
backends ignore those files and set every sampling parameter themselves; the
log-probs they return let the trainer check it (``rollout/logprob_abs_diff``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from hgpo.weights import hf_model


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters, mapped one to one onto each backend's own.

    ``temperature == 0`` is greedy decoding. ``stop_strings`` end a response after the
    token that completes one (the string stays in the response, as the parser needs it).
    """

    temperature: float
    top_p: float = 1.0
    max_new_tokens: int = 512
    stop_strings: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass
class Response:
    """One sampled response.

    ``response_ids`` holds the generated tokens (the EOS token included when emitted);
    ``logprobs[j]`` is log p(response_ids[j]) under the distribution it was sampled from
    (``log_softmax(logits / T)``; raw logits when greedy), as the backend computed it.
    """

    prompt_ids: list[int]
    response_ids: list[int]
    text: str
    logprobs: list[float] = field(default_factory=list)


class GenerationBackend(Protocol):
    """What the rollout needs from a generator."""

    def generate(self, prompts: Sequence[str], sampling: Sampling, seed: int) -> list[Response]:
        """One response per prompt; the same ``seed`` and weights give the same responses."""
        ...

    def sync_weights(self) -> None:
        """Load the policy's current weights (called after every optimiser update)."""
        ...

    def close(self) -> None: ...


def trim_response(ids: list[int], eos_id: int | None, pad_id: int | None) -> list[int]:
    """Cut at the first EOS (kept, so the policy learns to stop) or drop trailing padding."""
    if eos_id is not None and eos_id in ids:
        return ids[: ids.index(eos_id) + 1]
    end = len(ids)
    while end and ids[end - 1] == pad_id:
        end -= 1
    return ids[:end]


def neutral_generation_config(tokenizer):
    """A ``GenerationConfig`` with library defaults and the tokenizer's special ids only.

    ``generate`` fills every unset parameter from ``model.generation_config``, i.e. from the
    folder's ``generation_config.json`` (Qwen2.5-Instruct ships ``repetition_penalty``
    1.05-1.1, ``top_k`` 20): the policy must never carry such settings.
    """
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


class _SampledLogprobs:
    """A logits processor, last in the chain, that records log p(sampled token).

    ``generate`` calls it with the final (temperature-scaled, top-p filtered) scores
    of step t before drawing token t; the token shows up as ``input_ids[:, -1]`` at the
    next call, so one (B, V) log-softmax is kept pending, never the whole history.
    """

    def __init__(self) -> None:
        self.columns: list[torch.Tensor] = []
        self._pending: torch.Tensor | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self._collect(input_ids[:, -1])
        self._pending = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def _collect(self, tokens: torch.Tensor) -> None:
        if self._pending is not None:
            self.columns.append(self._pending.gather(-1, tokens[:, None]).squeeze(-1))
            self._pending = None

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """(B, generated) log-probs of the sampled tokens."""
        self._collect(sequences[:, -1])
        if not self.columns:
            return torch.zeros(sequences.shape[0], 0)
        return torch.stack(self.columns, dim=1).cpu()


class HFBackend:
    """``model.generate`` on the policy (left padding, ``batch_size`` prompts per call).

    The model's generation config is replaced by a neutral one (see
    :func:`neutral_generation_config`) and temperature and top-p are applied by
    processors we pass ourselves, so the sampler sees exactly ``logits / T`` (then
    top-p). Sampling draws from a torch RNG seeded with ``seed`` inside a forked RNG
    state, leaving the global one untouched.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        hf_model(model).generation_config = neutral_generation_config(tokenizer)

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], sampling: Sampling, seed: int = 0) -> list[Response]:
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

        model, tokenizer = self.model, self.tokenizer
        device = next(model.parameters()).device
        devices = [device] if device.type == "cuda" else []
        out: list[Response] = []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for start in range(0, len(prompts), self.batch_size):
                chunk = list(prompts[start : start + self.batch_size])
                enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                recorder = _SampledLogprobs()
                processors = []
                if not sampling.greedy:
                    if sampling.temperature != 1.0:
                        processors.append(TemperatureLogitsWarper(sampling.temperature))
                    if sampling.top_p < 1.0:
                        processors.append(TopPLogitsWarper(sampling.top_p))
                processors.append(recorder)
                seqs = model.generate(
                    input_ids=enc["input_ids"],
                    attention_mask=enc["attention_mask"],
                    do_sample=not sampling.greedy,
                    temperature=1.0,  # applied by our processor: generate adds none of its own
                    top_p=1.0,
                    top_k=None if sampling.greedy else 0,  # 0: off (generate's default is 50)
                    logits_processor=LogitsProcessorList(processors),
                    max_new_tokens=sampling.max_new_tokens,
                    stop_strings=list(sampling.stop_strings) or None,
                    tokenizer=tokenizer if sampling.stop_strings else None,
                )
                width = enc["input_ids"].shape[1]
                logprobs = recorder.finish(seqs)
                for row in range(len(chunk)):
                    prompt = enc["input_ids"][row][enc["attention_mask"][row].bool()].tolist()
                    ids = trim_response(
                        seqs[row, width:].tolist(), tokenizer.eos_token_id, tokenizer.pad_token_id
                    )
                    out.append(
                        Response(
                            prompt,
                            ids,
                            tokenizer.decode(ids, skip_special_tokens=True),
                            logprobs[row, : len(ids)].tolist(),
                        )
                    )
        return out

    def sync_weights(self) -> None:
        """Nothing to do: generation runs on the policy itself."""

    def close(self) -> None:
        """Nothing to release."""


#: Tokens a chat template may add around the user message (SmolLM2's adds a system turn of 25).
CHAT_TEMPLATE_SLACK = 256


def make_backend(cfg, model, tokenizer, output_dir, *, rank: int = 0, dtype=None) -> GenerationBackend:
    """The backend ``cfg.generation.backend`` names, for ``model`` (a ``TrainConfig``).

    vLLM gets its config/tokenizer folder under ``output_dir/vllm_model/rank<r>`` (no
    weights are written: they are streamed from the policy) and computes in ``dtype``
    (default: the policy's parameter dtype).
    """
    g = cfg.generation
    if g.backend == "hf":
        return HFBackend(model, tokenizer, batch_size=g.batch_size)
    from pathlib import Path

    from hgpo.vllm_backend import VLLMBackend

    max_len = g.vllm.max_model_len
    if max_len is None and cfg.memory.max_prompt_tokens is not None:
        # The budget counts the user message; the chat template adds a few dozen tokens.
        max_len = cfg.memory.max_prompt_tokens + CHAT_TEMPLATE_SLACK + g.max_new_tokens
    return VLLMBackend(
        model,
        tokenizer,
        g.vllm,
        folder=Path(output_dir) / "vllm_model" / f"rank{rank}",
        seed=cfg.seed + rank,
        max_model_len=max_len,
        dtype=dtype,
    )
