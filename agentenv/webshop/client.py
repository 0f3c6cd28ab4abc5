"""Clients of the WebShop JSON API (docs/webshop.md): over HTTP, or in-process without HTTP."""

from __future__ import annotations

import time
from typing import Any

import requests


class WebShopAPIError(RuntimeError):
    """The server refused a request: ``status`` is the HTTP status, ``message`` its explanation."""

    def __init__(self, status: int, message: str):
        super().__init__(f"WebShop server answered {status}: {message}")
        self.status = status
        self.message = message


class WebShopClient:
    """The JSON API over HTTP (one keep-alive connection pool per client)."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        url = self.base_url + path
        try:
            response = self._http.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise ConnectionError(f"cannot reach the WebShop server at {self.base_url}: {error}") from error
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise WebShopAPIError(response.status_code, message)
        return response.json() if response.content else None

    def info(self) -> dict:
        """``GET /api/info``: sizes, goal splits, limits."""
        return self._call("GET", "/api/info")

    def create(self, goal_index: int | None = None) -> dict:
        """``POST /api/sessions``: a new session on ``goal_index`` (None: WebShop's weighted draw)."""
        return self._call("POST", "/api/sessions", {"goal_index": goal_index})

    def reset(self, session_id: str, goal_index: int | None = None) -> dict:
        return self._call("POST", f"/api/sessions/{session_id}/reset", {"goal_index": goal_index})

    def step(self, session_id: str, action: str) -> dict:
        return self._call("POST", f"/api/sessions/{session_id}/step", {"action": action})

    def state(self, session_id: str) -> dict:
        return self._call("GET", f"/api/sessions/{session_id}")

    def delete(self, session_id: str) -> None:
        self._call("DELETE", f"/api/sessions/{session_id}")

    def wait_ready(self, timeout: float = 60.0) -> dict:
        """Poll ``/api/info`` until the server answers (it logs "ready" once it does)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.info()
            except ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self._http.close()
