"""One real WebShop server for the whole test session: the real World (generated catalogue, SQLite
store, pyserini index) under waitress on a free loopback port, started the way ``WebShop-v0``
starts its in-process server. The catalogue is small so the session stays fast."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from agentenv.webshop.local import LocalServer, local_server

NUM_PRODUCTS = 300
CATALOGUE_SEED = 7


@pytest.fixture(scope="session")
def world_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cache_dir = tmp_path_factory.mktemp("webshop-cache")
    return {"num_products": NUM_PRODUCTS, "seed": CATALOGUE_SEED, "cache_dir": str(cache_dir)}


@pytest.fixture(scope="session")
def env_kwargs(world_config: dict[str, Any]) -> dict[str, Any]:
    """``WebShopEnv`` kwargs for the same world (so envs share the session's server)."""
    return {
        "num_products": world_config["num_products"],
        "catalogue_seed": world_config["seed"],
        "cache_dir": world_config["cache_dir"],
    }


@pytest.fixture(scope="session")
def server(world_config: dict[str, Any]) -> LocalServer:
    return local_server(world_config)


@pytest.fixture(scope="session")
def world(server: LocalServer) -> Any:
    return server.shop.world


@pytest.fixture(scope="session")
def base_url(server: LocalServer) -> str:
    return server.url


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@dataclass(frozen=True)
class WinningCase:
    """A test-split goal and the purchase that scores 1.0 on it."""

    goal_index: int
    goal: dict
    product: dict
    options: dict[str, str]


@pytest.fixture(scope="session")
def winning(world: Any) -> WinningCase:
    for goal_index in world.goal_indices("test"):
        goal = world.goals[goal_index]
        product = world.product(goal["asin"])
        options = goal["goal_options"]
        if not isinstance(options, dict) or not options:
            continue
        if any(value not in product["options"].get(name, ()) for name, value in options.items()):
            continue
        if world.reward(goal["asin"], options, goal)[0] == 1.0:
            return WinningCase(goal_index, goal, product, dict(options))
    raise AssertionError("no test goal with options scores 1.0 when its own product is bought")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
