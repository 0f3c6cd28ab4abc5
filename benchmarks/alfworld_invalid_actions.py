"""Step time of inadmissible commands in ALFWorld-v0: answered from the cached state vs an engine step.

Early RL rollouts are full of malformed or inadmissible actions. Stock ALFWorld (textworld's
``PddlEnv``) answers each with ``Nothing happens.`` after a full step: it looks the command
up, finds nothing, then recomputes the same state (facts, every admissible command's text).
``ALFWorld-v0`` answers from its cached state instead (the transcript is identical: see
``tests/alfworld/test_env.py``). Both contenders run in this process on the same games and
commands:

  * ``engine step`` (before): ``engine.step(command)`` plus the env's info, what
    ``ALFWorld-v0`` did for every command until the shortcut;
  * ``cached`` (now): ``env.step(command)``;
  * ``valid step``: an admissible command (``look``) through ``env.step``, for scale.

Usage::

    python benchmarks/alfworld_invalid_actions.py                  # about 1 minute
    python benchmarks/alfworld_invalid_actions.py --games 12 --steps 200
"""

from __future__ import annotations

import argparse
import statistics
import time

from agentenv.alfworld.env import ALFWorldEnv
from agentenv.alfworld.tasks import TASK_TYPES, load_task_set

INVALID = ("jump", "go to the moon", "take mug 1 from cabinet 99", "put apple in fridge", "", "LOOK")


def _per_type_games(count: int) -> list[str]:
    tasks = list(load_task_set("valid_unseen", source="embedded"))
    picked: list[str] = []
    while len(picked) < count:
        for task_type in TASK_TYPES:
            candidates = [t.task_id for t in tasks if t.task_type == task_type and t.task_id not in picked]
            if candidates and len(picked) < count:
                picked.append(candidates[0])
    return picked


def _time_us(function, commands: list[str]) -> list[float]:
    times = []
    for command in commands:
        start = time.perf_counter()
        function(command)
        times.append((time.perf_counter() - start) * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=6, help="games (one per task type first)")
    parser.add_argument("--steps", type=int, default=60, help="commands per contender and game")
    args = parser.parse_args()

    env = ALFWorldEnv(split="valid_unseen", max_steps=10**6)
    results: dict[str, list[float]] = {"engine step (before)": [], "cached (now)": [], "valid step": []}
    commands = [INVALID[i % len(INVALID)] for i in range(args.steps)]
    for task_id in _per_type_games(args.games):
        env.reset(options={"task": task_id})
        engine = env._engine
        assert engine is not None

        def engine_step(command: str, engine=engine) -> None:
            state = engine.step(command)
            env._state_info(state, action_valid=False)

        results["engine step (before)"] += _time_us(engine_step, commands)
        results["cached (now)"] += _time_us(env.step, commands)
        results["valid step"] += _time_us(env.step, ["look"] * args.steps)
    env.close()

    before = statistics.mean(results["engine step (before)"])
    print(f"{args.games} valid_unseen games x {args.steps} commands per contender\n")
    print("| contender | mean (µs) | median (µs) | p95 (µs) | speed-up vs engine step |")
    print("|---|---|---|---|---|")
    for name, times in results.items():
        times.sort()
        mean = statistics.mean(times)
        p95 = times[int(0.95 * (len(times) - 1))]
        print(f"| {name} | {mean:,.1f} | {statistics.median(times):,.1f} | {p95:,.1f} | {before / mean:,.0f}x |")


if __name__ == "__main__":
    main()
