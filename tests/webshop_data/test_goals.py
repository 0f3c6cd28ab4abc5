"""Goals: WebShop's synthetic and human goals, price rule, weights, shuffle and splits."""

from __future__ import annotations

import itertools
import random

import pytest

from servers.webshop import goals
from servers.webshop.goals import (
    charged_price,
    draw_price_upper,
    price_text,
    shuffle_permutation,
    split_range,
)

GOAL_KEYS = {"asin", "category", "query", "name", "product_category", "instruction_text", "attributes",
             "price_upper", "goal_options", "weight"}


def test_shuffle_matches_webshops_global_random():
    items = [f"goal-{i}" for i in range(2000)]
    expected = list(items)
    random.seed(233)
    random.shuffle(expected)
    perm = shuffle_permutation(len(items))
    assert [items[i] for i in perm] == expected


@pytest.mark.parametrize(
    ("split", "n", "expected"),
    [("test", 6910, range(0, 500)), ("eval", 6910, range(500, 1500)), ("train", 6910, range(1500, 6910)),
     ("test", 300, range(0, 300)), ("eval", 300, range(300, 300)), ("train", 1200, range(1200, 1200)),
     ("eval", 1200, range(500, 1200))],
)
def test_splits(split, n, expected):
    assert split_range(split, n) == expected


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        split_range("dev", 10)


def test_price_upper_rule():
    rng = random.Random(0)
    # candidates above 32.5: 40, 50, 60, 70 -> the larger of two distinct draws: 50, 60 or 70
    draws = {draw_price_upper(32.5, rng) for _ in range(200)}
    assert draws == {50.0, 60.0, 70.0}
    assert {draw_price_upper(10.0, rng) for _ in range(200)} == {30.0, 40.0, 50.0}  # strictly above 10
    assert draw_price_upper(975.0, rng) == 990.0  # exactly two candidates: 980 and 990
    assert draw_price_upper(985.0, rng) is None  # one candidate: no price constraint
    assert price_text(70.0) == ", and price lower than 70.00 dollars"
    assert price_text(goals.NO_PRICE_LIMIT) == ""


def test_charged_price_is_seeded():
    assert charged_price("B1", [19.99], 0) == 19.99
    drawn = charged_price("B1", [10.0, 20.0], 0)
    assert 10.0 <= drawn <= 20.0
    assert charged_price("B1", [10.0, 20.0], 0) == drawn
    assert charged_price("B1", [10.0, 20.0], 1) != drawn
    assert charged_price("B2", [10.0, 20.0], 0) != drawn


# --- goals of the real-schema fixture ------------------------------------------------------------------------


def test_synthetic_goals_of_the_fixture(real_world_synthetic):
    world = real_world_synthetic
    assert world.goal_kind == "synthetic"
    all_goals = list(world.goals)
    # perfume: 2 sizes; henley: 2 colours x 3 sizes; tv stand: no options -> 1; bacon has no instruction
    by_asin = {a: [g for g in all_goals if g["asin"] == a] for a in {g["asin"] for g in all_goals}}
    assert {a: len(g) for a, g in by_asin.items()} == {"B09QKP7XQL": 2, "B07ZJ3PQ2R": 6, "B08L5TNJHG": 1}
    for g in all_goals:
        assert set(g) == GOAL_KEYS
    henley = by_asin["B07ZJ3PQ2R"]
    assert sorted(tuple(g["goal_options"].items()) for g in henley) == sorted(
        (("color", c), ("size", s))
        for c, s in itertools.product(["navy blue", "heather grey | white"], ["medium", "large", "x-large"])
    )
    g = henley[0]
    assert g["instruction_text"] == (
        "Find me machine wash men's henleys with classic fit, short sleeve with color: "
        f"{g['goal_options']['color']}, and size: {g['goal_options']['size']}, and price lower than "
        f"{g['price_upper']:.2f} dollars"
    )
    price = world.price("B07ZJ3PQ2R")
    assert 12.99 <= price <= 25.5
    candidates = [p for p in goals.PRICE_RANGE if p > price][:4]
    assert g["price_upper"] in candidates[1:]  # the larger of two distinct candidates
    assert len({x["price_upper"] for x in henley}) == 1  # one draw per product
    tv = by_asin["B08L5TNJHG"][0]
    assert tv["goal_options"] == {} and tv["price_upper"] == goals.NO_PRICE_LIMIT
    assert tv["instruction_text"] == "Find me wall mounted, easy install tv stands for living room"
    # weight = mean over attributes of 1 / (number of goals with the attribute)
    assert by_asin["B09QKP7XQL"][0]["weight"] == pytest.approx(0.5)
    assert henley[0]["weight"] == pytest.approx(1 / 6)
    assert tv["weight"] == pytest.approx(1.0)
    assert list(world.goal_weights) == [g["weight"] for g in all_goals]


def test_human_goals_of_the_fixture(real_world):
    world = real_world
    assert world.goal_kind == "human"
    all_goals = list(world.goals)
    assert len(all_goals) == 3  # the henley instruction without attributes is skipped
    perfume = next(g for g in all_goals if g["asin"] == "B09QKP7XQL")
    assert perfume["goal_options"] == ["6.76 fl oz (pack of 1)"]
    assert perfume["instruction_text"].startswith("i need a long lasting 6.76 fl oz bottle of women's perfume, and")
    assert perfume["query"] == "women's fragrance"
    assert all(g["weight"] == 1.0 for g in all_goals)
    assert set(world.goal_weights) == {1.0}


def test_goal_list_indexing(real_world_synthetic):
    g = real_world_synthetic.goals
    assert g[-1] == g[len(g) - 1]
    assert g[1:3] == [g[1], g[2]]
    with pytest.raises(IndexError, match="out of range"):
        g[len(g)]
    with pytest.raises(TypeError):
        g["0"]


def test_goal_order_is_the_shuffle_of_webshops_order(real_world_synthetic):
    # WebShop's unshuffled order: products in file order, combinations in itertools.product order.
    world = real_world_synthetic
    unshuffled = []
    for asin in ["B09QKP7XQL", "B07ZJ3PQ2R", "B08L5TNJHG"]:
        options = world.product(asin)["options"]
        names = sorted(options)
        unshuffled += [(asin, dict(zip(names, combo, strict=True)))
                       for combo in itertools.product(*(options[n] for n in names))]
    random.seed(233)
    random.shuffle(unshuffled)
    assert [(g["asin"], g["goal_options"]) for g in world.goals] == unshuffled


def test_ground_truth_scores_one_for_every_generated_goal(world):
    assert len(world.goals) > 300
    for g in world.goals:
        total, info = world.reward(g["asin"], g["goal_options"], g)
        assert total == 1.0, (g, info)


def test_ground_truth_scores_one_for_human_goals(real_world):
    for g in real_world.goals:
        product = real_world.product(g["asin"])
        chosen = {name: next((v for v in values if v in g["goal_options"]), values[0])
                  for name, values in product["options"].items()}
        assert real_world.reward(g["asin"], chosen, g)[0] == 1.0


def test_wrong_options_or_product_score_less(world):
    g = next(g for g in world.goals if g["goal_options"])
    wrong = {k: "no such value" for k in g["goal_options"]}
    assert world.reward(g["asin"], wrong, g)[0] < 1.0
    other = next(a for a in world.search(g["instruction_text"]) if a != g["asin"])
    assert world.reward(other, g["goal_options"], g)[0] < 1.0
