"""WebShop's raw schema, the streaming reader and the processing of raw records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers.webshop import catalogue
from servers.webshop.catalogue import (
    CatalogueError,
    find_real_files,
    iter_json,
    parse_pricing,
    price_tag,
    process_product,
    search_text,
)

from .conftest import REAL_DIR


def raw(**overrides):
    base = {
        "asin": "B000000001",
        "name": "Red Running Shoes",
        "full_description": "Light shoes.",
        "small_description": ["Mesh upper", "Rubber sole"],
        "pricing": "$19.99",
        "images": ["https://example.com/a.jpg"],
        "product_category": "Clothing › Shoes",
        "category": "fashion",
        "query": " Running Shoes ",
        "customization_options": {"Color": [{"value": " Black/White ", "image": "u1"}, {"value": "Red", "image": None}]},
        "average_rating": 4.5,
        "brand": "vendor key",
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("pricing", "expected"),
    [("$19.99", [19.99]), ("$12.99 - $25.50", [12.99, 25.5]), ("$1,099.00", [1099.0]), (None, [100.0]),
     ("", [100.0]), ("$5 - $6 - $7", [5.0, 6.0]), ("19.99", [100.0]), ("$ - $3", [3.0])],
)
def test_parse_pricing(pricing, expected):
    assert parse_pricing(pricing) == expected


def test_price_tag_uses_python_float_text():
    assert price_tag([32.5]) == "$32.5"
    assert price_tag([100.0]) == "$100.0"
    assert price_tag([12.99, 25.5]) == "$12.99 to $25.5"


def test_process_product_follows_webshop():
    p = process_product(raw(), {"attributes": ["rubber sole"]})
    assert p["Title"] == p["name"] == "Red Running Shoes"
    assert p["Description"] == "Light shoes."
    assert p["BulletPoints"] == ["Mesh upper", "Rubber sole"]
    assert p["Price"] == [19.99] and p["price_tag"] == "$19.99" and p["pricing"] == "$19.99"
    assert p["options"] == {"color": ["black | white", "red"]}
    assert p["option_to_image"] == {"black | white": "u1", "red": ""}
    assert p["Attributes"] == ["rubber sole"]
    assert p["query"] == "running shoes"
    assert p["MainImage"] == "https://example.com/a.jpg"
    assert p["Rating"] == "N.A." and p["Reviews"] == []
    assert "brand" not in p and "average_rating" not in p


def test_process_product_fallbacks():
    p = process_product(raw(small_description="One line", images=[], customization_options=None,
                            full_description=None), None)
    assert p["BulletPoints"] == ["One line"]
    assert p["MainImage"] == "" and p["options"] == {} and p["Description"] == ""
    assert p["Attributes"] == ["DUMMY_ATTR"]
    assert process_product(raw(), {"attributes": []})["Attributes"] == []


def test_search_text_is_webshops_document():
    p = process_product(raw(customization_options={"Color": [{"value": "Red"}, {"value": "Blue"}],
                                                    "Size": [{"value": "9"}]}), None)
    assert search_text(p) == ("red running shoes light shoes. mesh upper "
                              "color: red, blue, and size: 9")
    assert search_text(process_product(raw(small_description=[], customization_options=None), None)) == \
        "red running shoes light shoes.  "


@pytest.mark.parametrize("asin", ["nan", "B0123456789", "", None, 12])
def test_invalid_asins(asin):
    assert not catalogue.valid_asin(asin)


def test_iter_json_streams_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(catalogue, "_CHUNK_CHARS", 7)
    records = [{"asin": f"B{i:09d}", "price": 1234567.5 + i, "text": "é ü ✓" * i} for i in range(30)]
    path = tmp_path / "items.json"
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    assert [v for _, v in iter_json(path, list)] == records
    obj = {r["asin"]: r for r in records}
    path.write_text(json.dumps(obj), encoding="utf-8")
    assert dict(iter_json(path, dict)) == obj
    path.write_text(" [ ] ", encoding="utf-8")
    assert list(iter_json(path, list)) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [('[{"asin": "B1"}, {"asin": ', "invalid JSON"), ('[{"asin": "B1"} {"asin": "B2"}]', "expected ','"),
     ('{"B1": {}}', "expected a list of products"), ('[{"asin": "B1"}] trailing', "extra data"),
     ("", "expected a list")],
)
def test_iter_json_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "items_shuffle_1000.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError, match=message) as err:
        list(iter_json(path, list))
    assert str(path) in str(err.value)


def test_iter_json_rejects_non_utf8(tmp_path):
    path = tmp_path / "items_shuffle_1000.json"
    path.write_bytes(b'[{"asin": "\xff\xfe"}]')
    with pytest.raises(CatalogueError, match="not UTF-8"):
        list(iter_json(path, list))


def test_non_object_record_is_an_error(tmp_path):
    path = tmp_path / "items_shuffle_1000.json"
    path.write_text('[{"asin": "B1"}, 3]', encoding="utf-8")
    with pytest.raises(CatalogueError, match="record 1 is not an object"):
        list(catalogue.iter_raw_products(path))


def test_find_real_files(tmp_path):
    files = find_real_files(REAL_DIR)
    assert files.products.name == "items_shuffle_1000.json"
    assert files.attributes.name == "items_ins_v2_1000.json"
    assert files.human is not None and files.human.name == "items_human_ins.json"
    with pytest.raises(CatalogueError, match="no product file"):
        find_real_files(tmp_path)
    (tmp_path / "items_shuffle.json").write_text("[]")
    with pytest.raises(CatalogueError, match=r"items_ins_v2\.json"):
        find_real_files(tmp_path)
    (tmp_path / "items_ins_v2_1000.json").write_text("{}")
    files = find_real_files(tmp_path)  # the other attribute file is accepted when only it exists
    assert files.attributes.name == "items_ins_v2_1000.json" and files.human is None
    with pytest.raises(CatalogueError, match="not a folder"):
        find_real_files(tmp_path / "missing")
    with pytest.raises(CatalogueError, match=r"mine\.json"):
        find_real_files(tmp_path, "mine.json")


def test_instruction_records_are_checked(tmp_path: Path):
    path = tmp_path / "items_human_ins.json"
    with pytest.raises(CatalogueError, match="instruction 0 needs"):
        catalogue.human_instructions("B1", [{"instruction": "x"}], path)
    with pytest.raises(CatalogueError, match="not a list"):
        catalogue.human_instructions("B1", {"instruction": "x"}, path)
    with pytest.raises(CatalogueError, match="instruction_attributes"):
        catalogue.synthetic_instruction("B1", {"instruction": "x", "instruction_attributes": "a"}, path)
    assert catalogue.synthetic_instruction("B1", {"attributes": []}, path) is None
