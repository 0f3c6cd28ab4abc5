"""HiPER's critic: a causal-LM backbone with a 3-output value head, and token spans.

Read-outs (HiPER, arXiv 2602.16165; notes/algorithms.md section 3). Like every
token-level critic, the value "at" response token j is read from the hidden state
that predicts token j (prompt position P-1+j), i.e. before the token is written:

- ``V_high`` (head 0) at the first response token of a boundary turn;
- ``V_low`` (head 1) at the first token after ``</subgoal>`` (fallback: after
  ``</switch>``, else token 0);
- ``V_term`` (head 2) at the first response token of every turn.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from hgpo.policy import TokenBatch
from hgpo.weights import hf_model

HEADS = ("high", "low", "term")


class ValueModel(nn.Module):
    """A transformer backbone (no LM head) and ``Linear(hidden, 3)``."""

    def __init__(self, backbone: nn.Module, hidden_size: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(hidden_size, len(HEADS))
        nn.init.zeros_(self.head.weight)  # start at V = 0: no made-up values before training
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_policy(cls, policy: nn.Module) -> ValueModel:
        """A critic on a copy of the policy's backbone (HiPER uses the same base model)."""
        base = hf_model(policy)  # under peft: copy the underlying transformer
        backbone = copy.deepcopy(base.base_model)
        backbone.requires_grad_(True)
        return cls(backbone, base.config.hidden_size).to(next(base.parameters()).device)

    def forward(self, batch: TokenBatch) -> torch.Tensor:
        """Values (B, R, 3): row b, response token j -> the three heads read before token j."""
        R = batch.response_ids.shape[1]
        hidden = self.backbone(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
        ).last_hidden_state
        states = hidden[:, -(R + 1) : -1, :]  # positions P-1 .. P+R-2
        return self.head(states.to(self.head.weight.dtype)).float()


def char_to_token_spans(
    tokenizer, response_ids: Sequence[int], spans: Sequence[tuple[int, int] | None]
) -> list[tuple[int, int] | None]:
    """Map character spans of the decoded response to token index spans ``[start, end)``.

    A token belongs to a span when its characters overlap it. The decoded length of
    a prefix never decreases with the prefix, so each boundary is found by binary
    search over prefix lengths (O(log R) decodes per boundary, not O(R)).
    """
    ids = list(response_ids)
    cache: dict[int, int] = {}

    def chars_before(j: int) -> int:  # characters decoded from ids[:j]
        if j not in cache:
            cache[j] = len(tokenizer.decode(ids[:j], skip_special_tokens=True))
        return cache[j]

    def first_token_ending_after(c: int) -> int:  # smallest j with chars_before(j + 1) > c
        lo, hi = 0, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if chars_before(mid + 1) > c:
                hi = mid
            else:
                lo = mid + 1
        return lo

    out: list[tuple[int, int] | None] = []
    for span in spans:
        if span is None or span[1] <= span[0]:
            out.append(None)
            continue
        start = first_token_ending_after(span[0])
        end = first_token_ending_after(span[1] - 1) + 1
        out.append((start, min(end, len(ids))) if start < len(ids) else None)
    return out
