"""Run several training jobs in one ``torchrun`` launch (the distributed tests' worker).

``torchrun --nproc_per_node 2 tests/hgpo/distributed_runs.py spec.json``: the spec is a
list of runs ``{"overrides": [...], "probe": bool}``, trained one after the other in
this process group (created here, so the trainers leave it open between runs; a vLLM
engine's shutdown tears the group down, so a vLLM run must come last). With
``probe``, the trained policy's log-probs on a fixed token batch are saved by rank 0 to
``<output_dir>/probe.pt``: what the exported folder must reproduce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from hgpo.config import load_config
from hgpo.policy import collate, response_logits, token_logprobs
from hgpo.trainer import Trainer

#: A fixed batch in the tiny tokenizer's id range: two prompts, two responses.
PROBE_PROMPTS = [[5, 17, 42, 9, 33, 12], [8, 21, 4]]
PROBE_RESPONSES = [[40, 7, 19, 2], [11, 3]]


def probe_logprobs(model, device) -> torch.Tensor:
    batch = collate(PROBE_PROMPTS, PROBE_RESPONSES, pad_id=0)
    batch = type(batch)(*(t.to(device) for t in vars(batch).values()))
    with torch.no_grad():
        return token_logprobs(response_logits(model, batch), batch.response_ids).cpu()


def main() -> None:
    dist.init_process_group("gloo")
    for run in json.loads(Path(sys.argv[1]).read_text()):
        trainer = Trainer(load_config(None, run["overrides"]))
        try:
            trainer.train()
            if run.get("probe"):
                trainer.model.eval()
                logp = probe_logprobs(trainer.train_model, trainer.device)  # a collective under FSDP
                if dist.get_rank() == 0:
                    torch.save(logp, Path(trainer.cfg.output_dir) / "probe.pt")
        finally:
            trainer.close()
        if dist.is_initialized():
            dist.barrier()
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
