"""WebShop server under load, and env step latency in-process vs over HTTP.

1. Starts ``webshop-server`` (the real CLI: waitress, SQLite store, Lucene index) as its own
   process, then drives it from separate load-generator processes over loopback for a fixed time
   per scenario: search result pages (distinct queries from the goals' instructions), item pages,
   and whole JSON-API episodes (create, search, open, option, buy, delete). Any non-2xx answer
   or connection error counts as an error; the goal is zero.
2. Steps ``WebShop-v0`` through scripted episodes with ``transport="direct"`` (the shop's session
   logic called in-process, no HTTP) and ``transport="http"`` (JSON API over loopback), and
   ``WebShopBrowser-v0`` (headless Chromium), reporting per-step latency.

    python benchmarks/webshop_server.py                    # 1k products, 10 s per scenario
    python benchmarks/webshop_server.py --num-products 10000 --clients 8 --duration 20

Start-up time and search latency of the catalogue itself: benchmarks/webshop_world.py.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentenv.webshop.client import WebShopClient  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _part(value: Any) -> str:
    return quote(str(value), safe="")


# ---- load generator (runs in its own processes) ------------------------------------------------


def _episode(http: requests.Session, url: str, job: dict) -> int:
    """One JSON-API episode; returns the number of requests it made."""
    created = http.post(f"{url}/api/sessions", json={"goal_index": job["goal_index"]}, timeout=30)
    created.raise_for_status()
    step_url = f"{url}/api/sessions/{created.json()['session_id']}/step"
    requests_made = 1
    for action in [
        f"search[{job['query']}]",
        f"click[{job['asin'].lower()}]",
        *job["options"],
        "click[buy now]",
    ]:
        response = http.post(step_url, json={"action": action}, timeout=30)
        response.raise_for_status()
        requests_made += 1
    http.delete(f"{url}/api/sessions/{created.json()['session_id']}", timeout=30).raise_for_status()
    return requests_made + 1


def _load_worker(args: tuple[str, str, list, float, int]) -> tuple[int, int, list[float]]:
    """Loop over ``jobs`` for ``duration`` s: (requests ok, errors, per-request latencies in s)."""
    url, scenario, jobs, duration, seed = args
    rng = random.Random(seed)
    ok = errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + duration
    with requests.Session() as http:
        while time.perf_counter() < deadline:
            job = rng.choice(jobs)
            started = time.perf_counter()
            try:
                if scenario == "episode":
                    made = _episode(http, url, job)
                else:
                    response = http.get(url + job, timeout=30)
                    response.raise_for_status()
                    made = 1
            except (requests.RequestException, ValueError):
                errors += 1
                continue
            ok += made
            latencies.append((time.perf_counter() - started) / made)
    return ok, errors, latencies


def run_load(url: str, scenario: str, jobs: list, clients: int, duration: float) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")  # a clean process: no JVM, no server state
    with context.Pool(clients) as pool:
        results = pool.map(_load_worker, [(url, scenario, jobs, duration, seed) for seed in range(clients)])
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    latencies = sorted(lat for r in results for lat in r[2])
    return {
        "requests": ok,
        "errors": errors,
        "rps": ok / duration,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
    }


# ---- env step latency ---------------------------------------------------------------------------


def episode_actions(world: Any, goal_index: int) -> list[str]:
    goal = world.goals[goal_index]
    product = world.product(goal["asin"])
    options = goal["goal_options"] if isinstance(goal["goal_options"], dict) else {}
    return [
        f"search[{product['Title']}]",
        "click[next >]",
        "click[< prev]",
        f"click[{goal['asin'].lower()}]",
        "click[description]",
        "click[< prev]",
        *(f"click[{value}]" for value in options.values()),
        "click[buy now]",
    ]


def play_episode(env: Any, world: Any, goal_index: int, latencies: list[float]) -> bool:
    """Play the scripted episode of ``goal_index``; append each step's latency; return won."""
    env.reset(options={"task": goal_index})
    for action in episode_actions(world, goal_index):
        started = time.perf_counter()
        _, reward, terminated, _, _ = env.step(action)
        latencies.append(time.perf_counter() - started)
        if terminated:
            return reward > 0
    return False


def step_latency(envs: dict[str, Any], world: Any, goal_indices: list[int]) -> dict[str, dict[str, float]]:
    """Per-step latency of each env over the same episodes. Episodes are interleaved and the env
    that goes first rotates, so each env meets as many cold searches (the shop caches results by
    query) as the others; one untimed warm-up episode each first."""
    latencies: dict[str, list[float]] = {name: [] for name in envs}
    won = dict.fromkeys(envs, 0)
    for env in envs.values():
        play_episode(env, world, goal_indices[-1] + 1, [])
    names = list(envs)
    for turn, goal_index in enumerate(goal_indices):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            won[name] += play_episode(envs[name], world, goal_index, latencies[name])
    results = {}
    for name, values in latencies.items():
        values.sort()
        results[name] = {
            "steps": len(values),
            "mean_ms": 1000 * statistics.fmean(values),
            "p50_ms": 1000 * values[len(values) // 2],
            "p99_ms": 1000 * values[int(len(values) * 0.99)],
            "won": won[name],
            "episodes": len(goal_indices),
        }
    return results


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-products", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: the usual WebShop cache")
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load scenario")
    parser.add_argument("--threads", type=int, default=8, help="server worker threads")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per env transport")
    parser.add_argument("--browser-episodes", type=int, default=3, help="0 skips the Chromium env")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from agentenv.webshop.env import WebShopEnv
    from servers.webshop.world import World, WorldConfig

    world_kwargs = {"num_products": args.num_products, "seed": args.seed, "cache_dir": args.cache_dir}
    world = World.load(WorldConfig(**world_kwargs))  # builds the cache once; the server process reuses it
    rng = random.Random(0)
    goal_indices = list(world.goal_indices("test"))
    queries = [" ".join(world.goals[i]["instruction_text"].split()[:8]).lower() for i in goal_indices]
    asins = list(dict.fromkeys(world.goals[i]["asin"] for i in goal_indices))

    port = free_port()
    env = {**os.environ, "WEBSHOP_LOG_LEVEL": "WARNING"}
    command = [shutil.which("webshop-server") or str(Path(sys.executable).with_name("webshop-server"))]
    command += ["--port", str(port), "--num-products", str(args.num_products), "--seed", str(args.seed)]
    command += ["--threads", str(args.threads)]
    if args.cache_dir:
        command += ["--cache-dir", str(args.cache_dir)]
    started = time.perf_counter()
    server = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        WebShopClient(url).wait_ready(timeout=300)
        ready_s = time.perf_counter() - started
        search_pages = [f"/search_results/bench_{i}/{_part(q.split(' '))}/1" for i, q in enumerate(queries)]
        item_pages = [f"/item_page/fixed_0/{asin}/{_part(['bench'])}/1/{_part({})}" for asin in asins]
        episodes = []
        for goal_index in goal_indices[:100]:
            goal = world.goals[goal_index]
            options = goal["goal_options"] if isinstance(goal["goal_options"], dict) else {}
            episodes.append(
                {
                    "goal_index": goal_index,
                    "query": world.product(goal["asin"])["Title"],
                    "asin": goal["asin"],
                    "options": [f"click[{value}]" for value in options.values()],
                }
            )
        rng.shuffle(search_pages)
        load = {
            "search results page (GET)": run_load(url, "page", search_pages, args.clients, args.duration),
            "item page (GET)": run_load(url, "page", item_pages, args.clients, args.duration),
            "JSON API episode (create, 4-6 steps, delete)": run_load(
                url, "episode", episodes, args.clients, args.duration
            ),
        }
    finally:
        server.terminate()
        server.wait(timeout=60)

    env_kwargs = {"num_products": args.num_products, "catalogue_seed": args.seed, "cache_dir": args.cache_dir}
    episode_goals = goal_indices[: args.episodes]
    envs = {
        "WebShop-v0, transport=direct (in-process, no HTTP)": WebShopEnv(transport="direct", **env_kwargs),
        "WebShop-v0, transport=http (JSON API on loopback)": WebShopEnv(**env_kwargs),
    }
    latency = step_latency(envs, world, episode_goals)
    if args.browser_episodes:
        from agentenv.webshop.browser import WebShopBrowserEnv

        browser = {"WebShopBrowser-v0 (headless Chromium)": WebShopBrowserEnv(**env_kwargs)}
        latency.update(step_latency(browser, world, episode_goals[: args.browser_episodes]))
        browser[next(iter(browser))].close()
    for e in envs.values():
        e.close()

    print(f"\n## WebShop server: {world.num_products()} products, {len(world.goals)} goals")
    print(
        f"\nServer process ready (catalogue cached) in {ready_s:.1f} s; {args.clients} load-generator processes, "
    )
    print(
        f"{args.duration:.0f} s per scenario, {args.threads} waitress threads, {os.cpu_count()} CPU cores.\n"
    )
    print("| load scenario | requests | errors | requests/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in load.items():
        print(
            f"| {name} | {r['requests']} | {r['errors']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        )
    print("\n| env step | steps | mean ms | p50 ms | p99 ms | won / episodes |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in latency.items():
        print(
            f"| {name} | {r['steps']} | {r['mean_ms']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['won']} / {r['episodes']} |"
        )
    direct, over_http = (latency[name]["p50_ms"] for name in list(envs))
    print(f"\nIn-process steps are {over_http / direct:.2f}x faster than HTTP steps (p50).")
    total_errors = sum(r["errors"] for r in load.values())
    if total_errors:
        print(f"\nERRORS under load: {total_errors}")
        sys.exit(1)


if __name__ == "__main__":
    main()
