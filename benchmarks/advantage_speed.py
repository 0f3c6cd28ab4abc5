"""Speed of hgpo.advantages against a straightforward per-step Python implementation.

Batches: 16 groups x 8 rollouts x up to 50 steps with K = 4 (one training iteration of
the GiGPO/HGPO scripts) and a 10x larger one (160 groups). Rollouts walk a small random
room graph per task (revisits included), succeed with reward 10 when they reach the goal
room, and get memory-style context keys (current observation plus the last k
(observation, action) records, hashed to uint64).

The straightforward version, written here, follows the definitions step by step with
dicts, as the reference code does. Both must agree (max |difference| is printed).
Goals from issue 6: under 10 ms for the standard batch (the reference reports 0.25-0.7 s
per iteration) and at least 50x faster than the straightforward version.

    python benchmarks/advantage_speed.py            # about 2 minutes
    python benchmarks/advantage_speed.py --cpu-time # on a busy machine
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from hgpo.advantages import StepBatch, estimate_advantages

EPS = 1e-6


# ------------------------------------------------------------------------------ data


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a cheap vectorised 64-bit hash."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def make_batch(
    n_groups: int, n_rollouts: int = 8, max_steps: int = 50, depth: int = 4, seed: int = 0
) -> StepBatch:
    """Rollouts on a random 24-room graph per group; 4 actions, one of which does nothing."""
    rng = np.random.default_rng(seed)
    rooms, actions = 24, 4
    n = n_groups * n_rollouts
    group = np.repeat(np.arange(n_groups), n_rollouts)
    moves = rng.integers(0, rooms, size=(n_groups, rooms, actions))
    moves[:, :, 3] = np.arange(rooms)  # action 3: "Nothing happens."
    goal = rng.integers(1, rooms, size=n_groups)
    room = np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    history = []  # per step: (alive rows, room, action, reward)
    for _ in range(max_steps):
        rows = np.flatnonzero(alive)
        if rows.size == 0:
            break
        action = rng.integers(0, actions, size=rows.size)
        nxt = moves[group[rows], room[rows], action]
        won = (room[rows] == goal[group[rows]]) & (action == 0)  # "use" the goal room's object
        history.append((rows, room[rows].copy(), action, np.where(won, 10.0, 0.0)))
        room[rows] = nxt
        alive[rows[won]] = False
    # Context keys: key_k = hash(current room, last k (room, action) records).
    steps = []
    records = np.zeros((n, depth), dtype=np.uint64)  # most recent first
    for t, (rows, obs, action, reward) in enumerate(history):
        key = _mix(obs.astype(np.uint64) + np.uint64(1))
        keys = [key]
        for k in range(depth):
            key = _mix(key * np.uint64(1_000_003) + records[rows, k])
            keys.append(key)
        steps.append((group[rows], rows, np.full(rows.size, t), reward, np.stack(keys, axis=1)))
        records[rows, 1:] = records[rows, :-1]
        records[rows, 0] = _mix(
            obs.astype(np.uint64) * np.uint64(8) + action.astype(np.uint64) + np.uint64(7)
        )
    columns = [np.concatenate(c) for c in zip(*steps, strict=True)]
    order = rng.permutation(columns[0].size)  # the estimator must not rely on row order
    return StepBatch(*(c[order] for c in columns))


# ------------------------------------------------------------- straightforward version


def straightforward(name: str, b: StepBatch, gamma: float, mode: str, depth: int, weighting: str = "reference",
                    alpha: float = 1.0) -> np.ndarray:  # fmt: skip
    """The definitions of docs/advantages.md, step by step (episode statistics over steps)."""
    group, traj, step = b.group.tolist(), b.traj.tolist(), b.step.tolist()
    reward, keys = b.reward.tolist(), b.keys.tolist()
    n = len(group)
    trajectories = defaultdict(list)
    for i in range(n):
        trajectories[(group[i], traj[i])].append(i)
    returns, score = [0.0] * n, {}
    for tid, rows in trajectories.items():
        rows.sort(key=lambda i: step[i])
        running = 0.0
        for i in reversed(rows):
            running = reward[i] + gamma * running
            returns[i] = running
        score[tid] = sum(reward[i] for i in rows)

    def normalised(values: list[float], ddof: int, lone: tuple[float, float] | None = None) -> list[float]:
        if len(values) == 1 and lone is not None:
            mean, std = lone
        else:
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values) - ddof, 1))
        return [v - mean if mode == "mean_norm" else (v - mean) / (std + EPS) for v in values]

    def grouped(
        key_of: Callable[[int], object], values: list[float], ddof: int, lone=None
    ) -> dict[int, tuple]:
        clusters = defaultdict(list)
        for i in range(n):
            key = key_of(i)
            if key is not None:
                clusters[key].append(i)
        out = {}
        for rows in clusters.values():
            for i, a in zip(rows, normalised([values[i] for i in rows], ddof, lone), strict=True):
                out[i] = (len(rows), a)
        return out

    episode_scores = [score[(group[i], traj[i])] for i in range(n)]
    episode = grouped(lambda i: group[i], episode_scores, 1, lone=(0.0, 1.0))
    if name == "grpo":
        return np.array([episode[i][1] for i in range(n)], dtype=np.float32)
    if name == "gigpo":
        anchor = grouped(lambda i: (group[i], keys[i][0]), returns, 1)
        return np.array(
            [episode[i][1] + (anchor[i][1] if anchor[i][0] > 1 else 0.0) for i in range(n)], np.float32
        )
    levels = [
        grouped(lambda i, k=k: (group[i], keys[i][k]) if step[i] >= k else None, returns, 0)
        for k in range(depth + 1)
    ]
    out = np.zeros(n, dtype=np.float32)
    offset = 2 if weighting == "reference" else 1
    for i in range(n):
        weights = weighted = 0.0
        for k in range(min(depth, step[i]) + 1):
            size, a = levels[k][i]
            if size > 1 and a != 0:
                weights += (k + offset) ** alpha
                weighted += (k + offset) ** alpha * a
        if weighting == "reference":
            out[i] = weighted / (weights + EPS)
        else:
            out[i] = weighted / weights if weights else 0.0
    return out


def reference_structured(b: StepBatch, gamma: float, mode: str, depth: int, alpha: float = 1.0) -> np.ndarray:
    """HGPO (reference weighting) organised like the public reference code, without torch.

    Per group: scan the batch for its rows, split them into time-ordered trajectories,
    collect clusters keyed by (level, key) in a dict, normalise each cluster with numpy
    calls, then combine the items of each step. This is the structure behind the
    0.25-0.7 s per iteration the HGPO paper reports.
    """
    returns = np.zeros(len(b))
    for tid in np.unique(b.traj + b.group * (b.traj.max() + 1)):
        rows = np.flatnonzero(b.traj + b.group * (b.traj.max() + 1) == tid)
        rows = rows[np.argsort(b.step[rows])]
        running = 0.0
        for i in rows[::-1]:
            running = b.reward[i] + gamma * running
            returns[i] = running
    out = np.zeros(len(b), dtype=np.float32)
    for gid in np.unique(b.group):
        rows = np.flatnonzero(b.group == gid)
        clusters = defaultdict(list)
        for i in rows:
            for k in range(min(depth, b.step[i]) + 1):
                clusters[(k, b.keys[i, k])].append(i)
        items = defaultdict(list)
        for (k, _), members in clusters.items():
            if len(members) <= 1:
                continue
            r = returns[members]
            a = r - r.mean() if mode == "mean_norm" else (r - r.mean()) / (r.std() + EPS)
            for i, value in zip(members, a, strict=True):
                items[i].append((k, value))
        for i in rows:
            kept = [(k, a) for k, a in items.get(i, []) if a != 0]
            if kept:
                weights = np.array([(k + 2) ** alpha for k, _ in kept])
                out[i] = np.sum(weights * np.array([a for _, a in kept])) / (weights.sum() + EPS)
    return out


# ----------------------------------------------------------------------------- timing


CLOCK = time.perf_counter


def best_seconds(repeats: int, fn: Callable[..., object], *args: object, **kwargs: object) -> float:
    best = math.inf
    for _ in range(repeats):
        start = CLOCK()
        fn(*args, **kwargs)
        best = min(best, CLOCK() - start)
    return best


def build_and_estimate(name: str, columns: tuple[np.ndarray, ...], options: dict) -> np.ndarray:
    """What the trainer does each iteration: validate the arrays, then estimate."""
    return estimate_advantages(name, StepBatch(*columns), **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed runs of ours (best is reported)")
    parser.add_argument(
        "--slow-repeats", type=int, default=3, help="timed runs of the straightforward version"
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with process CPU time instead of wall clock (steadier on a shared, loaded machine)",
    )
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    print(
        f"best of {args.repeats} (ours) / {args.slow_repeats} (loops) runs, {'CPU' if args.cpu_time else 'wall'} time\n"
    )

    cases = [
        ("grpo", {}, {}),
        ("gigpo", {}, {}),
        ("hgpo", {"weighting": "reference"}, {"weighting": "reference"}),
        ("hgpo", {"weighting": "paper"}, {"weighting": "paper"}),
        ("hgpo", {"weighting": "adaptive"}, None),
    ]
    header = "| batch | steps | estimator | ours (ms) | ours + StepBatch (ms) | straightforward (ms) | speed-up | max abs diff |"
    print(header)
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    verdicts = []
    for label, groups in (("16x8x50, K=4", 16), ("160x8x50, K=4", 160)):
        batch = make_batch(groups)
        columns = (batch.group, batch.traj, batch.step, batch.reward, batch.keys)
        for name, options, slow_options in cases:
            common = {"gamma": 0.95, "mode": "mean_std_norm", "history_length": 4, **options}
            ours = estimate_advantages(name, batch, **common)
            t_ours = best_seconds(args.repeats, estimate_advantages, name, batch, **common)
            t_full = best_seconds(args.repeats, build_and_estimate, name, columns, common)
            shown = name + (f" ({options['weighting']})" if options else "")
            if slow_options is None:
                print(
                    f"| {label} | {len(batch)} | {shown} | {1e3 * t_ours:.2f} | {1e3 * t_full:.2f} | - | - | - |"
                )
                continue
            slow = straightforward(name, batch, 0.95, "mean_std_norm", 4, **slow_options)
            t_slow = best_seconds(
                args.slow_repeats, straightforward, name, batch, 0.95, "mean_std_norm", 4, **slow_options
            )
            _check_same(ours, slow, f"{shown} on {label}")
            print(
                f"| {label} | {len(batch)} | {shown} | {1e3 * t_ours:.2f} | {1e3 * t_full:.2f} | "
                f"{1e3 * t_slow:.0f} | {t_slow / t_full:.0f}x | {np.abs(ours - slow).max():.1e} |"
            )
            verdicts.append(
                f"{label} {shown}: {t_slow / t_full:.0f}x the straightforward version (goal >= 50x)"
            )
            if shown == "hgpo (reference)":
                slow = reference_structured(batch, 0.95, "mean_std_norm", 4)
                t_ref = best_seconds(args.slow_repeats, reference_structured, batch, 0.95, "mean_std_norm", 4)
                _check_same(ours, slow, f"reference-structured on {label}")
                print(
                    f"| {label} | {len(batch)} | hgpo (reference), vs reference-structured loops | "
                    f"{1e3 * t_ours:.2f} | {1e3 * t_full:.2f} | {1e3 * t_ref:.0f} | {t_ref / t_full:.0f}x | "
                    f"{np.abs(ours - slow).max():.1e} |"
                )
                verdicts.append(
                    f"{label} hgpo (reference): {t_ref / t_full:.0f}x the reference-structured loops"
                )
                if label.startswith("16x"):
                    verdicts.insert(
                        0, f"standard batch, HGPO incl. StepBatch: {1e3 * t_full:.2f} ms (goal < 10 ms)"
                    )
    print()
    for line in verdicts:
        print("-", line)


def _check_same(ours: np.ndarray, other: np.ndarray, what: str) -> None:
    if not np.allclose(ours, other, rtol=1e-5, atol=1e-5):
        raise SystemExit(f"{what}: outputs differ (max |diff| {np.abs(ours - other).max():.3g})")


if __name__ == "__main__":
    main()
