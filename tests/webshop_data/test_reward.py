"""WebShop's reward on hand-built cases: every component and threshold."""

from __future__ import annotations

import pytest
from rapidfuzz import fuzz

from servers.webshop import reward
from servers.webshop.reward import (
    attribute_reward,
    fuzz_score,
    get_reward,
    normalize_color,
    nouns,
    option_reward,
    type_reward,
)


def product(**overrides):
    base = {
        "asin": "B000000001",
        "name": "Red Running Shoes for Men",
        "Title": "Red Running Shoes for Men",
        "query": "men's athletic shoes",
        "product_category": "Clothing, Shoes & Jewelry › Men › Shoes › Athletic Shoes",
        "Attributes": ["rubber sole", "lace up"],
        "BulletPoints": ["Breathable mesh upper", "Cushioned insole"],
        "Description": "Lightweight trainers with a non slip outsole.",
    }
    base.update(overrides)
    if "name" in overrides and "Title" not in overrides:
        base["Title"] = overrides["name"]
    return base


def goal(**overrides):
    base = {
        "asin": "B000000001",
        "query": "men's athletic shoes",
        "product_category": "Clothing, Shoes & Jewelry › Men › Shoes › Athletic Shoes",
        "name": "Red Running Shoes for Men",
        "attributes": ["rubber sole"],
        "goal_options": {"color": "red", "size": "10"},
        "price_upper": 50.0,
    }
    base.update(overrides)
    return base


# --- fuzzy matching as thefuzz 0.19 computes it -------------------------------------------------------------


def test_fuzz_score_processes_like_thefuzz():
    assert fuzz_score("Long-Lasting!", "long lasting") == 100  # punctuation -> space, lowercased
    assert fuzz.token_set_ratio("Long-Lasting!", "long lasting") < 100  # raw rapidfuzz would differ
    assert fuzz_score("", "long lasting") == 0
    assert fuzz_score("!!!", "long lasting") == 0  # nothing left after processing
    assert reward._fuzz_process("Crème Brûlée") == "crme brle"  # Latin-1 128-255 dropped (force_ascii)
    assert fuzz_score(("size", "x-large"), "x-large") == 100  # a tuple is compared as its str()


def test_fuzz_score_rounds_before_the_threshold():
    # 26 common characters of 30 + 31: 2 * 26 / 61 = 85.25 -> thefuzz rounds to 85, which is not > 85.
    a, b = "a" * 26 + "bcde", "a" * 26 + "fghij"
    assert 85 < fuzz.token_set_ratio(a, b) < 85.5
    assert fuzz_score(a, b) == 85
    # 85.71 rounds to 86: WebShop counts 'machine wash' as a match for 'machine washable'.
    assert fuzz_score("machine wash", "machine washable") == 86


# --- type reward: 1.0 / 0.5 / 0.1 / 0.0 ----------------------------------------------------------------------


def test_nouns_from_spacy():
    assert nouns("Red Running Shoes for Men") == ("red", "running", "shoes", "men")
    assert nouns("quick") == ()


def test_type_reward_full_match():
    r = type_reward(product(), goal())
    assert r == {"r_type": 1.0, "query_match": True, "category_match": True, "title_score": 1.0}


def test_type_reward_title_score_above_point_two_is_enough():
    # goal nouns: red, running, shoes, men; bought: blue, running, shoes -> 2/4
    r = type_reward(product(name="Blue running shoes", query="other", product_category="A › B"), goal())
    assert r["title_score"] == 0.5
    assert not r["query_match"] and not r["category_match"]
    assert r["r_type"] == 1.0


GOAL5 = "Shampoo Conditioner Lotion Brush Comb"  # 5 nouns
GOAL11 = "Shampoo Conditioner Lotion Brush Comb Towel Mirror Razor Soap Sponge Bag"  # 11 nouns


def test_type_reward_exactly_point_two_without_query_or_category_is_half():
    r = type_reward(product(name="Lotion", query="x", product_category="A › B"), goal(name=GOAL5))
    assert r["title_score"] == pytest.approx(0.2)
    assert r["r_type"] == 0.5


def test_type_reward_point_two_with_query_or_category_match_is_one():
    r = type_reward(product(name="Lotion", product_category="A › B"), goal(name=GOAL5))
    assert r["query_match"] and r["r_type"] == 1.0
    r = type_reward(product(name="Lotion", query="x", product_category="X › Men › Shoes"), goal(name=GOAL5))
    assert r["category_match"] and r["r_type"] == 1.0  # 'Men' and 'Shoes' shared: 2 parts


def test_type_reward_one_shared_category_part_is_no_match():
    r = type_reward(product(name="Lotion", query="x", product_category="X › Shoes"), goal(name=GOAL5))
    assert not r["category_match"] and r["r_type"] == 0.5


def test_type_reward_below_point_one_is_point_one_even_with_query_match():
    r = type_reward(product(name="Towel"), goal(name=GOAL11))
    assert r["title_score"] == pytest.approx(1 / 11)
    assert r["query_match"] and r["r_type"] == 0.1


def test_type_reward_no_shared_noun_is_zero():
    r = type_reward(product(name="Towel"), goal(name=GOAL5))
    assert r["title_score"] == 0.0 and r["r_type"] == 0.0


def test_type_reward_goal_without_nouns_scores_point_two():
    r = type_reward(product(query="x", product_category="A › B"), goal(name="quick"))
    assert r["title_score"] == 0.2 and r["r_type"] == 0.5
    assert type_reward(product(), goal(name="quick"))["r_type"] == 1.0


def test_type_reward_counts_repeated_goal_nouns():
    # WebShop divides by the number of noun tokens of the goal, repeats included.
    r = type_reward(product(name="Towel"), goal(name="Towel Towel Bag"))
    assert nouns("Towel Towel Bag") == ("towel", "towel", "bag")
    assert r["title_score"] == pytest.approx(1 / 3)


# --- attributes: fuzzy > 85 on Attributes, else substring of title / bullets / description ------------------


def test_attribute_fuzzy_match_on_product_attributes():
    share, matched = attribute_reward(product(Attributes=["Rubber-Sole"]), ["rubber sole"])
    assert share == 1.0 and matched == ["rubber sole"]


def test_attribute_fuzzy_threshold():
    a, b = "a" * 26 + "bcde", "a" * 26 + "fghij"  # scores 85: not a match
    assert attribute_reward(product(Attributes=[a]), [b])[0] == 0.0
    assert attribute_reward(product(Attributes=["machine washable"]), ["machine wash"])[0] == 1.0  # 86


@pytest.mark.parametrize(
    ("field", "value"),
    [("Title", "Shoes with a Non Slip sole"), ("BulletPoints", ["x", "Non slip grip"]),
     ("Description", "Great NON SLIP outsole")],
)
def test_attribute_substring_fallback(field, value):
    p = product(Attributes=["DUMMY_ATTR"], Description="", BulletPoints=[], Title="Shoes")
    p[field] = value
    assert attribute_reward(p, ["non slip"]) == (1.0, ["non slip"])


def test_attribute_substring_is_case_sensitive_on_the_goal_side():
    # WebShop lowercases the product text, not the goal attribute.
    p = product(Attributes=[], Title="non slip shoes")
    assert attribute_reward(p, ["Non Slip"])[0] == 0.0


def test_attribute_partial_share():
    share, matched = attribute_reward(product(), ["rubber sole", "waterproof", "lace up"])
    assert share == pytest.approx(2 / 3) and matched == ["rubber sole", "lace up"]


# --- options: colour normalisation then fuzzy > 85 ---------------------------------------------------------


def test_normalize_color_first_colour_in_webshop_order():
    assert normalize_color("navy blue") == "blue"  # 'blue' comes before 'navy' in WebShop's list
    assert normalize_color("dark grey heather") == "dark"
    assert normalize_color("x-large") == "x-large"
    assert normalize_color(("color", "red")) == "red"  # tuple: element equality
    assert normalize_color(("color", "navy blue")) == ("color", "navy blue")


def test_option_colour_normalisation_makes_shades_match():
    # 'navy blue' -> 'blue' on both sides; 'royal blue' (goal) -> 'blue'
    assert option_reward(["navy blue"], ["royal blue"]) == (1.0, ["royal blue"])
    assert fuzz_score("navy blue", "royal blue") < 85  # without normalisation they would not match


def test_option_without_colour_uses_fuzzy_match():
    assert option_reward(["x-large", "red"], ["x large"])[0] == 1.0
    assert option_reward(["small"], ["x-large"])[0] == 0.0


def test_synthetic_goal_options_are_name_value_tuples():
    # ('size', 'x-large') is compared as 'size x large': all tokens of the value are in it -> 100
    share, matched = option_reward(["x-large", "red"], [("size", "x-large"), ("color", "red")])
    assert share == 1.0 and matched == [("size", "x-large"), ("color", "red")]
    # a tuple whose value is not exactly a colour is not normalised: 'heather grey | white' vs
    # ('color', 'navy blue'): no shared token
    assert option_reward(["heather grey | white"], [("color", "navy blue")])[0] == 0.0


def test_no_goal_options_gives_none():
    assert option_reward(["red"], []) == (None, [])


# --- price and total ----------------------------------------------------------------------------------------


def test_price_boundary_is_inclusive():
    g = goal()
    assert get_reward(product(), g, 50.0, {"color": "red", "size": "10"})[1]["r_price"] is True
    total, info = get_reward(product(), g, 50.01, {"color": "red", "size": "10"})
    assert info["r_price"] is False
    assert total == pytest.approx((1 + 2 + 0) / 4)


def test_total_formula_and_weights():
    g = goal(attributes=["rubber sole", "waterproof"], goal_options={"color": "red", "size": "10"})
    total, info = get_reward(product(), g, 20.0, {"color": "red", "size": "9"})
    # attrs 1/2, options 1/2 (only red), price 1 -> (1 + 1 + 1) / (2 + 2 + 1), r_type 1
    assert total == pytest.approx(3 / 5)
    assert info["r_att"] == 0.5 and info["r_option"] == 0.5 and info["r_price"] is True
    assert info["w_att"] == pytest.approx(2 / 5) and info["w_option"] == pytest.approx(2 / 5)
    assert info["w_price"] == pytest.approx(1 / 5)
    assert info["matched_attributes"] == ["rubber sole"] and info["matched_options"] == ["color red"]
    assert info["spacy_model"].startswith("en_core_web_sm")


def test_total_is_scaled_by_r_type():
    g = goal(name=GOAL5, query="other", product_category="A › B")
    total, info = get_reward(product(name="Lotion"), g, 20.0, {"color": "red", "size": "10"})
    assert info["r_type"] == 0.5
    assert total == pytest.approx(1.0 * 0.5)


def test_human_goal_options_are_a_list():
    g = goal(goal_options=["red", "size 10"])
    total, info = get_reward(product(), g, 20.0, {"color": "red", "size": "10"})
    assert info["r_option"] == 1.0 and total == 1.0


def test_goal_without_options_has_no_option_component():
    total, info = get_reward(product(), goal(goal_options={}), 20.0, {})
    assert "r_option" not in info and total == 1.0


def test_exact_match_scores_exactly_one():
    total, info = get_reward(product(), goal(), 49.99, {"color": "red", "size": "10"})
    assert total == 1.0 and info["r_type"] == 1.0
