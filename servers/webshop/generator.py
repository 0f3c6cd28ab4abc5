"""An offline WebShop catalogue, generated in WebShop's raw schema.

Product types (leaves), their categories and paths, their attributes and where attributes sit in an
instruction come from ``vocab/vocab.json``, derived from WebShop's ``items_ins_v2_1000.json`` (MIT; see
``vocab/LICENSE-WebShop.md``). Titles, descriptions, bullet points, options and prices are composed from
templates. Each product is a pure function of ``(seed, index)``: the catalogue of size N is the first N
products of any larger catalogue with the same seed.

About 41.5% of products get a synthetic instruction (415 of WebShop's 1,000), written the way WebShop's
instructions are: ``Find me <attrs> <product type> with <attrs> for <attrs>``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from functools import cache, lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

# Bump when generated products change: it is part of the catalogue fingerprint.
GENERATOR_VERSION = 2

VOCAB_PATH = Path(__file__).parent / "vocab" / "vocab.json"
INSTRUCTION_SHARE = 0.415
NO_OPTIONS_SHARE = 0.08

_ASIN_SPACE = 36**8
_ASIN_STEP = 2_654_435_761  # odd and not a multiple of 3, so coprime with 36**8: index -> ASIN is one-to-one
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Price bands (dollars, drawn log-uniformly) and the share of products priced as a range, per category.
_PRICES = {
    "beauty": (4.0, 70.0, 0.10),
    "food": (3.0, 60.0, 0.08),
    "fashion": (8.0, 90.0, 0.40),
    "furniture": (20.0, 700.0, 0.15),
    "electronics": (6.0, 500.0, 0.12),
}

_COLORS = {
    "fashion": ["Black", "White", "Navy Blue", "Heather Grey", "Red", "Olive Green", "Khaki", "Burgundy",
                "Royal Blue", "Pink", "Beige", "Charcoal", "Light Blue", "Brown", "Black/White", "Grey/Black",
                "Army Green", "Purple", "Yellow", "Coral", "Dark Green", "Wine Red", "Leopard", "Multicolor"],
    "furniture": ["Espresso", "White", "Black", "Walnut", "Natural", "Grey", "Rustic Brown", "Oak",
                  "Navy Blue", "Beige", "Gold", "Green", "Black/Gold", "Cherry"],
    "electronics": ["Black", "White", "Silver", "Space Gray", "Blue", "Red", "Rose Gold", "Black/Red"],
    "beauty": ["Natural Beige", "Warm Ivory", "Rose Pink", "Nude", "Berry", "Coral", "Cocoa", "Classic Red",
               "Black", "Brown", "Blonde", "Platinum"],
}
_CLOTHING_SIZES = ["X-Small", "Small", "Medium", "Large", "X-Large", "XX-Large", "3X-Large"]
_SHOE_SIZES = ["6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12"]
_WAIST_SIZES = ["28W x 30L", "30W x 30L", "30W x 32L", "32W x 32L", "34W x 32L", "36W x 32L", "38W x 34L"]
_BED_SIZES = ["Twin", "Full", "Queen", "King", "California King"]
_TEXTILE_SIZES = ["18 x 18 Inch", "20 x 20 Inch", "50 x 60 Inch", "60 x 80 Inch", "52 x 84 Inch"]
_FURNITURE_SIZES = ["24 Inch", "30 Inch", "36 Inch", "40 Inch", "47 Inch", "55 Inch", "63 Inch"]
_BEAUTY_SIZES = ["0.5 Fl Oz (Pack of 1)", "1 Fl Oz (Pack of 1)", "1.7 Fl Oz (Pack of 1)", "3.4 Fl Oz (Pack of 1)",
                 "6.76 Fl Oz (Pack of 1)", "8 Fl Oz (Pack of 2)", "2 Ounce", "4 Ounce", "8 Ounce", "Pack of 3"]
_SCENTS = ["Lavender", "Unscented", "Coconut", "Vanilla", "Eucalyptus Mint", "Rose", "Tea Tree", "Citrus"]
_FLAVORS = ["Original", "Sea Salt", "Honey Roasted", "Spicy", "Barbecue", "Cheddar", "Chocolate",
            "Peanut Butter", "Vanilla", "Strawberry", "Mixed Berry", "Garlic & Herb", "Teriyaki",
            "Sweet & Salty", "Unsweetened", "Lemon"]
_FOOD_SIZES = ["1 Ounce (Pack of 12)", "2.5 Ounce (Pack of 6)", "4 Ounce (Pack of 2)", "6 Ounce (Pack of 4)",
               "8 Ounce (Pack of 1)", "12 Ounce (Pack of 3)", "16 Ounce (Pack of 1)", "12 Count", "24 Count",
               "1.5 Pound"]
_ELECTRONIC_STYLES = ["Regular", "Pro", "Bundle", "2-Pack", "With Remote", "Basic", "Plus"]
_CAPACITIES = ["32GB", "64GB", "128GB", "256GB", "512GB", "1TB", "2TB"]
_LENGTHS = ["3 Feet", "6 Feet", "10 Feet", "15 Feet", "25 Feet"]

_SHOE_WORDS = ("shoe", "sneaker", "boot", "sandal", "slipper", "loafer", "flats", "oxford", "pump", "mule",
               "clog", "footwear")
_WAIST_WORDS = ("jeans", "pants", "shorts")
_BED_WORDS = ("mattress", "bed", "bases")
_TEXTILE_WORDS = ("pillow", "blanket", "window")
_STORAGE_WORDS = ("mac", "flashes", "online game")
_CABLE_WORDS = ("cable", "charger", "power")

_SYLLABLES = ["lu", "mo", "ra", "ven", "ko", "zi", "ber", "nel", "sa", "tri", "ta", "do", "vi", "ex", "ar",
              "qu", "ly", "no", "fin", "pe", "ga", "hal", "or", "mi", "sto", "ne", "co", "ri", "bel", "xo"]
_SPECS = {
    "beauty": ["{size}", "{size}", "Travel Size", "Gift Set"],
    "food": ["{size}", "{size}", "Family Size", "Variety Pack"],
    "fashion": ["", "", "Regular & Big and Tall", "Plus Size"],
    "furniture": ["{dim}", "{dim}", "Set of 2", ""],
    "electronics": ["Model {model}", "{model}", "Upgraded Version", ""],
}
_DESCRIPTION_OPENERS = [
    "Meet the {brand} {noun}, made for everyday use.",
    "The {brand} {noun} is designed with you in mind.",
    "Upgrade your routine with this {noun} from {brand}.",
    "{brand} brings you a {noun} that simply works.",
]
_DESCRIPTION_ATTRS = {
    "pre": ["It is {attr}, so you can rely on it day after day.", "Every piece is {attr} and carefully checked.",
            "Our customers love that it is {attr}."],
    "with": ["Key features include {attr}.", "Customers searching for {attr} love it.",
             "It comes with {attr} for a better experience."],
    "for": ["Perfect for {attr}.", "A great choice for {attr}.", "Ideal for {attr} and more."],
}
_DESCRIPTION_CLOSERS = [
    "Satisfaction guaranteed: contact us with any question.",
    "Makes a thoughtful gift for family and friends.",
    "Order now and enjoy it for years to come.",
    "",
]
_BULLETS = {
    "pre": "{Attr}: this {noun} is {attr}, tested to meet our quality standards.",
    "with": "{Attr}: a popular pick among {noun} shoppers who want {attr}.",
    "for": "Made for {attr}: a {noun} you will reach for every day.",
}
_EXTRA_BULLETS = [
    "Package includes: 1 x {noun} and a user guide.",
    "Worry-free purchase: 30-day returns and friendly customer support.",
    "Size and fit: please check the size chart in the pictures before ordering.",
    "Care: wipe clean with a soft dry cloth.",
]


@cache
def load_vocab(path: Path = VOCAB_PATH) -> dict[str, Any]:
    """The derived WebShop vocabulary (leaves, attributes, attribute slots)."""
    return json.loads(path.read_text(encoding="utf-8"))


def vocab_digest(path: Path = VOCAB_PATH) -> str:
    """A short digest of the vocabulary file (part of the catalogue fingerprint)."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@cache
def _asin_offset(seed: int) -> int:
    return random.Random(f"webshop-asin:{seed}").randrange(_ASIN_SPACE)


def make_asin(seed: int, index: int) -> str:
    """A WebShop-looking ASIN ``B0XXXXXXXX``, distinct for every index of a seed."""
    n = (index * _ASIN_STEP + _asin_offset(seed)) % _ASIN_SPACE
    chars = []
    for _ in range(8):
        n, r = divmod(n, 36)
        chars.append(_BASE36[r])
    return "B0" + "".join(reversed(chars))


def _title_case(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split())


def _money(rng: random.Random, low: float, high: float) -> float:
    import math

    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    cents = rng.choice((0.99, 0.99, 0.95, 0.49, 0.0, 0.89))
    return round(max(int(value) + cents, 0.99), 2)


class _Leaves:
    """Per-leaf sampling tables built once from the vocabulary."""

    def __init__(self, vocab: dict[str, Any]) -> None:
        self.slots: dict[str, str] = vocab["attribute_slots"]
        self.names = sorted(vocab["leaves"])
        self.info = vocab["leaves"]
        self.weights = [self.info[n]["instructions"] for n in self.names]
        by_category: dict[str, dict[str, int]] = {}
        for leaf in self.names:
            pool = by_category.setdefault(self.info[leaf]["category"], {})
            for attr, count in self.info[leaf]["attributes"].items():
                pool[attr] = pool.get(attr, 0) + count
        self.category_pool = {c: (list(p), list(accumulate(p.values()))) for c, p in by_category.items()}
        self.pool = {n: (list(self.info[n]["attributes"]), list(accumulate(self.info[n]["attributes"].values())))
                     for n in self.names}
        self.cum_weights = list(accumulate(self.weights))


@cache
def _leaves() -> _Leaves:
    return _Leaves(load_vocab())


@lru_cache(maxsize=4096)
def _brands(seed: int, leaf: str) -> list[str]:
    rng = random.Random(f"webshop-brands:{seed}:{leaf}")
    return [
        "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3)))).capitalize() for _ in range(12)
    ]


def _sample_weighted(rng: random.Random, items: list[str], cum_weights: list[int], k: int) -> list[str]:
    """Up to ``k`` distinct items, drawn in proportion to their weights (cumulative weights given)."""
    k = min(k, len(items))
    chosen: list[str] = []
    while len(chosen) < k:
        for item in rng.choices(items, cum_weights=cum_weights, k=2 * k):
            if item not in chosen:
                chosen.append(item)
                if len(chosen) == k:
                    break
    return chosen


def _window(rng: random.Random, values: list[str], low: int, high: int) -> list[str]:
    n = min(rng.randint(low, high), len(values))
    start = rng.randint(0, len(values) - n)
    return values[start:start + n]


def _options(rng: random.Random, leaf: str, category: str) -> dict[str, list[dict[str, Any]]] | None:
    if rng.random() < NO_OPTIONS_SHARE:
        return None
    options: dict[str, list[str]] = {}
    if category == "fashion":
        options["Color"] = rng.sample(_COLORS["fashion"], rng.randint(1, 8))
        if any(w in leaf for w in _SHOE_WORDS):
            options["Size"] = _window(rng, _SHOE_SIZES, 3, 9)
        elif any(w in leaf for w in _WAIST_WORDS) and rng.random() < 0.5:
            options["Size"] = _window(rng, _WAIST_SIZES, 3, 7)
        else:
            options["Size"] = _window(rng, _CLOTHING_SIZES, 4, 7)
    elif category == "beauty":
        options["Size"] = _window(rng, _BEAUTY_SIZES, 1, 4)
        if "makeup" in leaf or "hair coloring" in leaf or "wigs" in leaf:
            options["Color"] = rng.sample(_COLORS["beauty"], rng.randint(2, 8))
        elif rng.random() < 0.5:
            options["Scent"] = rng.sample(_SCENTS, rng.randint(2, 5))
    elif category == "food":
        options["Flavor Name"] = rng.sample(_FLAVORS, rng.randint(1, 7))
        options["Size"] = _window(rng, _FOOD_SIZES, 1, 4)
    elif category == "furniture":
        options["Color"] = rng.sample(_COLORS["furniture"], rng.randint(1, 6))
        if any(w in leaf for w in _BED_WORDS):
            options["Size"] = _window(rng, _BED_SIZES, 2, 5)
        elif any(w in leaf for w in _TEXTILE_WORDS):
            options["Size"] = _window(rng, _TEXTILE_SIZES, 2, 5)
        elif rng.random() < 0.7:
            options["Size"] = _window(rng, _FURNITURE_SIZES, 1, 5)
    else:
        options["Color"] = rng.sample(_COLORS["electronics"], rng.randint(1, 5))
        if any(w in leaf for w in _STORAGE_WORDS):
            options["Capacity"] = _window(rng, _CAPACITIES, 2, 5)
        elif any(w in leaf for w in _CABLE_WORDS):
            options["Size"] = _window(rng, _LENGTHS, 2, 5)
        elif rng.random() < 0.7:
            options["Style"] = rng.sample(_ELECTRONIC_STYLES, rng.randint(2, 4))
    return {name: [{"value": v, "image": None} for v in values] for name, values in options.items()}


def _instruction(rng: random.Random, leaf: str, attributes: list[str], slots: dict[str, str]) -> dict[str, Any]:
    # An attribute that names the product type itself ('makeup remover' for makeup remover) would only repeat it.
    usable = [a for a in attributes if a not in leaf and leaf not in a]
    if not usable:
        return {}
    chosen = rng.sample(usable, rng.randint(1, min(4, len(usable))))
    by_slot = {s: [a for a in chosen if slots.get(a, "with") == s] for s in ("pre", "with", "for")}
    text = "Find me " + ", ".join(by_slot["pre"]) + (" " if by_slot["pre"] else "") + leaf
    if by_slot["with"]:
        text += " with " + ", ".join(by_slot["with"])
    if by_slot["for"]:
        text += " for " + ", ".join(by_slot["for"])
    return {"instruction": text, "instruction_attributes": by_slot["pre"] + by_slot["with"] + by_slot["for"]}


def generate_product(seed: int, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Product ``index`` of catalogue ``seed``: its raw record and its ``items_ins_v2`` entry."""
    tables = _leaves()
    rng = random.Random(f"webshop-product:{seed}:{index}")
    leaf = rng.choices(tables.names, cum_weights=tables.cum_weights)[0]
    info = tables.info[leaf]
    category = info["category"]
    names, weights = tables.pool[leaf]
    attributes = _sample_weighted(rng, names, weights, rng.randint(2, 6))
    if rng.random() < 0.3:
        extra = _sample_weighted(rng, *tables.category_pool[category], 1)
        attributes += [a for a in extra if a not in attributes]
    slots = tables.slots
    noun = rng.choice(info["nouns"])
    brand = rng.choice(_brands(seed, leaf))
    gender = ""
    if category == "fashion":
        gender = "Men's " if leaf.startswith("men's") else "Women's "

    used = set(noun.split())

    def fresh(attr: str) -> bool:
        words = set(attr.split())
        if words & used:
            return False
        used.update(words)
        return True

    pre = [a for a in attributes if slots.get(a) == "pre" and fresh(a)][:2]
    withs = [a for a in attributes if slots.get(a, "with") == "with" and fresh(a)]
    fors = [a for a in attributes if slots.get(a) == "for" and fresh(a)]
    title = f"{brand} {gender}" + "".join(f"{_title_case(a)} " for a in pre) + _title_case(noun)
    if withs:
        title += f" with {_title_case(withs[0])}"
    if fors and rng.random() < 0.5:
        title += f" for {_title_case(fors[0])}"
    options = _options(rng, leaf, category)
    spec = rng.choice(_SPECS[category]).format(
        size=rng.choice(_FOOD_SIZES if category == "food" else _BEAUTY_SIZES),
        dim=rng.choice(_FURNITURE_SIZES),
        model=f"{rng.choice(_BASE36[10:])}{rng.choice(_BASE36[10:])}-{rng.randint(100, 9999)}",
    )
    if spec:
        title += f", {spec}"

    sentences = [rng.choice(_DESCRIPTION_OPENERS).format(brand=brand, noun=noun)]
    for attr in attributes:
        slot = slots.get(attr, "with")
        sentences.append(rng.choice(_DESCRIPTION_ATTRS[slot]).format(attr=attr))
    sentences.append(rng.choice(_DESCRIPTION_CLOSERS))
    description = " ".join(s for s in sentences if s)
    bullets = [
        _BULLETS[slots.get(a, "with")].format(attr=a, Attr=_title_case(a), noun=noun)
        for a in attributes[: rng.randint(2, 4)]
    ]
    bullets += rng.sample(_EXTRA_BULLETS, rng.randint(1, 2))
    bullets = [b.format(noun=noun) for b in bullets]

    low, high, range_share = _PRICES[category]
    first = _money(rng, low, high)
    if rng.random() < range_share:
        second = round(first * rng.uniform(1.1, 2.0), 2)
        pricing = f"${first:.2f} - ${second:.2f}"
    else:
        pricing = f"${first:.2f}"

    asin = make_asin(seed, index)
    raw = {
        "asin": asin,
        "name": title,
        "full_description": description,
        "small_description": bullets,
        "pricing": pricing,
        "images": [],
        "product_category": info["product_category"],
        "category": category,
        "query": leaf,
        "customization_options": options,
        "average_rating": round(rng.uniform(3.0, 5.0), 1),
    }
    ins: dict[str, Any] = {"attributes": attributes}
    if rng.random() < INSTRUCTION_SHARE:
        ins.update(_instruction(rng, leaf, attributes, slots))
    return raw, ins


def generate_catalogue(num_products: int, seed: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The raw records and ``items_ins_v2`` entries of a generated catalogue, in catalogue order."""
    for index in range(num_products):
        yield generate_product(seed, index)
