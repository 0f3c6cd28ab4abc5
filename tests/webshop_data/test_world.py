"""The World facade: loading and caching, products, search, goals, reward, threads, real files, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from servers.webshop.world import CatalogueError, World, WorldConfig

from .conftest import REAL_DIR

PRODUCT_KEYS = {"asin", "name", "Title", "Description", "BulletPoints", "Price", "price_tag", "pricing",
                "product_category", "category", "query", "options", "option_to_image", "Attributes",
                "MainImage", "Rating", "Reviews"}


def test_second_load_reuses_the_cache(world, cache_dir, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("the catalogue was rebuilt")

    monkeypatch.setattr(World, "_build", staticmethod(no_build))
    lock_file = Path(str(world.path) + ".lock")
    lock_file.unlink(missing_ok=True)
    again = World.load(world.config)
    assert not lock_file.exists()  # a complete cache is only read: it may live on a read-only volume
    assert again.fingerprint == world.fingerprint
    assert again.num_products() == world.num_products() == 400
    assert again.goals[0] == world.goals[0]
    assert len(again.goals) == len(world.goals)


def test_same_config_same_world_anywhere(world, tmp_path):
    other = World.load(world.config.model_copy(update={"cache_dir": tmp_path}))
    assert other.fingerprint == world.fingerprint
    assert [other.goals[i] for i in range(0, len(other.goals), 37)] == \
           [world.goals[i] for i in range(0, len(world.goals), 37)]
    g = world.goals[3]
    assert other.search(g["instruction_text"]) == world.search(g["instruction_text"])
    assert other.price(g["asin"]) == world.price(g["asin"])
    other.close()


def test_fingerprint_depends_on_the_catalogue(world, tmp_path):
    small = World.load(WorldConfig(num_products=30, seed=7, cache_dir=tmp_path))
    other_seed = World.load(WorldConfig(num_products=30, seed=8, cache_dir=tmp_path))
    assert len({small.fingerprint, other_seed.fingerprint, world.fingerprint}) == 3
    # a catalogue is a prefix of any larger one with the same seed
    first = world.product(small.goals[0]["asin"])
    assert small.product(first["asin"]) == first
    # the price seed changes goals' price draws but not the catalogue
    repriced = World.load(WorldConfig(num_products=30, seed=7, cache_dir=tmp_path, price_seed=5))
    assert repriced.fingerprint == small.fingerprint and repriced.path == small.path
    assert len(list(small.path.glob("goals-synthetic-price*.npz"))) == 2


def test_products(world):
    asin = world.goals[0]["asin"]
    p = world.product(asin)
    assert set(p) == PRODUCT_KEYS
    assert p["asin"] == asin and asin in world
    assert p["category"] in {"beauty", "food", "fashion", "furniture", "electronics"}
    assert p["Title"] and p["Description"] and p["BulletPoints"]
    assert 1 <= len(p["Price"]) <= 2
    assert world.price(asin) == pytest.approx(p["Price"][0]) if len(p["Price"]) == 1 else \
        p["Price"][0] <= world.price(asin) <= p["Price"][1]
    with pytest.raises(KeyError):
        world.product("B000NOPE00")
    with pytest.raises(KeyError):
        world.price("../../etc/passwd")
    assert "B000NOPE00" not in world and 3 not in world


def test_search(world):
    hits = world.search("gluten free snacks")
    assert 0 < len(hits) <= 50 and len(set(hits)) == len(hits)
    assert all(h in world for h in hits)
    assert len(world.search("the", k=50)) == 0
    assert world.search("") == []
    with pytest.raises(TypeError):
        world.search(None)  # type: ignore[arg-type]
    assert isinstance(world.search("x" * 100_000), list)
    assert isinstance(world.search(" ".join(f"w{i}" for i in range(20_000))), list)


def test_goal_products_are_findable(world):
    """Synthetic instructions lead back to their product: WebShop's search finds most of them."""
    sample = [world.goals[i] for i in range(0, min(len(world.goals), 200))]
    found = sum(g["asin"] in world.search(g["instruction_text"]) for g in sample)
    assert found / len(sample) > 0.9


def test_splits(world):
    n = len(world.goals)
    assert world.goal_indices("test") == range(0, min(500, n))
    assert world.goal_indices("train") == range(min(1500, n), n)
    with pytest.raises(ValueError, match="unknown split"):
        world.goal_indices("dev")


def test_reward_input_checks(world):
    g = world.goals[0]
    with pytest.raises(TypeError, match="options must be a dict"):
        world.reward(g["asin"], ["red"], g)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="goal lacks"):
        world.reward(g["asin"], {}, {"asin": g["asin"]})
    with pytest.raises(KeyError):
        world.reward("B000NOPE00", {}, g)


def test_threads_see_the_same_world(world):
    goals = [world.goals[i] for i in range(24)]

    def work(g):
        return (world.search(g["instruction_text"]), world.product(g["asin"]), world.price(g["asin"]),
                world.reward(g["asin"], g["goal_options"], g)[0])

    expected = [work(g) for g in goals]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(work, goals * 3))
    assert got == expected * 3
    assert threading.active_count() >= 1


def test_real_files(real_world):
    assert real_world.source == "real" and real_world.num_products() == 5  # dup, 'nan', long asin skipped
    perfume = real_world.product("B09QKP7XQL")
    assert perfume["Title"].startswith("Eau de Toilette")  # the first of two records with this asin
    assert perfume["query"] == "women's fragrance"
    assert perfume["options"] == {"size": ["3.4 fl oz (pack of 1)", "6.76 fl oz (pack of 1)"]}
    henley = real_world.product("B07ZJ3PQ2R")
    assert henley["BulletPoints"] == ["Machine wash; classic fit; 100% cotton"]
    assert henley["options"]["color"] == ["navy blue", "heather grey | white"]
    assert henley["Price"] == [12.99, 25.5] and henley["price_tag"] == "$12.99 to $25.5"
    assert real_world.product("B01N5QX7KD")["Price"] == [100.0]
    assert real_world.product("B08L5TNJHG")["Price"] == [1099.0]
    assert real_world.product("B07WRH8VXZ")["Attributes"] == ["DUMMY_ATTR"]
    assert "nan" not in real_world and "B0TOOLONGASIN" not in real_world
    assert real_world.search("usb microphone")[0] == "B07WRH8VXZ"
    assert real_world.search("henley navy")[0] == "B07ZJ3PQ2R"  # option text is indexed


def test_without_the_human_file_goals_are_synthetic(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("items_shuffle_1000.json", "items_ins_v2_1000.json"):
        shutil.copy(REAL_DIR / name, data / name)
    w = World.load(WorldConfig(data_dir=data, cache_dir=tmp_path / "cache"))
    assert w.goal_kind == "synthetic" and len(w.goals) == 9
    w.close()


def test_max_products_keeps_the_first_raw_records(tmp_path):
    w = World.load(WorldConfig(data_dir=REAL_DIR, cache_dir=tmp_path, max_products=2))
    assert w.num_products() == 2 and "B07ZJ3PQ2R" in w and "B01N5QX7KD" not in w
    w.close()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [("items_shuffle_1000.json", '[{"asin": "B1", ', "items_shuffle_1000.json: invalid JSON"),
     ("items_ins_v2_1000.json", '["not", "an object"]', "items_ins_v2_1000.json: expected an object"),
     ("items_human_ins.json", '{"B09QKP7XQL": [{"instruction": 3}]}', "items_human_ins.json: entry 'B09QKP7XQL'")],
)
def test_corrupt_files_name_the_file(tmp_path, name, text, message):
    data = tmp_path / "data"
    shutil.copytree(REAL_DIR, data)
    (data / name).write_text(text, encoding="utf-8")
    cache = tmp_path / "cache"
    with pytest.raises(CatalogueError, match=message):
        World.load(WorldConfig(data_dir=data, cache_dir=cache))
    assert not [p for p in cache.iterdir() if p.is_dir()]  # nothing half-built is left
    shutil.copy(REAL_DIR / name, data / name)  # once fixed, it builds
    assert World.load(WorldConfig(data_dir=data, cache_dir=cache)).num_products() == 5


def test_missing_files(tmp_path):
    with pytest.raises(CatalogueError, match="not a folder"):
        World.load(WorldConfig(data_dir=tmp_path / "nowhere", cache_dir=tmp_path))
    with pytest.raises(CatalogueError, match=r"items_shuffle_1000\.json, items_shuffle\.json"):
        World.load(WorldConfig(data_dir=tmp_path, cache_dir=tmp_path))


def test_config_validation_and_cache_dir(monkeypatch, tmp_path):
    with pytest.raises(ValueError):
        WorldConfig(num_products=0)
    with pytest.raises(ValueError):
        WorldConfig(unknown=1)  # type: ignore[call-arg]
    monkeypatch.setenv("HGPO_CACHE", str(tmp_path))
    assert WorldConfig().resolved_cache_dir() == tmp_path / "webshop"
    monkeypatch.delenv("HGPO_CACHE")
    assert WorldConfig().resolved_cache_dir() == Path.home() / ".cache" / "hgpo-agents" / "webshop"
    assert WorldConfig(cache_dir=tmp_path).resolved_cache_dir() == tmp_path


def test_processes_share_one_build(tmp_path):
    """Two processes loading the same new catalogue at once: one builds, both serve the same store."""
    code = (
        "import json, sys; from servers.webshop.world import World, WorldConfig; "
        f"w = World.load(WorldConfig(num_products=60, seed=3, cache_dir={str(tmp_path)!r})); "
        "print(json.dumps([w.fingerprint, w.num_products(), len(w.goals), w.goals[0]]))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert results[0] == results[1]
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1


def test_data_and_cache_dirs_expand_the_home_folder():
    from servers.webshop.world import WorldConfig

    cfg = WorldConfig(data_dir="~/webshop/data", cache_dir="~/cache")
    assert cfg.data_dir == Path.home() / "webshop" / "data"
    assert cfg.resolved_cache_dir() == Path.home() / "cache"
