"""Is there structure in the order of WebShop's goals? (What ``WebShop-v0`` seeds walk through.)

``WebShop-v0`` maps ``reset(seed=s)`` to goal ``split_start + s % split_size``: consecutive seeds
take consecutive goals of a split. ALFWorld's task lists are sorted by task type, so consecutive
seeds there gave blocks of one type. WebShop's goals are put in order by upstream's
``random.seed(233); random.shuffle(goals)``; this script measures whether any block structure is left.

For each split and each goal field (``category``: 5 top-level categories; ``query``: the product
type a goal was made from; ``asin``: the product itself, which gives one goal per option
combination), it compares the goal order with uniformly random orders of the same goals:

- adjacent pairs with the same value (observed vs. the mean over random orders, and the share of
  random orders with at least as many: a permutation p-value);
- distinct values in every window of 16 consecutive goals (a training iteration's worth of groups).

    python benchmarks/webshop_goal_order.py                       # 1,000 and 10,000 generated products
    python benchmarks/webshop_goal_order.py --num-products 100000 --cache-dir DIR

Prints a markdown table. Ratios near 1 and p-values away from 0 mean no structure.
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path

import numpy as np

from servers.webshop.world import World, WorldConfig

FIELDS = ("category", "query", "asin")
WINDOW = 16
RANDOM_ORDERS = 200


def same_adjacent(codes: np.ndarray) -> int:
    return int(np.count_nonzero(codes[1:] == codes[:-1]))


def window_distinct(codes: np.ndarray, window: int = WINDOW) -> float:
    if len(codes) < window:
        return float(len(set(codes.tolist())))
    views = np.lib.stride_tricks.sliding_window_view(codes, window)
    ordered = np.sort(views, axis=1)
    return float(np.mean(1 + np.count_nonzero(ordered[:, 1:] != ordered[:, :-1], axis=1)))


def measure(codes: np.ndarray, rng: random.Random) -> dict[str, float]:
    observed_pairs, observed_windows = same_adjacent(codes), window_distinct(codes)
    pairs, windows = [], []
    shuffled = codes.copy()
    np_rng = np.random.default_rng(rng.randrange(2**32))
    for _ in range(RANDOM_ORDERS):
        np_rng.shuffle(shuffled)
        pairs.append(same_adjacent(shuffled))
        windows.append(window_distinct(shuffled))
    return {
        "pairs": observed_pairs,
        "pairs_random": statistics.mean(pairs),
        "p_pairs": (1 + sum(p >= observed_pairs for p in pairs)) / (1 + RANDOM_ORDERS),
        "windows": observed_windows,
        "windows_random": statistics.mean(windows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-products", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--cache-dir", type=Path)
    args = parser.parse_args()
    rng = random.Random(0)
    print(f"| products | split | goals | field | distinct | same-value adjacent pairs: order / random (ratio) "
          f"| p | distinct per {WINDOW} consecutive: order / random |")
    print("|---:|---|---:|---|---:|---|---:|---|")
    for n in args.num_products:
        world = World.load(WorldConfig(num_products=n, seed=0, cache_dir=args.cache_dir))
        for split in ("test", "eval", "train"):
            indices = world.goal_indices(split)
            goals = [world.goals[i] for i in indices]
            for field in FIELDS:
                values = [g[field] for g in goals]
                lookup = {v: i for i, v in enumerate(sorted(set(values)))}
                codes = np.asarray([lookup[v] for v in values], dtype=np.int64)
                m = measure(codes, rng)
                ratio = m["pairs"] / m["pairs_random"] if m["pairs_random"] else float("nan")
                print(f"| {n:,} | {split} | {len(goals):,} | {field} | {len(lookup):,} | {m['pairs']:,} / "
                      f"{m['pairs_random']:,.1f} ({ratio:.2f}) | {m['p_pairs']:.2f} | {m['windows']:.2f} / "
                      f"{m['windows_random']:.2f} |")
        world.close()


if __name__ == "__main__":
    main()
