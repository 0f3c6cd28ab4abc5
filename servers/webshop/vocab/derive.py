"""Rebuild ``vocab.json`` from WebShop's ``items_ins_v2_1000.json``.

Run: ``python -m servers.webshop.vocab.derive PATH/items_ins_v2_1000.json``.

What comes from the WebShop file (MIT, Princeton NLP; see LICENSE-WebShop.md beside this file):
the product-type leaves named by its synthetic instructions ("Find me <before> <leaf> with <...> for <...>"),
the mined attributes of the products of each leaf, and where each attribute sits in an instruction
(before the leaf, after "with", after "for"). What is written by hand here: the WebShop category and the
Amazon-style ``product_category`` path of each leaf, and the product nouns used in generated titles.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

VOCAB_PATH = Path(__file__).with_name("vocab.json")

_BEAUTY = "Beauty & Personal Care"
_FOOD = "Grocery & Gourmet Food"
_FASHION = "Clothing, Shoes & Jewelry"
_HOME = "Home & Kitchen"
_LIGHTS = "Tools & Home Improvement › Lighting & Ceiling Fans"
_ELEC = "Electronics"

# leaf -> (WebShop category, product_category path without the leaf, title nouns or None to derive them)
TAXONOMY: dict[str, tuple[str, str, list[str] | None]] = {
    "bags & cases": ("beauty", f"{_BEAUTY} › Tools & Accessories", ["cosmetic bag", "makeup case"]),
    "bath & bathing accessories": ("beauty", f"{_BEAUTY} › Tools & Accessories", ["bath sponge", "shower cap"]),
    "bathing accessories": ("beauty", f"{_BEAUTY} › Tools & Accessories", ["bath brush", "shower cap", "loofah"]),
    "body care": ("beauty", f"{_BEAUTY} › Skin Care › Body", ["body lotion", "body butter", "body oil"]),
    "children's dental care": ("beauty", f"{_BEAUTY} › Oral Care", ["kids toothbrush", "kids toothpaste"]),
    "cotton balls & swabs": ("beauty", f"{_BEAUTY} › Tools & Accessories", ["cotton swabs", "cotton pads"]),
    "dental floss & picks": ("beauty", f"{_BEAUTY} › Oral Care", ["dental floss", "floss picks"]),
    "deodorants & antiperspirants": ("beauty", f"{_BEAUTY} › Personal Care", ["deodorant", "antiperspirant"]),
    "eyes makeup": ("beauty", f"{_BEAUTY} › Makeup", ["eyeshadow", "eyeliner", "mascara"]),
    "foot, hand & nail care": ("beauty", f"{_BEAUTY}", ["nail file", "foot file", "hand cream", "nail kit"]),
    "hair coloring products": ("beauty", f"{_BEAUTY} › Hair Care", ["hair dye", "hair color", "hair chalk"]),
    "hair cutting tools": ("beauty", f"{_BEAUTY} › Hair Care", ["hair clipper", "hair cutting scissors"]),
    "hair extensions, wigs & accessories": ("beauty", f"{_BEAUTY} › Hair Care", ["wig", "hair extension", "hair topper"]),
    "hair loss products": ("beauty", f"{_BEAUTY} › Hair Care", ["hair growth serum", "hair growth oil"]),
    "hair masks": ("beauty", f"{_BEAUTY} › Hair Care › Hair Treatments", ["hair mask", "deep conditioner"]),
    "hair treatment oils": ("beauty", f"{_BEAUTY} › Hair Care › Hair Treatments", ["hair oil", "argan oil"]),
    "lip care": ("beauty", f"{_BEAUTY} › Skin Care", ["lip balm", "lip scrub", "lip mask"]),
    "lips makeup": ("beauty", f"{_BEAUTY} › Makeup", ["lipstick", "lip gloss", "lip liner"]),
    "makeup brushes & tools": ("beauty", f"{_BEAUTY} › Tools & Accessories", ["makeup brush set", "makeup sponge"]),
    "makeup palettes": ("beauty", f"{_BEAUTY} › Makeup", ["eyeshadow palette", "makeup palette"]),
    "makeup remover": ("beauty", f"{_BEAUTY} › Makeup", ["makeup remover", "cleansing balm", "micellar water"]),
    "men's fragrance": ("beauty", f"{_BEAUTY} › Fragrance", ["cologne", "eau de toilette"]),
    "mirrors": ("beauty", f"{_BEAUTY} › Tools & Accessories", ["makeup mirror", "compact mirror"]),
    "orthodontic supplies": ("beauty", f"{_BEAUTY} › Oral Care", ["retainer case", "orthodontic wax"]),
    "piercing & tattoo supplies": ("beauty", f"{_BEAUTY} › Personal Care", ["tattoo kit", "piercing kit"]),
    "refillable containers": ("beauty", f"{_BEAUTY} › Tools & Accessories", ["travel bottles", "spray bottle", "jar"]),
    "scrubs & body treatments": ("beauty", f"{_BEAUTY} › Skin Care › Body", ["body scrub", "body treatment"]),
    "sets fragrance": ("beauty", f"{_BEAUTY} › Fragrance", ["fragrance gift set", "perfume set"]),
    "shampoo & conditioner": ("beauty", f"{_BEAUTY} › Hair Care", ["shampoo", "conditioner", "shampoo and conditioner set"]),
    "shave & hair removal": ("beauty", f"{_BEAUTY}", ["razor", "hair removal cream", "epilator"]),
    "skin care sets & kits": ("beauty", f"{_BEAUTY} › Skin Care", ["skin care set", "facial kit"]),
    "skin care tools": ("beauty", f"{_BEAUTY} › Skin Care", ["facial roller", "gua sha", "facial brush"]),
    "styling products": ("beauty", f"{_BEAUTY} › Hair Care", ["hair gel", "hair spray", "styling cream"]),
    "tongue cleaners": ("beauty", f"{_BEAUTY} › Oral Care", ["tongue scraper", "tongue cleaner"]),
    "toothpaste": ("beauty", f"{_BEAUTY} › Oral Care", ["toothpaste", "whitening toothpaste"]),
    "toothpicks": ("beauty", f"{_BEAUTY} › Oral Care", ["toothpicks", "dental picks"]),
    "women's fragrance": ("beauty", f"{_BEAUTY} › Fragrance", ["perfume", "eau de parfum", "body mist"]),
    "applesauce & fruit cups": ("food", f"{_FOOD} › Canned, Jarred & Packaged Foods › Fruits", ["applesauce", "fruit cups"]),
    "beverages": ("food", f"{_FOOD}", ["juice drink", "sparkling water", "iced tea"]),
    "breakfast foods": ("food", f"{_FOOD}", ["cereal", "oatmeal", "pancake mix"]),
    "candy & chocolate": ("food", f"{_FOOD} › Snacks & Sweets", ["chocolate bar", "candy", "gummies"]),
    "cheeses": ("food", f"{_FOOD} › Dairy, Cheese & Eggs", ["cheese", "cheddar cheese"]),
    "cream cheeses": ("food", f"{_FOOD} › Dairy, Cheese & Eggs › Cheeses", ["cream cheese", "cream cheese spread"]),
    "deli & prepared foods": ("food", f"{_FOOD}", ["deli meat", "ready meal", "hummus"]),
    "dried fruits & raisins": ("food", f"{_FOOD} › Dried Fruits & Vegetables", ["dried fruit", "raisins", "dried mango"]),
    "food & beverage gifts": ("food", f"{_FOOD}", ["gift basket", "gift box"]),
    "fresh meal kits": ("food", f"{_FOOD}", ["meal kit", "dinner kit"]),
    "frozen": ("food", f"{_FOOD}", ["frozen meal", "frozen pizza", "frozen dessert"]),
    "granola & nutrition bars": ("food", f"{_FOOD} › Snacks & Sweets", ["protein bar", "granola bar", "nutrition bar"]),
    "meat & seafood": ("food", f"{_FOOD}", ["beef jerky", "smoked salmon", "bacon"]),
    "meat snacks": ("food", f"{_FOOD} › Snacks & Sweets", ["jerky", "meat sticks"]),
    "meat substitutes": ("food", f"{_FOOD}", ["plant based burger", "vegan jerky", "tofu"]),
    "milks & creams": ("food", f"{_FOOD} › Dairy, Cheese & Eggs", ["oat milk", "coffee creamer", "almond milk"]),
    "pantry staples": ("food", f"{_FOOD}", ["seasoning", "olive oil", "pasta sauce"]),
    "puffed snacks": ("food", f"{_FOOD} › Snacks & Sweets", ["cheese puffs", "puffed snacks", "rice puffs"]),
    "snack crackers": ("food", f"{_FOOD} › Snacks & Sweets", ["crackers", "crisps"]),
    "snack food gifts": ("food", f"{_FOOD} › Food & Beverage Gifts", ["snack box", "snack gift basket"]),
    "wasabi peas": ("food", f"{_FOOD} › Snacks & Sweets › Snack Foods", ["wasabi peas", "roasted peas"]),
    "av receivers & amplifiers": ("electronics", f"{_ELEC} › Home Audio › Receivers & Amplifiers", ["av receiver", "amplifier"]),
    "binoculars & scopes": ("electronics", f"{_ELEC} › Camera & Photo", ["binoculars", "monocular", "spotting scope"]),
    "blu-ray players & recorders": ("electronics", f"{_ELEC} › Television & Video", ["blu-ray player", "dvd player"]),
    "bluetooth headsets": ("electronics", f"{_ELEC} › Cell Phones & Accessories › Accessories", ["bluetooth headset", "wireless earpiece"]),
    "bluetooth speakers": ("electronics", f"{_ELEC} › Portable Audio & Video › Portable Speakers & Docks", ["bluetooth speaker", "portable speaker"]),
    "car accessories": ("electronics", f"{_ELEC} › Cell Phones & Accessories › Accessories", ["car phone mount", "car charger"]),
    "cd players & recorders": ("electronics", f"{_ELEC} › Home Audio", ["cd player", "boombox"]),
    "chargers": ("electronics", f"{_ELEC} › Cell Phones & Accessories › Accessories › Chargers & Power Adapters", ["charger", "charging station"]),
    "digital cameras": ("electronics", f"{_ELEC} › Camera & Photo", ["digital camera", "vlogging camera"]),
    "flashes": ("electronics", f"{_ELEC} › Camera & Photo", ["flash drive", "camera flash"]),
    "hdmi cables": ("electronics", f"{_ELEC} › Television & Video › Accessories › Cables", ["hdmi cable", "hdmi adapter"]),
    "headphones": ("electronics", f"{_ELEC} › Headphones, Earbuds & Accessories", ["headphones", "earbuds"]),
    "iphone accessories": ("electronics", f"{_ELEC} › Cell Phones & Accessories", ["phone case", "lightning cable"]),
    "lenses": ("electronics", f"{_ELEC} › Camera & Photo", ["camera lens", "lens protector"]),
    "mac": ("electronics", f"{_ELEC} › Computers & Accessories", ["external hard drive", "usb c hub"]),
    "mounts": ("electronics", f"{_ELEC} › Television & Video › Accessories", ["tv wall mount", "camera mount"]),
    "multiroom wireless systems": ("electronics", f"{_ELEC} › Home Audio › Wireless & Streaming Audio", ["wifi speaker", "audio streamer"]),
    "online game services": ("electronics", f"{_ELEC} › Video Games", ["game card", "controller case"]),
    "power protection": ("electronics", f"{_ELEC} › Accessories & Supplies", ["surge protector", "power strip"]),
    "printers & scanners": ("electronics", f"{_ELEC} › Computers & Accessories", ["printer", "scanner"]),
    "projectors": ("electronics", f"{_ELEC} › Television & Video", ["projector", "mini projector"]),
    "receivers & amplifiers": ("electronics", f"{_ELEC} › Home Audio", ["stereo receiver", "amplifier"]),
    "screen protectors": ("electronics", f"{_ELEC} › Cell Phones & Accessories › Accessories", ["screen protector", "tempered glass protector"]),
    "signal boosters": ("electronics", f"{_ELEC} › Cell Phones & Accessories › Accessories", ["signal booster", "wifi extender"]),
    "soundbars": ("electronics", f"{_ELEC} › Home Audio › Speakers", ["soundbar", "sound bar"]),
    "streaming media players": ("electronics", f"{_ELEC} › Television & Video", ["streaming stick", "media player"]),
    "surround sound systems": ("electronics", f"{_ELEC} › Home Audio › Home Theater", ["surround sound system", "home theater system"]),
    "television accessories": ("electronics", f"{_ELEC} › Television & Video", ["tv remote", "tv antenna"]),
    "tripods & monopods": ("electronics", f"{_ELEC} › Camera & Photo", ["tripod", "monopod"]),
    "turntables": ("electronics", f"{_ELEC} › Home Audio › Turntables & Accessories", ["turntable", "record player"]),
    "underwater photography": ("electronics", f"{_ELEC} › Camera & Photo", ["underwater camera", "waterproof case"]),
    "vcrs": ("electronics", f"{_ELEC} › Television & Video", ["vcr", "vhs player"]),
    "video glasses": ("electronics", f"{_ELEC} › Television & Video", ["video glasses", "fpv goggles"]),
    "video surveillance": ("electronics", f"{_ELEC} › Camera & Photo", ["security camera", "doorbell camera"]),
    "virtual reality": ("electronics", f"{_ELEC} › Video Games", ["vr headset", "vr headset strap"]),
    "wearable technology": ("electronics", f"{_ELEC}", ["smart watch band", "smart watch", "fitness tracker"]),
    "artificial plants": ("furniture", f"{_HOME} › Home Décor", ["artificial plant", "faux plant"]),
    "bar stools": ("furniture", f"{_HOME} › Furniture › Kitchen & Dining Room Furniture", ["bar stool", "counter stool"]),
    "bases": ("furniture", f"{_HOME} › Furniture › Bedroom Furniture › Beds, Frames & Bases", ["chair base", "bed base"]),
    "baker's racks": ("furniture", f"{_HOME} › Furniture › Kitchen & Dining Room Furniture", ["baker's rack", "kitchen shelf"]),
    "bedframes": ("furniture", f"{_HOME} › Furniture › Bedroom Furniture › Beds, Frames & Bases", ["bed frame", "platform bed frame"]),
    "beds": ("furniture", f"{_HOME} › Furniture › Bedroom Furniture › Beds, Frames & Bases", ["bed", "platform bed", "daybed"]),
    "bookcases": ("furniture", f"{_HOME} › Furniture › Home Office Furniture", ["bookcase", "bookshelf"]),
    "cabinets": ("furniture", f"{_HOME} › Furniture › Home Office Furniture", ["storage cabinet", "cabinet"]),
    "candles": ("furniture", f"{_HOME} › Home Décor", ["scented candle", "candle"]),
    "china cabinets": ("furniture", f"{_HOME} › Furniture › Kitchen & Dining Room Furniture", ["china cabinet", "display cabinet"]),
    "coat racks": ("furniture", f"{_HOME} › Furniture › Entryway Furniture", ["coat rack", "coat stand"]),
    "coffee tables": ("furniture", f"{_HOME} › Furniture › Living Room Furniture › Tables", ["coffee table", "lift top coffee table"]),
    "computer armoires": ("furniture", f"{_HOME} › Furniture › Home Office Furniture", ["computer armoire", "desk armoire"]),
    "console tables": ("furniture", f"{_HOME} › Furniture › Living Room Furniture › Tables", ["console table", "entryway table"]),
    "decorative mirrors": ("furniture", f"{_HOME} › Home Décor › Mirrors", ["wall mirror", "decorative mirror"]),
    "decorative pillows": ("furniture", f"{_HOME} › Home Décor › Decorative Pillows, Inserts & Covers", ["throw pillow cover", "decorative pillow"]),
    "desks": ("furniture", f"{_HOME} › Furniture › Home Office Furniture", ["computer desk", "writing desk", "standing desk"]),
    "dining sets": ("furniture", f"{_HOME} › Furniture › Kitchen & Dining Room Furniture", ["dining set", "dining table set"]),
    "dining tables": ("furniture", f"{_HOME} › Furniture › Kitchen & Dining Room Furniture", ["dining table", "kitchen table"]),
    "drafting tables": ("furniture", f"{_HOME} › Furniture › Home Office Furniture", ["drafting table", "drawing desk"]),
    "file cabinets": ("furniture", f"{_HOME} › Furniture › Home Office Furniture", ["file cabinet", "filing cabinet"]),
    "floor lamps": ("furniture", f"{_LIGHTS} › Lamps & Shades", ["floor lamp", "arc floor lamp"]),
    "furniture sets": ("furniture", f"{_HOME} › Furniture", ["furniture set", "patio furniture set"]),
    "hall trees": ("furniture", f"{_HOME} › Furniture › Entryway Furniture", ["hall tree", "entryway bench"]),
    "home office cabinets": ("furniture", f"{_HOME} › Furniture › Home Office Furniture", ["office cabinet", "storage cabinet"]),
    "home office chairs": ("furniture", f"{_HOME} › Furniture › Home Office Furniture", ["office chair", "desk chair", "gaming chair"]),
    "home office furniture sets": ("furniture", f"{_HOME} › Furniture › Home Office Furniture", ["desk and chair set", "office furniture set"]),
    "kitchen islands": ("furniture", f"{_HOME} › Furniture › Kitchen & Dining Room Furniture", ["kitchen island", "kitchen cart"]),
    "living room sets": ("furniture", f"{_HOME} › Furniture › Living Room Furniture", ["sofa set", "sectional sofa", "loveseat"]),
    "mattresses": ("furniture", f"{_HOME} › Furniture › Bedroom Furniture", ["mattress", "memory foam mattress"]),
    "nightstands": ("furniture", f"{_HOME} › Furniture › Bedroom Furniture", ["nightstand", "bedside table"]),
    "ottomans": ("furniture", f"{_HOME} › Furniture › Living Room Furniture", ["ottoman", "storage ottoman", "pouf"]),
    "pendants and chandeliers": ("furniture", f"{_LIGHTS} › Ceiling Lights", ["pendant light", "chandelier"]),
    "sconces": ("furniture", f"{_LIGHTS} › Wall Lights", ["wall sconce", "wall lamp"]),
    "sofa tables": ("furniture", f"{_HOME} › Furniture › Living Room Furniture › Tables", ["sofa table", "narrow console table"]),
    "table lamps": ("furniture", f"{_LIGHTS} › Lamps & Shades", ["table lamp", "bedside lamp"]),
    "throw blankets": ("furniture", f"{_HOME} › Bedding › Blankets & Throws", ["throw blanket", "fleece blanket"]),
    "tv stands": ("furniture", f"{_HOME} › Furniture › Living Room Furniture", ["tv stand", "media console"]),
    "vanities": ("furniture", f"{_HOME} › Furniture › Bedroom Furniture", ["vanity table", "makeup vanity desk"]),
    "wall art": ("furniture", f"{_HOME} › Home Décor", ["canvas wall art", "framed print"]),
    "window coverings": ("furniture", f"{_HOME} › Home Décor", ["blackout curtains", "window film"]),
}

# Fashion leaves share one rule: "<gender>'s <type>" -> Clothing, Shoes & Jewelry › Gender › Shoes|Clothing.
_FASHION_NOUNS: dict[str, list[str]] = {
    "athletic shoes": ["running shoes", "training shoes"],
    "boots": ["ankle boots", "work boots", "chelsea boots"],
    "casual button-down shirts": ["button down shirt", "casual shirt"],
    "dress shirts": ["dress shirt", "oxford shirt"],
    "fashion hoodies & sweatshirts": ["hoodie", "sweatshirt", "pullover hoodie"],
    "fashion sneakers": ["sneakers", "canvas sneakers"],
    "henleys": ["henley shirt", "henley"],
    "jackets & coats": ["jacket", "winter coat", "bomber jacket"],
    "jeans": ["jeans", "skinny jeans", "straight jeans"],
    "loafers & slip-ons": ["loafers", "slip-on shoes"],
    "outdoor shoes": ["hiking shoes", "trail shoes"],
    "pants": ["pants", "joggers", "chino pants"],
    "polos": ["polo shirt", "golf polo"],
    "sandals": ["sandals", "slide sandals"],
    "shirts": ["shirt", "graphic tee"],
    "shorts": ["shorts", "cargo shorts", "athletic shorts"],
    "sleep & lounge": ["pajama set", "lounge pants", "robe"],
    "slippers": ["slippers", "house slippers"],
    "suits & sport coats": ["suit", "blazer", "sport coat"],
    "sweaters": ["sweater", "cardigan", "pullover sweater"],
    "t-shirts": ["t-shirt", "graphic t-shirt"],
    "t-shirts & tanks": ["t-shirt", "tank top"],
    "tuxedo shirts": ["tuxedo shirt", "tee shirt"],
    "underwear": ["boxer briefs", "briefs", "trunks"],
    "activewear": ["yoga pants", "sports bra", "workout leggings"],
    "bodysuit tops": ["bodysuit", "bodysuit top"],
    "coats, jackets & vests": ["puffer jacket", "vest", "trench coat"],
    "dresses": ["dress", "maxi dress", "midi dress"],
    "flats": ["ballet flats", "flats"],
    "jumpsuits, rompers & overalls": ["jumpsuit", "romper", "overalls"],
    "lingerie, sleep & lounge": ["pajama set", "nightgown", "lingerie set"],
    "mules & clogs": ["mules", "clogs"],
    "oxfords": ["oxford shoes", "oxfords"],
    "pumps": ["pumps", "high heel pumps"],
    "socks & hosiery": ["socks", "tights", "stockings"],
    "suiting & blazers": ["blazer", "suit jacket"],
    "swimsuits & cover ups": ["one piece swimsuit", "bikini set", "swim cover up"],
    "tops, tees & blouses": ["blouse", "tunic top", "t-shirt"],
    "work & safety footwear": ["work shoes", "steel toe shoes"],
}
_SHOE_WORDS = ("shoe", "sneaker", "boot", "sandal", "slipper", "loafer", "flats", "oxford", "pump", "mule", "footwear")

_INTRO = "Find me "


def _fashion_entry(leaf: str) -> tuple[str, str, list[str]]:
    gender, kind = leaf.split("'s ", 1)
    group = "Shoes" if any(w in kind for w in _SHOE_WORDS) else "Clothing"
    return "fashion", f"{_FASHION} › {gender.title()} › {group}", _FASHION_NOUNS[kind]


def parse_instruction(text: str, attributes: list[str]) -> tuple[str, dict[str, str]]:
    """Split a WebShop synthetic instruction into its leaf and the slot of each attribute.

    ``Find me easy carry, high quality refillable containers with rose gold`` gives
    ``("refillable containers", {"easy carry": "pre", "high quality": "pre", "rose gold": "with"})``.
    """
    if not text.startswith(_INTRO):
        raise ValueError(f"instruction does not start with {_INTRO!r}: {text!r}")
    rest = text[len(_INTRO):]
    slots: dict[str, str] = {}

    def appears_later(attr: str, tail: str) -> bool:
        return any(f"{kw}{attr}" in tail for kw in (" with ", " for ", ", "))

    consumed = True
    while consumed:
        consumed = False
        for attr in attributes:
            if attr in slots:
                continue
            for sep in (", ", " "):
                tail = rest[len(attr) + len(sep):]
                if rest.startswith(attr + sep) and not appears_later(attr, tail):
                    slots[attr] = "pre"
                    rest = tail
                    consumed = sep == ", "
                    break
            if attr in slots:
                break
    cut = len(rest)
    for attr in attributes:
        if attr not in slots:
            for kw in (" with ", " for "):
                i = rest.find(kw + attr)
                if i >= 0:
                    cut = min(cut, i)
    leaf, tail = rest[:cut], rest[cut:]
    m = re.fullmatch(r"(?: with (.*?))?(?: for (.*))?", tail)
    if m is None:
        raise ValueError(f"cannot parse the end of instruction {text!r}")
    for slot, group in (("with", m.group(1)), ("for", m.group(2))):
        for attr in (group or "").split(", "):
            if attr:
                slots[attr] = slot
    return leaf, slots


def derive(ins_path: Path) -> dict:
    """Build the vocabulary dict from ``items_ins_v2_1000.json``."""
    data = json.loads(ins_path.read_text(encoding="utf-8"))
    leaf_attrs: dict[str, Counter] = defaultdict(Counter)
    leaf_count: Counter = Counter()
    slot_votes: dict[str, Counter] = defaultdict(Counter)
    unassigned: list[list[str]] = []
    for record in data.values():
        attrs = record.get("attributes", [])
        if "instruction" not in record:
            unassigned.append(attrs)
            continue
        leaf, slots = parse_instruction(record["instruction"], record["instruction_attributes"])
        leaf_count[leaf] += 1
        leaf_attrs[leaf].update(attrs)
        for attr, slot in slots.items():
            slot_votes[attr][slot] += 1
    # Products without an instruction join the leaf whose attributes they overlap most (rarer attributes
    # weigh more); those sharing nothing are left out.
    doc_freq = Counter(a for counts in leaf_attrs.values() for a in counts)
    seen = {leaf: set(counts) for leaf, counts in leaf_attrs.items()}
    for attrs in unassigned:
        scores = {leaf: sum(1.0 / doc_freq[a] for a in attrs if a in known) for leaf, known in seen.items()}
        best = max(scores, key=lambda leaf: (scores[leaf], leaf), default=None)
        if best is not None and scores[best] > 0:
            leaf_attrs[best].update(attrs)

    # Attributes never seen in an instruction take the slot most used by attributes ending in the same word.
    by_last_word: dict[str, Counter] = defaultdict(Counter)
    for attr, votes in slot_votes.items():
        by_last_word[attr.split()[-1]].update(votes)
    all_attrs = sorted({a for counts in leaf_attrs.values() for a in counts})
    slots_out: dict[str, str] = {}
    for attr in all_attrs:
        votes = slot_votes.get(attr) or by_last_word.get(attr.split()[-1]) or Counter({"with": 1})
        slots_out[attr] = max(sorted(votes), key=lambda s: votes[s])

    leaves = {}
    for leaf in sorted(leaf_count):
        if leaf in TAXONOMY:
            category, path, nouns = TAXONOMY[leaf]
        elif "'s " in leaf:
            category, path, nouns = _fashion_entry(leaf)
        else:
            raise KeyError(f"leaf {leaf!r} has no entry in TAXONOMY")
        title_leaf = leaf.split("'s ", 1)[1] if category == "fashion" else leaf
        leaves[leaf] = {
            "category": category,
            "product_category": f"{path} › {_title(title_leaf)}",
            "nouns": nouns,
            "attributes": dict(sorted(leaf_attrs[leaf].items())),
            "instructions": leaf_count[leaf],
        }
    return {
        "source": f"derived from {ins_path.name} (WebShop, Yao et al. 2022, MIT licence: LICENSE-WebShop.md)",
        "leaves": leaves,
        "attribute_slots": slots_out,
    }


_ACRONYMS = {"av": "AV", "cd": "CD", "hdmi": "HDMI", "tv": "TV", "vcrs": "VCRs", "iphone": "iPhone", "mac": "Mac"}


def _title(text: str) -> str:
    small = {"and", "or", "of", "&"}
    return " ".join(
        _ACRONYMS.get(w, w if w in small else w[:1].upper() + w[1:]) for w in text.split()
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ins_path", type=Path, help="path to items_ins_v2_1000.json")
    parser.add_argument("--out", type=Path, default=VOCAB_PATH)
    args = parser.parse_args(argv)
    vocab = derive(args.ins_path)
    args.out.write_text(json.dumps(vocab, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(vocab['leaves'])} leaves, {len(vocab['attribute_slots'])} attributes")


if __name__ == "__main__":
    main()
