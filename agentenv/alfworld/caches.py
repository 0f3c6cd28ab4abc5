"""Memoisation of the pure parsers inside textworld's PDDL engine.

textworld 1.7's ``PddlEnv`` spends most of its time re-doing work whose result
depends only on text it has seen before:

* every ``reset`` translates the PDDL problem to SAS twice (``fast_downward.pddl2sas``,
  once plain and once optimised for replanning), although ``load`` just did the same;
* every step re-parses, with a TatSu PEG parser, the grammar snippet of each
  admissible command (``textgen._parse_and_convert``) and each grammar condition
  (``Rule.parse_conjunctive_query``);
* every ``load`` parses the whole ``.twl2`` grammar document (``logic._parse_and_convert``).

:func:`install` wraps these four functions with caches keyed on the *content* of
their inputs (a BLAKE2b digest of the text, not Python's per-process salted
``hash``), bounded as LRUs so a long run over thousands of games keeps memory flat.
Parse results that textworld later mutates are handed out as deep copies, so the
engine behaves exactly as without caches (``tests/alfworld`` compares transcripts
byte for byte).

The patch is process-wide, like the functions it wraps. ``fast_downward.pddl2sas``
also rewrites ``sys.argv`` and swaps ``sys.stdout`` while it runs: never load or
reset games from several threads of one process; use processes.
"""

from __future__ import annotations

import copy
import hashlib
import sys
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import fast_downward
import textworld.envs.pddl.logic as pddl_logic
import textworld.envs.pddl.textgen as textgen
import textworld.logic

__all__ = ["cache_stats", "clear", "install", "installed", "register", "uninstall"]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=20).digest()


class _LRU:
    """A least-recently-used map with hit/miss counters; ``capacity()`` is read at each insertion."""

    def __init__(self, capacity: Callable[[], int]):
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            self.misses += 1
            value = compute()
            self._data[key] = value
            while len(self._data) > self.capacity():
                self._data.popitem(last=False)
            return value
        self.hits += 1
        self._data.move_to_end(key)
        return value

    def clear(self) -> None:
        self._data.clear()
        self.hits = self.misses = 0


# Engines using the caches in this process (a SyncVectorEnv holds many, a worker one).
_engines: weakref.WeakSet[object] = weakref.WeakSet()

# Sizes: grammar snippets and queries come from one fixed grammar plus one task
# sentence per game (hundreds of distinct strings). A grammar document and the two
# SAS translations are per game and large (up to 7.5 MB of Python objects for a big
# kitchen); the hit that matters is each engine resetting its current game again, so
# those caches keep the latest games of every live engine and little more.
_CACHES = {
    "grammar_snippet": _LRU(lambda: 8192),
    "conjunctive_query": _LRU(lambda: 4096),
    "grammar_document": _LRU(lambda: 1 + len(_engines)),
    "pddl2sas": _LRU(lambda: 2 + 2 * len(_engines)),  # plain + optimised translation per game
}
_ORIGINALS: dict[str, Any] = {}


def _cached_textgen_parse(text: str, rule_name: str = "symbols", **kwargs: Any) -> Any:
    original = _ORIGINALS["textgen_parse"]
    if kwargs.get("trace"):  # TW_CSG_TRACE debugging prints during the parse: no cache
        return original(text, rule_name=rule_name, **kwargs)
    key = (rule_name, _digest(text))
    # Symbols get their ``context`` reassigned during derivation: hand out copies.
    return copy.deepcopy(
        _CACHES["grammar_snippet"].get_or_compute(key, lambda: original(text, rule_name=rule_name))
    )


def _cached_logic_parse(text: str, rule_name: str = "pddlStart", **kwargs: Any) -> Any:
    original = _ORIGINALS["logic_parse"]
    if kwargs:
        return original(text, rule_name=rule_name, **kwargs)
    key = (rule_name, _digest(text))
    return copy.deepcopy(
        _CACHES["grammar_document"].get_or_compute(key, lambda: original(text, rule_name=rule_name))
    )


def _cached_conjunctive_query(cls: type, expr: str) -> Any:
    # The returned Rule is only read (matched against the state), never mutated.
    original = _ORIGINALS["conjunctive_query"].__func__
    return _CACHES["conjunctive_query"].get_or_compute(_digest(expr), lambda: original(cls, expr))


def _cached_pddl2sas(domain: str, problem: str, verbose: bool = False, optimize: bool = False) -> Any:
    original = _ORIGINALS["pddl2sas"]
    if verbose:
        return original(domain, problem, verbose=verbose, optimize=optimize)

    def translate() -> Any:
        argv = sys.argv
        try:
            return original(domain, problem, verbose=False, optimize=optimize)
        finally:
            sys.argv = argv  # pddl2sas overwrites it for fast-downward's option parser

    # The (task, sas) pair is read by PddlState (task.actions/objects/init, the SAS text), never mutated.
    key = (_digest(domain), _digest(problem), bool(optimize))
    return _CACHES["pddl2sas"].get_or_compute(key, translate)


def installed() -> bool:
    """Whether the caches are currently installed in this process."""
    return bool(_ORIGINALS)


def install() -> None:
    """Install the caches in this process (idempotent)."""
    if _ORIGINALS:
        return
    _ORIGINALS.update(
        textgen_parse=textgen._parse_and_convert,
        logic_parse=pddl_logic._parse_and_convert,
        conjunctive_query=textworld.logic.Rule.__dict__["parse_conjunctive_query"],
        pddl2sas=fast_downward.pddl2sas,
    )
    textgen._parse_and_convert = _cached_textgen_parse
    pddl_logic._parse_and_convert = _cached_logic_parse
    textworld.logic.Rule.parse_conjunctive_query = classmethod(_cached_conjunctive_query)
    # textworld.envs.pddl.logic calls ``fast_downward.pddl2sas`` through the module attribute.
    fast_downward.pddl2sas = _cached_pddl2sas


def register(engine: object) -> None:
    """Install the caches and size the per-game ones for one more live engine."""
    install()
    _engines.add(engine)


def uninstall() -> None:
    """Restore the original functions and drop every cached entry."""
    if not _ORIGINALS:
        return
    textgen._parse_and_convert = _ORIGINALS["textgen_parse"]
    pddl_logic._parse_and_convert = _ORIGINALS["logic_parse"]
    textworld.logic.Rule.parse_conjunctive_query = _ORIGINALS["conjunctive_query"]
    fast_downward.pddl2sas = _ORIGINALS["pddl2sas"]
    _ORIGINALS.clear()
    clear()


def clear() -> None:
    """Drop every cached entry (the caches stay installed)."""
    for cache in _CACHES.values():
        cache.clear()


def cache_stats() -> dict[str, tuple[int, int]]:
    """``{cache name: (hits, misses)}`` since the last :func:`clear`."""
    return {name: (cache.hits, cache.misses) for name, cache in _CACHES.items()}
