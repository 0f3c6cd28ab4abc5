"""HiPER in the trainer: critic read-outs, HAE, and per-token advantages over the turn's spans.

The estimator itself is :func:`hgpo.advantages.hiper.hierarchical_advantages`; this
module connects it to token ids. Per step sample (one turn):

- the switch tokens get the termination advantage, the sub-goal tokens of a boundary
  turn the planner advantage, the action tokens the executor advantage;
- a response without a complete ``<action>...</action>`` (no tags at all included)
  trains its whole response on the executor advantage, as the reference's action mask
  does (``fallback_action_to_full_response``); where that overlaps a switch or sub-goal
  span the two advantages add up, as the reference sums its three streams;
- the loss mask is the union of those spans, so a sub-goal copied on KEEP, the EOS
  and any text outside the three elements get no gradient;
- the critic (:class:`hgpo.critic.ValueModel`) is regressed on HAE's value targets at
  its three read-out positions with verl's clipped value loss (``value_clip``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hgpo.advantages.hiper import HAEResult, HiperBatch, hierarchical_advantages
from hgpo.config import HiperConfig
from hgpo.critic import HEADS, ValueModel, char_to_token_spans
from hgpo.distributed import Dist, Strategy
from hgpo.loss import clipped_value_loss
from hgpo.policy import collate
from hgpo.rollout import Rollout


@dataclass
class TurnTokens:
    """Token spans ``[start, end)`` of each element of one response (None when missing)."""

    switch: tuple[int, int] | None
    subgoal: tuple[int, int] | None
    action: tuple[int, int] | None

    def action_tokens(self, length: int) -> tuple[int, int] | None:
        """Where the executor advantage goes: the action span, else the whole response
        (the reference's fallback when the action tags are missing); None if it is empty."""
        if self.action is not None:
            return self.action
        return (0, length) if length > 0 else None

    @property
    def low_position(self) -> int:
        """Where V_low is read: the first token after ``</subgoal>`` (else after ``</switch>``, else 0)."""
        for span in (self.subgoal, self.switch):
            if span is not None:
                return span[1]
        return 0


def turn_tokens(tokenizer, rollout: Rollout) -> list[TurnTokens]:
    out = []
    for ids, turn in zip(rollout.response_ids, rollout.turns, strict=True):
        if turn is None:
            out.append(TurnTokens(None, None, None))
            continue
        spans = char_to_token_spans(tokenizer, ids, [turn.switch_span, turn.subgoal_span, turn.action_span])
        out.append(TurnTokens(*spans))
    return out


def hiper_batch(rollout: Rollout, tokens: list[TurnTokens], values: np.ndarray) -> HiperBatch:
    """HAE's inputs from a rollout; ``values`` (N, 3) = V_high, V_low, V_term of each turn."""
    switch = np.array([t.switch == "SWITCH" if t is not None else False for t in rollout.turns])
    boundary = switch | (rollout.step == 0)
    subgoals = [t.subgoal if t is not None else "" for t in rollout.turns]
    keep_changed = np.zeros(len(rollout), dtype=bool)
    for row in range(1, len(rollout)):
        same_traj = rollout.traj[row] == rollout.traj[row - 1]  # rows are trajectory-major, time-ordered
        # Compared only when both turns wrote a sub-goal, as the reference does.
        if same_traj and not boundary[row] and subgoals[row] and subgoals[row - 1]:
            keep_changed[row] = subgoals[row] != subgoals[row - 1]
    return HiperBatch(
        traj=rollout.traj,
        step=rollout.step,
        reward=rollout.reward,
        valid=rollout.valid,
        boundary=boundary,
        keep_changed=keep_changed,
        v_high=values[:, 0].astype(np.float32),
        v_low=values[:, 1].astype(np.float32),
        v_term=values[:, 2].astype(np.float32),
        truncated=rollout.truncated,
        # Every non-empty response has action tokens: its action span or, without one, all of it.
        has_action=np.array(
            [
                t.action_tokens(len(ids)) is not None
                for t, ids in zip(tokens, rollout.response_ids, strict=True)
            ]
        ),
        has_subgoal=np.array([t.subgoal is not None for t in tokens]),
        has_switch=np.array([t.switch is not None for t in tokens]),
    )


def token_advantages(
    rollout: Rollout, tokens: list[TurnTokens], res: HAEResult
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-token advantages and loss masks (each (R_i,)) from the three HAE streams.

    A token in several streams' spans (only when the action falls back to the whole
    response) gets the sum of their advantages, as the reference adds its three
    masked streams.
    """
    advs, masks = [], []
    for row, (ids, tt) in enumerate(zip(rollout.response_ids, tokens, strict=True)):
        adv = np.zeros(len(ids), dtype=np.float32)
        mask = np.zeros(len(ids), dtype=np.float32)
        for span, value, defined in (
            (tt.switch, res.term_adv[row], res.term_mask[row]),
            (tt.subgoal, res.subgoal_adv[row], res.subgoal_mask[row]),
            (tt.action_tokens(len(ids)), res.action_adv[row], res.action_mask[row]),
        ):
            if span is not None and defined:
                adv[span[0] : span[1]] += value
                mask[span[0] : span[1]] = 1.0
        advs.append(adv)
        masks.append(mask)
    return advs, masks


class HiperCritic:
    """The value model, its optimiser, read-outs and regression on HAE targets."""

    def __init__(
        self,
        policy,
        tokenizer,
        cfg: HiperConfig,
        micro_batch_size: int,
        device: torch.device,
        strategy: Strategy | None = None,
    ):
        self.model = ValueModel.from_policy(policy)
        # Replicated (DDP) or sharded (FSDP) like the policy: ranks train one critic together.
        self.strategy = strategy = strategy or Strategy(Dist(), device)
        self.train_model = strategy.prepare(self.model)
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.micro = micro_batch_size
        self.device = device
        # Weight decay 0.01: verl's critic optim default, which the HiPER scripts keep.
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.critic_lr, weight_decay=0.01)

    def _batch(self, rollout: Rollout, idx):
        batch = collate(
            [rollout.prompt_ids[i] for i in idx],
            [rollout.response_ids[i] for i in idx],
            self.tokenizer.pad_token_id,
        )
        return type(batch)(*(t.to(self.device) for t in vars(batch).values()))

    def _read(self, values: torch.Tensor, idx, tokens: list[TurnTokens]) -> torch.Tensor:
        """(B, R, 3) values -> (B, 3): V_high and V_term at token 0, V_low at its read-out token."""
        rows = torch.arange(len(idx), device=values.device)
        low_pos = torch.tensor(
            [min(tokens[i].low_position, values.shape[1] - 1) for i in idx], device=values.device
        )
        return torch.stack([values[:, 0, 0], values[rows, low_pos, 1], values[:, 0, 2]], dim=1)

    @torch.no_grad()
    def values(self, rollout: Rollout, tokens: list[TurnTokens]) -> np.ndarray:
        """V_high, V_low, V_term of every turn: float (N, 3)."""
        self.model.eval()
        out = []
        chunks = [list(range(s, min(s + self.micro, len(rollout)))) for s in range(0, len(rollout), self.micro)]
        for k in range(self.strategy.pad_passes(len(chunks))):  # FSDP: as many forwards as every rank
            idx = chunks[k] if k < len(chunks) else [0]
            values = self._read(self.train_model(self._batch(rollout, idx)), idx, tokens).cpu()
            if k < len(chunks):
                out.append(values)
        return torch.cat(out).numpy() if out else np.zeros((0, 3), dtype=np.float32)

    def update(
        self, rollout: Rollout, tokens: list[TurnTokens], res: HAEResult, batch: HiperBatch, rng
    ) -> dict:
        """One epoch of mini-batched value regression on the three read-outs; returns mean
        losses and clip fractions.

        Each head's loss is verl's clipped value loss (:func:`hgpo.loss.clipped_value_loss`,
        ``cfg.value_clip``; the old values are the read-outs HAE used), averaged over the
        mini-batch rows where that head is trained, and the three are added (the
        reference's ``high_value_coef = term_value_coef = 1``).
        """
        targets = torch.tensor(np.stack([res.v_high_target, res.v_low_target, res.v_term_target], 1))
        # The old values; v_high is read on boundary rows only (elsewhere it may be anything).
        old = torch.tensor(
            np.stack([np.where(batch.boundary, batch.v_high, 0.0), batch.v_low, batch.v_term], 1),
            dtype=torch.float32,
        )
        # V_high is trained on boundary turns only (it is read nowhere else).
        weights = torch.ones_like(targets)
        weights[:, 0] = torch.tensor(batch.boundary, dtype=torch.float32)
        self.model.train()
        dist = self.strategy.dist
        totals, clipped_totals = np.zeros(3), np.zeros(3)
        order = rng.permutation(len(rollout))
        # Every rank takes the same optimiser steps, and each head's mean runs over all ranks' rows.
        n_mini = dist.max(max(1, -(-len(order) // self.cfg.critic_mini_batch_size)))
        for mini in np.array_split(order, n_mini):
            denom = torch.tensor(dist.sum(weights[mini].sum(0).tolist())).clamp(min=1.0) / dist.world
            micro = [list(mini[s : s + self.micro]) for s in range(0, len(mini), self.micro)]
            n_micro = max(self.strategy.pad_passes(len(micro)), 1)
            self.optimizer.zero_grad(set_to_none=True)
            for j in range(n_micro):
                idx, live = (micro[j], 1.0) if j < len(micro) else ([0], 0.0)  # zero-weight padding pass
                with self.strategy.accumulate(self.train_model, last=j == n_micro - 1):
                    pred = self._read(self.train_model(self._batch(rollout, idx)), idx, tokens)
                    loss, terms, clipped = value_loss(
                        pred, old[idx].to(pred.device), targets[idx].to(pred.device),
                        live * weights[idx].to(pred.device), denom.to(pred.device), self.cfg.value_clip,
                    )  # fmt: skip
                    loss.backward()
                # terms carry a factor world (see denom): the sum over ranks / world is the mean.
                totals += terms.detach().cpu().numpy() / dist.world
                clipped_totals += clipped.detach().cpu().numpy() / dist.world
            self.strategy.clip_grad_norm(self.model, self.cfg.critic_max_grad_norm)
            self.optimizer.step()
        totals, clipped_totals = np.array(dist.sum(list(totals))), np.array(dist.sum(list(clipped_totals)))
        out = {}
        for name, loss_sum, clip_sum in zip(HEADS, totals, clipped_totals, strict=True):
            out[f"critic/loss_{name}"] = float(loss_sum / n_mini)
            out[f"critic/clipfrac_{name}"] = float(clip_sum / n_mini)
        return out


def value_loss(
    pred: torch.Tensor,
    old: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    denom: torch.Tensor,
    clip: float | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The critic's loss on a micro-batch: tensors (B, 3), columns V_high, V_low, V_term.

    ``weight`` marks where each head is trained and ``denom`` (3,) is that count over the
    whole mini-batch, so micro-batch losses add up to the mini-batch mean of each head.
    Returns ``(loss, per-head losses (3,), per-head clipped shares (3,))``: the loss to
    backpropagate is the sum of the three heads' means.
    """
    element, clipped = clipped_value_loss(pred, old, target, clip)
    terms = (element * weight).sum(0) / denom
    shares = (clipped.float() * weight).sum(0) / denom
    return terms.sum(), terms, shares


def hiper_advantages(
    critic: HiperCritic, tokenizer, rollout: Rollout, cfg: HiperConfig
) -> tuple[list[np.ndarray], list[np.ndarray], HAEResult, HiperBatch, list[TurnTokens]]:
    """Critic read-outs -> HAE -> per-token advantages and masks."""
    tokens = turn_tokens(tokenizer, rollout)
    batch = hiper_batch(rollout, tokens, critic.values(rollout, tokens))
    res = hierarchical_advantages(
        batch,
        gamma=cfg.gamma,
        lam=cfg.lam,
        lam_seg=cfg.lam_seg,
        invalid_penalty=cfg.invalid_penalty,
        keep_penalty=cfg.keep_penalty,
        keep_penalty_mode=cfg.keep_penalty_mode,
        consistency_penalty=cfg.consistency_penalty,
        bootstrap_truncated=cfg.bootstrap_truncated,
        normalize=cfg.normalize,
    )
    advs, masks = token_advantages(rollout, tokens, res)
    return advs, masks, res, batch, tokens
