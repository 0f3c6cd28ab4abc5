"""The offline catalogue generator and the vocabulary derived from WebShop's items_ins_v2_1000.json."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from servers.webshop import generator
from servers.webshop.catalogue import parse_pricing, process_product
from servers.webshop.reward import fuzz_score, normalize_color
from servers.webshop.vocab.derive import TAXONOMY, parse_instruction

RAW_KEYS = {"asin", "name", "full_description", "small_description", "pricing", "images", "product_category",
            "category", "query", "customization_options", "average_rating"}
CATEGORIES = {"beauty", "food", "fashion", "furniture", "electronics"}


@pytest.fixture(scope="module")
def sample():
    return list(generator.generate_catalogue(3000, seed=11))


def test_deterministic_and_prefix_stable(sample):
    assert list(generator.generate_catalogue(50, seed=11)) == sample[:50]
    assert generator.generate_product(11, 2999) == sample[2999]
    assert list(generator.generate_catalogue(50, seed=12)) != sample[:50]


def test_raw_schema(sample):
    for raw, ins in sample:
        assert set(raw) == RAW_KEYS
        assert re.fullmatch(r"B0[0-9A-Z]{8}", raw["asin"])
        assert raw["category"] in CATEGORIES
        assert raw["product_category"].endswith(raw["product_category"].split(" › ")[-1])
        assert len(raw["product_category"].split(" › ")) >= 2
        assert isinstance(raw["small_description"], list) and raw["small_description"]
        assert 1 <= len(parse_pricing(raw["pricing"])) <= 2 and raw["pricing"].startswith("$")
        options = raw["customization_options"]
        assert options is None or all(v and all(set(x) == {"value", "image"} for x in v) for v in options.values())
        assert ins["attributes"] and set(ins) <= {"attributes", "instruction", "instruction_attributes"}
    assert len({raw["asin"] for raw, _ in sample}) == len(sample)
    assert {raw["category"] for raw, _ in sample} == CATEGORIES


def test_vocabulary_is_webshops(sample):
    vocab = generator.load_vocab()
    for raw, ins in sample:
        leaf = vocab["leaves"][raw["query"]]
        assert raw["category"] == leaf["category"]
        assert raw["product_category"] == leaf["product_category"]
        assert set(ins["attributes"]) <= set(vocab["attribute_slots"])


def test_instructions_are_written_like_webshops(sample):
    slots = generator.load_vocab()["attribute_slots"]
    with_instruction = [(raw, ins) for raw, ins in sample if "instruction" in ins]
    assert abs(len(with_instruction) / len(sample) - generator.INSTRUCTION_SHARE) < 0.03
    for raw, ins in with_instruction:
        attrs = ins["instruction_attributes"]
        assert 1 <= len(attrs) <= 4 and set(attrs) <= set(ins["attributes"])
        leaf, parsed = parse_instruction(ins["instruction"], attrs)
        assert leaf == raw["query"]
        assert parsed == {a: slots[a] for a in attrs}


def test_goal_attributes_are_in_the_product_text(sample):
    """Search can find a goal's product: each instruction attribute is in its indexed text."""
    for raw, ins in sample[:500]:
        assert all(a in raw["full_description"].lower() for a in ins.get("instruction_attributes", []))


def test_goals_per_instruction_product(sample):
    """WebShop's 1k subset has 6,910 goals for 415 instruction products: about 17 each."""
    combos = []
    for raw, ins in sample:
        if "instruction" in ins:
            options = process_product(raw, ins)["options"]
            n = 1
            for values in options.values():
                n *= len(values)
            combos.append(n)
    mean = sum(combos) / len(combos)
    assert 8 <= mean <= 30


def test_option_values_survive_webshops_colour_normalisation():
    """A generated goal must reach 1.0: the bought value has to match its own (name, value) goal option."""
    names_of_tables = ["_CLOTHING_SIZES", "_SHOE_SIZES", "_WAIST_SIZES", "_BED_SIZES", "_TEXTILE_SIZES",
                       "_FURNITURE_SIZES", "_BEAUTY_SIZES", "_SCENTS", "_FLAVORS", "_FOOD_SIZES",
                       "_ELECTRONIC_STYLES", "_CAPACITIES", "_LENGTHS"]
    tables = [getattr(generator, n) for n in names_of_tables] + list(generator._COLORS.values())
    names = ["color", "size", "scent", "flavor name", "style", "capacity"]
    for table in tables:
        for value in table:
            v = value.strip().replace("/", " | ").lower()
            for name in names:
                assert fuzz_score(normalize_color(v), normalize_color((name, v))) > 85, (name, v)


def test_asins_are_distinct_and_stable():
    asins = {generator.make_asin(0, i) for i in range(20_000)}
    assert len(asins) == 20_000
    assert generator.make_asin(0, 5) == generator.make_asin(0, 5) != generator.make_asin(1, 5)


def test_category_mix(sample):
    counts = Counter(raw["category"] for raw, _ in sample)
    assert min(counts.values()) / len(sample) > 0.05


# --- the vocabulary ------------------------------------------------------------------------------------------


def test_vocab_file_and_licence():
    vocab = generator.load_vocab()
    assert (generator.VOCAB_PATH.parent / "LICENSE-WebShop.md").read_text().startswith("MIT License")
    assert "MIT" in vocab["source"]
    assert {leaf["category"] for leaf in vocab["leaves"].values()} == CATEGORIES
    assert len(vocab["leaves"]) > 150 and len(vocab["attribute_slots"]) > 500
    assert set(vocab["attribute_slots"].values()) == {"pre", "with", "for"}
    for name, leaf in vocab["leaves"].items():
        assert leaf["attributes"] and leaf["nouns"], name
        assert name in TAXONOMY or "'s " in name


@pytest.mark.parametrize(
    ("text", "attrs", "leaf", "slots"),
    [
        ("Find me easy carry, high quality refillable containers with rose gold",
         ["easy carry", "high quality", "rose gold"], "refillable containers",
         {"easy carry": "pre", "high quality": "pre", "rose gold": "with"}),
        ("Find me non slip foot, hand & nail care for dry skin", ["non slip", "dry skin"],
         "foot, hand & nail care", {"non slip": "pre", "dry skin": "for"}),
        ("Find me hair loss products with coconut oil for hair loss", ["coconut oil", "hair loss"],
         "hair loss products", {"coconut oil": "with", "hair loss": "for"}),
        ("Find me women's slippers with faux fur, rubber sole", ["faux fur", "rubber sole"], "women's slippers",
         {"faux fur": "with", "rubber sole": "with"}),
    ],
)
def test_parse_instruction(text, attrs, leaf, slots):
    assert parse_instruction(text, attrs) == (leaf, slots)


def test_parse_instruction_rejects_other_text():
    with pytest.raises(ValueError, match="does not start with"):
        parse_instruction("I want shoes", [])


def test_vocab_json_is_valid_json():
    json.loads(generator.VOCAB_PATH.read_text(encoding="utf-8"))


def test_derive_from_a_small_file(tmp_path):
    from servers.webshop.vocab.derive import derive

    ins = {
        "B1": {"attributes": ["tea tree", "natural ingredients", "dead skin"],
               "instruction": "Find me scrubs & body treatments with tea tree for dead skin",
               "instruction_attributes": ["tea tree", "dead skin"]},
        "B2": {"attributes": ["easy carry", "rose gold"],
               "instruction": "Find me easy carry refillable containers with rose gold",
               "instruction_attributes": ["easy carry", "rose gold"]},
        "B3": {"attributes": ["rose gold", "leak proof"]},  # no instruction: joins refillable containers
        "B4": {"attributes": ["unrelated words"]},  # shares nothing: left out
    }
    path = tmp_path / "items_ins_v2_1000.json"
    path.write_text(json.dumps(ins), encoding="utf-8")
    vocab = derive(path)
    assert sorted(vocab["leaves"]) == ["refillable containers", "scrubs & body treatments"]
    containers = vocab["leaves"]["refillable containers"]
    assert containers["attributes"] == {"easy carry": 1, "leak proof": 1, "rose gold": 2}
    assert containers["category"] == "beauty"
    assert containers["product_category"].endswith("› Refillable Containers")
    assert vocab["attribute_slots"]["tea tree"] == "with" and vocab["attribute_slots"]["dead skin"] == "for"
    assert vocab["attribute_slots"]["easy carry"] == "pre"
    assert "unrelated words" not in vocab["attribute_slots"]
    path.write_text(json.dumps({"B5": {"attributes": ["x"], "instruction": "Find me rocket engines",
                                       "instruction_attributes": []}}), encoding="utf-8")
    with pytest.raises(KeyError, match="rocket engines"):
        derive(path)
