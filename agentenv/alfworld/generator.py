"""Generate ALFWorld games offline from the files the ``alfworld`` wheel ships.

A game is what ALFWorld's own data holds: a PDDL problem over alfworld's domain
(``alfworld/data/alfred.pddl``), a task sentence inserted into its text grammar
(``alfred.twl2``), and a walkthrough. The wheel ships per-floor-plan room data
(``alfworld/gen/layouts/FloorPlanN-{objects,openable}.json``, ``-layout.npy``) and
the rules ALFRED used (``alfworld.gen.constants``, ``alfworld.gen.goal_library``);
what it lacks is AI2-THOR's object placement, so this module samples it.

How one game is made (deterministic in ``(seed, split, index)``):

1. the task type follows a fixed schedule that interleaves the six types in the
   proportions of ALFWorld's official split (:data:`OFFICIAL_TYPE_COUNTS`; a smooth
   weighted round robin: every prefix of the schedule is within one game per type of
   those proportions, and the official split sizes get the official counts exactly);
2. the *task instance* (a floor plan and a goal), drawn once per game:

   * ``train`` and ``valid_unseen``: a floor plan of the split whose room type ALFRED
     allows for that type (``constants.GOALS_VALID``) and that has a sensible goal of
     that type, then a goal among the sensible ones (:func:`candidate_goals`);
   * ``valid_seen``: ALFWorld's "seen" split holds known task instances in training
     rooms with new placements, so the k-th ``valid_seen`` game of a type takes the
     instance of the k-th ``train`` game of that type (train games are generated from
     their index alone, so this needs no train file);

3. a scene for the instance: the room's receptacles (instances and poses from
   ``openable.json``; the types only listed in ``objects.json``, such as stove burners
   or the garbage can, get instances at free points of the navigation grid), and 1-3
   instances (ALFRED's ``MAX_NUM_OF_OBJ_INSTANCES``) of every portable object type of
   the room, each put in a receptacle that may hold it (``VAL_RECEPTACLE_OBJECTS``);
4. the PDDL problem in the form of ALFWorld's ``augment_pddl_states`` (escaped THOR
   ids, ``receptacleType``/``objectType``/``canContain``/... facts, the goal from
   ``goal_library``) and a task sentence from the goal's templates;
5. the game is kept only if alfworld's handcoded expert (with our ``move`` fix) wins
   it within ``max_expert_steps`` (:data:`MAX_EXPERT_STEPS`, 30: well below the env's
   50-step limit, so an agent has 20 steps of slack for wrong turns); its commands
   become the walkthrough. Otherwise a new scene is sampled for the *same* instance,
   so the step cap changes placements, not which rooms and goals the split holds.
   Only if :data:`MAX_ATTEMPTS` scenes all fail does the game move to another
   instance (not seen for the shipped set).

Sensible-task rules (AI2-THOR's real placements are not available, so random ones
are restrained): targets never start in a receptacle of the goal type (the goal
would hold at the start) nor in the appliance of their task; clean/heat/cool/pick-two
goals never end in the garbage can; heated things do not go into the fridge nor
cooled things into the microwave; objects start in the garbage can ten times less
often than elsewhere; lamps stand on desks, side tables, dressers and the like.

``valid_unseen`` uses only the 24 floor plans ``alfworld.gen.constants`` sets apart
as test scenes (1-6, 201-206, 301-306, 401-406); ``train`` (and so ``valid_seen``)
the other 96.

This is version 2 of the games (``GAMES_VERSION``). Version 1 (cycling types, a
``valid_seen`` drawn independently of ``train``, a 50-step cap) is kept as frozen
files in ``agentenv/alfworld/data/v1``.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import alfworld.gen
import alfworld.gen.constants as C
import alfworld.gen.goal_library as goal_library
import numpy as np

from agentenv.alfworld.engine import Engine, expert_walkthrough
from agentenv.alfworld.tasks import SPLITS, TASK_TYPES, Task

__all__ = [
    "GAMES_VERSION",
    "MAX_EXPERT_STEPS",
    "OFFICIAL_TYPE_COUNTS",
    "Goal",
    "Scene",
    "candidate_goals",
    "floorplan_numbers",
    "generate_game",
    "goal_sentence",
    "load_floorplan",
    "make_task",
    "pddl_problem",
    "record_to_official",
    "sample_scene",
    "seen_instance_source",
    "split_floorplans",
    "task_instance",
    "task_type_of",
]

logger = logging.getLogger(__name__)

#: Version of the generated games (the embedded set's ``games_version``).
GAMES_VERSION = 2
#: Per-type game counts of ALFWorld's official splits after its filters, in
#: ``TASK_TYPES`` order (pick, look, clean, heat, cool, pick-two).
OFFICIAL_TYPE_COUNTS: Mapping[str, tuple[int, ...]] = {
    "train": (790, 308, 650, 459, 533, 813),
    "valid_seen": (35, 13, 27, 16, 25, 24),
    "valid_unseen": (24, 18, 31, 23, 21, 17),
}
#: The expert must win a generated game within this many steps (the env allows 50).
MAX_EXPERT_STEPS = 30

LAYOUTS_DIR = Path(alfworld.gen.__file__).parent / "layouts"

#: Static receptacle types that objects can be put in (Toaster holds nothing but is part of the room).
RECEPTACLE_TYPES = frozenset(C.VAL_RECEPTACLE_OBJECTS) - C.MOVABLE_RECEPTACLES_SET
#: Object types the agent can carry (movable receptacles such as Mug included; slices excluded).
PORTABLE_TYPES = (
    frozenset(o for objects in C.VAL_RECEPTACLE_OBJECTS.values() for o in objects if not o.endswith("Sliced"))
    - RECEPTACLE_TYPES
)
LAMP_TYPES = ("DeskLamp", "FloorLamp")
#: Where lamps stand (a lamp must be in a receptacle for ``use`` to be admissible).
LAMP_HOLDERS = (
    "Desk",
    "SideTable",
    "Dresser",
    "Shelf",
    "CoffeeTable",
    "TVStand",
    "DiningTable",
    "CounterTop",
)
#: The appliance each state-changing task needs (the domain cleans in SinkBasin only).
APPLIANCE = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
ABILITY = {
    "pick_clean_then_place_in_recep": "Cleanable",
    "pick_heat_then_place_in_recep": "Heatable",
    "pick_cool_then_place_in_recep": "Coolable",
}
#: Goal receptacles that make a task odd, per task type.
ODD_PARENTS = {
    "pick_and_place_simple": frozenset(),
    "pick_two_obj_and_place": frozenset({"GarbageCan"}),
    "pick_clean_then_place_in_recep": frozenset({"GarbageCan", "SinkBasin", "BathtubBasin"}),
    "pick_heat_then_place_in_recep": frozenset({"GarbageCan", "Microwave", "Fridge"}),
    "pick_cool_then_place_in_recep": frozenset({"GarbageCan", "Fridge", "Microwave"}),
}
#: Receptacle types with more than one instance when a room lacks their poses.
SYNTHESISED_COUNT = {"StoveBurner": 4}
GARBAGE_WEIGHT = 0.1
MAX_INSTANCES = C.MAX_NUM_OF_OBJ_INSTANCES
#: Scenes tried for one task instance before moving to another instance.
MAX_ATTEMPTS = 25
#: Task instances tried for one game before giving up.
MAX_TASK_INSTANCES = 4
#: Floor plans held out for valid_unseen.
UNSEEN_FLOORPLANS = frozenset(C.TEST_SCENE_NUMBERS)


@dataclass(frozen=True)
class FloorPlan:
    number: int
    room: str
    object_types: tuple[str, ...]
    receptacle_poses: Mapping[str, tuple[float, float, int, int]]  # THOR id -> (x, z, rotation, horizon)
    free_points: tuple[tuple[float, float], ...]

    @functools.cached_property
    def receptacle_types(self) -> frozenset[str]:
        listed = {_receptacle_type(rid) for rid in self.receptacle_poses}
        return frozenset((listed | set(self.object_types)) & RECEPTACLE_TYPES)


@dataclass(frozen=True)
class Goal:
    task_type: str
    object_target: str
    parent_target: str = ""
    toggle_target: str = ""

    @property
    def pddl_params(self) -> dict[str, Any]:
        return {
            "object_target": self.object_target,
            "parent_target": self.parent_target,
            "toggle_target": self.toggle_target,
            "mrecep_target": "",
            "object_sliced": False,
        }


@dataclass(frozen=True)
class Scene:
    floorplan: int
    receptacles: Mapping[str, tuple[str, str]]  # THOR id -> (type, location)
    objects: Mapping[str, str]  # THOR id -> type
    placement: Mapping[str, str]  # object id -> receptacle id
    agent_location: str


def _receptacle_type(thor_id: str) -> str:
    # 'Sink|-01.90|+00.97|-01.50|SinkBasin' -> 'SinkBasin'; 'Cabinet|+00.68|+00.50|-02.20' -> 'Cabinet'
    parts = thor_id.split("|")
    return parts[-1] if len(parts) > 4 else parts[0]


def _location(x: float, z: float, rotation: int, horizon: int) -> str:
    # ALFWorld's location names: grid coordinates (0.25 m steps), rotation and camera horizon.
    return f"loc|{round(x / 0.25)}|{round(z / 0.25)}|{int(rotation)}|{int(horizon)}"


def _escape(name: str) -> str:
    """Escape a THOR id as ALFWorld's ``augment_pddl_states.fix_pddl_str_chars`` does."""
    for char, word in (("-", "_minus_"), ("|", "_bar_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_")):
        name = name.replace(char, word)
    return name


def _room(number: int) -> str:
    for room, numbers in C.SCENE_TYPE.items():
        if number in numbers:
            return room
    raise ValueError(f"floor plan {number} has no room type in alfworld.gen.constants.SCENE_TYPE")


@functools.cache
def floorplan_numbers() -> tuple[int, ...]:
    """The floor plans the wheel ships layouts for."""
    found = (re.fullmatch(r"FloorPlan(\d+)-objects\.json", p.name) for p in LAYOUTS_DIR.iterdir())
    return tuple(sorted(int(m.group(1)) for m in found if m))


@functools.cache
def load_floorplan(number: int) -> FloorPlan:
    stem = LAYOUTS_DIR / f"FloorPlan{number}"
    object_types = json.loads(Path(f"{stem}-objects.json").read_text())
    poses = json.loads(Path(f"{stem}-openable.json").read_text())
    grid = np.load(f"{stem}-layout.npy")
    return FloorPlan(
        number=number,
        room=_room(number),
        object_types=tuple(sorted(set(object_types))),
        receptacle_poses={rid: tuple(pose) for rid, pose in sorted(poses.items())},
        free_points=tuple((float(x), float(z)) for x, z in grid.tolist()),
    )


def split_floorplans(split: str) -> tuple[int, ...]:
    """Floor plans of a split: the held-out test scenes for valid_unseen, the others else."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    unseen = split == "valid_unseen"
    return tuple(n for n in floorplan_numbers() if (n in UNSEEN_FLOORPLANS) == unseen)


def _holders(object_type: str, receptacle_types: frozenset[str]) -> list[str]:
    return sorted(r for r in receptacle_types if object_type in C.VAL_RECEPTACLE_OBJECTS[r])


def _start_exclusions(goal: Goal) -> frozenset[str]:
    """Receptacle types the goal's target objects must not start in."""
    excluded = {goal.parent_target} if goal.parent_target else set()
    if goal.task_type in APPLIANCE:
        excluded.add(APPLIANCE[goal.task_type])
    return frozenset(excluded)


@functools.cache
def candidate_goals(number: int, task_type: str) -> tuple[Goal, ...]:
    """The sensible goals of ``task_type`` in floor plan ``number`` (see the module docstring)."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")
    plan = load_floorplan(number)
    if plan.room not in C.GOALS_VALID[task_type]:
        return ()
    rtypes = plan.receptacle_types
    portable = [o for o in plan.object_types if o in PORTABLE_TYPES and _holders(o, rtypes)]
    goals: list[Goal] = []
    if task_type == "look_at_obj_in_light":
        if any(h in rtypes for h in LAMP_HOLDERS):
            lamps = [lamp for lamp in LAMP_TYPES if lamp in plan.object_types]
            goals = [Goal(task_type, o, toggle_target=lamp) for o in portable for lamp in lamps]
        return tuple(goals)
    appliance = APPLIANCE.get(task_type)
    if appliance and appliance not in rtypes:
        return ()
    for obj in portable:
        if task_type in ABILITY and obj not in C.VAL_ACTION_OBJECTS[ABILITY[task_type]]:
            continue
        for parent in _holders(obj, rtypes):
            if parent in ODD_PARENTS[task_type]:
                continue
            goal = Goal(task_type, obj, parent_target=parent)
            starts = set(_holders(obj, rtypes)) - _start_exclusions(goal) - {"GarbageCan"}
            if starts:
                goals.append(goal)
    return tuple(goals)


def sample_scene(number: int, goal: Goal, rng: random.Random) -> Scene:
    """Receptacles, objects and their starting receptacles for a game of ``goal`` in a floor plan."""
    plan = load_floorplan(number)
    receptacles: dict[str, tuple[str, str]] = {}
    for rid, (x, z, rotation, horizon) in plan.receptacle_poses.items():
        rtype = _receptacle_type(rid)
        if rtype in RECEPTACLE_TYPES:
            receptacles[rid] = (rtype, _location(x, z, rotation, horizon))

    points = list(plan.free_points)
    rng.shuffle(points)
    listed = {rtype for rtype, _ in receptacles.values()}
    for rtype in sorted(plan.receptacle_types - listed):
        for _ in range(SYNTHESISED_COUNT.get(rtype, 1)):
            x, z = points.pop()
            coordinates = f"{x:+06.2f}|{0.9:+06.2f}|{z:+06.2f}"
            # THOR names basins '<Sink|Bathtub>|x|y|z|<Type>Basin'; AlfredDemangler relies on it.
            rid = (
                f"{rtype[: -len('Basin')]}|{coordinates}|{rtype}"
                if rtype.endswith("Basin")
                else f"{rtype}|{coordinates}"
            )
            receptacles[rid] = (rtype, _location(x, z, rng.choice((0, 90, 180, 270)), 30))

    taken = {location for _, location in receptacles.values()}
    agent_location = next(
        loc for loc in (_location(x, z, 0, 30) for x, z in reversed(points)) if loc not in taken
    )

    by_type: dict[str, list[str]] = {}
    for rid, (rtype, _) in sorted(receptacles.items()):
        by_type.setdefault(rtype, []).append(rid)
    objects: dict[str, str] = {}
    placement: dict[str, str] = {}

    def add(object_type: str, receptacle: str) -> None:
        while True:
            oid = f"{object_type}|{rng.uniform(-3, 3):+06.2f}|{rng.uniform(0.2, 1.8):+06.2f}|{rng.uniform(-3, 3):+06.2f}"
            if oid not in objects:
                break
        objects[oid] = object_type
        placement[oid] = receptacle

    for lamp in LAMP_TYPES:
        if lamp in plan.object_types:
            holders = [rid for rtype in LAMP_HOLDERS for rid in by_type.get(rtype, [])]
            if holders:
                add(lamp, rng.choice(holders))

    excluded = _start_exclusions(goal)
    for object_type in plan.object_types:
        if object_type not in PORTABLE_TYPES:
            continue
        is_target = object_type == goal.object_target
        allowed = [
            r for r in _holders(object_type, plan.receptacle_types) if not (is_target and r in excluded)
        ]
        holders = [rid for rtype in allowed for rid in by_type[rtype]]
        if not holders:
            continue
        weights = [GARBAGE_WEIGHT if receptacles[rid][0] == "GarbageCan" else 1.0 for rid in holders]
        count = rng.randint(1, MAX_INSTANCES)
        if is_target and goal.task_type == "pick_two_obj_and_place":
            count = max(count, 2)
        for _ in range(count):
            add(object_type, rng.choices(holders, weights)[0])

    return Scene(number, receptacles, objects, placement, agent_location)


def pddl_problem(scene: Scene, goal: Goal, name: str) -> str:
    """The PDDL problem of a scene and goal, in the form of ALFWorld's game files."""
    otypes = sorted((set(C.OBJECTS) | C.MOVABLE_RECEPTACLES_SET) - set(C.STATIC_RECEPTACLES))
    rtypes = sorted(C.STATIC_RECEPTACLES)
    locations = sorted({loc for _, loc in scene.receptacles.values()} | {scene.agent_location})
    objects = sorted(scene.objects.items())
    receptacles = sorted(scene.receptacles.items())

    declared = ["agent1 - agent"]
    declared += [f"{t}Type - otype" for t in otypes]
    declared += [f"{t}Type - rtype" for t in rtypes]
    declared += [f"{_escape(o)} - object" for o, _ in objects]
    declared += [f"{_escape(r)} - receptacle" for r, _ in receptacles]
    declared += [f"{_escape(loc)} - location" for loc in locations]

    facts = [f"(atLocation agent1 {_escape(scene.agent_location)})"]
    for rid, (rtype, location) in receptacles:
        facts.append(f"(receptacleType {_escape(rid)} {rtype}Type)")
        facts.append(f"(receptacleAtLocation {_escape(rid)} {_escape(location)})")
        if rtype in C.OPENABLE_CLASS_SET:
            facts.append(f"(openable {_escape(rid)})")
    present = set(scene.objects.values())
    for rtype in sorted({rtype for rtype, _ in scene.receptacles.values()}):
        facts += [
            f"(canContain {rtype}Type {o}Type)" for o in sorted(C.VAL_RECEPTACLE_OBJECTS[rtype] & present)
        ]
    abilities = (("cleanable", "Cleanable"), ("heatable", "Heatable"), ("coolable", "Coolable"),
                 ("toggleable", "Toggleable"), ("sliceable", "Sliceable"))  # fmt: skip
    for oid, otype in objects:
        name = _escape(oid)
        facts.append(f"(objectType {name} {otype}Type)")
        if otype in PORTABLE_TYPES:
            facts.append(f"(pickupable {name})")
        if otype in C.MOVABLE_RECEPTACLES_SET:
            facts.append(f"(isReceptacleObject {name})")
        facts += [
            f"({predicate} {name})" for predicate, key in abilities if otype in C.VAL_ACTION_OBJECTS[key]
        ]
        facts.append(f"(inReceptacle {name} {_escape(scene.placement[oid])})")

    goal_pddl = goal_library.gdict[goal.task_type]["pddl"].format(
        obj=goal.object_target, recep=goal.parent_target, toggle=goal.toggle_target, mrecep=""
    )
    # goal_library writes types as '?r # receptacle'; its text also closes the (define ...).
    goal_pddl = goal_pddl.replace("#", "-")
    lines = [f"(define (problem {_escape(name)})", "(:domain alfred)", "(:objects"]
    lines += [f"    {d}" for d in declared]
    lines += ["    )", "(:init"]
    lines += [f"    {f}" for f in facts]
    lines += ["    )", goal_pddl.strip()]
    return "\n".join(lines) + "\n"


def goal_sentence(goal: Goal, rng: random.Random) -> str:
    """A task sentence from the goal library's templates (ALFWorld's ``get_templated_task_desc``)."""
    template = rng.choice(goal_library.gdict[goal.task_type]["templates"])
    return template.format(
        obj=goal.object_target.lower(),
        recep=goal.parent_target.lower(),
        toggle=goal.toggle_target.lower(),
        mrecep="",
    )


@functools.cache
def _schedule(split: str) -> tuple[int, ...]:
    """One period of a split's type schedule (indices into ``TASK_TYPES``): a smooth weighted round robin."""
    weights = OFFICIAL_TYPE_COUNTS[split]
    total = sum(weights)
    credit = [0] * len(weights)
    period = []
    for _ in range(total):
        for t, weight in enumerate(weights):
            credit[t] += weight
        best = max(range(len(weights)), key=lambda t: (credit[t], -t))
        credit[best] -= total
        period.append(best)
    return tuple(period)


@functools.cache
def _positions(split: str, type_number: int) -> tuple[int, ...]:
    return tuple(i for i, t in enumerate(_schedule(split)) if t == type_number)


def _check_generated_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def task_type_of(split: str, index: int) -> str:
    """The task type of game ``index`` of ``split`` (a fixed schedule in the official proportions)."""
    _check_generated_split(split)
    period = _schedule(split)
    return TASK_TYPES[period[index % len(period)]]


def _rank_of(split: str, index: int) -> int:
    """How many games of the same type come before game ``index`` in ``split``."""
    period = _schedule(split)
    cycles, offset = divmod(index, len(period))
    type_number = period[offset]
    return cycles * OFFICIAL_TYPE_COUNTS[split][type_number] + period[:offset].count(type_number)


def _index_of(split: str, task_type: str, rank: int) -> int:
    """The index of the ``rank``-th game (from 0) of ``task_type`` in ``split``."""
    positions = _positions(split, TASK_TYPES.index(task_type))
    cycles, offset = divmod(rank, len(positions))
    return cycles * len(_schedule(split)) + positions[offset]


def seen_instance_source(index: int, fallback: int = 0) -> int:
    """The train game whose task instance ``valid_seen`` game ``index`` reuses (see :func:`task_instance`)."""
    task_type = task_type_of("valid_seen", index)
    type_count = OFFICIAL_TYPE_COUNTS["valid_seen"][TASK_TYPES.index(task_type)]
    return _index_of("train", task_type, _rank_of("valid_seen", index) + fallback * type_count)


def task_instance(seed: int, split: str, index: int, fallback: int = 0) -> tuple[int, Goal]:
    """The task instance ``(floor plan, goal)`` of game ``index`` of ``split`` (``fallback``: the n-th alternative).

    A ``valid_seen`` game takes the instance of a ``train`` game of its type: the k-th
    valid_seen game of a type that of the k-th train game of that type (the
    ``(k + fallback * c)``-th, with ``c`` the official valid_seen count of the type, for
    a fallback).
    """
    task_type = task_type_of(split, index)
    if split == "valid_seen":
        return task_instance(seed, "train", seen_instance_source(index, fallback))
    rng = random.Random(f"alfworld-gen/{GAMES_VERSION}/{seed}/{split}/{index}/instance/{fallback}")
    plans = [n for n in split_floorplans(split) if candidate_goals(n, task_type)]
    number = rng.choice(plans)
    return number, rng.choice(candidate_goals(number, task_type))


def make_task(seed: int, split: str, index: int, attempt: int = 0, fallback: int = 0) -> tuple[Task, int]:
    """Sample the unverified game ``index`` of ``split``: scene ``attempt`` of its instance; returns it and its floor plan."""
    number, goal = task_instance(seed, split, index, fallback)
    rng = random.Random(f"alfworld-gen/{GAMES_VERSION}/{seed}/{split}/{index}/{fallback}/{attempt}")
    scene = sample_scene(number, goal, rng)
    trial = f"trial_{split}_s{seed}_{index:05d}"
    folder = f"{goal.task_type}-{goal.object_target}-None-{goal.parent_target or goal.toggle_target}-{number}"
    task = Task(
        task_id=f"{folder}/{trial}",
        task_type=goal.task_type,
        pddl_params=goal.pddl_params,
        pddl_problem=pddl_problem(scene, goal, f"plan_{trial}"),
        goal=goal_sentence(goal, rng),
    )
    return task, number


@functools.cache
def _verifier() -> Engine:
    """One engine per (worker) process, reporting facts for the expert."""
    return Engine(facts=True)


def generate_game(
    seed: int, split: str, index: int, *, max_expert_steps: int = MAX_EXPERT_STEPS
) -> dict[str, Any]:
    """Game ``index`` of ``split`` for ``seed``, verified: a JSON-ready record of the compact format.

    Scenes of the game's task instance are sampled until the expert wins one within
    ``max_expert_steps``; after :data:`MAX_ATTEMPTS` failures the next instance is tried.
    Raises ``RuntimeError`` if :data:`MAX_TASK_INSTANCES` instances all fail.
    """
    for fallback in range(MAX_TASK_INSTANCES):
        for attempt in range(MAX_ATTEMPTS):
            task, number = make_task(seed, split, index, attempt, fallback)
            walkthrough = expert_walkthrough(_verifier(), task, max_steps=max_expert_steps)
            if walkthrough is not None:
                return {
                    "task_id": task.task_id,
                    "task_type": task.task_type,
                    "floorplan": number,
                    "pddl_params": dict(task.pddl_params),
                    "goal": task.goal,
                    "walkthrough": list(walkthrough),
                    "pddl_problem": task.pddl_problem,
                }
        logger.warning(
            "seed=%d %s game %d: no scene of instance %d won within %d expert steps; trying another instance",
            seed, split, index, fallback, max_expert_steps,
        )  # fmt: skip
    raise RuntimeError(
        f"no solvable game for seed={seed} split={split} index={index}: "
        f"{MAX_TASK_INSTANCES} task instances x {MAX_ATTEMPTS} scenes failed"
    )


def record_to_official(record: Mapping[str, Any], domain: str, grammar: str) -> tuple[dict, dict]:
    """``(traj_data.json, game.tw-pddl)`` contents of a record, in ALFWorld's data layout."""
    trial = record["task_id"].split("/")[1]
    traj_data = {
        "task_id": trial,
        "task_type": record["task_type"],
        "pddl_params": record["pddl_params"],
        "scene": {"floor_plan": f"FloorPlan{record['floorplan']}", "scene_num": record["floorplan"]},
        "turk_annotations": {"anns": [{"task_desc": record["goal"], "high_descs": [], "votes": []}]},
    }
    game = {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", record["goal"]),
        "pddl_problem": record["pddl_problem"],
        "solvable": True,
        "walkthrough": record["walkthrough"],
    }
    return traj_data, game
