"""WebShop's raw product files and WebShop's processing of a raw record into a served product.

The raw schema is the one of WebShop's ``items_shuffle*.json`` (a JSON list of records with
``asin, name, full_description, small_description, pricing, images, product_category, category,
query, customization_options, average_rating`` and some vendor keys that are dropped),
``items_ins_v2*.json`` (``{asin: {attributes, instruction?, instruction_attributes?}}``) and
``items_human_ins.json`` (``{asin: [{instruction, instruction_attributes, instruction_options, ...}]}``).
The processing follows ``load_products`` of WebShop's ``web_agent_site/engine/engine.py`` (Yao et al.
2022); where the original would crash on a malformed record we use a documented fallback instead.

Files are read as streams (one record at a time), so the full 1.18M-product catalogue never has to sit
in memory as one Python object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

# Bump when the processing below changes: it is part of the catalogue fingerprint.
PROCESSING_VERSION = 2

PRODUCT_FILES = ("items_shuffle_1000.json", "items_shuffle.json")
ATTRIBUTE_FILES = {"items_shuffle_1000.json": "items_ins_v2_1000.json", "items_shuffle.json": "items_ins_v2.json"}
HUMAN_FILE = "items_human_ins.json"
DEFAULT_PRICE = 100.0  # WebShop's price for a product with no pricing
DUMMY_ATTRIBUTE = "DUMMY_ATTR"  # WebShop's attribute list for a product missing from items_ins_v2

_CHUNK_CHARS = 1 << 22


class CatalogueError(ValueError):
    """A catalogue file is missing, unreadable or not in WebShop's raw schema (the message names it)."""


@dataclass(frozen=True)
class RealFiles:
    """The real WebShop files found in a data folder."""

    products: Path
    attributes: Path
    human: Path | None


def find_real_files(data_dir: Path, products_file: str | None = None) -> RealFiles:
    """Locate WebShop's raw files in ``data_dir``.

    The products file is ``products_file`` when given, else ``items_shuffle_1000.json`` (WebShop's default
    subset), else ``items_shuffle.json``. Its attribute file is the matching ``items_ins_v2*.json`` (either
    one when only one exists). ``items_human_ins.json`` is optional.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CatalogueError(f"data_dir {str(data_dir)!r} is not a folder")
    names = [products_file] if products_file else list(PRODUCT_FILES)
    products = next((data_dir / n for n in names if (data_dir / n).is_file()), None)
    if products is None:
        raise CatalogueError(f"no product file in {str(data_dir)!r}: expected one of {', '.join(names)}")
    wanted = ATTRIBUTE_FILES.get(products.name, "items_ins_v2.json")
    candidates = [wanted, *(n for n in ATTRIBUTE_FILES.values() if n != wanted)]
    attributes = next((data_dir / n for n in candidates if (data_dir / n).is_file()), None)
    if attributes is None:
        raise CatalogueError(
            f"no attribute file in {str(data_dir)!r} for {products.name}: expected {wanted} "
            f"(WebShop's items_ins_v2 file, needed for product attributes and synthetic goals)"
        )
    human = data_dir / HUMAN_FILE
    return RealFiles(products, attributes, human if human.is_file() else None)


def iter_json(path: Path, expect: type[list] | type[dict]) -> Iterator[tuple[Any, Any]]:
    """Stream the elements of a top-level JSON array (``(index, value)``) or object (``(key, value)``).

    Raises ``CatalogueError`` naming the file and the character offset when the JSON is malformed or the
    top-level value is not of the expected kind.
    """
    decoder = json.JSONDecoder()
    opener, closer = ("[", "]") if expect is list else ("{", "}")
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 (closed in the finally below)
    except OSError as e:
        raise CatalogueError(f"cannot read {path}: {e.strerror}") from e
    buf, pos, base, eof = "", 0, 0, False

    def fill() -> bool:
        nonlocal buf, pos, base, eof
        if eof:
            return False
        try:
            chunk = f.read(_CHUNK_CHARS)
        except UnicodeDecodeError as e:
            raise CatalogueError(f"{path}: not UTF-8 text ({e.reason})") from e
        base += pos
        buf, pos = buf[pos:] + chunk, 0
        eof = not chunk
        return bool(chunk)

    def skip_ws() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not fill():
                return ""

    def error(what: str) -> CatalogueError:
        return CatalogueError(f"{path}: invalid JSON at character {base + pos}: {what}")

    def decode() -> Any:
        nonlocal pos
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as e:
                if fill():
                    continue
                raise CatalogueError(f"{path}: invalid JSON at character {base + e.pos}: {e.msg}") from e
            # A number cut at the end of the buffer decodes "successfully": read on and decode again.
            if end == len(buf) and fill():
                continue
            pos = end
            return value

    try:
        first = skip_ws()
        if first != opener:
            kind = "a list of products" if expect is list else "an object keyed by ASIN"
            raise CatalogueError(f"{path}: expected {kind} (a JSON {'array' if expect is list else 'object'})")
        pos += 1
        index = 0
        if skip_ws() == closer:
            pos += 1
        else:
            while True:
                if not skip_ws():
                    raise error("file ends inside the top-level value")
                if expect is list:
                    key: Any = index
                else:
                    if skip_ws() != '"':
                        raise error("expected a string key")
                    key = decode()
                    if skip_ws() != ":":
                        raise error("expected ':'")
                    pos += 1
                    skip_ws()
                yield key, decode()
                index += 1
                sep = skip_ws()
                if sep == closer:
                    pos += 1
                    break
                if sep != ",":
                    raise error(f"expected ',' or '{closer}'" if sep else "file ends before the closing bracket")
                pos += 1
        if skip_ws():
            raise error("extra data after the end of the top-level value")
    finally:
        f.close()


def load_json_object(path: Path) -> dict[str, Any]:
    """Read a whole JSON object file (``items_ins_v2*.json``, ``items_human_ins.json``) with clear errors."""
    return dict(iter_json(path, dict))


def parse_pricing(pricing: Any) -> list[float]:
    """WebShop's price list from a raw ``pricing`` string: ``"$a"`` -> ``[a]``, ``"$a - $b"`` -> ``[a, b]``.

    Missing or empty pricing gives ``[100.0]`` as in WebShop; parts that hold no number are skipped
    (WebShop would crash on them), and a string with no price at all also gives ``[100.0]``.
    """
    if not pricing or not isinstance(pricing, str):
        return [DEFAULT_PRICE]
    prices = []
    for part in pricing.split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        try:
            prices.append(float(Decimal(digits)))
        except InvalidOperation:
            continue
    return prices[:2] or [DEFAULT_PRICE]


def price_tag(prices: list[float]) -> str:
    """WebShop's displayed price: ``$a`` or ``$a to $b`` (Python float formatting, e.g. ``$32.5``)."""
    return f"${prices[0]}" if len(prices) == 1 else f"${prices[0]} to ${prices[1]}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def process_product(raw: dict[str, Any], attributes: dict[str, Any] | None) -> dict[str, Any]:
    """Turn one raw record into the product dict the site serves (WebShop's ``load_products`` rules).

    ``attributes`` is the record's entry of ``items_ins_v2*.json`` or None. Vendor keys are dropped by
    building the served dict from the known keys only. ``None`` text fields become ``""``.
    """
    name = _text(raw.get("name"))
    bullets = raw.get("small_description")
    if isinstance(bullets, list):
        bullet_points = [_text(b) for b in bullets if b is not None]
    else:
        bullet_points = [] if bullets is None else [_text(bullets)]
    prices = parse_pricing(raw.get("pricing"))
    options: dict[str, list[str]] = {}
    option_to_image: dict[str, str] = {}
    custom = raw.get("customization_options")
    if isinstance(custom, dict):
        for option_name, contents in custom.items():
            if not isinstance(contents, list):
                continue
            values = []
            for content in contents:
                if not isinstance(content, dict) or not isinstance(content.get("value"), str):
                    continue
                value = content["value"].strip().replace("/", " | ").lower()
                values.append(value)
                option_to_image[value] = _text(content.get("image"))
            options[str(option_name).lower()] = values
    if attributes is not None and "attributes" in attributes:
        product_attributes = [a for a in attributes["attributes"] if isinstance(a, str)]
    else:
        product_attributes = [DUMMY_ATTRIBUTE]
    images = raw.get("images")
    return {
        "asin": raw["asin"],
        "name": name,
        "Title": name,
        "Description": _text(raw.get("full_description")),
        "BulletPoints": bullet_points,
        "Price": prices,
        "price_tag": price_tag(prices),
        "pricing": _text(raw.get("pricing")),
        "product_category": _text(raw.get("product_category")),
        "category": _text(raw.get("category")),
        "query": _text(raw.get("query")).lower().strip(),
        "options": options,
        "option_to_image": option_to_image,
        "Attributes": product_attributes,
        "MainImage": _text(images[0]) if isinstance(images, list) and images else "",
        "Rating": "N.A.",
        "Reviews": [],
    }


def search_text(product: dict[str, Any]) -> str:
    """The text WebShop indexes for a product (``search_engine/convert_product_file_format.py``).

    ``Title + ' ' + Description + ' ' + BulletPoints[0] + ' ' + option_text``, lowercased, where
    option_text is ``', and '.join('name: v1, v2')``.
    """
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in product["options"].items())
    first_bullet = product["BulletPoints"][0] if product["BulletPoints"] else ""
    return " ".join([product["Title"], product["Description"], first_bullet, option_text]).lower()


def valid_asin(asin: Any) -> bool:
    """WebShop skips records whose asin is ``'nan'`` or longer than 10 characters."""
    return isinstance(asin, str) and bool(asin) and asin != "nan" and len(asin) <= 10


def synthetic_instruction(asin: str, record: Any, path: Path) -> dict[str, Any] | None:
    """The synthetic instruction of an ``items_ins_v2`` entry, or None when it has none."""
    if not isinstance(record, dict):
        raise CatalogueError(f"{path}: entry {asin!r} is not an object")
    text = record.get("instruction")
    if text is None:
        return None
    attrs = record.get("instruction_attributes")
    if not isinstance(text, str) or not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
        raise CatalogueError(f"{path}: entry {asin!r} needs a string 'instruction' and a list of strings "
                             f"'instruction_attributes'")
    return {"instruction": text, "instruction_attributes": attrs}


def human_instructions(asin: str, records: Any, path: Path) -> list[dict[str, Any]]:
    """The human instructions of one ``items_human_ins.json`` entry, checked and reduced to what goals use."""
    if not isinstance(records, list):
        raise CatalogueError(f"{path}: entry {asin!r} is not a list of instructions")
    out = []
    for i, r in enumerate(records):
        ok = (
            isinstance(r, dict)
            and isinstance(r.get("instruction"), str)
            and isinstance(r.get("instruction_attributes"), list)
            and isinstance(r.get("instruction_options"), list)
        )
        if not ok:
            raise CatalogueError(
                f"{path}: entry {asin!r} instruction {i} needs 'instruction' (string), "
                f"'instruction_attributes' (list) and 'instruction_options' (list)"
            )
        out.append({k: r[k] for k in ("instruction", "instruction_attributes", "instruction_options")})
    return out


def iter_raw_products(path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Stream the raw records of a products file (the first ``limit`` records, as WebShop's num_products)."""
    for i, record in iter_json(path, list):
        if limit is not None and i >= limit:
            return
        if not isinstance(record, dict):
            raise CatalogueError(f"{path}: record {i} is not an object")
        yield record
