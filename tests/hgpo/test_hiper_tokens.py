"""HiPER in the trainer: per-token advantages over the turn's spans, and the critic's
clipped value loss, by hand.

The reference (JonP07/HiPER-agent ``hiper_hae/hier_mask.py``) trains the whole response
on the action (executor) advantage when the ``<action>`` tags are missing
(``fallback_action_to_full_response=True``), and adds the three masked streams, so
tokens in both the fallback action span and the switch span get both advantages. Its
critic uses verl's clipped value loss with ``cliprange_value`` 0.5.

Token ids here are character codes and the tokenizer decodes them back, so token spans
are character spans (a stand-in tokenizer inside a test of the span logic).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hgpo.advantages.hiper import HAEResult, hierarchical_advantages
from hgpo.config import HiperConfig, load_config
from hgpo.hiper import HiperCritic, TurnTokens, hiper_batch, token_advantages, turn_tokens, value_loss
from hgpo.loss import clipped_value_loss
from memory.parsing import parse_hiper_turn


class CharTokenizer:
    """One token per character (ids = code points)."""

    pad_token_id = 0

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids)


FULL = "ok <switch>SWITCH</switch><subgoal>find mug</subgoal><action>go to desk 1</action>"
NO_ACTION = "<switch>KEEP</switch><subgoal>find mug</subgoal>go to desk 2"
NO_TAGS = "open drawer 1"


class Steps(SimpleNamespace):
    """The fields of :class:`hgpo.rollout.Rollout` that HiPER's trainer code reads."""

    def __len__(self) -> int:
        return len(self.step)


def one_episode() -> Steps:
    """Three turns of one trajectory: full format, no <action> tags, no tags; success at the end."""
    texts = [FULL, NO_ACTION, NO_TAGS]
    turns = [parse_hiper_turn(text, first_turn=t == 0) for t, text in enumerate(texts)]
    return Steps(
        traj=np.zeros(3, dtype=np.int64),
        step=np.arange(3),
        reward=np.array([0.0, 0.0, 10.0], dtype=np.float32),
        valid=np.array([t.valid for t in turns]),
        truncated=np.zeros(3, dtype=bool),
        prompt_ids=[[1, 2, 3]] * 3,
        response_ids=[[ord(c) for c in text] for text in texts],
        turns=turns,
    )


def span(text: str, piece: str) -> slice:
    start = text.index(piece)
    return slice(start, start + len(piece))


def test_missing_action_tags_train_the_whole_response_on_the_action_advantage() -> None:
    rollout = one_episode()
    assert [t.valid for t in rollout.turns] == [True, False, False]
    assert [t.boundary for t in rollout.turns] == [True, False, False]  # a missing switch counts as KEEP
    tokens = turn_tokens(CharTokenizer(), rollout)
    assert tokens[1].action is None and tokens[2] == TurnTokens(None, None, None)
    # Critic read-outs (V_high, V_low, V_term) per turn; V_high is read on turn 0 only.
    values = np.array([[1.0, 2.0, 0.5], [0.0, 3.0, 0.25], [0.0, 4.0, 0.125]])
    batch = hiper_batch(rollout, tokens, values)
    assert batch.has_action.tolist() == [True, True, True]
    assert batch.has_switch.tolist() == [True, True, False]
    # Shaped rewards: env [0, 0, 10]; invalid -0.1 on turns 1, 2; normalised KEEP penalty
    # -0.3 / 3 turns = -0.1 on each KEEP turn (1, 2); the kept sub-goal is unchanged:
    #   r = [0, -0.2, 9.8]. One segment (turns 0-2), terminal. gamma = lam = 1, no normalisation.
    # Executor: delta = [0 + 3 - 2, -0.2 + 4 - 3, 9.8 + 0 - 4] = [1, 0.8, 5.8] -> A = [7.6, 6.6, 5.8].
    # Return to go G = [9.6, 9.6, 9.8]; planner (turn 0) 9.6 - V_high 1 = 8.6;
    # switch tokens: G - V_term = [9.1, 9.35, 9.675].
    res = hierarchical_advantages(batch, normalize=False)
    np.testing.assert_allclose(res.action_adv, [7.6, 6.6, 5.8], rtol=1e-6)
    np.testing.assert_allclose(res.subgoal_adv, [8.6, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(res.term_adv, [9.1, 9.35, 0], rtol=1e-6)
    advs, masks = token_advantages(rollout, tokens, res)

    # Turn 0: each span its stream; "ok " before the switch gets nothing.
    expected = np.zeros(len(FULL))
    expected[span(FULL, "<switch>SWITCH</switch>")] = 9.1
    expected[span(FULL, "<subgoal>find mug</subgoal>")] = 8.6
    expected[span(FULL, "<action>go to desk 1</action>")] = 7.6
    np.testing.assert_allclose(advs[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(masks[0], (np.arange(len(FULL)) >= 3).astype(np.float32))
    # Turn 1: every token gets the action advantage 6.6; the switch tokens add theirs, 9.35
    # (the reference sums its streams); the KEEP turn's sub-goal gets no planner advantage.
    expected = np.full(len(NO_ACTION), 6.6)
    expected[span(NO_ACTION, "<switch>KEEP</switch>")] += 9.35
    np.testing.assert_allclose(advs[1], expected, rtol=1e-6)
    np.testing.assert_array_equal(masks[1], np.ones(len(NO_ACTION)))
    # Turn 2, no tags at all: the whole response on the action advantage 5.8.
    np.testing.assert_allclose(advs[2], np.full(len(NO_TAGS), 5.8), rtol=1e-6)
    np.testing.assert_array_equal(masks[2], np.ones(len(NO_TAGS)))


def test_fallback_turns_join_the_action_normalisation() -> None:
    # With normalisation the executor stream is standardised over all three turns
    # (population std): A = [7.6, 6.6, 5.8], mean 6.6667, std 0.7364.
    rollout = one_episode()
    tokens = turn_tokens(CharTokenizer(), rollout)
    values = np.array([[1.0, 2.0, 0.5], [0.0, 3.0, 0.25], [0.0, 4.0, 0.125]])
    res = hierarchical_advantages(hiper_batch(rollout, tokens, values))
    raw = np.array([7.6, 6.6, 5.8])
    np.testing.assert_allclose(res.action_adv, (raw - raw.mean()) / (raw.std() + 1e-8), rtol=1e-5)
    advs, _ = token_advantages(rollout, tokens, res)
    np.testing.assert_allclose(advs[2], np.full(len(NO_TAGS), res.action_adv[2]), rtol=1e-6)


def test_empty_response_has_no_action_tokens() -> None:
    assert TurnTokens(None, None, None).action_tokens(0) is None
    assert TurnTokens(None, None, None).action_tokens(4) == (0, 4)
    assert TurnTokens(None, None, (2, 3)).action_tokens(4) == (2, 3)


# ------------------------------------------------------------------------ value loss


def test_clipped_value_loss_by_hand() -> None:
    # Columns: (V, V_old, G) = (1, 0, 3), (2, 2.5, 0), (0, 0, 1); clip 0.5.
    #   1: unclipped (1 - 3)^2 = 4; V clipped into [-0.5, 0.5] -> 0.5: (0.5 - 3)^2 = 6.25 -> 6.25, clipped.
    #   2: (2 - 0)^2 = 4; clip into [2, 3] leaves 2 -> 4 -> 4, not clipped.
    #   3: (0 - 1)^2 = 1; inside the window -> 1.
    pred = torch.tensor([[1.0, 2.0, 0.0]], requires_grad=True)
    old, target = torch.tensor([[0.0, 2.5, 0.0]]), torch.tensor([[3.0, 0.0, 1.0]])
    loss, clipped = clipped_value_loss(pred, old, target, 0.5)
    torch.testing.assert_close(loss, torch.tensor([[6.25, 4.0, 1.0]]))
    assert clipped.tolist() == [[True, False, False]]
    # Where the clipped term wins, V is outside its window: no gradient (verl's behaviour).
    loss.sum().backward()
    torch.testing.assert_close(pred.grad, torch.tensor([[0.0, 4.0, -2.0]]))
    plain, none_clipped = clipped_value_loss(pred, old, target, None)
    torch.testing.assert_close(plain, torch.tensor([[4.0, 4.0, 1.0]]))
    assert not none_clipped.any()
    with pytest.raises(ValueError, match="value clip must be > 0 or None"):
        clipped_value_loss(pred, old, target, 0.0)


def test_value_loss_averages_each_head_over_its_rows() -> None:
    # Two rows; V_high trained on row 0 only. Per element (clip 0.5):
    #   row 0: high (1 - 3)^2 vs (0.5 - 3)^2 -> 6.25 (clipped); low 4; term 1
    #   row 1: high (weight 0); low (0 - 2)^2 = 4 (old 0: inside); term (1 - 0)^2 vs clip into
    #          [-0.5, 0.5] -> (0.5 - 0)^2 = 0.25 -> 1, not clipped
    # Per-head means: high 6.25 / 1, low (4 + 4) / 2 = 4, term (1 + 1) / 2 = 1 -> loss 11.25.
    pred = torch.tensor([[1.0, 2.0, 0.0], [9.0, 0.0, 1.0]])
    old = torch.tensor([[0.0, 2.5, 0.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([[3.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    weight = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    loss, terms, shares = value_loss(pred, old, target, weight, weight.sum(0), 0.5)
    torch.testing.assert_close(terms, torch.tensor([6.25, 4.0, 1.0]))
    torch.testing.assert_close(loss, torch.tensor(11.25))
    torch.testing.assert_close(shares, torch.tensor([1.0, 0.0, 0.0]))


def test_config_defaults_follow_the_reference_critic() -> None:
    assert HiperConfig().value_clip == 0.5
    assert load_config(None, ["algo.hiper.value_clip=null"]).algo.hiper.value_clip is None
    with pytest.raises(ValueError, match="greater than 0"):
        load_config(None, ["algo.hiper.value_clip=0"])


@pytest.fixture(scope="module")
def tiny_policy() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=200, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def _critic_update(policy: LlamaForCausalLM, clip: float | None) -> tuple[HiperCritic, dict]:
    """One critic update on two turns whose old values sit 1 below and above the targets' side."""
    cfg = HiperConfig(value_clip=clip, critic_lr=1e-2)
    critic = HiperCritic(policy, CharTokenizer(), cfg, micro_batch_size=2, device=torch.device("cpu"))
    rollout = Steps(step=np.arange(2), prompt_ids=[[5, 6, 7], [5, 6]], response_ids=[[8, 9, 10], [11, 12]])
    tokens = [TurnTokens((0, 1), (1, 2), (2, 3)), TurnTokens(None, None, None)]
    # The new head starts at V = 0 everywhere. Old values -1, targets 3 on every head:
    # unclipped (0 - 3)^2 = 9; V clipped into [-1.5, -0.5] -> -0.5: (-0.5 - 3)^2 = 12.25 -> 12.25.
    batch = SimpleNamespace(
        boundary=np.array([True, False]),
        v_high=np.array([-1.0, np.nan]),  # off boundaries v_high may be anything, NaN included
        v_low=np.array([-1.0, -1.0]),
        v_term=np.array([-1.0, -1.0]),
    )
    targets = np.full(2, 3.0, dtype=np.float32)
    res = SimpleNamespace(v_high_target=targets, v_low_target=targets, v_term_target=targets)
    stats = critic.update(rollout, tokens, res, batch, np.random.default_rng(0))  # type: ignore[arg-type]
    return critic, stats


def test_critic_update_uses_the_clipped_loss(tiny_policy: LlamaForCausalLM) -> None:
    critic, stats = _critic_update(tiny_policy, 0.5)
    for head in ("high", "low", "term"):
        assert stats[f"critic/loss_{head}"] == pytest.approx(12.25)
        assert stats[f"critic/clipfrac_{head}"] == 1.0
    # Every value is outside its window with the clipped term larger: no gradient reaches the
    # value head, which stays at its zero initialisation (AdamW's decay of 0 is 0).
    assert not critic.model.head.weight.any() and not critic.model.head.bias.any()

    critic, stats = _critic_update(tiny_policy, None)
    for head in ("high", "low", "term"):
        assert stats[f"critic/loss_{head}"] == pytest.approx(9.0)
        assert stats[f"critic/clipfrac_{head}"] == 0.0
    assert critic.model.head.bias.gt(0).all()  # plain MSE pulls every head towards 3


def test_hae_result_fields_used_by_the_critic_exist() -> None:
    # The critic reads these HAEResult fields; keep the stand-in above honest.
    assert {"v_high_target", "v_low_target", "v_term_target"} <= set(HAEResult.__dataclass_fields__)
