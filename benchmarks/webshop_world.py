"""Benchmark of the WebShop data layer: World start-up and search latency, against plain-Python BM25.

Start-up is measured in fresh processes (as a server start would be): ``cold`` builds the catalogue,
the SQLite store, the Lucene index and the goals into an empty cache; ``warm`` opens them again. Search
latency runs WebShop's 12,087 human instructions (``human_goals.json``) as queries against the 10k (and
100k) catalogue, through ``World.search`` (Lucene BM25 via pyserini's Anserini jar), and through two
straightforward pure-Python BM25 implementations over the same indexed text (k1=0.9, b=0.4, top 50):
an inverted index, and rank_bm25's approach of scoring every document (each on the first queries only,
fewer for bigger catalogues, to keep the run short).

    python benchmarks/webshop_world.py                 # 1k and 10k products (a few minutes)
    python benchmarks/webshop_world.py --large         # adds 100k products
    python benchmarks/webshop_world.py --human-goals PATH/human_goals.json

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

DEFAULT_QUERIES = Path("/work/shared/data/webshop/human_goals.json")
ROOT = Path(__file__).resolve().parents[1]

_START = """
import json, resource, sys, time
started = time.perf_counter()
from servers.webshop.world import World, WorldConfig
world = World.load(WorldConfig(num_products={n}, seed=0, cache_dir={cache!r}))
world.search("warm up")
seconds = time.perf_counter() - started
usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
cpu = sum(u.ru_utime + u.ru_stime for u in usage)
print(json.dumps({{"seconds": seconds, "cpu": cpu, "goals": len(world.goals), "rss_mb": usage[0].ru_maxrss / 1024}}))
"""

# A small English stopword list (Lucene's default English set) for the pure-Python baselines.
_STOPWORDS = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
}
_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def start_in_subprocess(n: int, cache: Path) -> dict:
    """World.load + first query in a fresh Python process: seconds, CPU seconds (JVM and workers included),
    goals and peak RSS."""
    out = subprocess.run([sys.executable, "-c", _START.format(n=n, cache=str(cache))], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class InvertedIndexBM25:
    """BM25 over an inverted index in pure Python (k1=0.9, b=0.4): the straightforward fast version."""

    def __init__(self, docs: dict[str, str], k1: float = 0.9, b: float = 0.4) -> None:
        self.ids = list(docs)
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths = []
        for i, text in enumerate(docs.values()):
            terms = tokens(text)
            lengths.append(len(terms))
            for term, tf in Counter(terms).items():
                self.postings[term].append((i, tf))
        n, avgdl = len(lengths), sum(lengths) / max(1, len(lengths))
        self.norm = [k1 * (1 - b + b * dl / avgdl) for dl in lengths]
        self.idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    def search(self, query: str, k: int = 50) -> list[str]:
        scores: dict[int, float] = defaultdict(float)
        for term in tokens(query):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for i, tf in self.postings[term]:
                scores[i] += idf * tf / (tf + self.norm[i])
        return [self.ids[i] for i in heapq.nlargest(k, scores, key=scores.__getitem__)]


class ScanAllBM25(InvertedIndexBM25):
    """rank_bm25's way: a term-frequency dict per document, every document scored for every query."""

    def __init__(self, docs: dict[str, str], k1: float = 0.9, b: float = 0.4) -> None:
        super().__init__(docs, k1, b)
        self.doc_tf = [Counter(tokens(text)) for text in docs.values()]

    def search(self, query: str, k: int = 50) -> list[str]:
        terms = [t for t in tokens(query) if t in self.idf]
        scores = []
        for i, tf_map in enumerate(self.doc_tf):
            score = 0.0
            for term in terms:
                tf = tf_map.get(term, 0)
                score += self.idf[term] * tf / (tf + self.norm[i]) if tf else 0.0
            scores.append(score)
        best = heapq.nlargest(k, range(len(scores)), key=scores.__getitem__)
        return [self.ids[i] for i in best if scores[i] > 0]


def latencies(search, queries: list[str]) -> tuple[float, float, list[list[str]]]:
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(search(q))
        times.append(time.perf_counter() - t)
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return statistics.median(times) * 1000, p99 * 1000, results


def measure_search(cache: Path, n: int, queries: list[str], args: argparse.Namespace) -> tuple:
    """Latency of World.search over all queries and of the pure-Python baselines over samples."""
    from servers.webshop.catalogue import search_text
    from servers.webshop.world import World, WorldConfig

    world = World.load(WorldConfig(num_products=n, seed=0, cache_dir=cache))
    world.search("warm up")
    p50, p99, ours_hits = latencies(world.search, queries)
    ours = {"queries": len(queries), "p50": p50, "p99": p99}
    docs = {p["asin"]: search_text(p) for p in world.iter_products()}
    world.close()
    # The baselines' cost grows with the catalogue: fewer queries for bigger ones keep the run short.
    results = []
    for engine_class, wanted in ((InvertedIndexBM25, args.baseline_queries), (ScanAllBM25, args.scan_queries)):
        sample = queries[: max(20, wanted * 10_000 // n)]
        started = time.perf_counter()
        engine = engine_class(docs)
        build = time.perf_counter() - started
        p50, p99, hits = latencies(engine.search, sample)
        overlap = statistics.mean(
            len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(ours_hits, hits, strict=False) if a and b
        )
        results.append({"queries": len(sample), "build": build, "p50": p50, "p99": p99, "overlap": overlap})
    return n, ours, results[0], results[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--human-goals", type=Path, default=DEFAULT_QUERIES,
                        help="WebShop's human_goals.json (a JSON list of instruction strings)")
    parser.add_argument("--large", action="store_true", help="also measure a 100k-product catalogue")
    parser.add_argument("--baseline-queries", type=int, default=2000,
                        help="queries for the pure-Python inverted-index baseline at 10k products (the first N; "
                             "scaled down for bigger catalogues)")
    parser.add_argument("--scan-queries", type=int, default=200,
                        help="queries for the scan-all baseline at 10k products (scaled likewise)")
    args = parser.parse_args(argv)
    queries = json.loads(args.human_goals.read_text(encoding="utf-8"))
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        sys.exit(f"{args.human_goals}: expected a JSON list of instruction strings")
    sizes = [1_000, 10_000] + ([100_000] if args.large else [])

    with tempfile.TemporaryDirectory(prefix="webshop-bench-") as tmp:
        rows = []
        for n in sizes:
            cache = Path(tmp) / f"cache-{n}"
            cold = start_in_subprocess(n, cache)
            warm = start_in_subprocess(n, cache)
            rows.append((n, cold, warm))
            print(f"{n} products: cold {cold['seconds']:.1f} s, warm {warm['seconds']:.1f} s", file=sys.stderr)

        searches = [measure_search(Path(tmp) / f"cache-{n}", n, queries, args) for n in sizes if n >= 10_000]

    print("\n### WebShop World start-up (fresh process; cold = empty cache, warm = cache built)\n")
    print("| products | goals | cold start (s) | cold CPU (s) | warm start (s) | warm CPU (s) | peak RSS warm (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n_products, cold, warm in rows:
        print(f"| {n_products:,} | {warm['goals']:,} | {cold['seconds']:.1f} | {cold['cpu']:.1f} | "
              f"{warm['seconds']:.2f} | {warm['cpu']:.1f} | {warm['rss_mb']:.0f} |")
    for n, ours, inverted, scan in searches:
        print(f"\n### Search latency, {n:,} products, WebShop's human instructions as queries (top 50)\n")
        print("| engine | queries | index build (s) | p50 (ms) | p99 (ms) |")
        print("|---|---:|---:|---:|---:|")
        print(f"| World.search (Lucene BM25 via Anserini, ours) | {ours['queries']:,} | in cold start | "
              f"{ours['p50']:.2f} | {ours['p99']:.2f} |")
        print(f"| pure-Python BM25, inverted index | {inverted['queries']:,} | {inverted['build']:.1f} | "
              f"{inverted['p50']:.2f} | {inverted['p99']:.2f} |")
        print(f"| pure-Python BM25, score every document (rank_bm25's way) | {scan['queries']:,} | "
              f"{scan['build']:.1f} | {scan['p50']:.2f} | {scan['p99']:.2f} |")
        print(f"\nTop-10 overlap with the pure-Python inverted index (no stemming): {inverted['overlap']:.0%}")


if __name__ == "__main__":
    main()
