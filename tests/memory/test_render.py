"""Prompt rendering: reference layout, HiPER variant, token budget, chat templates, bad input."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from memory import FixedSizeMemory, MemoryConfig, SummaryMemory, build_chat_prompt, chat_token_counter
from tests.memory.transcripts import (
    ALFWORLD_ADMISSIBLE,
    ALFWORLD_EPISODE,
    ALFWORLD_FINAL_OBS,
    ALFWORLD_INTRO,
    ALFWORLD_TASK,
    WEBSHOP_EPISODE,
    WEBSHOP_GOAL,
    WEBSHOP_ITEM_ADMISSIBLE,
)


def play(mem, episode, slot=0, steps=None):
    for obs, action in episode[:steps]:
        mem.store(slot, obs, action)


def words(text: str) -> int:
    return len(text.split())


def test_step_zero_shows_task_observation_and_actions_without_history():
    mem = FixedSizeMemory(2)
    mem.reset(1, [ALFWORLD_TASK])
    text = mem.render(0, ALFWORLD_INTRO, ALFWORLD_ADMISSIBLE)
    assert f"Your task is to: {ALFWORLD_TASK}" in text
    assert f"Your current observation is: {ALFWORLD_INTRO}" in text
    assert "Prior to this step" not in text and "[Observation" not in text
    assert "'go to cabinet 1'\n'go to countertop 1'" in text
    assert "'help'" not in text  # the reference hides ALFWorld's help action
    assert "<think> </think>" in text and "<action> </action>" in text


def test_later_steps_show_the_last_k_records_with_absolute_step_numbers():
    mem = FixedSizeMemory(2)
    mem.reset(1, [ALFWORLD_TASK])
    play(mem, ALFWORLD_EPISODE, steps=5)
    obs = ALFWORLD_EPISODE[5][0]
    text = mem.render(0, obs, ALFWORLD_ADMISSIBLE)
    (o3, a3), (o4, a4) = ALFWORLD_EPISODE[3:5]
    assert "Prior to this step, you have already taken 5 step(s)." in text
    assert f"[Observation 4: '{o3}', Action 4: '{a3}']\n[Observation 5: '{o4}', Action 5: '{a4}']" in text
    assert "Observation 3:" not in text
    assert f"You are now at step 6 and your current observation is: {obs}" in text
    assert (
        text.index("Observation 5:") < text.index("You are now at step 6") < text.index("admissible actions")
    )


def test_webshop_template():
    mem = FixedSizeMemory(1, env="webshop")
    mem.reset(1, [WEBSHOP_GOAL])
    play(mem, WEBSHOP_EPISODE, steps=4)
    obs = WEBSHOP_EPISODE[4][0]
    text = mem.render(0, obs, WEBSHOP_ITEM_ADMISSIBLE)
    assert "WebShop e-commerce platform" in text and f"Your task is to: {WEBSHOP_GOAL}" in text
    assert f"Action 4: '{WEBSHOP_EPISODE[3][1]}'" in text
    assert "'click[6.76 fl oz (pack of 1)]'" in text
    assert "best advances the shopping goal" in text


def test_hiper_prompt_shows_the_current_subgoal():
    mem = FixedSizeMemory(2, prompt_format="hiper")
    mem.reset(1, [ALFWORLD_TASK])
    first = mem.render(0, ALFWORLD_INTRO, ALFWORLD_ADMISSIBLE)
    assert "Your current sub-goal is: None" in first
    assert "<switch> </switch>" in first and "<subgoal> </subgoal>" in first and "<think>" not in first
    mem.store(0, *ALFWORLD_EPISODE[0], subgoal="find a mug")
    later = mem.render(0, ALFWORLD_EPISODE[1][0], ALFWORLD_ADMISSIBLE)
    assert "Your current sub-goal is: find a mug" in later
    assert mem.current_subgoal(0) == "find a mug"


def test_budget_drops_oldest_records_first_and_says_how_many():
    mem = FixedSizeMemory(4)
    mem.reset(1, [ALFWORLD_TASK])
    play(mem, ALFWORLD_EPISODE, steps=8)
    obs = ALFWORLD_EPISODE[8][0]
    full = mem.render(0, obs, ALFWORLD_ADMISSIBLE)
    assert re.findall(r"\[Observation (\d+):", full) == ["5", "6", "7", "8"] and "omitted" not in full
    seen_counts = []
    for budget in range(words(full), words(full) - 80, -1):
        cut = mem.render(0, obs, ALFWORLD_ADMISSIBLE, max_prompt_tokens=budget, count_tokens=words)
        shown = [int(n) for n in re.findall(r"\[Observation (\d+):", cut)]
        n = len(shown)
        assert shown == list(range(9 - n, 9))  # the most recent records survive
        assert words(cut) <= budget or n == 0
        if n < 4:
            assert (
                f"({4 - n} earlier observation-action record(s) omitted to fit the prompt length limit.)"
                in cut
            )
        assert f"your current observation is: {obs}" in cut
        assert all(f"'{a}'" in cut for a in ALFWORLD_ADMISSIBLE if a != "help")
        assert not seen_counts or n <= seen_counts[-1]
        seen_counts.append(n)
    assert seen_counts[0] == 4 and seen_counts[-1] == 0 and {1, 2} <= set(seen_counts)


def test_budget_never_cuts_observation_or_actions(caplog):
    mem = FixedSizeMemory(2)
    mem.reset(1, [ALFWORLD_TASK])
    play(mem, ALFWORLD_EPISODE, steps=3)
    with caplog.at_level(logging.WARNING, logger="memory.base"):
        text = mem.render(0, ALFWORLD_INTRO, ALFWORLD_ADMISSIBLE, max_prompt_tokens=5, count_tokens=words)
    assert ALFWORLD_INTRO in text and "'move mug 1 to coffeemachine 1'" in text
    assert "2 earlier observation-action record(s) omitted" in text and "[Observation" not in text
    assert "over the budget" in caplog.text


def test_keys_follow_what_the_budgeted_prompt_showed():
    mem = FixedSizeMemory(3)
    mem.reset(2, [ALFWORLD_TASK] * 2)
    play(mem, ALFWORLD_EPISODE, slot=0, steps=4)
    play(mem, ALFWORLD_EPISODE[2:], slot=1, steps=2)  # slot 1 holds exactly slot 0's last two records
    obs = ALFWORLD_EPISODE[4][0]
    unbudgeted = mem.context_keys(0, obs)
    # Keep two of three records: slot 0's prompt now shows what slot 1's shows.
    full = mem.render(0, obs, ALFWORLD_ADMISSIBLE)
    two = mem.render(1, obs, ALFWORLD_ADMISSIBLE)
    text = mem.render(0, obs, ALFWORLD_ADMISSIBLE, max_prompt_tokens=words(two) + 12, count_tokens=words)
    assert words(text) < words(full) and "1 earlier observation-action record(s) omitted" in text
    shown = mem.context_keys(0, obs)
    assert shown[:3] == unbudgeted[:3] and shown[3] != unbudgeted[3]
    assert shown == mem.context_keys(1, obs)
    # Once the step's record is stored, the next step's keys use the full window again.
    mem.store(0, obs, "go to sinkbasin 1")
    assert len(set(mem.context_keys(0, ALFWORLD_FINAL_OBS))) == 4


def test_summary_is_dropped_before_verbatim_records():
    mem = SummaryMemory(2)
    mem.reset(1, [ALFWORLD_TASK])
    play(mem, ALFWORLD_EPISODE, steps=6)
    obs = ALFWORLD_EPISODE[6][0]
    full = mem.render(0, obs, ALFWORLD_ADMISSIBLE)
    assert "Summary of steps 1-4:" in full
    cut = mem.render(0, obs, ALFWORLD_ADMISSIBLE, max_prompt_tokens=words(full) - 1, count_tokens=words)
    assert "Summary of steps" not in cut and "(The summary of steps 1-4 was omitted" in cut
    assert "Observation 5:" in cut and "Observation 6:" in cut


def test_chat_template_and_plain_fallback(chat_tokenizer, plain_tokenizer):
    text = "You arrive at countertop 1."
    chat = build_chat_prompt(chat_tokenizer, text)
    assert chat == f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"
    with_system = build_chat_prompt(chat_tokenizer, text, system="Be brief.")
    assert with_system.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert build_chat_prompt(plain_tokenizer, text) == f"User: {text}\nAssistant:"
    assert build_chat_prompt(None, text) == f"User: {text}\nAssistant:"


def test_budget_with_a_real_tokenizer(chat_tokenizer):
    count = chat_token_counter(chat_tokenizer)
    mem = FixedSizeMemory(4, count_tokens=count)
    mem.reset(1, [ALFWORLD_TASK])
    play(mem, ALFWORLD_EPISODE, steps=8)
    obs = ALFWORLD_EPISODE[8][0]
    full = mem.render(0, obs, ALFWORLD_ADMISSIBLE)
    budget = count(full) - 1
    cut = mem.render(0, obs, ALFWORLD_ADMISSIBLE, max_prompt_tokens=budget)
    assert count(cut) <= budget < count(full)
    assert re.search(r"\((\d) earlier observation-action record\(s\) omitted", cut)
    ids = chat_tokenizer(build_chat_prompt(chat_tokenizer, cut), add_special_tokens=False)["input_ids"]
    assert len(ids) == count(cut)


def test_bad_input_gets_clear_errors():
    mem = FixedSizeMemory(2)
    with pytest.raises(RuntimeError, match="call reset"):
        mem.render(0, "x", [])
    with pytest.raises(ValueError, match="needs a sequence of 2 task texts, got 1 tasks"):
        mem.reset(2, ["only one"])
    with pytest.raises(ValueError, match="got a str"):
        mem.reset(1, "a task")
    mem.reset(2, ["a", "b"])
    with pytest.raises(IndexError, match="env slot 2 out of range for 2"):
        mem.store(2, "x", "y")
    with pytest.raises(TypeError, match="obs must be str, got NoneType"):
        mem.store(0, None, "look")
    with pytest.raises(TypeError, match="not one str"):
        mem.render(0, "x", "look")
    with pytest.raises(ValueError, match="needs count_tokens"):
        mem.render(0, "x", ["look"], max_prompt_tokens=10)
    with pytest.raises(ValueError, match="env must be one of"):
        FixedSizeMemory(2, env="ALFWorld-v0")
    with pytest.raises(ValueError, match="key_mode must be one of"):
        FixedSizeMemory(2, key_mode="observation")
    with pytest.raises(ValueError, match="history_length must be an int >= 0"):
        FixedSizeMemory(-1)
    # numpy integers (from vector envs) are fine as slot indices
    mem.store(np.int64(1), "x", "look")
    assert mem.steps_taken(1) == 1 and mem.steps_taken(0) == 0


def test_config_builds_both_memories():
    fixed = MemoryConfig(history_length=4).build()
    assert isinstance(fixed, FixedSizeMemory) and fixed.history_length == 4 and fixed.key_mode == "obs_action"
    summary = MemoryConfig(kind="summary", window=2, env="webshop", key_mode="obs").build()
    assert isinstance(summary, SummaryMemory) and summary.history_length == 3 and summary.env == "webshop"
    with pytest.raises(ValueError, match="needs count_tokens"):
        MemoryConfig(max_prompt_tokens=100).build()
    with pytest.raises(ValueError):
        MemoryConfig(kind="lstm")
