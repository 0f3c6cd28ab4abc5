"""Benchmark: context keys and prompt rendering of the memory module.

128 env slots (16 groups x 8 rollouts) x 50 steps, K = 4, on ALFWorld-like and
WebShop-like observation text generated from the games' own sentence patterns.
Per env step it times

- keys: ``context_keys`` + ``store`` of :class:`memory.FixedSizeMemory` (one
  digest per record, made when it is stored; the K + 1 levels are one running
  BLAKE2b over 16-byte record digests) against a straightforward
  implementation that joins each level's text and hashes it from scratch, at
  every level of every step (and whose separators are not injective);
- render: ``render`` calls alone (measured as render + store minus store;
  record lines are formatted once, when stored; argument checks and
  token-budget bookkeeping) against formatting every shown record at every
  step with the same template;
- whole step: render + context_keys + store;
- the same for :class:`memory.SummaryMemory` (W = 3, rule summariser; same K).

It checks that both key implementations split the steps into the same groups
at every level, and prints a markdown table. Goal: keys under 50 us per env step.

    python benchmarks/memory_keys.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import random
import statistics
import time
from collections.abc import Callable

from memory import FixedSizeMemory, SummaryMemory
from memory.prompts import PromptParts, format_record, render_prompt

N_GROUPS, GROUP_SIZE, STEPS, K = 16, 8, 50, 4
N_ENVS = N_GROUPS * GROUP_SIZE
KEY_GOAL_US = 50.0

RECEPTACLES = [
    f"{kind} {n}" for kind in ("cabinet", "drawer", "shelf", "countertop") for n in range(1, 7)
] + [
    "fridge 1",
    "microwave 1",
    "sinkbasin 1",
    "coffeemachine 1",
    "garbagecan 1",
    "stoveburner 1",
    "toaster 1",
]
OBJECTS = [
    "apple",
    "bread",
    "butterknife",
    "cup",
    "egg",
    "fork",
    "knife",
    "lettuce",
    "mug",
    "pan",
    "potato",
    "spoon",
]


def _listing(rng: random.Random) -> str:
    items = [f"a {rng.choice(OBJECTS)} {rng.randint(1, 3)}" for _ in range(rng.randint(0, 4))]
    if not items:
        return "nothing"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f", and {items[-1]}"


def alfworld_step(rng: random.Random) -> tuple[str, str]:
    """(observation, action taken in it), in ALFWorld 0.4.2's wording."""
    place, obj = rng.choice(RECEPTACLES), f"{rng.choice(OBJECTS)} {rng.randint(1, 3)}"
    kind = rng.randrange(6)
    if kind == 0:
        obs = f"You arrive at {place}. On the {place}, you see {_listing(rng)}."
    elif kind == 1:
        obs = f"You open the {place}. The {place} is open. In it, you see {_listing(rng)}."
    elif kind == 2:
        obs = f"You pick up the {obj} from the {place}."
    elif kind == 3:
        obs = f"You move the {obj} to the {place}."
    elif kind == 4:
        obs = f"You arrive at {place}. The {place} is closed."
    else:
        obs = "Nothing happens."
    action = rng.choice(
        [f"go to {place}", f"open {place}", f"take {obj} from {place}", f"move {obj} to {place}"]
    )
    return obs, action


def webshop_step(rng: random.Random) -> tuple[str, str]:
    goal = "i need a long lasting 6.76 fl oz bottle of perfume, and price lower than 50.00 dollars"
    rows = " [SEP] ".join(
        f"B0{rng.randrange(10**8):08d} [SEP] {rng.choice(['Eau de Toilette', 'Perfume Oil', 'Body Mist'])} "
        f"{rng.choice(['Spray', 'Rollerball', 'Gift Set'])} {rng.choice(['3.4', '6.76', '1.0'])} fl oz, "
        f"{rng.choice(['Floral', 'Citrus', 'Woody'])} Scent for Women [SEP] ${rng.randint(5, 90)}.{rng.randint(0, 99):02d}"
        for _ in range(10)
    )
    obs = (
        f"Instruction: [SEP] {goal} [SEP] Back to Search [SEP] Page {rng.randint(1, 5)} (Total results: 50) "
        f"[SEP] < Prev [SEP] Next > [SEP] {rows}"
    )
    action = rng.choice(
        ["click[next >]", "click[< prev]", f"click[b0{rng.randrange(10**8):08d}]", "search[perfume]"]
    )
    return obs, action


def make_rollouts(
    step_fn: Callable[[random.Random], tuple[str, str]], seed: int
) -> list[list[tuple[str, str]]]:
    """Per env: STEPS + 1 (obs, action). Rollouts of a group share a random-length prefix, then diverge."""
    rollouts = []
    for group in range(N_GROUPS):
        shared_rng = random.Random(seed * 1000 + group)
        shared = [step_fn(shared_rng) for _ in range(STEPS + 1)]
        for member in range(GROUP_SIZE):
            rng = random.Random(seed * 100000 + group * 100 + member)
            split = rng.randint(1, STEPS)
            rollouts.append(shared[:split] + [step_fn(rng) for _ in range(STEPS + 1 - split)])
    return rollouts


class NaiveKeys:
    """Straightforward keys: join the level's text and hash it from scratch, at every level of every step."""

    def __init__(self, history_length: int) -> None:
        self.k = history_length
        self.history: list[list[tuple[str, str]]] = []

    def reset(self, n_envs: int, tasks: list[str]) -> None:
        self.history = [[] for _ in range(n_envs)]

    def store(self, i: int, obs: str, action: str) -> None:
        self.history[i].append((obs, action))

    def context_keys(self, i: int, obs: str) -> tuple[int, ...]:
        hist = self.history[i]
        keys = []
        for k in range(self.k + 1):
            shown = hist[len(hist) - min(k, len(hist)) :]
            text = "\x1e".join([obs, *(f"{o}\x1f{a}" for o, a in shown)])
            keys.append(int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big"))
        return tuple(keys)


def naive_render(env: str, task: str, hist: list[tuple[str, str]], obs: str, admissible: list[str]) -> str:
    """Straightforward rendering: format every shown record at every step."""
    start = max(0, len(hist) - K)
    lines = [format_record(start + j + 1, o, a) for j, (o, a) in enumerate(hist[start:])]
    return render_prompt(PromptParts(env, task, len(hist), obs, admissible, lines))


def admissible_for(env: str) -> list[str]:
    if env == "alfworld":
        return [f"go to {r}" for r in RECEPTACLES] + ["inventory", "look", "help"]
    return ["click[back to search]", "click[< prev]", "click[next >]"] + [
        f"click[b0{n:08d}]" for n in range(10)
    ]


# CPU time of this process (time.process_time), so that other processes on a shared
# machine inflate the numbers less than wall-clock time would.
clock = time.process_time


def run_keys(mem, rollouts) -> tuple[float, list[tuple[int, ...]]]:
    """CPU seconds of context_keys + store over all env steps, and the keys."""
    mem.reset(N_ENVS, ["task"] * N_ENVS)
    keys = []
    start = clock()
    for t in range(STEPS):
        for i in range(N_ENVS):
            obs, action = rollouts[i][t]
            keys.append(mem.context_keys(i, obs))
            mem.store(i, obs, action)
    return clock() - start, keys


def run_store(mem, rollouts) -> float:
    """CPU seconds of store alone."""
    mem.reset(N_ENVS, ["task"] * N_ENVS)
    start = clock()
    for t in range(STEPS):
        for i in range(N_ENVS):
            obs, action = rollouts[i][t]
            mem.store(i, obs, action)
    return clock() - start


def run_render(mem, rollouts, env: str) -> float:
    """CPU seconds of render calls: (render + store) minus store alone."""
    admissible = admissible_for(env)
    mem.reset(N_ENVS, ["task"] * N_ENVS)
    start = clock()
    for t in range(STEPS):
        for i in range(N_ENVS):
            obs, action = rollouts[i][t]
            mem.render(i, obs, admissible)
            mem.store(i, obs, action)
    return clock() - start - run_store(mem, rollouts)


def run_naive_render(rollouts, env: str) -> float:
    admissible = admissible_for(env)
    history: list[list[tuple[str, str]]] = [[] for _ in range(N_ENVS)]
    start = clock()
    for t in range(STEPS):
        for i in range(N_ENVS):
            obs, action = rollouts[i][t]
            naive_render(env, "task", history[i], obs, admissible)
            history[i].append((obs, action))
    return clock() - start


def run_step(mem, rollouts, env: str) -> float:
    """CPU seconds of a whole memory step: render + context_keys + store."""
    admissible = admissible_for(env)
    mem.reset(N_ENVS, ["task"] * N_ENVS)
    start = clock()
    for t in range(STEPS):
        for i in range(N_ENVS):
            obs, action = rollouts[i][t]
            mem.render(i, obs, admissible)
            mem.context_keys(i, obs)
            mem.store(i, obs, action)
    return clock() - start


def run_naive_step(rollouts, env: str) -> float:
    admissible = admissible_for(env)
    keys = NaiveKeys(K)
    keys.reset(N_ENVS, ["task"] * N_ENVS)
    start = clock()
    for t in range(STEPS):
        for i in range(N_ENVS):
            obs, action = rollouts[i][t]
            naive_render(env, "task", keys.history[i], obs, admissible)
            keys.context_keys(i, obs)
            keys.store(i, obs, action)
    return clock() - start


def partitions(keys: list[tuple[int, ...]]) -> list[int]:
    """Distinct (group, key) pairs per level: equal iff both implementations group steps alike."""
    rows = [(t_i % N_ENVS // GROUP_SIZE, key) for t_i, key in enumerate(keys)]
    return [len({(group, key[k]) for group, key in rows}) for k in range(K + 1)]


def same_grouping(a: list[tuple[int, ...]], b: list[tuple[int, ...]]) -> bool:
    for k in range(K + 1):
        mapping: dict[int, int] = {}
        for key_a, key_b in zip(a, b, strict=True):
            if mapping.setdefault(key_a[k], key_b[k]) != key_b[k]:
                return False
        if len(set(mapping.values())) != len(mapping):
            return False
    return True


def median_us(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats)) / (N_ENVS * STEPS) * 1e6


def bench_env(
    env: str, step_fn: Callable[[random.Random], tuple[str, str]], repeats: int
) -> tuple[list[str], float]:
    """Table rows for one env, and our keys' microseconds per env step."""
    rollouts = make_rollouts(step_fn, seed=1 if env == "alfworld" else 2)
    mean_chars = statistics.mean(len(o) for r in rollouts for o, _ in r)

    def fixed() -> FixedSizeMemory:
        return FixedSizeMemory(K, env=env)

    def summary() -> SummaryMemory:
        return SummaryMemory(K - 1, env=env)  # same K: W verbatim levels + one summary level

    ours, naive = run_keys(fixed(), rollouts)[1], run_keys(NaiveKeys(K), rollouts)[1]
    if not same_grouping(ours, naive):
        raise SystemExit(f"{env}: the two key implementations group steps differently")

    keys_us = median_us(lambda: run_keys(fixed(), rollouts)[0], repeats)
    naive_keys_us = median_us(lambda: run_keys(NaiveKeys(K), rollouts)[0], repeats)
    summary_keys_us = median_us(lambda: run_keys(summary(), rollouts)[0], repeats)
    render_us = median_us(lambda: run_render(fixed(), rollouts, env), repeats)
    naive_render_us = median_us(lambda: run_naive_render(rollouts, env), repeats)
    summary_render_us = median_us(lambda: run_render(summary(), rollouts, env), repeats)
    step_us = median_us(lambda: run_step(fixed(), rollouts, env), repeats)
    naive_step_us = median_us(lambda: run_naive_step(rollouts, env), repeats)
    summary_step_us = median_us(lambda: run_step(summary(), rollouts, env), repeats)

    label = f"{env} ({mean_chars:.0f} chars/obs)"
    rows = [
        f"| {label} | keys, FixedSizeMemory | {keys_us:.1f} | {naive_keys_us:.1f} | {naive_keys_us / keys_us:.1f}x |",
        f"| {label} | keys, SummaryMemory (W=3, rule) | {summary_keys_us:.1f} | - | - |",
        f"| {label} | render, FixedSizeMemory | {render_us:.1f} | {naive_render_us:.1f} | "
        f"{naive_render_us / render_us:.1f}x |",
        f"| {label} | render, SummaryMemory (W=3, rule) | {summary_render_us:.1f} | - | - |",
        f"| {label} | whole step, FixedSizeMemory | {step_us:.1f} | {naive_step_us:.1f} | "
        f"{naive_step_us / step_us:.1f}x |",
        f"| {label} | whole step, SummaryMemory (W=3, rule) | {summary_step_us:.1f} | - | - |",
    ]
    verdict = "met" if keys_us < KEY_GOAL_US else "NOT met"
    rows.append(
        f"{env}: keys {keys_us:.1f} us per env step, goal < {KEY_GOAL_US:.0f} us: {verdict}; distinct "
        f"(group, key) per level 0..{K}: {partitions(ours)}, same grouping as the straightforward keys"
    )
    return rows, keys_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (median reported)")
    args = parser.parse_args()

    print(
        f"{N_ENVS} env slots x {STEPS} steps, K={K}; Python {platform.python_version()} on {platform.machine()}; "
        f"median of {args.repeats} runs, CPU microseconds per env step\n"
    )
    print("| env | operation | ours (CPU us/step) | straightforward (CPU us/step) | speed-up |")
    print("|---|---|---:|---:|---:|")
    verdicts = []
    for env, step_fn in (("alfworld", alfworld_step), ("webshop", webshop_step)):
        rows, _ = bench_env(env, step_fn, args.repeats)
        print("\n".join(rows[:-1]))
        verdicts.append(rows[-1])
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
