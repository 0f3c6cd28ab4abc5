"""How the learner is spread over ranks: one process, DDP replicas, or FSDP2 shards.

Under ``torchrun`` (or ``accelerate launch``) every rank plays its own groups and
computes their advantages locally (groups never straddle ranks); the strategies
differ only in how the model's parameters, gradients and optimizer state live:

- ``ddp``: every rank holds the whole model; gradients are all-reduced
  (``DistributedDataParallel``), once per mini-batch (``no_sync`` on the other
  micro-batches);
- ``fsdp``: PyTorch's FSDP2 (``fully_shard``) shards each decoder layer and the root
  over the ranks: parameters, gradients and AdamW state take about 1/world of the
  memory each; parameters are all-gathered layer by layer for every forward and
  backward, gradients reduce-scattered after every micro-batch (accumulating them
  unsharded would hold a full copy). On GPU, parameters stay float32 and compute runs
  in ``model.dtype`` (bf16) through a mixed-precision policy; parameters and optimizer
  state can be offloaded to CPU.

Every FSDP forward is a collective, so ranks must run the same number of forward
passes: the trainer pads its micro-batch lists with zero-weight passes
(:meth:`Strategy.pad_passes`). Generation with the HF backend runs on unsharded
parameters (:meth:`Strategy.unsharded`), so ranks can decode different numbers of
tokens; the vLLM backend gets full weights gathered one parameter at a time
(``hgpo.weights.inference_weights``).

Checkpoints: every strategy exports a plain ``policy/`` folder (``save_pretrained``,
LoRA merged, gathered under FSDP). For an exact resume, one process and DDP add the
optimizer (``torch.save`` on rank 0); FSDP saves model and optimizer shards with
``torch.distributed.checkpoint`` (every rank writes its own, in parallel; resume at the
same world size). See docs/trainer.md.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from hgpo.weights import hf_model, inference_weights, unwrap

log = logging.getLogger(__name__)


class Dist:
    """Rank bookkeeping and small collectives; no-ops on one process."""

    def __init__(self, timeout_minutes: float = 120.0, *, need_group: bool = False) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self._owns_group = False
        if (self.world > 1 or need_group) and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            # Long timeout: rank 0 evaluates while the others wait at a barrier.
            timeout = timedelta(minutes=timeout_minutes)
            if self.world > 1:
                dist.init_process_group(backend, timeout=timeout)
            else:  # FSDP on one process (e.g. for CPU offload): a group of one, no network
                dist.init_process_group(
                    backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout
                )
            self._owns_group = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def _reduce(self, values: list[float], op) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, op=op)
        return t.tolist()

    def sum(self, values: list[float]) -> list[float]:
        return self._reduce(values, dist.ReduceOp.SUM)

    def max_float(self, values: list[float]) -> list[float]:
        return self._reduce(values, dist.ReduceOp.MAX)

    def max(self, value: int) -> int:
        return int(self._reduce([float(value)], dist.ReduceOp.MAX)[0])

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather_objects(self, obj) -> list:
        """Every rank's ``obj`` (picklable), on every rank."""
        if self.world == 1:
            return [obj]
        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated transformer blocks of a HF model: its ``layers`` module list (a causal LM,
    peft-wrapped or not, or the critic's backbone)."""
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] == "layers" and isinstance(module, torch.nn.ModuleList):
            return list(module)
    raise ValueError(f"cannot find the decoder layers of {type(model).__name__} (no 'layers' module list)")


class Strategy:
    """One process: no wrapping, plain checkpoints."""

    name = "none"

    def __init__(self, dist_: Dist, device: torch.device):
        self.dist = dist_
        self.device = device

    def prepare(self, model: torch.nn.Module, *, trainable: bool = True) -> torch.nn.Module:
        """The module to call for training (a wrapper) or scoring (``trainable=False``)."""
        return model

    def accumulate(self, wrapped, last: bool):
        """Context for one micro-batch's backward; gradients are synced when ``last``."""
        return nullcontext()

    def pad_passes(self, n_local: int) -> int:
        """How many forward passes this rank must run when it has ``n_local`` of its own."""
        return n_local

    def unsharded(self, model):
        """Context in which ``model`` can run forwards on one rank alone (generation)."""
        return nullcontext()

    def clip_grad_norm(self, model, max_norm: float) -> float:
        norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_norm)
        full = getattr(norm, "full_tensor", None)
        return float(full() if full is not None else norm)

    def replica_divergence(self, model) -> float | None:
        """max - min over ranks of a parameter checksum (replicas must stay identical); None if not replicated."""
        return None

    # ------------------------------------------------------------ checkpoints

    def save_state(self, model, optimizer, folder: Path, *, with_weights: bool) -> None:
        """What an exact resume needs beyond the exported weights: the optimizer, and the
        weights too when ``with_weights`` (a module nothing else exports, e.g. the critic)."""
        if self.dist.main:
            folder.mkdir(parents=True, exist_ok=True)
            state = {"optimizer": optimizer.state_dict()}
            if with_weights:
                state["model"] = unwrap(model).state_dict()
            torch.save(state, folder / "state.pt")

    def load_state(self, model, optimizer, folder: Path, *, with_weights: bool) -> None:
        state = torch.load(folder / "state.pt", weights_only=False, map_location=self.device)
        if with_weights:
            unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])

    def export_pretrained(self, model, tokenizer, folder: Path, dtype: torch.dtype | None = None) -> None:
        """A plain ``save_pretrained`` folder (LoRA merged) that transformers and vLLM load."""
        weights = {}
        for name, tensor in inference_weights(model):  # a collective under FSDP: every rank iterates
            if self.dist.main:
                weights[name] = tensor.detach().to("cpu", dtype or tensor.dtype).contiguous()
        if self.dist.main:
            base = hf_model(model)
            with torch.device("meta"):
                skeleton = type(base)(base.config)  # no memory: only for save_pretrained's naming logic
            skeleton.generation_config = base.generation_config
            skeleton.save_pretrained(folder, state_dict=weights)
            tokenizer.save_pretrained(folder)


class DDPStrategy(Strategy):
    """Replicas with all-reduced gradients (``DistributedDataParallel``)."""

    name = "ddp"

    def prepare(self, model, *, trainable: bool = True):
        if not trainable:
            return model
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None
        )

    def accumulate(self, wrapped, last: bool):
        return nullcontext() if last else wrapped.no_sync()

    def replica_divergence(self, model) -> float | None:
        checksum = float(sum(p.detach().double().sum() for p in unwrap(model).parameters()))
        high, neg_low = self.dist.max_float([checksum, -checksum])
        return high + neg_low


class FSDPStrategy(Strategy):
    """FSDP2: each decoder layer and the root sharded over all ranks (see the module docstring)."""

    name = "fsdp"

    def __init__(self, dist_: Dist, device: torch.device, *, compute_dtype: torch.dtype, cpu_offload: bool):
        super().__init__(dist_, device)
        from torch.distributed.device_mesh import init_device_mesh

        self.mesh = init_device_mesh(device.type, (dist_.world,))
        self.compute_dtype = compute_dtype
        self.cpu_offload = cpu_offload

    def prepare(self, model, *, trainable: bool = True):
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

        kwargs = {
            "mesh": self.mesh,
            "mp_policy": MixedPrecisionPolicy(param_dtype=self.compute_dtype, reduce_dtype=torch.float32)
            if self.compute_dtype != torch.float32
            else MixedPrecisionPolicy(),
            "offload_policy": CPUOffloadPolicy() if self.cpu_offload else OffloadPolicy(),
        }
        # The root is the HF model itself, also under peft: generate() and PeftModel's forward
        # both enter through it, and FSDP needs every forward to start at its root.
        root = hf_model(model)
        for layer in decoder_layers(root):
            fully_shard(layer, **kwargs)
        fully_shard(root, **kwargs)
        return model

    def pad_passes(self, n_local: int) -> int:
        return self.dist.max(n_local)

    @contextmanager
    def unsharded(self, model):
        """All-gather every parameter once and keep them gathered (a collective on entry and exit)."""
        from torch.distributed.fsdp import FSDPModule

        modules = [m for m in model.modules() if isinstance(m, FSDPModule)]
        for m in modules:
            m.unshard()
            m.set_reshard_after_forward(False, recurse=False)
        try:
            yield model
        finally:
            for m in modules:
                m.set_reshard_after_forward(True, recurse=False)
                m.reshard()

    def save_state(self, model, optimizer, folder: Path, *, with_weights: bool) -> None:
        """Model and optimizer shards, written by every rank in parallel (``torch.distributed.checkpoint``)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_sd, optim_sd = get_state_dict(model, optimizer)
        dcp.save({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=str(folder))

    def load_state(self, model, optimizer, folder: Path, *, with_weights: bool) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_sd, optim_sd = get_state_dict(model, optimizer)
        state = {"model": model_sd, "optimizer": optim_sd}
        dcp.load(state, checkpoint_id=str(folder))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])


def make_strategy(
    name: str, dist_: Dist, device: torch.device, *, compute_dtype: torch.dtype, cpu_offload: bool
):
    """``distributed.strategy`` -> a :class:`Strategy` (one process always gets the plain one)."""
    if name == "fsdp":
        if cpu_offload and device.type != "cuda":
            raise ValueError("distributed.cpu_offload moves GPU memory to CPU: it needs a CUDA device")
        return FSDPStrategy(dist_, device, compute_dtype=compute_dtype, cpu_offload=cpu_offload)
    if dist_.world == 1:
        return Strategy(dist_, device)
    return DDPStrategy(dist_, device)
