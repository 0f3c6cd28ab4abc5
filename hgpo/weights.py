"""The policy's full weights under their Hugging Face names, for an inference engine or an export.

Handles the two wrappings the trainer uses: a peft LoRA adapter is merged into the
base weights on the fly (``W + B A * scale``, computed per layer, the live model is
never modified, so no merge/unmerge drift accumulates), and FSDP2-sharded parameters
(``DTensor``) are gathered one at a time, so at most one extra full parameter is
alive at once on top of the shards.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def unwrap(model):
    """The module that holds the weights: DDP's ``module``, else the model itself."""
    return (
        getattr(model, "module", model)
        if isinstance(model, torch.nn.parallel.DistributedDataParallel)
        else model
    )


def hf_model(model):
    """The plain transformers model inside the policy: DDP unwrapped, then peft's base model."""
    model = unwrap(model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """A sharded ``DTensor`` gathered to a plain tensor (a collective: every rank must call it)."""
    full_tensor = getattr(tensor, "full_tensor", None)
    return full_tensor() if full_tensor is not None else tensor


def _lora_deltas(base) -> dict[str, torch.Tensor]:
    """``{weight name: delta}`` of every LoRA layer's active adapter, gathered when sharded."""
    from peft.tuners.lora import LoraLayer

    deltas = {}
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer):
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    a = _full(module.lora_A[adapter].weight)
                    b = _full(module.lora_B[adapter].weight)
                    delta = (b @ a) * module.scaling[adapter]
                    if getattr(module, "fan_in_fan_out", False):
                        delta = delta.T
                    key = f"{name}.weight"
                    deltas[key] = deltas[key] + delta if key in deltas else delta
    return deltas


@torch.no_grad()
def inference_weights(model) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(hf_name, tensor)`` for every weight of the (possibly LoRA, DDP or FSDP) policy.

    Names are those of the plain model's ``state_dict`` (``model.layers.0.mlp.up_proj.weight``),
    which is what ``from_pretrained`` and vLLM's weight loaders expect. Under FSDP every
    rank must consume the whole iterator (each parameter is an all-gather).
    """
    model = unwrap(model)
    deltas: dict[str, torch.Tensor] = {}
    if hasattr(model, "get_base_model"):  # peft
        model = model.get_base_model()
        deltas = _lora_deltas(model)
    # Tied weights (lm_head = embed_tokens) are one Parameter under two names: gather it once,
    # yield the same tensor for both (so save_pretrained stores it once). Found from the module
    # structure, the same on every rank, so every rank runs the same collectives.
    first: dict[int, str] = {}
    alias: dict[str, str] = {}
    for pname, param in model.named_parameters(remove_duplicate=False):
        alias[pname] = first.setdefault(id(param), pname)
    keep = {target for name, target in alias.items() if name != target}
    gathered: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        if "lora_" in key:
            continue
        source = alias.get(key, key)
        full = gathered[source] if source in gathered else _full(tensor)
        if source in keep:
            gathered[source] = full
        name = key.replace(".base_layer.", ".")
        if name in deltas:
            full = full + deltas.pop(name).to(full.dtype)
        yield name, full
