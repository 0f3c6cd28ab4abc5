"""WebShop's goals (``get_synthetic_goals`` / ``get_human_goals`` of ``web_agent_site/engine/goal.py``).

Synthetic: one goal per product instruction and per combination of its option values (option names
sorted, ``itertools.product`` order); text = instruction + `` with name: value, and name: value`` + price
text; weight = mean over its attributes of 1 / (number of goals with that attribute).
Human: one goal per worker instruction that has attributes; options are a list; weight 1.
Price: candidates = the first four of 10, 20, ..., 990 above the product's price; with two or more,
price_upper = the larger of two drawn, text ``, and price lower than X.00 dollars``; else 1e6 and no text.
Order: ``random.seed(233); random.shuffle(goals)``; splits: first 500 test, 500-1499 eval, the rest train.

Seeding (WebShop draws prices from the unseeded global ``random``): a range-priced product is charged
``uniform(a, b)`` from ``Random("webshop-price:<price_seed>:<asin>")``, and the price_upper of a goal
source is drawn from ``Random("webshop-goal-price:<price_seed>:<asin>:<j>")`` (j = 0 for a synthetic
product, the instruction's position for a human one). Draws therefore do not depend on catalogue order
or size. The shuffle is WebShop's exactly: ``Random(233).shuffle`` of goal positions is the permutation
``random.seed(233); random.shuffle(goals)`` applies.

Goals are never materialised as a list: a compact table (one row per product or human instruction, plus
the shuffle permutation) is built once per catalogue and price seed; a goal dict is assembled on access.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from .store import ProductStore

GOALS_VERSION = 1
PRICE_RANGE = [10.0 * i for i in range(1, 100)]
NO_PRICE_LIMIT = 1000000.0
SHUFFLE_SEED = 233
SPLITS = {"test": (0, 500), "eval": (500, 1500), "train": (1500, None)}

GoalKind = Literal["synthetic", "human"]


def charged_price(asin: str, prices: list[float], price_seed: int) -> float:
    """The price a purchase is charged: the single price, or a seeded ``uniform(a, b)`` for a range."""
    if not prices:
        return 100.0
    if len(prices) == 1:
        return prices[0]
    return random.Random(f"webshop-price:{price_seed}:{asin}").uniform(prices[0], prices[1])


def draw_price_upper(price: float, rng: random.Random) -> float | None:
    """WebShop's price constraint for a goal, or None when fewer than two candidates lie above the price."""
    candidates = [p for p in PRICE_RANGE if p > price][:4]
    if len(candidates) < 2:
        return None
    return sorted(rng.sample(candidates, 2))[1]


def price_text(price_upper: float) -> str:
    """The instruction's price clause (empty for an unconstrained goal)."""
    return "" if price_upper >= NO_PRICE_LIMIT else f", and price lower than {price_upper:.2f} dollars"


def shuffle_permutation(n: int, seed: int = SHUFFLE_SEED) -> np.ndarray:
    """``perm`` such that ``random.seed(seed); random.shuffle(goals)`` leaves ``goals[perm[i]]`` at ``i``."""
    positions = list(range(n))
    random.Random(seed).shuffle(positions)
    return np.asarray(positions, dtype=np.int64)


def split_range(split: str, num_goals: int) -> range:
    """Goal positions of a split: ``test`` 0-499, ``eval`` 500-1499, ``train`` 1500-end (clipped)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    start, stop = SPLITS[split]
    stop = num_goals if stop is None else stop
    return range(min(start, num_goals), min(stop, num_goals))


def _option_combinations(options: dict[str, list[str]]) -> int:
    return math.prod(len(options[name]) for name in sorted(options))


def build_goal_table(store: ProductStore, kind: GoalKind, price_seed: int) -> dict[str, np.ndarray]:
    """One row per goal source (a synthetic product, or a human instruction) and the shuffle permutation."""
    product_idx: list[int] = []
    sub: list[int] = []
    count: list[int] = []
    price_upper: list[float] = []
    attributes: list[list[str]] = []
    for idx, asin, info in store.goal_rows():
        price = charged_price(asin, info["Price"], price_seed)
        if kind == "synthetic":
            entries = [] if info.get("synthetic") is None else [(0, info["synthetic"])]
        else:
            entries = list(enumerate(info.get("human") or []))
        for j, entry in entries:
            attrs = entry["instruction_attributes"]
            n = 1 if kind == "human" else _option_combinations(info["options"])
            if not attrs or n == 0:
                continue  # WebShop skips (human) or asserts on (synthetic) instructions without attributes
            upper = draw_price_upper(price, random.Random(f"webshop-goal-price:{price_seed}:{asin}:{j}"))
            product_idx.append(idx)
            sub.append(j)
            count.append(n)
            price_upper.append(NO_PRICE_LIMIT if upper is None else upper)
            attributes.append(attrs)
    if kind == "synthetic":
        goals_with: dict[str, int] = defaultdict(int)
        for attrs, n in zip(attributes, count, strict=True):
            for attr in attrs:
                goals_with[attr] += n
        weight = [sum(1.0 / goals_with[a] for a in attrs) / len(attrs) for attrs in attributes]
    else:
        weight = [1.0] * len(attributes)
    counts = np.asarray(count, dtype=np.int64)
    return {
        "product_idx": np.asarray(product_idx, dtype=np.int64),
        "sub": np.asarray(sub, dtype=np.int64),
        "count": counts,
        "price_upper": np.asarray(price_upper, dtype=np.float64),
        "weight": np.asarray(weight, dtype=np.float64),
        "perm": shuffle_permutation(int(counts.sum())),
    }


def save_goal_table(table: dict[str, np.ndarray], path: Path) -> None:
    """Write a goal table (``.npz``) atomically."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **table)
    tmp.replace(path)


def load_goal_table(path: Path) -> dict[str, np.ndarray]:
    """Read a goal table written by ``save_goal_table``."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


class GoalList(Sequence[dict[str, Any]]):
    """The goals in WebShop's shuffled order, as a read-only sequence of goal dicts built on access.

    Goal dict: ``asin, category, query, name, product_category, instruction_text, attributes, price_upper,
    goal_options (dict for synthetic goals, list for human ones), weight``.
    """

    def __init__(self, table: dict[str, np.ndarray], store: ProductStore, kind: GoalKind) -> None:
        self.kind = kind
        self._store = store
        self._table = table
        self._perm = table["perm"]
        self._starts = np.concatenate(([0], np.cumsum(table["count"])[:-1])).astype(np.int64)
        self.weights = np.repeat(table["weight"], table["count"])[self._perm] if len(self._perm) else \
            np.zeros(0)

    def __len__(self) -> int:
        return len(self._perm)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"goal index must be an integer, not {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"goal index {i} out of range (0-{n - 1})")
        return self._goal(int(self._perm[i % n]))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def _goal(self, original: int) -> dict[str, Any]:
        t = self._table
        s = int(np.searchsorted(self._starts, original, side="right") - 1)
        product, info = self._store.by_index(int(t["product_idx"][s]))
        upper = float(t["price_upper"][s])
        goal = {
            "asin": product["asin"],
            "category": product["category"],
            "query": product["query"],
            "name": product["Title"],
            "product_category": product["product_category"],
        }
        if self.kind == "synthetic":
            entry = info["synthetic"]
            combo = original - int(self._starts[s])
            chosen = []
            for name in reversed(sorted(product["options"])):
                values = product["options"][name]
                combo, k = divmod(combo, len(values))
                chosen.append((name, values[k]))
            goal_options: dict[str, str] | list[str] = dict(reversed(chosen))
            option_text = ", and ".join(f"{k}: {v}" for k, v in goal_options.items())
            text = entry["instruction"] + (f" with {option_text}" if option_text else "") + price_text(upper)
        else:
            entry = info["human"][int(t["sub"][s])]
            goal_options = list(entry["instruction_options"])
            text = entry["instruction"].strip(".") + price_text(upper)
        goal.update(
            instruction_text=text,
            attributes=list(entry["instruction_attributes"]),
            price_upper=upper,
            goal_options=goal_options,
            weight=float(t["weight"][s]),
        )
        return goal
