"""The offline game generator: deterministic, sensible tasks, and a CLI that rebuilds the shipped set."""

from __future__ import annotations

import json
import re
from collections import Counter

import alfworld.gen.constants as C
import alfworld.gen.goal_library as goal_library
import pytest

from agentenv.alfworld import generator
from agentenv.alfworld.generate import main
from agentenv.alfworld.tasks import SPLITS, TASK_TYPES, load_task_set, read_compact_records

from .conftest import embedded_records


def _ordered_records(split: str) -> list[dict]:
    return list(embedded_records(split).values())  # file order == generation index


def _initial_facts(problem: str) -> dict[str, list[tuple[str, ...]]]:
    init = problem.split("(:init", 1)[1].split("(:goal", 1)[0]
    facts: dict[str, list[tuple[str, ...]]] = {}
    for name, args in re.findall(r"\((\w+) ([^()]*)\)", init):
        facts.setdefault(name, []).append(tuple(args.split()))
    return facts


def _instance(record: dict) -> tuple:
    params = record["pddl_params"]
    return (record["task_type"], params["object_target"], params["parent_target"], params["toggle_target"],
            record["floorplan"])  # fmt: skip


def _without_name(problem: str) -> str:
    return problem.split("\n", 1)[1]  # drop "(define (problem <trial name>)"


@pytest.mark.parametrize("split", SPLITS)
def test_embedded_tasks_follow_the_sensible_task_rules(split):
    records = _ordered_records(split)
    floorplans = generator.split_floorplans(split)
    assert set(Counter(r["task_type"] for r in records)) == set(TASK_TYPES)
    for index, record in enumerate(records):
        params, task_type = record["pddl_params"], record["task_type"]
        assert task_type == generator.task_type_of(split, index)
        assert record["floorplan"] in floorplans
        assert generator.load_floorplan(record["floorplan"]).room in C.GOALS_VALID[task_type]
        goal = generator.Goal(
            task_type, params["object_target"], params["parent_target"], params["toggle_target"]
        )
        assert goal in generator.candidate_goals(record["floorplan"], task_type)
        templates = goal_library.gdict[task_type]["templates"]
        fill = {"obj": goal.object_target.lower(), "recep": goal.parent_target.lower(),
                "toggle": goal.toggle_target.lower(), "mrecep": ""}  # fmt: skip
        assert record["goal"] in {t.format(**fill) for t in templates}

        facts = _initial_facts(record["pddl_problem"])
        otype = {o: t.removesuffix("Type").lower() for o, t in facts["objectType"]}
        rtype = {r: t.removesuffix("Type").lower() for r, t in facts["receptacleType"]}
        targets = [o for o, t in otype.items() if t == goal.object_target.lower()]
        starts = {rtype[r] for o, r in facts["inReceptacle"] if o in targets}
        excluded = {t.lower() for t in generator._start_exclusions(goal)}
        assert targets and not starts & excluded, record["task_id"]
        if task_type == "pick_two_obj_and_place":
            assert len(targets) >= 2
        if task_type == "look_at_obj_in_light":
            lamps = [o for o, t in otype.items() if t == goal.toggle_target.lower()]
            lamp_holders = {rtype[r] for o, r in facts["inReceptacle"] if o in lamps}
            assert lamp_holders <= {h.lower() for h in generator.LAMP_HOLDERS}
        else:
            assert goal.parent_target not in generator.ODD_PARENTS[task_type]


@pytest.mark.parametrize("split", SPLITS)
def test_task_types_follow_the_official_proportions(split):
    counts = Counter(r["task_type"] for r in _ordered_records(split))
    official = generator.OFFICIAL_TYPE_COUNTS[split]
    n = sum(counts.values())
    for task_type, official_count in zip(TASK_TYPES, official, strict=True):
        assert abs(counts[task_type] - n * official_count / sum(official)) < 1
    if n == sum(official):  # the official size: the official counts exactly
        assert tuple(counts[t] for t in TASK_TYPES) == official


def test_type_schedule_stays_in_proportion_at_every_prefix():
    for split, official in generator.OFFICIAL_TYPE_COUNTS.items():
        total, seen = sum(official), Counter()
        for index in range(2 * total):
            seen[generator.task_type_of(split, index)] += 1
            for task_type, count in zip(TASK_TYPES, official, strict=True):
                assert abs(seen[task_type] - (index + 1) * count / total) < 1


def test_walkthroughs_are_capped_well_below_the_step_limit():
    lengths = [len(r["walkthrough"]) for split in SPLITS for r in _ordered_records(split)]
    assert max(lengths) <= generator.MAX_EXPERT_STEPS == 30
    assert min(lengths) >= 2


def test_valid_seen_holds_training_task_instances_with_new_placements():
    train = _ordered_records("train")
    train_instances = {_instance(r) for r in train}
    train_problems = {_without_name(r["pddl_problem"]) for r in train}
    for index, record in enumerate(_ordered_records("valid_seen")):
        source = train[generator.seen_instance_source(index)]
        assert _instance(record) == _instance(source)  # the instance of its train game
        assert _without_name(record["pddl_problem"]) not in train_problems  # with new placements
    assert {_instance(r) for r in _ordered_records("valid_seen")} <= train_instances


def test_valid_unseen_uses_only_held_out_floorplans():
    seen = {r["floorplan"] for split in ("train", "valid_seen") for r in _ordered_records(split)}
    unseen = {r["floorplan"] for r in _ordered_records("valid_unseen")}
    assert unseen <= generator.UNSEEN_FLOORPLANS
    assert not seen & generator.UNSEEN_FLOORPLANS
    assert len(unseen) >= 10 and len(seen) >= 40  # many rooms, not a handful


def test_splits_do_not_share_games():
    problems = {split: {_without_name(r["pddl_problem"]) for r in _ordered_records(split)} for split in SPLITS}
    assert not problems["train"] & problems["valid_seen"]
    assert not problems["train"] & problems["valid_unseen"]


def test_sampling_is_deterministic_and_seed_dependent():
    a, fp_a = generator.make_task(5, "train", 7)
    b, fp_b = generator.make_task(5, "train", 7)
    assert (a, fp_a) == (b, fp_b) and a.pddl_problem == b.pddl_problem
    others = {generator.make_task(seed, "train", 7)[0].pddl_problem for seed in (6, 7, 8)}
    assert a.pddl_problem not in others and len(others) == 3
    # another attempt resamples the scene of the same task instance
    c, fp_c = generator.make_task(5, "train", 7, attempt=1)
    assert fp_c == fp_a and c.task_id == a.task_id and c.pddl_params == a.pddl_params
    assert c.pddl_problem != a.pddl_problem


def test_valid_seen_instances_come_from_train_games_without_generating_them():
    for index in range(40):
        source = generator.seen_instance_source(index)
        assert generator.task_type_of("train", source) == generator.task_type_of("valid_seen", index)
        assert generator.task_instance(0, "valid_seen", index) == generator.task_instance(0, "train", source)
    sources = [generator.seen_instance_source(i) for i in range(140)]
    assert len(set(sources)) == 140  # distinct train games
    fallback = generator.seen_instance_source(0, fallback=1)
    assert fallback not in sources[:1] and generator.task_type_of("train", fallback) == generator.task_type_of(
        "valid_seen", 0
    )


@pytest.mark.parametrize(("split", "index"), [("train", 1), ("valid_seen", 4), ("valid_unseen", 2)])
def test_generate_game_rebuilds_the_shipped_record(split, index):
    assert generator.generate_game(0, split, index) == _ordered_records(split)[index]


def test_cli_official_layout_rebuilds_shipped_games_and_resumes(tmp_path, capsys):
    args = [
        "--out",
        str(tmp_path),
        "--train",
        "2",
        "--valid-seen",
        "0",
        "--valid-unseen",
        "1",
        "--workers",
        "1",
    ]
    assert main(args) == 0
    assert "3 new games" in capsys.readouterr().out
    for split, count in (("train", 2), ("valid_unseen", 1)):
        for record in _ordered_records(split)[:count]:
            folder = tmp_path / "json_2.1.1" / split / record["task_id"]
            game = json.loads((folder / "game.tw-pddl").read_text())
            traj = json.loads((folder / "traj_data.json").read_text())
            assert game["solvable"] is True and game["walkthrough"] == record["walkthrough"]
            assert game["pddl_problem"] == record["pddl_problem"]
            assert f"Your task is to: {record['goal']}." in game["grammar"]
            assert traj["task_type"] == record["task_type"] and traj["pddl_params"] == record["pddl_params"]
    assert len(load_task_set("train", data_path=tmp_path)) == 2
    assert main(args) == 0  # a second run keeps what is there
    assert "0 new games" in capsys.readouterr().out


def test_cli_compact_format_with_worker_processes(tmp_path):
    assert main(["--format", "compact", "--out", str(tmp_path), "--train", "0", "--valid-seen", "0",
                 "--valid-unseen", "2", "--workers", "2"]) == 0  # fmt: skip
    assert read_compact_records(tmp_path / "valid_unseen.jsonl.xz") == _ordered_records("valid_unseen")[:2]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 0, "valid_seen": 0, "valid_unseen": 2}
    assert not list(tmp_path.glob(".*partial*"))


def test_cli_warns_when_train_cannot_hold_valid_seen_instances(caplog):
    from agentenv.alfworld.generate import _warn_if_seen_outside_train

    with caplog.at_level("WARNING"):
        _warn_if_seen_outside_train({"train": 600, "valid_seen": 140, "valid_unseen": 0})
        assert not caplog.records
        _warn_if_seen_outside_train({"train": 10, "valid_seen": 140, "valid_unseen": 0})
    assert "first 163 train games" in caplog.text


def test_cli_refuses_to_mix_settings_in_one_official_folder(tmp_path):
    from agentenv.alfworld.generate import _claim_official_folder

    _claim_official_folder(tmp_path, seed=0, max_expert_steps=30)
    _claim_official_folder(tmp_path, seed=0, max_expert_steps=30)  # same settings: fine
    with pytest.raises(SystemExit, match="holds games made with other settings"):
        _claim_official_folder(tmp_path, seed=1, max_expert_steps=30)


def test_cli_rejects_bad_counts(capsys):
    with pytest.raises(SystemExit):
        main(["--out", "x", "--train", "-1"])
    assert "a game count must be >= 0" in capsys.readouterr().err
