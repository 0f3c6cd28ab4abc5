"""HiPER in the trainer: critic read-outs, HAE, and per-token advantages over the turn's spans.

The estimator itself is :func:`hgpo.advantages.hiper.hierarchical_advantages`; this
module connects it to token ids. Per step sample (one turn):

- the switch tokens get the termination advantage, the sub-goal tokens of a boundary
  turn the planner advantage, the action tokens the executor advantage;
- the loss mask is the union of those spans, so a sub-goal copied on KEEP, the EOS
  and any text outside the three elements get no gradient;
- the critic (:class:`hgpo.critic.ValueModel`) is regressed on HAE's value targets at
  its three read-out positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hgpo.advantages.hiper import HAEResult, HiperBatch, hierarchical_advantages
from hgpo.config import HiperConfig
from hgpo.critic import ValueModel, char_to_token_spans
from hgpo.policy import collate
from hgpo.rollout import Rollout


@dataclass
class TurnTokens:
    """Token spans ``[start, end)`` of each element of one response (None when missing)."""

    switch: tuple[int, int] | None
    subgoal: tuple[int, int] | None
    action: tuple[int, int] | None

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
        has_action=np.array([t.action is not None for t in tokens]),
        has_subgoal=np.array([t.subgoal is not None for t in tokens]),
        has_switch=np.array([t.switch is not None for t in tokens]),
    )


def token_advantages(
    rollout: Rollout, tokens: list[TurnTokens], res: HAEResult
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-token advantages and loss masks (each (R_i,)) from the three HAE streams."""
    advs, masks = [], []
    for row, (ids, tt) in enumerate(zip(rollout.response_ids, tokens, strict=True)):
        adv = np.zeros(len(ids), dtype=np.float32)
        mask = np.zeros(len(ids), dtype=np.float32)
        for span, value, defined in (
            (tt.switch, res.term_adv[row], res.term_mask[row]),
            (tt.subgoal, res.subgoal_adv[row], res.subgoal_mask[row]),
            (tt.action, res.action_adv[row], res.action_mask[row]),
        ):
            if span is not None and defined:
                adv[span[0] : span[1]] = value
                mask[span[0] : span[1]] = 1.0
        advs.append(adv)
        masks.append(mask)
    return advs, masks


class HiperCritic:
    """The value model, its optimiser, read-outs and regression on HAE targets."""

    def __init__(self, policy, tokenizer, cfg: HiperConfig, micro_batch_size: int, device: torch.device):
        self.model = ValueModel.from_policy(policy)
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.micro = micro_batch_size
        self.device = device
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.critic_lr)

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
        for start in range(0, len(rollout), self.micro):
            idx = list(range(start, min(start + self.micro, len(rollout))))
            out.append(self._read(self.model(self._batch(rollout, idx)), idx, tokens).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 3), dtype=np.float32)

    def update(
        self, rollout: Rollout, tokens: list[TurnTokens], res: HAEResult, batch: HiperBatch, rng
    ) -> dict:
        """One epoch of mini-batched MSE on the three read-outs; returns mean losses."""
        targets = torch.tensor(np.stack([res.v_high_target, res.v_low_target, res.v_term_target], 1))
        # V_high is trained on boundary turns only (it is read nowhere else).
        weights = torch.ones_like(targets)
        weights[:, 0] = torch.tensor(batch.boundary, dtype=torch.float32)
        self.model.train()
        totals = np.zeros(3)
        order = rng.permutation(len(rollout))
        for start in range(0, len(order), self.cfg.critic_mini_batch_size):
            mini = order[start : start + self.cfg.critic_mini_batch_size]
            denom = weights[mini].sum(0).clamp(min=1.0)  # per-head mean over the mini-batch
            self.optimizer.zero_grad(set_to_none=True)
            for s in range(0, len(mini), self.micro):
                idx = list(mini[s : s + self.micro])
                pred = self._read(self.model(self._batch(rollout, idx)), idx, tokens)
                err = (pred - targets[idx].to(pred.device)) ** 2 * weights[idx].to(pred.device)
                loss = (err.sum(0) / denom.to(pred.device)).sum()
                loss.backward()
                totals += (err.sum(0) / denom.to(pred.device)).detach().cpu().numpy()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.critic_max_grad_norm)
            self.optimizer.step()
        n_mini = max(1, -(-len(order) // self.cfg.critic_mini_batch_size))
        return {
            f"critic/loss_{name}": float(v / n_mini)
            for name, v in zip(("high", "low", "term"), totals, strict=True)
        }


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
