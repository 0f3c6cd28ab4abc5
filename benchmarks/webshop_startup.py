"""Server-level start-up of WebShop, measured as a user would: ``webshop-server --num-products N``
started as its own process, timed until ``GET /api/info`` (the compose health check) answers 200.

- cold: an empty cache folder (the catalogue, SQLite store, Lucene index and goals are built);
- warm: the same folder again (everything is opened); the median of ``--warm-runs`` starts;
- baseline (warm): the straightforward start-up sequence in a fresh process, serial, with spaCy
  imported as usual (``World.load``, then ``warm_up`` = spaCy model + first search, then serve).

The phases of a warm start (Python imports, JVM, catalogue open, spaCy import and model) are
timed in fresh processes too, to say what dominates.

    python benchmarks/webshop_startup.py                       # 100,000 products (cold takes minutes)
    python benchmarks/webshop_startup.py --num-products 1000 --warm-runs 5
    python benchmarks/webshop_startup.py --cache-dir DIR       # reuse DIR for warm runs only (no cold run)

Prints markdown tables. Numbers depend on what else runs on the machine: note the load average
(printed) next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = Path(sys.executable).with_name("webshop-server")

# The straightforward start-up: load, warm up (spaCy and a search), then serve; nothing in parallel.
_BASELINE = """
import sys, waitress
from servers.webshop.app import create_app
from servers.webshop.world import World, WorldConfig
world = World.load(WorldConfig(num_products={n}, seed=0, cache_dir={cache!r}))
world.warm_up()
waitress.serve(create_app(world), host="127.0.0.1", port={port}, threads=8, _quiet=True)
"""

_PHASES = """
import json, sys, time
t = [time.perf_counter()]
import waitress, flask, pydantic, numpy
from servers.webshop.app import create_app
from servers.webshop.world import World, WorldConfig
t.append(time.perf_counter())
from servers.webshop import search
search.start_jvm()
t.append(time.perf_counter())
world = World.load(WorldConfig(num_products={n}, seed=0, cache_dir={cache!r}))
world.search("warm up")
t.append(time.perf_counter())
{spacy_import}
t.append(time.perf_counter())
from servers.webshop import reward
reward.load_nlp()
t.append(time.perf_counter())
names = ["Python imports (flask, waitress, pydantic, numpy, ours)", "JVM start (Java 21, Anserini jar)",
         "catalogue open (SQLite, Lucene index, goals) + first search", "spaCy import", "spaCy model load"]
print(json.dumps(dict(zip(names, [b - a for a, b in zip(t, t[1:])]))))
"""
_SPACY_PLAIN = "import spacy"
_SPACY_NO_TORCH = "from servers.webshop.cli import import_spacy_without_torch; import_spacy_without_torch()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_until_ready(command: list[str], port: int, timeout: float) -> float:
    """Seconds from starting ``command`` until ``/api/info`` on ``port`` answers 200; then stop it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}: {process.stderr.read()[-2000:]!r}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"no answer from /api/info within {timeout} s")
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ours(n: int, cache: Path, timeout: float) -> float:
    port = free_port()
    command = [str(SERVER), "--num-products", str(n), "--port", str(port), "--cache-dir", str(cache),
               "--log-level", "WARNING"]
    return time_until_ready(command, port, timeout)


def baseline(n: int, cache: Path, timeout: float) -> float:
    port = free_port()
    code = _BASELINE.format(n=n, cache=str(cache), port=port)
    return time_until_ready([sys.executable, "-c", code], port, timeout)


def phases(n: int, cache: Path, spacy_import: str) -> dict[str, float]:
    code = _PHASES.format(n=n, cache=str(cache), spacy_import=spacy_import)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-products", type=int, default=100_000)
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, help="an existing cache to reuse (skips the cold run)")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    n = args.num_products
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {n:,} products\n")
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="webshop-startup-"))
    rows = []
    try:
        if args.cache_dir is None:
            rows.append(("cold (empty cache)", [ours(n, cache, args.timeout)], None))
        warm = [ours(n, cache, args.timeout) for _ in range(args.warm_runs)]
        base = [baseline(n, cache, args.timeout) for _ in range(args.warm_runs)]
        rows.append(("warm", warm, base))
        print("| start | `webshop-server` until /api/info (s) | straightforward serial start (s) | runs |")
        print("|---|---:|---:|---:|")
        for name, ours_s, base_s in rows:
            base_text = f"{statistics.median(base_s):.2f}" if base_s else "-"
            print(f"| {name} | {statistics.median(ours_s):.2f} | {base_text} | {len(ours_s)} |")
        print(f"\nWarm start phases, timed in fresh processes, median of {args.warm_runs} interleaved runs (s):\n")
        runs: dict[str, list[dict[str, float]]] = {"plain": [], "hidden": []}
        for _ in range(args.warm_runs):
            runs["plain"].append(phases(n, cache, _SPACY_PLAIN))
            runs["hidden"].append(phases(n, cache, _SPACY_NO_TORCH))
        plain, hidden = ({name: statistics.median(r[name] for r in runs[kind]) for name in runs[kind][0]}
                         for kind in ("plain", "hidden"))
        print("| phase | spaCy as usual | torch hidden from spaCy (ours) |")
        print("|---|---:|---:|")
        for name in plain:
            print(f"| {name} | {plain[name]:.2f} | {hidden[name]:.2f} |")
        print(f"| sum (serial) | {sum(plain.values()):.2f} | {sum(hidden.values()):.2f} |")
        print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    finally:
        if args.cache_dir is None:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
