"""Realistic ALFWorld and WebShop transcripts for the memory tests.

ALFWorld sentences follow alfworld 0.4.2's grammar (alfworld/data/alfred.twl2);
WebShop pages follow its text mode (elements joined by `` [SEP] ``,
see ../shared/notes/webshop.md).
"""

from __future__ import annotations

ALFWORLD_TASK = "put a clean mug in coffeemachine."

ALFWORLD_INTRO = (
    "-= Welcome to TextWorld, ALFRED! =-\n\n"
    "You are in the middle of a room. Looking quickly around you, you see a cabinet 6, a cabinet 5, "
    "a cabinet 4, a cabinet 3, a cabinet 2, a cabinet 1, a coffeemachine 1, a countertop 3, a countertop 2, "
    "a countertop 1, a drawer 3, a drawer 2, a drawer 1, a fridge 1, a garbagecan 1, a microwave 1, a shelf 3, "
    "a shelf 2, a shelf 1, a sinkbasin 1, a stoveburner 4, a stoveburner 3, a stoveburner 2, a stoveburner 1, "
    "and a toaster 1.\n\n"
    f"Your task is to: {ALFWORLD_TASK}"
)

# (observation, action taken in it); the last observation has no action yet.
ALFWORLD_EPISODE: list[tuple[str, str]] = [
    (ALFWORLD_INTRO, "go to countertop 1"),
    (
        "You arrive at countertop 1. On the countertop 1, you see a butterknife 1, a cup 1, and a fork 2.",
        "go to cabinet 1",
    ),
    ("You arrive at cabinet 1. The cabinet 1 is closed.", "open cabinet 1"),
    (
        "You open the cabinet 1. The cabinet 1 is open. In it, you see a mug 1, and a mug 3.",
        "take mug 2 from cabinet 1",
    ),
    ("Nothing happens.", "take mug 1 from cabinet 1"),
    ("You pick up the mug 1 from the cabinet 1.", "go to sinkbasin 1"),
    (
        "You arrive at sinkbasin 1. On the sinkbasin 1, you see a apple 2, and a lettuce 1.",
        "clean mug 1 with sinkbasin 1",
    ),
    ("You clean the mug 1 using the sinkbasin 1.", "go to coffeemachine 1"),
    (
        "You arrive at coffeemachine 1. On the coffeemachine 1, you see nothing.",
        "move mug 1 to coffeemachine 1",
    ),
]
ALFWORLD_FINAL_OBS = "You move the mug 1 to the coffeemachine 1."

ALFWORLD_ADMISSIBLE = [
    "examine coffeemachine 1",
    "go to cabinet 1",
    "go to countertop 1",
    "go to sinkbasin 1",
    "help",
    "inventory",
    "look",
    "move mug 1 to coffeemachine 1",
]

ALFWORLD_OBSERVATIONS = [obs for obs, _ in ALFWORLD_EPISODE] + [
    ALFWORLD_FINAL_OBS,
    "You arrive at fridge 1. The fridge 1 is closed.",
    "You open the fridge 1. The fridge 1 is open. In it, you see a egg 1, a lettuce 2, and a tomato 1.",
    "You close the fridge 1.",
    "You heat the potato 1 using the microwave 1.",
    "You are carrying: a mug 1.",
    "You turn on the desklamp 1.",
]
ALFWORLD_ACTIONS = [a for _, a in ALFWORLD_EPISODE] + ["look", "inventory", "go to fridge 1", "open fridge 1"]

WEBSHOP_GOAL = "i need a long lasting 6.76 fl oz bottle of perfume, and price lower than 50.00 dollars"
WEBSHOP_HOME = f"WebShop [SEP] Instruction: [SEP] {WEBSHOP_GOAL} [SEP] Search"
WEBSHOP_RESULTS = (
    f"Instruction: [SEP] {WEBSHOP_GOAL} [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next > "
    "[SEP] B000AAAA01 [SEP] Eau de Toilette Spray 6.76 fl oz [SEP] $32.5 "
    "[SEP] B07XYZ1234 [SEP] Long Lasting Perfume for Women, Floral Scent, 3.4 fl oz [SEP] $18.99 "
    "[SEP] B09QWE7788 [SEP] Travel Size Perfume Atomizer Set [SEP] $9.99 to $14.99"
)
WEBSHOP_ITEM = (
    f"Instruction: [SEP] {WEBSHOP_GOAL} [SEP] Back to Search [SEP] < Prev [SEP] size [SEP] 3.4 fl oz (pack of 1) "
    "[SEP] 6.76 fl oz (pack of 1) [SEP] scent [SEP] citrus | floral [SEP] Eau de Toilette Spray 6.76 fl oz "
    "[SEP] Price: $32.5 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
)
WEBSHOP_EPISODE: list[tuple[str, str]] = [
    (WEBSHOP_HOME, "search[long lasting perfume 6.76 fl oz]"),
    (WEBSHOP_RESULTS, "click[next >]"),
    (WEBSHOP_RESULTS.replace("Page 1", "Page 2"), "click[< prev]"),
    (WEBSHOP_RESULTS, "click[b000aaaa01]"),
    (WEBSHOP_ITEM, "click[6.76 fl oz (pack of 1)]"),
    (WEBSHOP_ITEM, "click[citrus | floral]"),  # text mode: clicking an option leaves the page text unchanged
    (WEBSHOP_ITEM, "click[buy now]"),
]
WEBSHOP_ITEM_ADMISSIBLE = [
    "click[back to search]",
    "click[< prev]",
    "click[3.4 fl oz (pack of 1)]",
    "click[6.76 fl oz (pack of 1)]",
    "click[citrus | floral]",
    "click[description]",
    "click[features]",
    "click[reviews]",
    "click[buy now]",
]
WEBSHOP_RESULTS_ADMISSIBLE = [
    "search[<your query>]",
    "click[back to search]",
    "click[next >]",
    "click[b000aaaa01]",
    "click[b07xyz1234]",
    "click[b09qwe7788]",
]
