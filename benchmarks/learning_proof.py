"""The learning proof at many seeds: RL vs the same run with zeroed (and flipped) advantages.

Runs the arms of ``tests/hgpo/learning.py`` on the corridor job of
``tests/hgpo/test_trainer.py`` (tiny random Llama, noisy-expert imitation, HGPO, sparse
reward) and prints, per seed, the sampled success rate (128 evaluation episodes) of
each arm after 12 iterations and the trained-minus-control margin. The margin the test
asserts (``MARGIN``) must hold at every seed printed here. The proof's settings
(``OVERRIDES``) are applied first; ``--set`` adds or overrides.

Usage::

    python benchmarks/learning_proof.py --seeds 0 1 2 3 4          # about 4 minutes per seed and arm on 2 cores
    python benchmarks/learning_proof.py --seeds 0 --arms trained flipped
    python benchmarks/learning_proof.py --set algo.invalid_penalty_placement=advantage
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from tests.hgpo.learning import EVAL_EPISODES, ITERATIONS, MARGIN, OVERRIDES, learning_arm
from tests.hgpo.test_trainer import corridor_overrides

ARMS = {"trained": 1.0, "control": 0.0, "flipped": -1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--arms", nargs="+", default=["trained", "control"], choices=list(ARMS))
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="a key=value config override"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = {"seed": seed}
            for arm in args.arms:
                out = Path(tmp) / f"{arm}{seed}"
                result = learning_arm(
                    out,
                    seed=seed,
                    scale=ARMS[arm],
                    overrides=corridor_overrides(out) + args.overrides,
                    iterations=args.iterations,
                    eval_episodes=args.eval_episodes,
                )
                row.update({f"{arm}/{k}": v for k, v in result.items()})
                print(json.dumps({"seed": seed, "arm": arm, **result}), flush=True)
            rows.append(row)
    print(
        f"\n{args.iterations} iterations, {args.eval_episodes} sampled evaluation episodes per arm and seed\n"
    )
    print("| seed | before RL | " + " | ".join(f"{a} after" for a in args.arms) + " | trained - control |")
    print("|---:|---:|" + "---:|" * len(args.arms) + "---:|")
    for row in rows:
        cells = " | ".join(f"{row[f'{a}/after']:.3f}" for a in args.arms)
        margin = (
            row["trained/after"] - row["control/after"]
            if {"trained", "control"} <= set(args.arms)
            else float("nan")
        )
        print(f"| {row['seed']} | {row[f'{args.arms[0]}/before']:.3f} | {cells} | {margin:+.3f} |")
    print(f"\nsettings: {OVERRIDES + args.overrides}; the test asserts a margin >= {MARGIN}")


if __name__ == "__main__":
    main()
