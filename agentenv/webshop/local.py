"""A WebShop server started inside this process, shared by every env with the same world config.

``agentenv`` imports ``servers`` only here (and for the page-text format in ``browser``): to
start a server when the user gave no ``server_url``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from .client import WebShopAPIError

logger = logging.getLogger(__name__)

_SERVERS: dict[str, LocalServer] = {}
_LOCK = threading.Lock()


@dataclass
class LocalServer:
    """A waitress server on a free loopback port, in a daemon thread."""

    url: str
    shop: Any  # servers.webshop.session.Shop
    server: Any  # waitress server
    thread: threading.Thread

    def close(self) -> None:
        self.server.close()


def local_server(world_config: dict[str, Any], threads: int = 8) -> LocalServer:
    """The in-process server for ``world_config`` (``WorldConfig`` fields), started on first use."""
    import waitress

    from servers.webshop.app import create_app
    from servers.webshop.world import World, WorldConfig

    config = WorldConfig(**world_config)
    key = config.model_dump_json()
    with _LOCK:
        if key not in _SERVERS:
            world = World.load(config)
            world.warm_up()  # spaCy and the searcher load now, not on the first request
            app = create_app(world)
            server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads, ident="webshop")
            thread = threading.Thread(target=server.run, name="webshop-server", daemon=True)
            thread.start()
            url = f"http://127.0.0.1:{server.effective_port}"
            logger.info("in-process WebShop server ready at %s/", url)
            _SERVERS[key] = LocalServer(url, app.extensions["webshop"], server, thread)
        return _SERVERS[key]


class DirectClient:
    """The JSON API called in-process: the same functions and checks as over HTTP, no sockets."""

    def __init__(self, shop: Any):
        from servers.webshop import api
        from servers.webshop.session import ShopError

        self._shop, self._api, self._error = shop, api, ShopError

    def _call(self, function: str, *args: Any) -> Any:
        try:
            return getattr(self._api, function)(self._shop, *args)
        except self._error as error:
            raise WebShopAPIError(error.status, error.message) from None

    def info(self) -> dict:
        return self._call("info")

    def create(self, goal_index: int | None = None) -> dict:
        return self._call("create_session", {"goal_index": goal_index})

    def reset(self, session_id: str, goal_index: int | None = None) -> dict:
        return self._call("reset_session", session_id, {"goal_index": goal_index})

    def step(self, session_id: str, action: str) -> dict:
        return self._call("step_session", session_id, {"action": action})

    def state(self, session_id: str) -> dict:
        return self._call("get_session", session_id)

    def delete(self, session_id: str) -> None:
        self._call("delete_session", session_id)

    def close(self) -> None:
        pass
