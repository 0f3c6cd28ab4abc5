"""Bias, variance and MSE of GRPO, GiGPO and HGPO step advantages against exact true advantages.

HGPO's central claim (arXiv 2602.22817): grouping steps by their current observation
alone (GiGPO) pools steps whose histories differ, which biases the step advantage;
hierarchical history groups remove that bias at a small cost in variance. This
benchmark measures it without a GPU, on a small partially observed task whose true
advantages are computed exactly by dynamic programming.

The task ("key corridor"), horizon H = 12, gamma 0.95, reward 10 on success:

    step  room       what happens
    0     hall       action 0 finds a key w.p. 0.8, action 1 w.p. 0.3
    1     key room   the observation shows whether the key was found; both actions go on
    2..   corridor   3 rooms that look the same with or without the key;
                     action 0 moves on, action 1 waits ("Nothing happens.": a revisit)
    ..    door       action 0 opens it: success w.p. 0.9 with the key, 0.1 without
                     (else the door stays shut); action 1 goes back into the corridor

The policy depends on the whole history (through the key): it moves on in the corridor
w.p. 0.75 with the key / 0.6 without, and opens the door w.p. 0.8 / 0.5. In the corridor
and at the door the current observation is the same with and without the key, but the
value is not: a level-k group (current observation + last k records) separates the two
only when its window reaches back to step 1 (k >= t - 1). This is the paper's "context
inconsistency", with levels that resolve it progressively.

True advantage of each step: A*(t, room, key, action) = Q(t, s, a) - V(t, s) under the
policy (backward induction over t). Every estimator runs with mode="mean_norm" (so that
its scale is that of A*) on training batches of 128 rollouts (16 groups x 8), as in
training. Reported, averaged over all steps:

- the step-level error against A*, split exactly into action bias^2 + state offset^2 +
  variance = MSE. The state offset is the part of the bias shared by both actions of a
  state (a wrong baseline): it cancels in the expected policy gradient and only adds
  noise; the action bias is what biases the gradient;
- the policy gradient each batch would give (a tabular softmax policy, one logit per
  (room, key)) against the exact expected gradient: cos(E g), the cosine of the mean
  batch gradient (direction bias), and E cos, the mean cosine of single-batch gradients;
- the same for group sizes 4, 8, 16 with the same number of rollouts per batch;
- reference rows: exact A*, and an oracle that groups by the true state (t, room, key).

    python benchmarks/advantage_bias_variance.py              # about 40 s
    python benchmarks/advantage_bias_variance.py --groups 20000
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hgpo.advantages import StepBatch, estimate_advantages

logger = logging.getLogger(__name__)

HORIZON, GAMMA, CORRIDOR = 12, 0.95, 3
HALL, KEY_ROOM, DOOR = 0, 1, 2 + CORRIDOR  # corridor rooms are 2 .. 1 + CORRIDOR
ROOMS = DOOR + 1
FIND_KEY = (0.8, 0.3)  # P(key) after hall action 0 / 1
OPEN = (0.1, 0.9)  # P(success) when opening the door without / with the key
MOVE_ON = (0.6, 0.75)  # policy: P(action 0) in the corridor without / with the key
TRY_DOOR = (0.5, 0.8)  # policy: P(action 0) at the door without / with the key
ROOM_NAMES = {HALL: "hall", KEY_ROOM: "key room", DOOR: "door"}


def policy_first_action(room: np.ndarray, key: np.ndarray) -> np.ndarray:
    """P(action 0) for each (room, key)."""
    corridor = (room >= 2) & (room < DOOR)
    p = np.full(room.shape, 0.5)
    p = np.where(corridor, np.choose(key, MOVE_ON), p)
    return np.where(room == DOOR, np.choose(key, TRY_DOOR), p)


def observation(room: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The key room shows the key; every other room looks the same with or without it."""
    return np.where(room == KEY_ROOM, ROOMS + key, room)


def transitions(room: int, key: int, action: int) -> list[tuple[float, int, int, float, bool]]:
    """(probability, next room, next key, reward, done) of one step."""
    if room == HALL:
        found = FIND_KEY[action]
        return [(found, KEY_ROOM, 1, 0.0, False), (1 - found, KEY_ROOM, 0, 0.0, False)]
    if room == KEY_ROOM:
        return [(1.0, 2, key, 0.0, False)]
    if room < DOOR:
        return [(1.0, room + 1 if action == 0 else room, key, 0.0, False)]
    if action == 0:
        return [(OPEN[key], DOOR, key, 10.0, True), (1 - OPEN[key], DOOR, key, 0.0, False)]
    return [(1.0, DOOR - 1, key, 0.0, False)]


def true_advantages() -> np.ndarray:
    """A*[t, room, key, action] = Q - V under the policy, by backward induction (V = 0 at t = H)."""
    value = np.zeros((HORIZON + 1, ROOMS, 2))
    q = np.zeros((HORIZON, ROOMS, 2, 2))
    for t in range(HORIZON - 1, -1, -1):
        for room in range(ROOMS):
            for key in range(2):
                for action in range(2):
                    q[t, room, key, action] = sum(
                        p * (r + (0.0 if done else GAMMA * value[t + 1, nxt, nkey]))
                        for p, nxt, nkey, r, done in transitions(room, key, action)
                    )
                p0 = policy_first_action(np.array(room), np.array(key))
                value[t, room, key] = p0 * q[t, room, key, 0] + (1 - p0) * q[t, room, key, 1]
    return q - value[:HORIZON, :, :, None]


@dataclass
class Rollouts:
    batch: StepBatch
    cell: np.ndarray  # (t, room, key, action) of each step, flattened
    room: np.ndarray


def simulate(groups: int, group_size: int, depth: int, rng: np.random.Generator) -> Rollouts:
    """G groups x n rollouts; keys[:, k] encodes the current observation and the last k (obs, action)."""
    n = groups * group_size
    room, key = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    records = np.zeros((n, depth), dtype=np.int64)  # last records, most recent first; 0 = none
    steps = []
    for t in range(HORIZON):
        rows = np.flatnonzero(alive)
        if rows.size == 0:
            break
        r, k = room[rows], key[rows]
        obs = observation(r, k)
        action = (rng.random(rows.size) >= policy_first_action(r, k)).astype(np.int64)
        base = 2 * (ROOMS + 2) + 1  # record codes are 1 .. 2 * (ROOMS + 2)
        code = obs.astype(np.int64)
        keys = [code]
        for j in range(depth):
            code = code * base + records[rows, j]
            keys.append(code)
        reward, done = np.zeros(rows.size), np.zeros(rows.size, dtype=bool)
        u = rng.random(rows.size)
        hall, key_room = r == HALL, r == KEY_ROOM
        corridor, door = (r >= 2) & (r < DOOR), r == DOOR
        new_room, new_key = r.copy(), k.copy()
        new_key[hall] = (u[hall] < np.choose(action[hall], FIND_KEY)).astype(np.int64)
        new_room[hall | key_room] = r[hall | key_room] + 1
        new_room[corridor] = r[corridor] + (action[corridor] == 0)
        opened = door & (action == 0)
        won = opened & (u < np.choose(k, OPEN))
        reward[won], done[won] = 10.0, True
        new_room[door & (action == 1)] = DOOR - 1
        cell = ((t * ROOMS + r) * 2 + k) * 2 + action
        steps.append(
            (rows // group_size, rows, np.full(rows.size, t), reward, np.stack(keys, axis=1), cell, r)
        )
        records[rows, 1:] = records[rows, :-1]
        records[rows, 0] = 2 * obs + action + 1
        room[rows], key[rows] = new_room, new_key
        alive[rows[done]] = False
    group, traj, step, reward, keys, cell, rooms = (np.concatenate(c) for c in zip(*steps, strict=True))
    return Rollouts(StepBatch(group, traj, step, reward, keys.astype(np.uint64)), cell, rooms)


def decompose(estimate: np.ndarray, truth: np.ndarray, cell: np.ndarray) -> dict[str, float]:
    """Step-level error of ``estimate`` against ``truth``, averaged over steps.

    With b(s, a) = E[estimate - A* | s, a] per cell (t, room, key, action):
    ``offset2``: the part of b shared by both actions of a state (visit-weighted mean over
    actions). It cancels in the expected policy gradient (sum_a pi grad log pi = 0): a wrong
    baseline, which only adds noise. ``action_bias2``: the rest of b, which biases the
    gradient. ``variance``: spread around b. offset2 + action_bias2 + variance = MSE exactly.
    """
    error = estimate - truth
    _, cell_id = np.unique(cell, return_inverse=True)
    _, state_id = np.unique(cell // 2, return_inverse=True)
    cell_bias = (np.bincount(cell_id, error) / np.bincount(cell_id))[cell_id]
    offset = (np.bincount(state_id, error) / np.bincount(state_id))[state_id]
    return {
        "action_bias2": float(np.mean((cell_bias - offset) ** 2)),
        "offset2": float(np.mean(offset**2)),
        "variance": float(np.mean((error - cell_bias) ** 2)),
        "mse": float(np.mean(error**2)),
    }


def policy_gradients(
    advantage: np.ndarray, rollouts: Rollouts, batch_of_step: np.ndarray, n_batches: int
) -> np.ndarray:
    """Per training batch: mean over its steps of advantage x grad log pi, shape (batches, rooms x keys).

    The policy has one logit per (room, key) for action 0, so grad log pi(a | s) is
    (1[a = 0] - pi(0 | s)) on that state's coordinate.
    """
    state = rollouts.cell // 2
    room, key = np.divmod(state % (ROOMS * 2), 2)
    action = rollouts.cell % 2
    score = (action == 0) - policy_first_action(room, key)
    coordinate = state % (ROOMS * 2)
    sums = np.bincount(
        batch_of_step * ROOMS * 2 + coordinate, advantage * score, minlength=n_batches * ROOMS * 2
    )
    return sums.reshape(n_batches, ROOMS * 2) / np.bincount(batch_of_step, minlength=n_batches)[:, None]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def estimators() -> list[tuple[str, str, dict]]:
    out: list[tuple[str, str, dict]] = [
        ("GRPO (stats over steps)", "grpo", {}),
        ("GRPO (stats over trajectories)", "grpo", {"episode_stats": "trajectory"}),
        ("GiGPO (episode + step)", "gigpo", {}),
        ("GiGPO step term (= HGPO K=0)", "hgpo", {"history_length": 0, "weighting": "paper"}),
    ]
    for weighting in ("reference", "paper"):
        for depth in (1, 2, 4):
            for alpha in (0.0, 1.0, 2.0):
                label = f"HGPO {weighting} K={depth} alpha={alpha:g}"
                out.append((label, "hgpo", {"history_length": depth, "alpha": alpha, "weighting": weighting}))
    out.append(("HGPO reference K=4 alpha=50 (~deepest level)", "hgpo", {"history_length": 4, "alpha": 50.0}))
    out.append(("HGPO reference K=4 alpha=1 + base group", "hgpo", {"history_length": 4, "base_group": True}))
    for depth in (1, 2, 4):
        out.append((f"HGPO adaptive K={depth}", "hgpo", {"history_length": depth, "weighting": "adaptive"}))
    out.append(
        ("oracle: true state (t, room, key) as anchor", "oracle", {"history_length": 0, "weighting": "paper"})
    )
    return out


def step_truth(rollouts: Rollouts, truth_table: np.ndarray) -> np.ndarray:
    """A* of every sampled step."""
    t, rest = np.divmod(rollouts.cell, ROOMS * 4)
    room, rest = np.divmod(rest, 4)
    key, action = np.divmod(rest, 2)
    return truth_table[t, room, key, action]


def oracle_keys(rollouts: Rollouts) -> np.ndarray:
    """The true state (t, room, key) as the only key: the best any grouping can do."""
    return (rollouts.cell // 2).astype(np.uint64)


def evaluate(
    rollouts: Rollouts, truth_table: np.ndarray, chosen: list[tuple[str, str, dict]], batch_rollouts: int
) -> list[dict]:
    """Every estimator on training batches of ``batch_rollouts`` rollouts (whole groups), as in training."""
    b = rollouts.batch
    truth = step_truth(rollouts, truth_table)
    group_size = b.n_trajectories // b.n_groups
    batch_of_step = b.group // max(1, batch_rollouts // group_size)
    n_batches = int(batch_of_step.max()) + 1
    order = np.argsort(batch_of_step, kind="stable")
    bounds = np.searchsorted(batch_of_step[order], np.arange(n_batches + 1))
    parts = [order[bounds[i] : bounds[i + 1]] for i in range(n_batches)]
    oracle = oracle_keys(rollouts)
    batches = {
        kind: [StepBatch(b.group[p], b.traj[p], b.step[p], b.reward[p], keys[p]) for p in parts]
        for kind, keys in (("plain", b.keys), ("oracle", oracle))
    }
    exact = policy_gradients(truth, rollouts, batch_of_step, n_batches)
    target = exact.mean(axis=0)  # the expected policy gradient (exact advantages, many batches)
    results = [
        {"label": "exact A* (no estimation error)", **decompose(truth, truth, rollouts.cell),
         "cos_mean": float(_cosine(exact.mean(0), target)), "cos": float(np.mean(_cosine(exact, target)))}
    ]  # fmt: skip
    for label, name, options in chosen:
        kind, estimator = ("oracle", "hgpo") if name == "oracle" else ("plain", name)
        estimate = np.empty(len(b))
        for part, batch in zip(parts, batches[kind], strict=True):
            estimate[part] = estimate_advantages(estimator, batch, gamma=GAMMA, mode="mean_norm", **options)
        gradients = policy_gradients(estimate, rollouts, batch_of_step, n_batches)
        row = {"label": label, **decompose(estimate, truth, rollouts.cell)}
        row["cos_mean"] = float(_cosine(gradients.mean(axis=0), target))
        row["cos"] = float(np.mean(_cosine(gradients, target)))
        results.append(row)
        logger.info("%-48s MSE %.3f  E cos %.3f", label, row["mse"], row["cos"])
    return results


SWEEP = [
    ("GiGPO step term", "hgpo", {"history_length": 0, "weighting": "paper"}),
    ("HGPO reference K=4 alpha=1", "hgpo", {"history_length": 4}),
    ("HGPO paper K=4 alpha=1", "hgpo", {"history_length": 4, "weighting": "paper"}),
    ("HGPO adaptive K=4", "hgpo", {"history_length": 4, "weighting": "adaptive"}),
    ("oracle: true state as anchor", "oracle", {"history_length": 0, "weighting": "paper"}),
]
COLUMNS = ("action_bias2", "offset2", "variance", "mse", "cos_mean", "cos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=4000, help="groups of rollouts sampled (default 4000)")
    parser.add_argument("--group-size", type=int, default=8, help="rollouts per group (default 8)")
    parser.add_argument(
        "--batch-rollouts", type=int, default=128, help="rollouts per training batch (16 x 8)"
    )
    parser.add_argument("--sweep", default="4,8,16", help="group sizes of the second table ('' to skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    truth_table = true_advantages()
    rollouts = simulate(args.groups, args.group_size, depth=4, rng=np.random.default_rng(args.seed))
    batch = rollouts.batch
    success = float(batch.reward.sum() / 10 / batch.n_trajectories)
    logger.info(
        "%d groups x %d rollouts: %d steps, success %.3f", args.groups, args.group_size, len(batch), success
    )
    results = evaluate(rollouts, truth_table, estimators(), args.batch_rollouts)
    lines = [
        f"Key corridor: {args.groups} groups x {args.group_size} rollouts ({len(batch)} steps, success "
        f"{success:.2f}), gamma {GAMMA}, mode mean_norm, estimators run per training batch of "
        f"{args.batch_rollouts} rollouts, seed {args.seed}. Mean A*^2 over steps: "
        f"{np.mean(step_truth(rollouts, truth_table) ** 2):.3f}. cos(E g) = cosine between the mean batch gradient and the exact expected gradient "
        "(direction bias); E cos = mean cosine of single-batch gradients (signal to noise).",
        "",
        "| estimator | action bias^2 | state offset^2 | variance | MSE | cos(E g) | E cos |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['label']} | " + " | ".join(f"{r[c]:.3f}" for c in COLUMNS) + " |" for r in results]

    sweep = []
    rollout_count = args.groups * args.group_size
    for size in [int(x) for x in args.sweep.split(",") if x]:
        sample = simulate(rollout_count // size, size, depth=4, rng=np.random.default_rng(args.seed + size))
        logger.info("group size %d (%d groups)", size, rollout_count // size)
        sweep.append((size, evaluate(sample, truth_table, SWEEP, args.batch_rollouts)))
    if sweep:
        lines += [
            "",
            f"By group size n ({rollout_count} rollouts, batches of {args.batch_rollouts}): MSE / E cos",
            "",
            "| estimator | " + " | ".join(f"n={size}" for size, _ in sweep) + " |",
            "|---|" + "---:|" * len(sweep),
        ]
        for i, (label, _, _) in enumerate(SWEEP):
            cells = [f"{res[i + 1]['mse']:.3f} / {res[i + 1]['cos']:.3f}" for _, res in sweep]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "advantage_bias_variance.md").write_text(table + "\n")
    _plot(
        results, sweep, args.out / "advantage_bias_variance.png", f"{args.groups} groups x {args.group_size}"
    )
    print(f"\nwrote {args.out / 'advantage_bias_variance.md'} and {args.out / 'advantage_bias_variance.png'}")


def _plot(results: list[dict], sweep: list[tuple[int, list[dict]]], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = results[1:]  # without the exact-advantage row
    y = np.arange(len(shown))[::-1]
    parts = [("action_bias2", "#c0504d", "action bias$^2$ (biases the gradient)"),
             ("offset2", "#f79646", "state offset$^2$ (a wrong baseline)"),
             ("variance", "#4f81bd", "variance")]  # fmt: skip
    fig, (bars, lines) = plt.subplots(
        1, 2, figsize=(15, 0.3 * len(shown) + 1.8), gridspec_kw={"width_ratios": [3, 2]}
    )
    left = np.zeros(len(shown))
    for column, color, label in parts:
        values = np.array([r[column] for r in shown])
        bars.barh(y, values, left=left, color=color, label=label)
        left += values
    bars.set_yticks(y, [r["label"] for r in shown], fontsize=8)
    bars.set_xlabel("MSE of the step advantage against the exact advantage")
    bars.set_title(f"Key corridor, {subtitle}, mode mean_norm", fontsize=10)
    bars.legend(loc="lower right", fontsize=8)
    bars.grid(axis="x", alpha=0.3)
    if sweep:
        sizes = [size for size, _ in sweep]
        for i, (label, _, _) in enumerate(SWEEP):
            lines.plot(sizes, [res[i + 1]["cos"] for _, res in sweep], marker="o", label=label)
        lines.plot(sizes, [res[0]["cos"] for _, res in sweep], "k--", label="exact A*")
        lines.set_xscale("log", base=2)
        lines.set_xticks(sizes, [str(s) for s in sizes])
        lines.set_xlabel("rollouts per group (same rollouts per batch)")
        lines.set_ylabel("mean cosine(batch gradient, exact gradient)")
        lines.set_title("Policy-gradient alignment by group size", fontsize=10)
        lines.legend(fontsize=8)
        lines.grid(alpha=0.3)
    else:
        lines.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
