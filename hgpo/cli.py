"""Command lines: ``hgpo-train`` and ``hgpo-eval``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile

from hgpo.config import load_config


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "urllib3", "filelock", "textworld"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def train_main(argv: list[str] | None = None) -> int:
    """``hgpo-train --config configs/alfworld_hgpo.yaml ppo.lr=1e-6 env.num_groups=4 ...``"""
    parser = argparse.ArgumentParser(
        prog="hgpo-train",
        description="Train a Hugging Face causal LM as a text agent with GRPO, GiGPO or HGPO.",
    )
    parser.add_argument("--config", help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. algo.name=gigpo")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "--print-prompt",
        action="store_true",
        help="print the prompts of the first --prompt-steps steps of one episode and exit, without training",
    )
    parser.add_argument("--prompt-steps", type=int, default=2, help="steps shown by --print-prompt (default 2)")
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        cfg = load_config(args.config, args.overrides)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    if args.print_prompt:
        return _print_prompt(parser, cfg, args.prompt_steps)
    from hgpo.trainer import train  # torch import is slow: only after the config is valid

    out = train(cfg)
    if os.environ.get("RANK", "0") == "0":
        print(
            f"metrics: {out / 'metrics.jsonl'}\nlearning curve: {out / 'learning_curve.png'}\ncheckpoint: {out / 'checkpoint'}"
        )
    return 0


def _print_prompt(parser: argparse.ArgumentParser, cfg, steps: int) -> int:
    """``hgpo-train --print-prompt``: the config's first prompts (see hgpo/prompt_preview.py)."""
    if steps < 1:
        parser.error(f"--prompt-steps must be >= 1, got {steps}")
    from hgpo.prompt_preview import print_prompts

    print_prompts(cfg, steps=steps)
    return 0


def eval_main(argv: list[str] | None = None) -> int:
    """``hgpo-eval --config configs/alfworld_hgpo.yaml --policy runs/x/checkpoint --split valid_unseen``"""
    parser = argparse.ArgumentParser(
        prog="hgpo-eval",
        description="Evaluate a checkpoint, a Hugging Face model, the expert or a random policy.",
    )
    parser.add_argument("--config", help="YAML config giving the env, memory and generation settings")
    parser.add_argument(
        "--policy",
        default="expert",
        help="'expert', 'random', 'smollm2', a model folder, a .gguf file or a checkpoint folder",
    )
    parser.add_argument(
        "--split", help="overrides env.eval_kwargs.split (ALFWorld: valid_seen | valid_unseen; WebShop: test)"
    )
    parser.add_argument("--episodes", type=int, default=None, help="episodes per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("overrides", nargs="*", help="key.path=value config overrides")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    overrides = list(args.overrides)
    if args.split:
        overrides.append(f"env.eval_kwargs.split={args.split}")
    if args.policy not in ("expert", "random"):
        overrides.append(f"model.path={args.policy}")
    try:
        cfg = load_config(args.config, overrides)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    episodes = args.episodes or cfg.eval.episodes
    seeds = args.seeds or cfg.eval.seeds

    from hgpo.evaluate import evaluate_baseline, evaluate_policy
    from hgpo.generation import make_backend
    from hgpo.policy import load_pretrained, pick_device

    if args.policy in ("expert", "random"):
        result = evaluate_baseline(cfg, args.policy, episodes=episodes, seeds=seeds)
    else:
        try:
            model, tokenizer = load_pretrained(args.policy, cfg.model, pick_device(cfg.device))
        except FileNotFoundError as e:
            parser.error(str(e))
        model.eval().requires_grad_(False)
        with tempfile.TemporaryDirectory(prefix="hgpo-eval-") as scratch:  # vLLM's config folder
            backend = make_backend(cfg, model, tokenizer, scratch)  # generation.backend: hf | vllm
            try:
                result = evaluate_policy(cfg, backend, tokenizer, episodes=episodes, seeds=seeds)
            finally:
                backend.close()
    split = cfg.env.eval_kwargs.get("split", cfg.env.kwargs.get("split", "default"))
    if args.json:
        print(json.dumps({"env": cfg.env.id, "split": split, "policy": args.policy, **result.summary()}))
    else:
        print(f"{cfg.env.id} split={split} policy={args.policy}\n{result.table()}")
    return 0


if __name__ == "__main__":
    sys.exit(train_main())
