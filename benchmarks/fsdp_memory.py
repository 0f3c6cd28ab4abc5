"""Memory per rank of the learner: DDP replicas vs FSDP2 shards, 2 ranks, same model, same step.

For each strategy, ``torchrun --nproc_per_node 2`` runs one training step of the
trainer's own wrapping (``hgpo.distributed.make_strategy``) on SmolLM2-135M-Instruct
(float32 on CPU): forward + backward on a small batch and one AdamW step. Each rank
then reports the bytes its parameters (its local shards under FSDP), gradients and
AdamW state occupy, and its peak RSS (which also holds the Python runtime, torch,
activations and the model as loaded before sharding).

Usage::

    python benchmarks/fsdp_memory.py                  # about 2 minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _local_bytes(t) -> int:
    local = t.to_local() if hasattr(t, "to_local") else t
    return local.numel() * local.element_size()


def child(strategy_name: str) -> None:
    import torch

    from hgpo.config import ModelConfig
    from hgpo.distributed import Dist, make_strategy
    from hgpo.policy import collate, load_pretrained, response_logits, token_logprobs

    torch.set_num_threads(1)
    dist_ = Dist(need_group=True)
    device = torch.device("cpu")
    model, tok = load_pretrained("smollm2", ModelConfig(), device, dtype=torch.float32)
    strategy = make_strategy(strategy_name, dist_, device, compute_dtype=torch.float32, cpu_offload=False)
    if strategy_name == "ddp" and dist_.world == 1:
        raise SystemExit("run under torchrun with 2 ranks")
    wrapped = strategy.prepare(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    ids = tok("You arrive at countertop 1. On the countertop 1, you see a mug 1.", add_special_tokens=False)["input_ids"]
    batch = collate([ids] * 4, [ids[:8]] * 4, tok.pad_token_id)
    logp = token_logprobs(response_logits(wrapped, batch), batch.response_ids)
    (-logp.mean()).backward()
    optimizer.step()
    params = sum(_local_bytes(p) for p in model.parameters())
    grads = sum(_local_bytes(p.grad) for p in model.parameters() if p.grad is not None)
    states = sum(_local_bytes(v) for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.dim())
    report = {
        "strategy": strategy_name,
        "rank": dist_.rank,
        "params_mb": params / 2**20,
        "grads_mb": grads / 2**20,
        "adam_mb": states / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print("REPORT " + json.dumps(report), flush=True)
    dist_.close()


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    rows = []
    for strategy in ("ddp", "fsdp"):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
               __file__, "--child", strategy]  # fmt: skip
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        rows += [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("REPORT ")]
    print("SmolLM2-135M-Instruct, float32, 2 CPU ranks (gloo), after one AdamW step\n")
    print("| strategy | rank | parameters (MB) | gradients (MB) | AdamW state (MB) | sum (MB) | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["strategy"], r["rank"])):
        total = r["params_mb"] + r["grads_mb"] + r["adam_mb"]
        print(f"| {r['strategy']} | {r['rank']} | {r['params_mb']:.0f} | {r['grads_mb']:.0f} | {r['adam_mb']:.0f} "
              f"| {total:.0f} | {r['peak_rss_mb']:.0f} |")  # fmt: skip
    totals = {s: max(r["params_mb"] + r["grads_mb"] + r["adam_mb"] for r in rows if r["strategy"] == s) for s in ("ddp", "fsdp")}
    print(f"\nFSDP / DDP parameter + gradient + optimizer memory per rank: {totals['fsdp'] / totals['ddp']:.2f}")


if __name__ == "__main__":
    main()
