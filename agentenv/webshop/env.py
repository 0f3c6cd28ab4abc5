"""``WebShop-v0``: WebShop's text environment over the server's JSON API."""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import gymnasium as gym

from ..spaces import FreeText
from .client import WebShopAPIError, WebShopClient

logger = logging.getLogger(__name__)

SPLITS = ("test", "eval", "train")
OBSERVATION_MODES = ("text", "text_rich")
ACTION_PARSINGS = ("upstream", "lenient")
SEARCH_PLACEHOLDER = "search[<query>]"
_LENIENT_NAME_RE = re.compile(r"(search|click)\s*\[", re.IGNORECASE)


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


def lenient_action(action: str) -> str:
    """The lenient reading of an action, as the server's upstream rules will then accept it:
    surrounding whitespace dropped and a ``Search`` / ``CLICK`` name lowercased
    (`` Click [Buy Now] `` -> ``click[Buy Now]``). Anything else is left as it is."""
    stripped = action.strip()
    match = _LENIENT_NAME_RE.match(stripped)
    if match is None:
        return stripped
    return match.group(1).lower() + "[" + stripped[match.end() :]


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
    the current page, read by upstream's rules (``re.match(r"(.+)\\[(.+)\\]")``: the name exactly
    ``search`` or ``click``, the argument lowercased; ``action_parsing="lenient"`` also accepts
    surrounding whitespace and any case of the name). Anything else changes nothing: the same
    observation comes back with ``info["action_valid"] = False``. ``step`` never raises on a ``str``.

    ## Observation Space
    ``FreeText``: the page as WebShop's ``text`` mode renders it (visible texts joined by
    `` [SEP] ``), or ``text_rich`` (``[button] X [button_]`` markup, one element per line).
    After an action the server refuses (a query over 1,000 characters, an action over 2,000, text
    with a lone surrogate) the unchanged page is prefixed with ``Invalid action: <reason>.``

    ## Rewards
    ``success_reward`` (10.0) when the purchase scores 1.0, else 0.0. ``info["score"]`` holds
    WebShop's raw reward in [0, 1] (papers report its mean x 100).

    ## Episode End
    Terminated by ``click[buy now]``; truncated after ``max_steps`` (15) actions. Stepping a
    finished episode returns its last observation, reward 0 and the same flags, with no request.

    ## Information
    ``task`` (the instruction), ``task_id`` (goal index), ``admissible_actions``
    (``search[<query>]`` when there is a search bar, plus ``click[x]`` per clickable),
    ``available_actions`` (upstream's ``{"has_search_bar": bool, "clickables": [...]}``, as
    WebShop's ``get_available_actions()`` and verl-agent give it), ``action_valid``, ``won``
    (score == 1.0), ``score``. Same goal and seed give identical observations, rewards and infos
    (the page URL, which holds the session id, is left out).

    ## Starting State
    The search page of goal ``options["task"]``, else of ``goal_indices(split)[seed % n]``
    (a seed-driven draw without a seed): seeds 0..n-1 cover the split once, seed ``s`` being
    upstream's ``fixed_<s>`` goal. The goals are already in upstream's seeded shuffled order, which
    has no blocks of one category (benchmarks/webshop_goal_order.py), so no further permutation.
    ``reset(options={"idle": True})`` parks the env: ``("", info)`` and every step
    ``("", 0.0, False, False, info)`` with no request, until the next reset.

    ## Server housekeeping
    A server session that expired (idle past the server's limit) or was deleted is rebuilt on the
    next step: a new session on the same goal replays the episode's actions, then the step runs.

    ## Arguments
    ``server_url``, ``split`` ("test": goals 0-499, "eval": 500-1499, "train": 1500-),
    ``observation_mode``, ``max_steps``, ``success_reward``, ``action_parsing`` ("upstream" or
    "lenient"), ``timeout`` (HTTP seconds),
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
        action_parsing: Literal["upstream", "lenient"] = "upstream",
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
        if action_parsing not in ACTION_PARSINGS:
            raise ValueError(f"action_parsing must be one of {ACTION_PARSINGS}, not {action_parsing!r}")
        self.action_parsing = action_parsing
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
        self._message: str | None = None  # why the server refused the last action, if it did
        self._history: list[str] = []  # the actions this episode sent, replayed if the session is gone

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
        self._message, self._history = None, []
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
            if self.action_parsing == "lenient":
                action = lenient_action(action)
            self._state, action_valid, self._message = self._act(action)
        else:
            action_valid, self._message = False, None
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

    def _act(self, action: str) -> tuple[PageState, bool, str | None]:
        """Send one action; returns the new state, whether it was valid, and the server's reason
        when it refused the action (never raises for an action the server refuses)."""
        try:
            state = self._step_session(action)
        except WebShopAPIError as error:
            if error.status in (400, 413):  # e.g. a body over the server's size limit: WebShop's no-op
                return self._state, False, error.message
            raise
        self._history.append(action)
        return PageState.from_api(state), bool(state["action_valid"]), state.get("message")

    def _step_session(self, action: str) -> dict:
        try:
            return self.client.step(self._session_id, action)
        except WebShopAPIError as error:
            if error.status != 404:
                raise
        # The server no longer has the session (expired when idle, deleted, or the server restarted):
        # rebuild it on the same goal by replaying this episode's actions, then take the step.
        logger.info("WebShop session %s is gone; replaying %d actions on a new one", self._session_id,
                    len(self._history))
        state = self.client.create(self._state.goal_index)
        self._session_id = state["session_id"]
        for earlier in self._history:
            state = self.client.step(self._session_id, earlier)
        replayed = PageState.from_api(state)
        if (replayed.text, replayed.text_rich, replayed.available_actions) != (
            self._state.text, self._state.text_rich, self._state.available_actions
        ):
            raise RuntimeError(
                "the WebShop server lost this episode's session and replaying its actions on a new one "
                "gave a different page (was the server restarted with another catalogue?)"
            )
        return self.client.step(self._session_id, action)

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
        page = self._state.text_rich if self.observation_mode == "text_rich" else self._state.text
        if self._message is None:
            return page
        separator = "\n" if self.observation_mode == "text_rich" else " [SEP] "
        return f"Invalid action: {self._message}.{separator}{page}"

    def _info(self, action_valid: bool) -> dict[str, Any]:
        state = self._state
        return {
            "task": state.instruction,
            "task_id": state.goal_index,
            "admissible_actions": [] if state.done else admissible_actions(state.available_actions),
            "available_actions": {
                "has_search_bar": bool(state.available_actions["has_search_bar"]),
                "clickables": list(state.available_actions["clickables"]),
            },
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
            "available_actions": {"has_search_bar": False, "clickables": []},
            "action_valid": False,
            "won": False,
            "score": 0.0,
        }
