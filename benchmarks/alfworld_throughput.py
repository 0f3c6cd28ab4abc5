"""ALFWorld-v0 throughput against alfworld's own ``AlfredTWEnv``, on the same games, in the same run.

For each number of envs N (default 1, 8, 16) every contender plays the same N games
(exported from the embedded set into ALFWorld's data layout, which ``AlfredTWEnv``
reads): ``rounds`` times, reset all N envs, then step them ``steps`` times with the
same commands (each game's walkthrough without its winning command, then ``look``).

Contenders:
  * ``ours sync``: ``make_group_vector_env(..., asynchronous=False)``, all envs in this process;
  * ``ours async``: ``make_group_vector_env(...)``, one forkserver worker process per env
    (``ProcessVectorEnv``, which restarts dead workers);
  * ``gym async``: the same members in gymnasium's ``AsyncVectorEnv`` (what ``ProcessVectorEnv``
    replaced; it does not survive a dead worker);
  * ``AlfredTWEnv``: ``AlfredTWEnv(config).init_env(batch_size=N)``, textworld's batch env
    (a process per env for N > 1, in-process for N = 1), without our caches.

Each contender runs in a fresh Python process, so our process-wide engine caches never
touch the stock engine. Reported: start-up time, reset latency (first round = a new
game is loaded; later rounds = the same game again), step latency (one batched step),
env-steps/s while stepping and including resets, and the memory one more env costs
(worker processes: their unique memory (USS); in-process envs: RSS growth / N).

Usage::

    python benchmarks/alfworld_throughput.py                 # about 5 minutes on 2 busy cores
    python benchmarks/alfworld_throughput.py --envs 1,8,16,32 --steps 40 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONTENDERS = ("ours-sync", "ours-async", "gym-async", "alfredtwenv")


def _rss_mb(pid: int | None = None) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _uss_mb(pids: list[int]) -> float:
    """Total unique memory of processes: what they cost beyond pages shared with their parent."""
    import psutil

    return sum(psutil.Process(pid).memory_full_info().uss for pid in pids) / 2**20


def _commands(walkthrough: list[str], steps: int) -> list[str]:
    # Never win: a finished episode would stop costing engine work in one contender and not the other.
    line = walkthrough[:-1][:steps]
    return line + ["look"] * (steps - len(line))


def _run_ours(config: dict[str, Any]) -> dict[str, Any]:
    import agentenv.alfworld.env  # noqa: F401  (the engine's imports are not part of the per-env memory)
    from agentenv.vector import make_group_vector_env

    games = config["games"]
    n = len(games)
    before = _rss_mb()
    start = time.perf_counter()
    env_kwargs = {"data_path": config["root"], "split": "train", "max_steps": config["steps"] + 1,
                  "expert": config["expert"]}  # fmt: skip
    if config["contender"] == "gym-async":
        envs = _gymnasium_async(n, env_kwargs)
    else:
        envs = make_group_vector_env(
            "ALFWorld-v0", num_groups=n, group_size=1, asynchronous=config["contender"] == "ours-async",
            **env_kwargs,
        )  # fmt: skip
    startup = time.perf_counter() - start
    resets, step_times = [], []
    for _ in range(config["rounds"]):
        start = time.perf_counter()
        _, infos = envs.reset(seed=0, options={"tasks": [g["task_id"] for g in games]})
        resets.append(time.perf_counter() - start)
        by_id = {g["task_id"]: _commands(g["walkthrough"], config["steps"]) for g in games}
        plans = [by_id[task_id] for task_id in infos["task_id"]]
        for t in range(config["steps"]):
            start = time.perf_counter()
            envs.step([plan[t] for plan in plans])
            step_times.append(time.perf_counter() - start)
    if config["contender"] == "ours-async":
        memory = _uss_mb(list(envs.unwrapped.worker_pids))
    elif config["contender"] == "gym-async":
        memory = _uss_mb([process.pid for process in envs.unwrapped.processes])
    else:
        memory = _rss_mb() - before
    envs.close()
    return {"startup": startup, "resets": resets, "steps": step_times, "rss_mb_per_env": memory / n}


def _gymnasium_async(n: int, env_kwargs: dict[str, Any]) -> Any:
    """The same group members in gymnasium's own ``AsyncVectorEnv`` (what ``ours-async`` replaced)."""
    import functools

    from gymnasium.vector import AsyncVectorEnv, AutoresetMode

    from agentenv.vector import GroupVectorEnv, _default_context, _make_member

    env_fns = [functools.partial(_make_member, "ALFWorld-v0", i, env_kwargs) for i in range(n)]
    vector = AsyncVectorEnv(env_fns, shared_memory=False, context=_default_context("ALFWorld-v0"),
                            autoreset_mode=AutoresetMode.DISABLED)  # fmt: skip
    return GroupVectorEnv(vector, 1)


def _run_alfredtwenv(config: dict[str, Any]) -> dict[str, Any]:
    from alfworld.agents.environment.alfred_tw_env import AlfredTWEnv

    games = config["games"]
    n = len(games)
    split_dir = str(Path(config["root"]) / "json_2.1.1" / "train")
    alfred_config = {
        "env": {"goal_desc_human_anns_prob": 0, "task_types": [1, 2, 3, 4, 5, 6],
                "domain_randomization": False, "expert_type": "handcoded"},
        "dataset": {"data_path": split_dir, "eval_id_data_path": split_dir, "eval_ood_data_path": split_dir,
                    "num_train_games": -1, "num_eval_games": -1},
        "general": {"training_method": "dagger" if config["expert"] else "dqn"},
        "rl": {"training": {"max_nb_steps_per_episode": config["steps"] + 1}},
        "dagger": {"training": {"max_nb_steps_per_episode": config["steps"] + 1}},
    }  # fmt: skip
    before = _rss_mb()
    start = time.perf_counter()
    env = AlfredTWEnv(alfred_config, train_eval="train").init_env(batch_size=n)
    startup = time.perf_counter() - start
    by_file = {
        str(Path(split_dir) / g["task_id"] / "game.tw-pddl"): _commands(g["walkthrough"], config["steps"])
        for g in games
    }
    resets, step_times = [], []
    for _ in range(config["rounds"]):
        start = time.perf_counter()
        _, infos = env.reset()  # loads the next N games of its shuffled cycle: each of ours once
        resets.append(time.perf_counter() - start)
        plans = [by_file[str(Path(f))] for f in infos["extra.gamefile"]]
        for t in range(config["steps"]):
            start = time.perf_counter()
            env.step([plan[t] for plan in plans])
            step_times.append(time.perf_counter() - start)
    # textworld runs N > 1 envs in an AsyncBatchEnv: one forked process per env.
    workers = [child._process.pid for child in env.batch_env.envs] if n > 1 else []
    memory = _uss_mb(workers) if workers else _rss_mb() - before
    env.close()
    return {"startup": startup, "resets": resets, "steps": step_times, "rss_mb_per_env": memory / n}


def _worker(config: dict[str, Any]) -> None:
    run = _run_alfredtwenv if config["contender"] == "alfredtwenv" else _run_ours
    result = run(config)
    print("RESULT " + json.dumps(result))


def _export_games(count: int, split: str, root: Path) -> list[dict[str, Any]]:
    """The first ``count`` embedded games of ``split``, written in ALFWorld's layout under ``root``."""
    from agentenv.alfworld.generate import write_official
    from agentenv.alfworld.tasks import embedded_dir, read_compact_records

    records = read_compact_records(embedded_dir() / f"{split}.jsonl.xz")[:count]
    for record in records:
        write_official(root, "train", record)  # AlfredTWEnv reads one folder: call it train
    return [{"task_id": r["task_id"], "walkthrough": r["walkthrough"]} for r in records]


def _measure(contender: str, games: list[dict], root: Path, args: argparse.Namespace) -> dict[str, Any]:
    config = {"contender": contender, "games": games, "root": str(root), "steps": args.steps,
              "rounds": args.rounds, "expert": args.expert}  # fmt: skip
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{contender} with {len(games)} envs failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _row(name: str, n: int, result: dict[str, Any]) -> dict[str, Any]:
    step_ms = [1000 * s for s in result["steps"]]
    resets = result["resets"]
    stepping = sum(result["steps"])
    total_env_steps = n * len(result["steps"])
    return {
        "contender": name,
        "envs": n,
        "startup_s": result["startup"],
        "reset_new_s": resets[0],
        "reset_again_s": statistics.mean(resets[1:]) if len(resets) > 1 else float("nan"),
        "step_ms": statistics.mean(step_ms),
        "step_p95_ms": sorted(step_ms)[int(0.95 * (len(step_ms) - 1))],
        "steps_per_s": total_env_steps / stepping,
        "steps_per_s_with_resets": total_env_steps / (stepping + sum(resets)),
        "rss_mb_per_env": result["rss_mb_per_env"],
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("| contender | envs | start (s) | reset, new game (s) | reset, same game (s) | step, mean (ms) | step, p95 (ms) "
            "| env-steps/s | env-steps/s incl. resets | memory/env (MB) |")  # fmt: skip
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['contender']} | {r['envs']} | {r['startup_s']:.1f} | {r['reset_new_s']:.2f} | {r['reset_again_s']:.2f} | "
            f"{r['step_ms']:.0f} | {r['step_p95_ms']:.0f} | {r['steps_per_s']:.1f} | "
            f"{r['steps_per_s_with_resets']:.1f} | {r['rss_mb_per_env']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", default="1,8,16", help="comma-separated env counts (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=10, help="steps per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="resets per contender (default: %(default)s)")
    parser.add_argument("--split", default="valid_unseen", help="embedded split the games come from")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="default: %(default)s")
    parser.add_argument("--expert", action="store_true", help="also compute the handcoded expert's action")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per contender run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(json.loads(args.worker))
        return

    counts = [int(n) for n in args.envs.split(",")]
    contenders = args.contenders.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="alfworld-bench-") as tmp:
        for n in counts:
            root = Path(tmp) / f"n{n}"
            games = _export_games(n, args.split, root)
            by_name = {}
            for contender in contenders:
                started = time.perf_counter()
                result = _measure(contender, games, root, args)
                by_name[contender] = _row(contender, n, result)
                rows.append(by_name[contender])
                print(f"# {contender} x{n}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(f"\nALFWorld-v0 vs AlfredTWEnv: {args.rounds} rounds x {args.steps} steps on the first N games of "
          f"the embedded {args.split} split; expert={'on' if args.expert else 'off'}; "
          f"{os.cpu_count()} CPUs\n")  # fmt: skip
    print(_table(rows))
    print()
    for n in counts:
        stock = next((r for r in rows if r["envs"] == n and r["contender"] == "alfredtwenv"), None)
        for r in rows:
            if stock and r["envs"] == n and r is not stock:
                print(f"- {n} envs, {r['contender']}: {r['steps_per_s'] / stock['steps_per_s']:.2f}x the env-steps/s "
                      f"of AlfredTWEnv; new-game reset {stock['reset_new_s'] / r['reset_new_s']:.2f}x, "
                      f"same-game reset {stock['reset_again_s'] / r['reset_again_s']:.1f}x as fast")  # fmt: skip


if __name__ == "__main__":
    main()
