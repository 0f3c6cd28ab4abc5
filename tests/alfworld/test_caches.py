"""The engine caches change speed only: transcripts are byte-identical with and without them."""

from __future__ import annotations

import hashlib
import random
import sys

import fast_downward
import pytest

from agentenv.alfworld import caches
from agentenv.alfworld.engine import Engine, admissible_actions, expert_seed, expert_view
from agentenv.alfworld.expert import HandcodedExpert
from agentenv.alfworld.tasks import TASK_TYPES

from .conftest import small_tasks


def _transcript(tasks, *, use_caches: bool) -> bytes:
    """Every observation, admissible list, fact list and expert suggestion of a scripted session."""
    engine = Engine(facts=True, use_caches=use_caches)
    out = []
    for task in tasks:
        for replay in range(2):  # the second reset of a game is where the SAS cache hits
            engine.load(task)
            state = engine.reset()
            expert = HandcodedExpert(task.task_type, task.pddl_params, expert_seed(task.task_id))
            suggestion = expert.start(expert_view(state))
            rng = random.Random(f"{task.task_id}/{replay}")
            commands = list(task.walkthrough)
            # detours: random admissible commands and garbage, before the winning line
            commands[1:1] = [rng.choice(admissible_actions(state)) for _ in range(3)] + ["jump", "help"]
            for command in commands:
                state = engine.step(command)
                facts = sorted(map(str, state["facts"]))
                suggestion = expert.next_action(expert_view(state), command)
                out.append(
                    repr((command, state["feedback"], state["admissible_commands"], facts, suggestion))
                )
            out.append(f"won={state['won']}")
    engine.close()
    return "\n".join(out).encode("utf-8")


def test_transcripts_identical_with_and_without_caches():
    tasks = small_tasks(
        "valid_unseen", task_types=("pick_clean_then_place_in_recep", "pick_two_obj_and_place")
    )
    caches.uninstall()
    try:
        plain = _transcript(tasks, use_caches=False)
        assert not caches.installed()
    finally:
        caches.install()
    caches.clear()
    cold = _transcript(tasks, use_caches=True)
    cold_stats = caches.cache_stats()
    warm = _transcript(tasks, use_caches=True)  # a new engine loading the same games: every cache hits
    warm_stats = caches.cache_stats()
    digest = hashlib.sha256(plain).hexdigest()
    assert hashlib.sha256(cold).hexdigest() == digest
    assert hashlib.sha256(warm).hexdigest() == digest
    assert plain.count(b"won=True") == 2 * len(tasks)
    # cold: each game translated twice (plain and optimised SAS) at load, reused at every reset
    assert cold_stats["pddl2sas"] == (2 * 2 * len(tasks), 2 * len(tasks))
    assert cold_stats["grammar_document"] == (0, len(tasks))
    assert cold_stats["grammar_snippet"][0] > 0 and cold_stats["conjunctive_query"][0] > 0
    # warm: nothing new to parse or translate
    for name, (hits, misses) in warm_stats.items():
        assert misses == cold_stats[name][1] and hits > cold_stats[name][0], name


def test_install_and_uninstall_swap_the_library_functions():
    import textworld.envs.pddl.textgen as textgen

    caches.install()
    assert fast_downward.pddl2sas is caches._cached_pddl2sas
    assert textgen._parse_and_convert is caches._cached_textgen_parse
    caches.uninstall()
    assert fast_downward.pddl2sas is not caches._cached_pddl2sas
    assert textgen._parse_and_convert is not caches._cached_textgen_parse
    caches.install()
    caches.install()  # idempotent
    assert caches.installed()


def test_translation_leaves_sys_argv_alone():
    caches.install()
    caches.clear()
    argv = list(sys.argv)
    task = small_tasks("train", task_types=("look_at_obj_in_light",))[0]
    engine = Engine()
    engine.load(task)
    engine.reset()
    assert sys.argv == argv  # fast-downward's pddl2sas sets it to ["translate.py", ...]
    engine.close()


def test_every_live_engine_keeps_its_game_cached():
    """A SyncVectorEnv holds many engines in one process: each must hit the cache on reset."""
    tasks = small_tasks("train", task_types=TASK_TYPES[:5])
    caches.clear()
    engines = [Engine() for _ in tasks]
    for engine, task in zip(engines, tasks, strict=True):
        engine.load(task)
        engine.reset()
    misses = caches.cache_stats()["pddl2sas"][1]
    assert misses == 2 * len(tasks)
    for engine in engines:
        engine.reset()
    assert caches.cache_stats()["pddl2sas"][1] == misses  # all hits, nothing evicted
    for engine in engines:
        engine.close()


def test_lru_is_bounded_and_counts():
    lru = caches._LRU(lambda: 2)
    calls = []

    def compute(key):
        return lambda: calls.append(key) or key * 10

    assert [lru.get_or_compute(k, compute(k)) for k in (1, 2, 1, 3, 2)] == [10, 20, 10, 30, 20]
    # 1, 2 computed; 1 hit; 3 evicts 2 (least recently used); 2 computed again
    assert calls == [1, 2, 3, 2]
    assert (lru.hits, lru.misses) == (1, 4)
    with pytest.raises(KeyError):
        lru._data[1]  # evicted when 2 came back
