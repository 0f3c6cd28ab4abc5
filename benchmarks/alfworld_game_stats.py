"""Statistics of the embedded ALFWorld game sets, as markdown tables (the numbers in docs/alfworld.md).

For each games version: per split, the games per task type against ALFWorld's official
counts, the floor plans used, how many ``valid_seen`` games have a task instance (type,
object, receptacle or lamp, floor plan) that a training game has, and the walkthrough
length distribution per task type. Reads the shipped files only (no engine work).

Usage::

    python benchmarks/alfworld_game_stats.py            # both versions
    python benchmarks/alfworld_game_stats.py --version 2
"""

from __future__ import annotations

import argparse
import json
import statistics

from agentenv.alfworld.generator import OFFICIAL_TYPE_COUNTS
from agentenv.alfworld.tasks import GAMES_VERSIONS, SPLITS, TASK_TYPES, embedded_dir, read_compact_records

SHORT = {
    "pick_and_place_simple": "pick",
    "look_at_obj_in_light": "look",
    "pick_clean_then_place_in_recep": "clean",
    "pick_heat_then_place_in_recep": "heat",
    "pick_cool_then_place_in_recep": "cool",
    "pick_two_obj_and_place": "pick-two",
}


def _instance(record: dict) -> tuple:
    params = record["pddl_params"]
    return (record["task_type"], params["object_target"], params["parent_target"], params["toggle_target"],
            record["floorplan"])  # fmt: skip


def report(version: int) -> None:
    records = {split: read_compact_records(embedded_dir(version) / f"{split}.jsonl.xz") for split in SPLITS}
    print(f"## games_version={version}\n")
    print("| split | games | " + " / ".join(SHORT[t] for t in TASK_TYPES) + " | official | floor plans |")
    print("|---|---|---|---|---|")
    for split in SPLITS:
        counts = [sum(r["task_type"] == t for r in records[split]) for t in TASK_TYPES]
        official = "/".join(map(str, OFFICIAL_TYPE_COUNTS[split]))
        plans = len({r["floorplan"] for r in records[split]})
        print(f"| {split} | {len(records[split])} | {'/'.join(map(str, counts))} | {official} | {plans} |")
    train_instances = {_instance(r) for r in records["train"]}
    train_plans = {r["floorplan"] for r in records["train"]}
    seen = records["valid_seen"]
    in_train = sum(_instance(r) in train_instances for r in seen)
    plans_outside = {r["floorplan"] for r in seen} - train_plans
    print(
        f"\nvalid_seen: {in_train} of {len(seen)} games have a training task instance; "
        f"{len(plans_outside)} floor plan(s) appear in no training game\n"
    )

    cap = json.loads((embedded_dir(version) / "manifest.json").read_text())["max_expert_steps"]
    print(f"Walkthrough lengths (the expert's steps; cap {cap}):\n")
    print("| split | type | games | mean | median | p90 | max | at the cap |")
    print("|---|---|---|---|---|---|---|---|")
    for split in SPLITS:
        for task_type in (*TASK_TYPES, "all"):
            lengths = sorted(
                len(r["walkthrough"]) for r in records[split] if task_type in ("all", r["task_type"])
            )
            p90 = lengths[int(0.9 * (len(lengths) - 1))]
            name = SHORT.get(task_type, "all")
            print(
                f"| {split} | {name} | {len(lengths)} | {statistics.mean(lengths):.1f} | "
                f"{statistics.median(lengths):g} | {p90} | {lengths[-1]} | {lengths.count(cap)} |"
            )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", type=int, choices=GAMES_VERSIONS, help="one version (default: all)")
    args = parser.parse_args()
    for version in [args.version] if args.version else GAMES_VERSIONS:
        report(version)


if __name__ == "__main__":
    main()
