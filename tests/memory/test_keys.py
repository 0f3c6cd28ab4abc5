"""Context keys: properties (hypothesis), the documented encoding, stability across processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from memory import FixedSizeMemory, SummaryMemory
from memory.keys import observation_digest, record_digest
from tests.memory.transcripts import (
    ALFWORLD_ACTIONS,
    ALFWORLD_EPISODE,
    ALFWORLD_FINAL_OBS,
    ALFWORLD_OBSERVATIONS,
    ALFWORLD_TASK,
    WEBSHOP_GOAL,
    WEBSHOP_ITEM,
)

REPO = Path(__file__).resolve().parents[2]

# Few distinct texts, so that equal contexts (and near misses) are frequent; plus arbitrary text.
observations = st.one_of(
    st.sampled_from(ALFWORLD_OBSERVATIONS[:4]), st.sampled_from(["a", "ab", ""]), st.text(max_size=6)
)
actions = st.one_of(st.sampled_from(ALFWORLD_ACTIONS[:3]), st.sampled_from(["b", "", "bc"]))
trajectories = st.lists(st.tuples(observations, actions), max_size=6)


def keys_along(mem, records, last_obs):
    """Keys of every step of one trajectory: [(history so far, current obs, keys)]."""
    mem.reset(1, [ALFWORLD_TASK])
    out = []
    steps = [*records, (last_obs, None)]
    for t, (obs, action) in enumerate(steps):
        out.append((records[:t], obs, mem.context_keys(0, obs)))
        if action is not None:
            mem.store(0, obs, action)
    return out


def level_content(history, obs, k, mode):
    """What level k covers, by the documented definition: obs + last min(k, t) records."""
    shown = history[len(history) - min(k, len(history)) :]
    if mode == "obs":
        shown = [o for o, _ in shown]
    return obs, tuple(shown)


@settings(max_examples=150, deadline=None)
@given(
    a=trajectories,
    b=trajectories,
    last_a=observations,
    last_b=observations,
    history_length=st.integers(0, 4),
    mode=st.sampled_from(["obs_action", "obs"]),
)
def test_keys_equal_iff_level_contents_equal(a, b, last_a, last_b, history_length, mode):
    mem = FixedSizeMemory(history_length, key_mode=mode)
    steps_a = keys_along(mem, a, last_a)
    steps_b = keys_along(mem, b, last_b)
    for hist_a, obs_a, keys_a in steps_a:
        assert len(keys_a) == history_length + 1
        assert all(isinstance(x, int) and 0 <= x < 2**64 for x in keys_a)
        for hist_b, obs_b, keys_b in steps_b:
            for k in range(history_length + 1):
                same = level_content(hist_a, obs_a, k, mode) == level_content(hist_b, obs_b, k, mode)
                assert (keys_a[k] == keys_b[k]) == same, (k, hist_a, obs_a, hist_b, obs_b)
                if keys_a[k] == keys_b[k]:  # nesting: equal at k => equal at every lower level
                    assert keys_a[:k] == keys_b[:k]


@settings(max_examples=60, deadline=None)
@given(a=trajectories, b=trajectories, last_a=observations, last_b=observations, window=st.integers(0, 3))
def test_summary_memory_keys_bind_the_summary(a, b, last_a, last_b, window):
    mem = SummaryMemory(window)
    for hist_a, obs_a, keys_a in keys_along(mem, a, last_a):
        summary_a = _summary_of(hist_a, window)
        for hist_b, obs_b, keys_b in keys_along(mem, b, last_b):
            summary_b = _summary_of(hist_b, window)
            for k in range(window + 1):
                same = level_content(hist_a, obs_a, k, "obs_action") == level_content(
                    hist_b, obs_b, k, "obs_action"
                )
                assert (keys_a[k] == keys_b[k]) == same
            deepest_same = level_content(hist_a, obs_a, window, "obs_action") == level_content(
                hist_b, obs_b, window, "obs_action"
            )
            assert (keys_a[-1] == keys_b[-1]) == (deepest_same and summary_a == summary_b)


def _summary_of(history, window):
    """The summary text SummaryMemory shows after `history`, computed by a fresh memory."""
    mem = SummaryMemory(window)
    mem.reset(1, [ALFWORLD_TASK])
    for obs, action in history:
        mem.store(0, obs, action)
    return mem.summary(0)


def test_record_boundaries_are_unambiguous():
    mem = FixedSizeMemory(2)
    mem.reset(2, ["t", "t"])
    # Same concatenated characters, split differently between observation and action.
    mem.store(0, "ab", "c")
    mem.store(1, "a", "bc")
    assert mem.context_keys(0, "x")[1] != mem.context_keys(1, "x")[1]
    assert mem.context_keys(0, "x")[0] == mem.context_keys(1, "x")[0]


def test_early_steps_differ_from_later_steps_with_the_same_shown_records():
    """Level k of a step with t < k records covers what exists, and the count."""
    mem = FixedSizeMemory(4)
    mem.reset(2, [ALFWORLD_TASK] * 2)
    (o0, a0), (o1, a1) = ALFWORLD_EPISODE[:2]
    o2 = ALFWORLD_EPISODE[2][0]
    mem.store(0, o1, a1)  # slot 0: one record
    for obs, action in [(o0, a0), (o1, a1)]:  # slot 1: two records, the same last one
        mem.store(1, obs, action)
    early, later = mem.context_keys(0, o2), mem.context_keys(1, o2)
    assert early[:2] == later[:2]
    assert early[2] != later[2] and early[4] != later[4]
    # Beyond the records that exist, a step's levels repeat its deepest one.
    assert early[1] == early[2] == early[3] == early[4]
    assert later[2] == later[3] == later[4]


def test_documented_encoding():
    """The recipe of memory/keys.py and docs/memory.md, written out with hashlib, gives the memory's keys."""

    def blake(data, person, size=16):
        return hashlib.blake2b(data, digest_size=size, person=person).digest()

    def text(s):
        raw = s.encode()
        return len(raw).to_bytes(8, "little") + raw

    def key(data):
        return int.from_bytes(blake(data, b"hgpo-ctx.key", 8), "big")

    (o0, a0), (o1, a1) = ALFWORLD_EPISODE[:2]
    obs = ALFWORLD_EPISODE[2][0]
    current = text(obs)
    r1 = blake(text(o1) + text(a1), b"hgpo-ctx.record")
    r2 = blake(text(o0) + text(a0), b"hgpo-ctx.record")
    expected = (key(current), key(current + r1), key(current + r1 + r2), key(current + r1 + r2))

    mem = FixedSizeMemory(3)
    mem.reset(1, [ALFWORLD_TASK])
    mem.store(0, o0, a0)
    mem.store(0, o1, a1)
    assert mem.context_keys(0, obs) == expected
    assert record_digest(o1, a1, "obs") == observation_digest(o1)

    # SummaryMemory(window=1) after two records: one verbatim record, then the summary field.
    summary_mem = SummaryMemory(1)
    summary_mem.reset(1, [ALFWORLD_TASK])
    summary_mem.store(0, o0, a0)
    summary_mem.store(0, o1, a1)
    summary = blake(text(summary_mem.summary(0)), b"hgpo-ctx.text")
    assert summary_mem.context_keys(0, obs) == (
        key(current),
        key(current + r1),
        key(current + r1 + b"S" + summary),
    )


def test_obs_mode_merges_different_option_clicks_obs_action_does_not():
    """WebShop text mode: clicking either size option leaves the page text unchanged."""
    keys = {}
    for mode in ("obs", "obs_action"):
        mem = FixedSizeMemory(2, env="webshop", key_mode=mode)
        mem.reset(2, [WEBSHOP_GOAL] * 2)
        mem.store(0, WEBSHOP_ITEM, "click[6.76 fl oz (pack of 1)]")
        mem.store(1, WEBSHOP_ITEM, "click[3.4 fl oz (pack of 1)]")
        keys[mode] = (mem.context_keys(0, WEBSHOP_ITEM), mem.context_keys(1, WEBSHOP_ITEM))
    obs_a, obs_b = keys["obs"]
    full_a, full_b = keys["obs_action"]
    assert obs_a == obs_b  # the reference's keys put these two steps in one group at every level
    assert full_a[0] == full_b[0]  # GiGPO's anchor state is the same in both modes
    assert full_a[1] != full_b[1] and full_a[2] != full_b[2]
    assert obs_a[0] == full_a[0]


def test_keys_follow_reset_and_slots_are_independent():
    mem = FixedSizeMemory(2)
    mem.reset(2, [ALFWORLD_TASK] * 2)
    for obs, action in ALFWORLD_EPISODE[:3]:
        mem.store(0, obs, action)
    fresh = mem.context_keys(1, ALFWORLD_FINAL_OBS)
    assert mem.context_keys(0, ALFWORLD_FINAL_OBS) != fresh
    mem.reset_env(0, ALFWORLD_TASK)
    assert mem.context_keys(0, ALFWORLD_FINAL_OBS) == fresh


_SCRIPT = """
import json, sys
from memory import FixedSizeMemory, SummaryMemory
from tests.memory.transcripts import ALFWORLD_EPISODE, ALFWORLD_FINAL_OBS, ALFWORLD_TASK
out = []
for mem in (FixedSizeMemory(4), FixedSizeMemory(2, key_mode="obs"), SummaryMemory(2)):
    mem.reset(1, [ALFWORLD_TASK])
    for obs, action in ALFWORLD_EPISODE:
        out.append(list(mem.context_keys(0, obs)))
        mem.store(0, obs, action)
    out.append(list(mem.context_keys(0, ALFWORLD_FINAL_OBS)))
json.dump(out, sys.stdout)
"""


def test_keys_identical_across_processes_and_hash_seeds():
    runs = []
    for seed in ("0", "12345", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        runs.append(json.loads(done.stdout))
    assert runs[0] == runs[1] == runs[2]
    assert len(runs[0]) == 3 * (len(ALFWORLD_EPISODE) + 1)
    # ... and equal to this process's keys.
    mem = FixedSizeMemory(4)
    mem.reset(1, [ALFWORLD_TASK])
    for obs, action in ALFWORLD_EPISODE:
        mem.store(0, obs, action)
    assert runs[0][len(ALFWORLD_EPISODE)] == list(mem.context_keys(0, ALFWORLD_FINAL_OBS))
