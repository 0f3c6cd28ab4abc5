"""Shared, session-scoped WebShop worlds: small catalogues built once into a temporary cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers.webshop.world import World, WorldConfig

FIXTURES = Path(__file__).parent / "fixtures"
REAL_DIR = FIXTURES / "real"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("webshop-cache")


@pytest.fixture(scope="session")
def world(cache_dir: Path) -> World:
    """A generated 400-product catalogue."""
    return World.load(WorldConfig(num_products=400, seed=7, cache_dir=cache_dir))


@pytest.fixture(scope="session")
def real_world(cache_dir: Path) -> World:
    """The hand-written real-schema fixture, with its human goals."""
    return World.load(WorldConfig(data_dir=REAL_DIR, cache_dir=cache_dir))


@pytest.fixture(scope="session")
def real_world_synthetic(cache_dir: Path) -> World:
    """The same fixture with WebShop's synthetic goals."""
    return World.load(WorldConfig(data_dir=REAL_DIR, cache_dir=cache_dir, human_goals=False))
