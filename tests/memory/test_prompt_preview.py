"""``hgpo-train --print-prompt``: a config's first prompts on the real ALFWorld env, without training."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgpo.cli import train_main
from hgpo.config import load_config
from hgpo.prompt_preview import preview_prompts
from memory import build_chat_prompt

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "alfworld_hgpo.yaml")
TEMPLATE = REPO / "configs" / "templates" / "alfworld_think.yaml"
# No model is loaded by the preview; tiny needs a warm start only to be a valid training config.
QUICK = ["model.path=tiny", "warm_start.episodes=1", "env.asynchronous=false"]


def test_preview_uses_the_config_memory_template_and_chat_template(chat_tokenizer):
    cfg = load_config(CONFIG, [*QUICK, f"memory.template={TEMPLATE}"])
    previews = preview_prompts(cfg, steps=3, tokenizer=chat_tokenizer)
    assert [p.step for p in previews] == [0, 1, 2]
    first, second, third = previews
    intro = "You are an expert agent operating in the ALFRED embodied household environment."
    assert first.text.startswith(f"{intro}\nYour current observation is: ")  # the no_history template
    assert (
        "[Observation" not in first.text and "Your task is to" in first.text
    )  # (the game's intro has the task)
    assert second.text.startswith(f"{intro} Your task is to: ")  # the with_history template
    assert "Prior to this step, you have already taken 1 step(s)." in second.text
    assert "[Observation 1: '" in second.text and "[Observation 2: '" in third.text
    assert "You are now at step 3 and your current observation is: " in third.text
    assert "'help'" not in third.text and "\n 'look'" in third.text  # the template's action layout
    for p in previews:
        assert p.chat == build_chat_prompt(chat_tokenizer, p.text) and p.chat.startswith("<|im_start|>user\n")
        assert p.tokens == len(chat_tokenizer(p.chat, add_special_tokens=False)["input_ids"])
        assert len(p.keys) == cfg.memory.history_length + 1
    # The same episode with the built-in prompt: different text, the same context keys.
    builtin = preview_prompts(load_config(CONFIG, QUICK), steps=3)
    assert [b.text for b in builtin] != [p.text for p in previews]
    assert [b.keys for b in builtin] == [p.keys for p in previews]
    assert all(b.chat is None and b.tokens is None for b in builtin)


def test_cli_prints_prompts_and_does_not_train(capsys, tmp_path):
    out_dir = tmp_path / "run"
    code = train_main(
        ["--config", CONFIG, "--print-prompt", "--prompt-steps", "2", *QUICK, f"output_dir={out_dir}",
         f"memory.template={TEMPLATE}"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and not out_dir.exists()
    assert printed.count("===== step ") == 2 and "===== end (2 prompt(s))" in printed
    assert f"template {TEMPLATE}" in printed and "[Observation 1: '" in printed
    assert "user message (no tokenizer: chat template not applied)" in printed  # tiny has no tokenizer yet


def test_cli_rejects_a_bad_template_before_anything_runs(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("with_history: 'Now: {current_observation} {mood}'\n")
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--config", CONFIG, "--print-prompt", *QUICK, f"memory.template={bad}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"template file {bad}: with_history has unknown field {{mood}}" in err
