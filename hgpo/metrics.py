"""Run logging: JSONL metrics, optional TensorBoard, and the learning-curve plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends one JSON object per iteration to ``metrics.jsonl`` (and to TensorBoard)."""

    def __init__(self, out_dir: Path, tensorboard: bool = False):
        self.path = out_dir / "metrics.jsonl"
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out_dir / "tensorboard"))

    def truncate(self, iteration: int) -> None:
        """Drop records from ``iteration`` on (a resumed run rewrites them)."""
        if not self.path.exists():
            return
        kept = [r for r in read_metrics(self.path) if r.get("iteration", -1) < iteration]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            step = record.get("iteration", 0)
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "iteration":
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_learning_curve(metrics_path: Path, out_png: Path, title: str = "") -> Path:
    """Success rate of training rollouts and of evaluations against the number of policy updates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    train = [(r["iteration"], r["rollout/success_rate"]) for r in records if "rollout/success_rate" in r]
    if train:
        ax.plot(*zip(*train, strict=True), label="training rollouts", color="tab:blue", alpha=0.8)
    # Rollouts of iteration i use the policy after i updates; an evaluation recorded with
    # iteration i ran after its update (i + 1 updates; the baseline record has iteration -1).
    split_keys = sorted({k for r in records for k in r if k.startswith("eval/") and k.endswith("/success_rate")})
    eval_keys = [k for k in split_keys if k.count("/") == 2] or ["eval/success_rate"]
    colours = ["tab:orange", "tab:green", "tab:red", "tab:purple"]
    for key, colour in zip(eval_keys, colours * len(eval_keys), strict=False):
        name = key.split("/")[1] if key.count("/") == 2 else ""
        points = [
            (r["iteration"] + 1, r[key])
            for r in records
            if isinstance(r.get(key), float) and not math.isnan(r[key])
        ]
        if not points:
            continue
        ax.plot(*zip(*points, strict=True), "o-", label=f"evaluation {name}".strip(), color=colour)
        if points[0][0] == 0:  # the starting policy's evaluation: the no-RL baseline, as a level
            ax.axhline(points[0][1], ls="--", lw=1, color=colour, alpha=0.6, label=f"{name or 'evaluation'} before RL")
    ax.set_xlabel("policy updates")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png
