"""User prompt templates: rendering for both envs and formats, layouts, validation, budget, keys."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from memory import FixedSizeMemory, MemoryConfig, PromptTemplate, SummaryMemory
from memory.keys import context_keys_from, record_digest, text_digest
from tests.memory.transcripts import (
    ALFWORLD_ADMISSIBLE,
    ALFWORLD_EPISODE,
    ALFWORLD_TASK,
    WEBSHOP_EPISODE,
    WEBSHOP_GOAL,
    WEBSHOP_ITEM_ADMISSIBLE,
    WEBSHOP_RESULTS_ADMISSIBLE,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "configs" / "templates"

ENVS = {
    "alfworld": (ALFWORLD_TASK, ALFWORLD_EPISODE, ALFWORLD_ADMISSIBLE),
    "webshop": (WEBSHOP_GOAL, WEBSHOP_EPISODE, WEBSHOP_ITEM_ADMISSIBLE),
}


def words(text: str) -> int:
    return len(text.split())


def terse(prompt_format: str) -> PromptTemplate:
    """A small user template whose output is easy to write out by hand."""
    goal = " GOAL={current_subgoal}" if prompt_format == "hiper" else ""
    return PromptTemplate(
        no_history="T={task_description}|O={current_observation}|A=[{admissible_actions}]" + goal,
        with_history=(
            "T={task_description}|n={step_count}|k={history_length}|H=<{action_history}>|"
            "now={current_step}|O={current_observation}|A=[{available_actions}]" + goal
        ),
        record_format="({step}: {observation} -> {action})",
        record_separator=" ; ",
        actions_layout="inline",
    )


@pytest.mark.parametrize("prompt_format", ["think", "hiper"])
@pytest.mark.parametrize("env", ["alfworld", "webshop"])
def test_user_template_renders_every_field(env, prompt_format):
    task, episode, admissible = ENVS[env]
    mem = FixedSizeMemory(2, env=env, prompt_format=prompt_format, template=terse(prompt_format))
    mem.reset(1, [task])
    shown_actions = ", ".join(f"'{a}'" for a in admissible if not (env == "alfworld" and a == "help"))
    first = mem.render(0, episode[0][0], admissible)
    expected_first = f"T={task}|O={episode[0][0]}|A=[{shown_actions}]"
    assert first == expected_first + (" GOAL=None" if prompt_format == "hiper" else "")
    for t, (obs, action) in enumerate(episode[:3]):
        mem.store(0, obs, action, subgoal=f"sub-goal {t}" if prompt_format == "hiper" else None)
    obs = episode[3][0]
    text = mem.render(0, obs, admissible)
    (o2, a2), (o3, a3) = episode[1:3]
    expected = f"T={task}|n=3|k=2|H=<(2: {o2} -> {a2}) ; (3: {o3} -> {a3})>|now=4|O={obs}|A=[{shown_actions}]"
    assert text == expected + (" GOAL=sub-goal 2" if prompt_format == "hiper" else "")


def test_actions_layouts_and_hidden_actions():
    lines = PromptTemplate(with_history="{current_observation}\n[\n{admissible_actions}\n]")
    assert lines.format_actions("alfworld", ["look", "help", "inventory"]) == "'look'\n'inventory'"
    assert lines.format_actions("webshop", ["help", "click[buy now]"]) == "'help'\n'click[buy now]'"
    inline = lines.model_copy(update={"actions_layout": "inline"})
    inline = PromptTemplate.model_validate(inline.model_dump())
    assert inline.format_actions("alfworld", ["look", "inventory"]) == "'look', 'inventory'"
    custom = PromptTemplate(
        with_history="{current_observation}",
        action_format="{index}. {action}",
        action_separator=" | ",
        hidden_actions=["inventory"],
    )
    assert custom.format_actions("alfworld", ["look", "help", "inventory"]) == "1. look | 2. help"
    webshop = PromptTemplate.from_file(TEMPLATES / "webshop_think.yaml")
    assert (
        webshop.format_actions("webshop", WEBSHOP_RESULTS_ADMISSIBLE[:2])
        == "'search[<your query>]',\n'click[back to search]',"
    )


def test_conversions_and_format_specs_work_and_braces_escape():
    t = PromptTemplate(with_history="{{literal}} {step_count:>3}|{current_observation!r}")
    mem = FixedSizeMemory(1, template=t)
    mem.reset(1, ["task"])
    mem.store(0, "a", "b")
    assert mem.render(0, "it's", []) == '{literal}   1|"it\'s"'


def test_single_text_template_serves_every_step(tmp_path):
    path = tmp_path / "prompt.txt"
    path.write_text(
        "Step {current_step} ({history_length} shown): {action_history}\nNow: {current_observation}\n"
    )
    mem = FixedSizeMemory(1, template=str(path))
    mem.reset(1, [ALFWORLD_TASK])
    assert mem.render(0, "room", ["look"]) == "Step 1 (0 shown): \nNow: room\n"
    mem.store(0, "room", "look")
    assert (
        mem.render(0, "room 2", ["look"])
        == "Step 2 (1 shown): [Observation 1: 'room', Action 1: 'look']\nNow: room 2\n"
    )
    assert mem.template is not None and mem.template.source == str(path)


def test_k_zero_uses_the_no_history_template_at_every_step():
    t = PromptTemplate(no_history="0:{current_observation}", with_history="H:{current_observation}")
    mem = FixedSizeMemory(0, template=t)
    mem.reset(1, [ALFWORLD_TASK])
    mem.store(0, "a", "look")
    assert mem.render(0, "b", []) == "0:b"
    deeper = FixedSizeMemory(1, template=t)
    deeper.reset(1, [ALFWORLD_TASK])
    assert deeper.render(0, "a", []) == "0:a"
    deeper.store(0, "a", "look")
    assert deeper.render(0, "b", []) == "H:b"


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_templates_load_and_render(path):
    template = PromptTemplate.from_file(path)
    assert template.env is not None and template.prompt_format is not None
    task, episode, admissible = ENVS[template.env]
    cfg = MemoryConfig(
        env=template.env, prompt_format=template.prompt_format, history_length=2, template=str(path)
    )
    mem = cfg.build()
    mem.reset(1, [task])
    first = mem.render(0, episode[0][0], admissible)
    assert episode[0][0] in first and f"'{admissible[0]}'" in first
    assert "[Observation" not in first and not re.search(r"\{[a-z_]+\}", first)
    for obs, action in episode[:3]:
        mem.store(0, obs, action, subgoal="find the item")
    text = mem.render(0, episode[3][0], admissible)
    (o2, a2), (o3, a3) = episode[1:3]
    assert f"[Observation 2: '{o2}', Action 2: '{a2}']\n[Observation 3: '{o3}', Action 3: '{a3}']" in text
    assert "already taken 3 step(s)" in text and "most recent 2 observations" in text
    assert f"You are now at step 4 and your current observation is: {episode[3][0]}" in text
    assert "<action> </action>" in text and "'help'" not in text
    if template.prompt_format == "hiper":
        assert "Your current sub-goal is: find the item" in text and "<switch>" in text
    else:
        assert "<think> </think>" in text


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("with_history", "message"),
    [
        (
            "{current_observation} {goal}",
            r"with_history has unknown field \{goal\}; known fields: action_history",
        ),
        ("no observation here", r"with_history must contain the field \{current_observation\}"),
        ("{current_observation", r"with_history is malformed"),
        ("{current_observation} }", r"with_history is malformed: Single '}'"),
        ("{task_description.__class__} {current_observation}", r"\{task_description.__class__\}: attribute"),
        ("{task_description[0]} {current_observation}", r"attribute and index access are not allowed"),
        ("{} {current_observation}", r"positional field \{\}"),
        ("{0} {current_observation}", r"positional field \{0\}"),
        ("{current_observation:{step_count}}", r"nested field in its format spec"),
        ("{current_observation:>99999999}", r"width or precision over 9999"),
        ("{current_observation:d}", r"cannot be rendered: Unknown format code 'd'"),
        ("{current_observation!x}", r"conversion !x"),
    ],
)
def test_invalid_templates_name_the_field(with_history, message):
    with pytest.raises(ValueError, match=message):
        PromptTemplate(with_history=with_history)


def test_invalid_list_formats_and_keys():
    with pytest.raises(ValueError, match=r"record_format has unknown field \{obs\}"):
        PromptTemplate(with_history="{current_observation}", record_format="{obs} {action}")
    with pytest.raises(ValueError, match=r"action_format must contain the field \{action\}"):
        PromptTemplate(with_history="{current_observation}", action_format="{index}")
    with pytest.raises(ValueError, match=r"no_history must contain the field \{current_observation\}"):
        PromptTemplate(with_history="{current_observation}", no_history="hello")
    with pytest.raises(ValueError, match="actions_layout"):
        PromptTemplate(with_history="{current_observation}", actions_layout="table")
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        PromptTemplate(with_history="{current_observation}", footer="x")


def test_errors_from_files_name_the_file_and_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("with_history: 'Now: {current_observation} {mood}'\n")
    with pytest.raises(
        ValueError, match=rf"template file {re.escape(str(bad))}: with_history has unknown field \{{mood\}}"
    ):
        MemoryConfig(template=str(bad))
    missing = tmp_path / "missing.yaml"
    missing.write_text("no_history: '{current_observation}'\n")
    with pytest.raises(
        ValueError, match=rf"template file {re.escape(str(missing))}: with_history: Field required"
    ):
        PromptTemplate.from_file(missing)
    extra = tmp_path / "extra.yaml"
    extra.write_text("with_history: '{current_observation}'\nheader: hi\n")
    with pytest.raises(ValueError, match=rf"template file {re.escape(str(extra))}: header: Extra inputs"):
        PromptTemplate.from_file(extra)
    broken = tmp_path / "broken.yaml"
    broken.write_text("with_history: [unclosed\n")
    with pytest.raises(ValueError, match=rf"template file {re.escape(str(broken))} is not valid YAML"):
        PromptTemplate.from_file(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(ValueError, match="must hold a mapping with a 'with_history' key, got str"):
        PromptTemplate.from_file(scalar)
    with pytest.raises(ValueError, match=r"template file .*nowhere.yaml does not exist"):
        MemoryConfig(template=str(tmp_path / "nowhere.yaml"))
    txt = tmp_path / "prompt.txt"
    txt.write_text("Observation: {observation}\n")
    with pytest.raises(
        ValueError,
        match=rf"template file {re.escape(str(txt))}: with_history has unknown field \{{observation\}}",
    ):
        FixedSizeMemory(2, template=txt)


def test_template_must_fit_the_memory_env_and_format():
    think = PromptTemplate(with_history="{current_observation}", env="alfworld", prompt_format="think")
    with pytest.raises(ValueError, match="written for env='alfworld', the memory's env is 'webshop'"):
        MemoryConfig(env="webshop", template=think)
    with pytest.raises(ValueError, match="written for prompt_format='think', the memory's is 'hiper'"):
        FixedSizeMemory(2, prompt_format="hiper", template=think)
    goal = PromptTemplate(with_history="{current_observation} {current_subgoal}")
    with pytest.raises(
        ValueError,
        match=r"with_history uses \{current_subgoal\}, which is only filled with prompt_format='hiper'",
    ):
        FixedSizeMemory(2, template=goal)
    plain = PromptTemplate(with_history="{current_observation}")
    with pytest.raises(
        ValueError, match=r"with_history must contain \{current_subgoal\} with prompt_format='hiper'"
    ):
        SummaryMemory(1, prompt_format="hiper", template=plain)
    step0 = PromptTemplate(
        no_history="{current_observation}", with_history="{current_observation} {current_subgoal}"
    )
    FixedSizeMemory(2, prompt_format="hiper", template=step0)  # step 0 may leave the (None) sub-goal out
    with pytest.raises(ValueError, match=r"no_history must contain \{current_subgoal\}"):
        FixedSizeMemory(0, prompt_format="hiper", template=step0)  # ... unless no_history serves every step
    with pytest.raises(ValueError, match=r"no_history must contain \{current_subgoal\}"):
        MemoryConfig(prompt_format="hiper", history_length=0, template=step0)
    with pytest.raises(TypeError, match="template must be a PromptTemplate"):
        FixedSizeMemory(2, template=42)


def test_config_keeps_the_template_text_and_round_trips(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        yaml.safe_dump({"with_history": "{action_history}|{current_observation}", "actions_layout": "inline"})
    )
    cfg = MemoryConfig(template=str(path), history_length=2)
    path.unlink()  # the text was read at load time: nothing depends on the file later
    dumped = yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json")))
    again = MemoryConfig.model_validate(dumped)
    assert again == cfg and again.template.source == str(path)
    mems = [c.build() for c in (cfg, again)]
    texts = []
    for mem in mems:
        mem.reset(1, [ALFWORLD_TASK])
        mem.store(0, "a", "look")
        texts.append(mem.render(0, "b", ["look", "inventory"]))
    assert texts[0] == texts[1] == "[Observation 1: 'a', Action 1: 'look']|b"
    inline = MemoryConfig(template={"with_history": "{current_observation}!"}).build()
    inline.reset(1, ["t"])
    assert inline.render(0, "x", []) == "x!"


# ------------------------------------------------------------------------- budget and keys


def _play_keys(mem, task, episode, admissible, **render_kwargs):
    keys = []
    mem.reset(1, [task])
    for t, (obs, action) in enumerate(episode):
        mem.render(0, obs, admissible, **render_kwargs)
        keys.append(mem.context_keys(0, obs))
        mem.store(0, obs, action, subgoal=f"goal {t // 2}" if mem.prompt_format == "hiper" else None)
        if isinstance(mem, SummaryMemory):
            mem.flush()
    return keys


@pytest.mark.parametrize("key_mode", ["obs_action", "obs"])
@pytest.mark.parametrize("kind", ["fixed", "summary"])
@pytest.mark.parametrize("env", ["alfworld", "webshop"])
def test_keys_do_not_depend_on_the_template(env, kind, key_mode):
    task, episode, admissible = ENVS[env]
    verbose = PromptTemplate.from_file(TEMPLATES / f"{env}_think.yaml")
    keys = []
    for template in (None, terse("think"), verbose):
        cfg = MemoryConfig(
            kind=kind, env=env, history_length=3, window=1, key_mode=key_mode, template=template
        )
        keys.append(_play_keys(cfg.build(), task, episode, admissible))
    assert keys[0] == keys[1] == keys[2]
    assert len({k[-1] for k in keys[0]}) > 1  # the keys do tell steps apart


def test_budget_with_a_template_drops_the_summary_then_the_oldest_records():
    template = terse("think")
    mem = SummaryMemory(3, template=template)
    mem.reset(1, [ALFWORLD_TASK])
    for obs, action in ALFWORLD_EPISODE[:6]:
        mem.store(0, obs, action)
    obs = ALFWORLD_EPISODE[6][0]
    full = mem.render(0, obs, ALFWORLD_ADMISSIBLE)
    assert "Summary of steps 1-3:" in full and re.findall(r"\((\d): ", full) == ["4", "5", "6"]
    summary = mem.summary(0)
    records = [record_digest(o, a, "obs_action") for o, a in ALFWORLD_EPISODE[:6]]
    stages = []
    for budget in range(words(full), 0, -1):
        text = mem.render(0, obs, ALFWORLD_ADMISSIBLE, max_prompt_tokens=budget, count_tokens=words)
        shown = [int(n) for n in re.findall(r"\((\d): ", text)]
        has_summary = "Summary of steps 1-3:" in text
        assert shown == list(range(7 - len(shown), 7))  # the newest records survive
        assert words(text) <= budget or not (shown or has_summary)
        if len(shown) < 3:
            assert not has_summary and "(The summary of steps 1-3 was omitted" in text
            assert f"({3 - len(shown)} earlier observation-action record(s) omitted" in text
        assert f"k={len(shown)}|" in text and f"O={obs}|" in text
        # Keys cover exactly what the prompt showed.
        expected = context_keys_from(
            obs, reversed(records[6 - len(shown) :]), 4, text_digest(summary) if has_summary else None
        )
        assert mem.context_keys(0, obs) == expected
        stages.append((has_summary, len(shown)))
    assert (
        stages[0] == (True, 3) and (False, 3) in stages and (False, 1) in stages and stages[-1] == (False, 0)
    )
    assert stages == sorted(stages, reverse=True)  # summary first, then records one by one


def test_the_budget_counts_the_templates_own_text():
    wordy = PromptTemplate(
        with_history="Please consider carefully. " * 20 + "{action_history} {current_observation}"
    )
    short = PromptTemplate(with_history="{action_history} {current_observation}")
    shown = []
    for template in (short, wordy):
        mem = FixedSizeMemory(4, template=template)
        mem.reset(1, [ALFWORLD_TASK])
        for o, a in ALFWORLD_EPISODE[:4]:
            mem.store(0, o, a)
        text = mem.render(0, "now", [], max_prompt_tokens=90, count_tokens=words)
        shown.append(len(re.findall(r"\[Observation", text)))
    assert shown[0] > shown[1]


# ------------------------------------------------------------------------ default prompts

# SHA-256 of the built-in prompts and keys below, recorded from the code before templates
# existed: the default prompts are byte-identical unless a template is given.
DEFAULT_PROMPTS_SHA256 = "88c6d86e19de7f5ca022c9f57d354b40f9dfff7210609a7f5bae5057aac8bc95"


def test_default_prompts_are_unchanged():
    out = []
    for env, (task, episode, admissible) in ENVS.items():
        for fmt in ("think", "hiper"):
            for cls, size in (
                (FixedSizeMemory, 0),
                (FixedSizeMemory, 1),
                (FixedSizeMemory, 3),
                (SummaryMemory, 1),
                (SummaryMemory, 0),
            ):
                for budget in (None, 400, 250, 120, 10):
                    mem = cls(size, env=env, prompt_format=fmt)
                    mem.reset(1, [task])
                    for t, (obs, action) in enumerate(episode):
                        text = mem.render(0, obs, admissible, max_prompt_tokens=budget, count_tokens=words)
                        out.append([text, [str(k) for k in mem.context_keys(0, obs)]])
                        mem.store(0, obs, action, subgoal=f"goal {t // 2}" if fmt == "hiper" else None)
    assert len(out) == 800
    assert hashlib.sha256(json.dumps(out).encode()).hexdigest() == DEFAULT_PROMPTS_SHA256
