"""``WebShop-v0``: WebShop's text environment over the server's JSON API."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import gymnasium as gym

from ..spaces import FreeText
from .client import WebShopAPIError, WebShopClient

SPLITS = ("test", "eval", "train")
OBSERVATION_MODES = ("text", "text_rich")
SEARCH_PLACEHOLDER = "search[<query>]"


@dataclass(frozen=True)
class PageState:
    """What the env knows after an action: the page's texts, its actions and the outcome."""

    text: str
    text_rich: str
    available_actions: dict
    url: str
    instruction: str
    goal_index: int
    done: bool
    score: float

    @classmethod
    def from_api(cls, state: dict) -> PageState:
        return cls(
            text=state["observation"]["text"],
            text_rich=state["observation"]["text_rich"],
            available_actions=state["available_actions"],
            url=state["url"],
            instruction=state["instruction"],
            goal_index=state["goal_index"],
            done=state["done"],
            score=float(state["score"]),
        )


def admissible_actions(available: dict) -> list[str]:
    """``search[<query>]`` (any query) when the page has a search bar, then ``click[x]`` for each
    clickable, except WebShop's search button (clicking it does nothing)."""
    actions = [SEARCH_PLACEHOLDER] if available.get("has_search_bar") else []
    return actions + [f"click[{name}]" for name in available.get("clickables", []) if name != "search"]


class WebShopEnv(gym.Env[str, str]):
    """WebShop (Yao et al., 2022): find and buy the product an instruction asks for.

    The env plays one session of a WebShop server through its JSON API: the server given by
    ``server_url``, or, with none, a server started in this process on a free loopback port
    (one per world config, shared by all envs of the process).

    ## Action Space
    ``FreeText``: WebShop's actions, ``search[<query>]`` (on any page, as in WebShop) and
    ``click[<clickable>]`` with the lowercased text of a button, product link or option value of
    the current page. Anything else (including a query over the server's 1,000-character limit)
    changes nothing: the same observation comes back with ``info["action_valid"] = False``.

    ## Observation Space
    ``FreeText``: the page as WebShop's ``text`` mode renders it (visible texts joined by
    `` [SEP] ``), or ``text_rich`` (``[button] X [button_]`` markup, one element per line).

    ## Rewards
    ``success_reward`` (10.0) when the purchase scores 1.0, else 0.0. ``info["score"]`` holds
    WebShop's raw reward in [0, 1] (papers report its mean x 100).

    ## Episode End
    Terminated by ``click[buy now]``; truncated after ``max_steps`` (15) actions. Stepping a
    finished episode returns its last observation, reward 0 and the same flags, with no request.

    ## Information
    ``task`` (the instruction), ``task_id`` (goal index), ``admissible_actions``
    (``search[<query>]`` when there is a search bar, plus ``click[x]`` per clickable),
    ``action_valid``, ``won`` (score == 1.0), ``score``. Same goal and seed give identical
    observations, rewards and infos (the page URL, which holds the session id, is left out).

    ## Starting State
    The search page of goal ``options["task"]``, else of ``goal_indices(split)[seed % n]``
    (a seed-driven draw without a seed). ``reset(options={"idle": True})`` parks the env: ``("", info)``
    and every step ``("", 0.0, False, False, info)`` with no request, until the next reset.

    ## Arguments
    ``server_url``, ``split`` ("test": goals 0-499, "eval": 500-1499, "train": 1500-),
    ``observation_mode``, ``max_steps``, ``success_reward``, ``timeout`` (HTTP seconds),
    ``transport`` ("http", or "direct": call the in-process server's session logic without HTTP;
    needs ``server_url=None``), and for the in-process server the world config: ``num_products``,
    ``catalogue_seed``, ``data_dir``, ``cache_dir``, ``human_goals``, ``price_seed``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        server_url: str | None = None,
        split: Literal["test", "eval", "train"] = "test",
        observation_mode: Literal["text", "text_rich"] = "text",
        max_steps: int = 15,
        success_reward: float = 10.0,
        *,
        num_products: int = 1000,
        catalogue_seed: int = 0,
        data_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        human_goals: bool = True,
        price_seed: int = 0,
        transport: Literal["http", "direct"] = "http",
        timeout: float = 30.0,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        if observation_mode not in OBSERVATION_MODES:
            raise ValueError(f"observation_mode must be one of {OBSERVATION_MODES}, not {observation_mode!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, not {max_steps}")
        if transport not in ("http", "direct"):
            raise ValueError(f"transport must be 'http' or 'direct', not {transport!r}")
        if transport == "direct" and server_url is not None:
            raise ValueError("transport='direct' calls an in-process server: leave server_url=None")
        self.server_url = server_url
        self.split = split
        self.observation_mode = observation_mode
        self.max_steps = max_steps
        self.success_reward = float(success_reward)
        self.transport = transport
        self.timeout = timeout
        self.world_config: dict[str, Any] = {
            "num_products": num_products,
            "seed": catalogue_seed,
            "data_dir": data_dir,
            "cache_dir": cache_dir,
            "human_goals": human_goals,
            "price_seed": price_seed,
        }
        self.observation_space = FreeText()
        self.action_space = FreeText()
        self._client: Any = None
        self._world_info: dict | None = None
        self._session_id: str | None = None
        self._state: PageState | None = None
        self._steps = 0
        self._terminated = self._truncated = False
        self._idle = False

    # ---- gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"task", "idle"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}: use 'task' (a goal index) or 'idle'")
        if options.get("idle"):
            self._idle = True
            return "", self._idle_info()
        self._idle = False
        goal_index = self._choose_goal(seed, options.get("task"))
        self._state = self._open(goal_index)
        self._steps = 0
        self._terminated = self._truncated = False
        return self._observation(), self._info(action_valid=True)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._idle:
            return "", 0.0, False, False, self._idle_info()
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._terminated or self._truncated:
            return self._observation(), 0.0, self._terminated, self._truncated, self._info(action_valid=False)
        if isinstance(action, str):
            self._state, action_valid = self._act(action)
        else:
            action_valid = False
        self._steps += 1
        self._terminated = self._state.done
        self._truncated = not self._terminated and self._steps >= self.max_steps
        won = self._terminated and self._state.score == 1.0
        reward = self.success_reward if won else 0.0
        return self._observation(), reward, self._terminated, self._truncated, self._info(action_valid)

    def close(self) -> None:
        if self._client is not None and self._session_id is not None:
            # The server may be gone, or have evicted the session already.
            with contextlib.suppress(WebShopAPIError, ConnectionError):
                self._client.delete(self._session_id)
        if self._client is not None:
            self._client.close()
        self._client, self._session_id = None, None
        super().close()

    # ---- backend: the JSON API (WebShopBrowserEnv overrides _open and _act)

    @property
    def client(self) -> Any:
        """The JSON API client (HTTP, or in-process with ``transport="direct"``), made on first use."""
        if self._client is None:
            if self.server_url is not None:
                self._client = WebShopClient(self.server_url, timeout=self.timeout)
            else:
                from .local import DirectClient, local_server

                server = local_server(self.world_config)
                self.server_url = None if self.transport == "direct" else server.url
                self._client = (
                    DirectClient(server.shop)
                    if self.transport == "direct"
                    else WebShopClient(server.url, timeout=self.timeout)
                )
        return self._client

    @property
    def world_info(self) -> dict:
        """The server's ``/api/info`` (sizes, goal splits, limits), fetched once."""
        if self._world_info is None:
            self._world_info = self.client.info()
        return self._world_info

    def _open(self, goal_index: int) -> PageState:
        """Start the server session on ``goal_index``'s search page."""
        if self._session_id is not None:
            try:
                return PageState.from_api(self.client.reset(self._session_id, goal_index))
            except WebShopAPIError as error:
                if error.status != 404:  # evicted after a long idle time: start a new one
                    raise
        state = self.client.create(goal_index)
        self._session_id = state["session_id"]
        return PageState.from_api(state)

    def _act(self, action: str) -> tuple[PageState, bool]:
        try:
            state = self.client.step(self._session_id, action)
        except WebShopAPIError as error:
            if error.status == 400:  # e.g. a query over the length limit: WebShop's no-op
                return self._state, False
            raise
        return PageState.from_api(state), bool(state["action_valid"])

    # ---- helpers

    def _choose_goal(self, seed: int | None, task: Any) -> int:
        num_goals = self.world_info["num_goals"]
        if task is not None:
            if isinstance(task, bool) or not isinstance(task, int) or not 0 <= task < num_goals:
                raise ValueError(
                    f"options['task'] must be a goal index from 0 to {num_goals - 1}, not {task!r}"
                )
            return task
        start, stop = self.world_info["splits"][self.split]
        if stop <= start:
            raise ValueError(
                f"split {self.split!r} has no goals in this world ({num_goals} goals; "
                "test = 0-499, eval = 500-1499, train = 1500-): use a larger catalogue or another split"
            )
        offset = seed if seed is not None else int(self.np_random.integers(stop - start))
        return start + offset % (stop - start)

    def _observation(self) -> str:
        return self._state.text_rich if self.observation_mode == "text_rich" else self._state.text

    def _info(self, action_valid: bool) -> dict[str, Any]:
        state = self._state
        return {
            "task": state.instruction,
            "task_id": state.goal_index,
            "admissible_actions": [] if state.done else admissible_actions(state.available_actions),
            "action_valid": action_valid,
            "won": state.done and state.score == 1.0,
            "score": state.score,
        }

    @staticmethod
    def _idle_info() -> dict[str, Any]:
        return {
            "task": "",
            "task_id": -1,
            "admissible_actions": [],
            "action_valid": False,
            "won": False,
            "score": 0.0,
        }
