"""Rollout generation: HF ``generate`` vs the colocated vLLM engine, same prompts, same run.

Prompts are those of real ALFWorld-v0 rollouts: the handcoded expert plays training
games and every step's prompt is rendered by the trainer's memory (``FixedSizeMemory``,
K=2, the ``think`` format) and SmolLM2's chat template, so lengths and shared prefixes
are what training sees. For each batch size B, each backend samples one response per
prompt for B prompts (temperature 1.0, stop at ``</action>``, at most
``--max-new-tokens``), through the same :class:`hgpo.generation.GenerationBackend`
call the trainer makes.

Reported per backend and B: generated tokens/s; env steps/s (= decisions/s: B
decisions per call, generation only, env time excluded); and the process's peak RSS.
Each backend runs in a fresh process (its RSS is its own; vLLM's engine start is
timed separately and not counted in the throughput).

Usage::

    python benchmarks/rollout_generation.py                       # SmolLM2, B = 16, 64, 128
    python benchmarks/rollout_generation.py --batches 16,64 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def alfworld_prompts(n: int, history: int = 2) -> list[str]:
    """``n`` memory-rendered prompts (plain text) from expert ALFWorld episodes."""
    from agentenv.vector import make_group_vector_env
    from hgpo.warm_start import collect_demonstrations
    from memory import FixedSizeMemory

    envs = make_group_vector_env("ALFWorld-v0", 8, 1, asynchronous=False, split="train", expert=True)
    try:
        pairs, _ = collect_demonstrations(
            envs, FixedSizeMemory(history, env="alfworld"), episodes=max(8, n // 8), seed=0, max_steps=50
        )
    finally:
        envs.close()
    prompts = [p for p, _ in pairs]
    while len(prompts) < n:  # short episodes: reuse, as a bigger batch of groups would
        prompts += prompts
    return prompts[:n]


def run_backend(backend: str, prompts: list[str], batches: list[int], max_new_tokens: int) -> dict:
    """Child process: load SmolLM2, build the backend, time one generate call per batch size."""
    import torch

    from hgpo.config import ModelConfig, VLLMSettings
    from hgpo.generation import HFBackend, Sampling
    from hgpo.policy import load_pretrained
    from memory import build_chat_prompt

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    model, tokenizer = load_pretrained("smollm2", ModelConfig(), torch.device("cpu"))
    model.eval().requires_grad_(False)
    chat = [build_chat_prompt(tokenizer, p) for p in prompts]
    t0 = time.perf_counter()
    if backend == "vllm":
        from hgpo.vllm_backend import VLLMBackend

        engine = VLLMBackend(model, tokenizer, VLLMSettings(), folder=Path("/tmp/bench_vllm_engine"), max_model_len=4096)
    else:
        engine = HFBackend(model, tokenizer, batch_size=max(batches))
    start_s = time.perf_counter() - t0
    sampling = Sampling(temperature=1.0, max_new_tokens=max_new_tokens, stop_strings=("</action>",))
    rows = []
    for b in batches:
        t0 = time.perf_counter()
        responses = engine.generate(chat[:b], sampling, seed=b)
        seconds = time.perf_counter() - t0
        tokens = sum(len(r.response_ids) for r in responses)
        prompt_tokens = sum(len(r.prompt_ids) for r in responses)
        rows.append({"batch": b, "seconds": seconds, "tokens": tokens, "prompt_tokens": prompt_tokens})
    engine.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"backend": backend, "start_s": start_s, "rows": rows, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="16,64,128")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--backends", default="hf,vllm")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.child:
        prompts = json.loads(Path(args.child).read_text())
        print(json.dumps(run_backend(os.environ["BENCH_BACKEND"], prompts, batches, args.max_new_tokens)))
        return

    prompts = alfworld_prompts(max(batches))
    prompt_file = Path("/tmp/rollout_generation_prompts.json")
    prompt_file.write_text(json.dumps(prompts))
    results = {}
    for backend in args.backends.split(","):
        env = {**os.environ, "BENCH_BACKEND": backend, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, __file__, "--child", str(prompt_file), "--batches", args.batches,
               "--max-new-tokens", str(args.max_new_tokens)]  # fmt: skip
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        results[backend] = json.loads(out.stdout.strip().splitlines()[-1])

    print(f"SmolLM2-135M-Instruct, float32, CPU ({os.cpu_count()} cores), temperature 1.0, "
          f"max {args.max_new_tokens} new tokens, prompts of real ALFWorld rollouts (K=2)\n")  # fmt: skip
    print("| backend | batch | prompt tokens | generated tokens | seconds | tokens/s | env steps/s | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for backend, res in results.items():
        for row in res["rows"]:
            print(
                f"| {backend} | {row['batch']} | {row['prompt_tokens']} | {row['tokens']} | {row['seconds']:.1f} "
                f"| {row['tokens'] / row['seconds']:.1f} | {row['batch'] / row['seconds']:.2f} | {res['peak_rss_mb']:.0f} |"
            )
    if {"hf", "vllm"} <= results.keys():
        print("\n| batch | vLLM / HF tokens/s |\n|---:|---:|")
        for hf, vl in zip(results["hf"]["rows"], results["vllm"]["rows"], strict=True):
            ratio = (vl["tokens"] / vl["seconds"]) / (hf["tokens"] / hf["seconds"])
            print(f"| {hf['batch']} | {ratio:.1f}x |")
        print(f"\nstart-up: HF {results['hf']['start_s']:.1f} s, vLLM engine {results['vllm']['start_s']:.1f} s")


if __name__ == "__main__":
    main()
