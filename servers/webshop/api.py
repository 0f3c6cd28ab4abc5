"""The JSON API: WebShop's text environment as HTTP endpoints, for programmatic agents.

``POST /api/sessions`` creates a session (optionally on a goal), ``POST .../reset`` and
``POST .../step`` play it with WebShop's ``search[...]`` / ``click[...]`` actions, ``GET`` reads
it (never changing it), ``DELETE`` ends it; ``GET /api/info`` describes the world. Every answer
carries the observation in both text formats, the available actions and the score. Any action
string gives an answer (an action we refuse is a no-op with the reason in ``message``). Errors are
JSON ``{"error": message, "status": code}`` with a 4xx code, or 503 when the server is full
(docs/webshop.md lists them).

The functions below take and return plain dicts, so an in-process client can call them
directly (the same validation and the same answers, without HTTP).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from .session import MAX_ACTION_CHARS, MAX_QUERY_CHARS, Session, Shop, ShopError

SPLITS = ("test", "eval", "train")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateSessionBody(_Body):
    """``POST /api/sessions``: start on ``goal_index`` (default: WebShop's weighted random goal)."""

    goal_index: StrictInt | None = None


class ResetSessionBody(_Body):
    """``POST /api/sessions/<id>/reset``: start over, on ``goal_index`` if given, else the same goal."""

    goal_index: StrictInt | None = None


class StepSessionBody(_Body):
    """``POST /api/sessions/<id>/step``: one action, ``search[<query>]`` or ``click[<clickable>]``."""

    action: StrictStr


def _parse(model: type[_Body], body: Any) -> Any:
    if not isinstance(body, dict):
        raise ShopError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
        )
        raise ShopError(400, f"invalid request body: {problems}") from None


def session_state(shop: Shop, session: Session) -> dict[str, Any]:
    """What an agent sees of ``session`` (call with ``session.lock`` held); changes nothing."""
    if session.view is None:  # created by a page URL that was refused: it is still on its search page
        shop.show(session, session.page)
    view = session.view
    return {
        "session_id": session.id,
        "goal_index": session.goal_index,
        "instruction": session.goal["instruction_text"],
        "url": session.page.path(session.id),
        "observation": {"text": view.text, "text_rich": view.text_rich},
        "available_actions": view.available_actions,
        "done": session.done,
        "score": session.score,
        "reward_info": session.reward_info,
        "steps": session.steps,
    }


def info(shop: Shop) -> dict[str, Any]:
    """``GET /api/info``: the world's size, goal splits and the request limits."""
    world = shop.world
    splits = {}
    for split in SPLITS:
        indices = world.goal_indices(split)
        splits[split] = [indices.start, indices.stop]
    return {
        "name": "webshop",
        "fingerprint": getattr(world, "fingerprint", ""),
        "num_products": world.num_products(),
        "num_goals": shop.num_goals,
        "splits": splits,
        "sessions": len(shop.sessions),
        "max_sessions": shop.sessions.max_sessions,
        "limits": {"max_query_chars": MAX_QUERY_CHARS, "max_action_chars": MAX_ACTION_CHARS},
    }


def create_session(shop: Shop, body: Any) -> dict[str, Any]:
    """``POST /api/sessions`` -> the new session's state."""
    request_body = _parse(CreateSessionBody, body)
    session = shop.new_session(request_body.goal_index)
    with session.lock:
        return session_state(shop, session)


def reset_session(shop: Shop, session_id: str, body: Any) -> dict[str, Any]:
    """``POST /api/sessions/<id>/reset`` -> the state on the search page."""
    request_body = _parse(ResetSessionBody, body)
    session = shop.session(session_id, create=False, pin=True)
    with session.lock:
        shop.reset(session, request_body.goal_index)
        return session_state(shop, session)


def step_session(shop: Shop, session_id: str, body: Any) -> dict[str, Any]:
    """``POST /api/sessions/<id>/step`` -> the new state plus ``action_valid``, ``reward`` and
    ``message`` (why the action was refused, when it was; else None)."""
    request_body = _parse(StepSessionBody, body)
    session = shop.session(session_id, create=False, pin=True)
    with session.lock:
        result = shop.step(session, request_body.action)
        return {
            **session_state(shop, session),
            "action_valid": result.valid,
            "reward": result.reward,
            "message": result.message,
        }


def get_session(shop: Shop, session_id: str) -> dict[str, Any]:
    """``GET /api/sessions/<id>`` -> the current state."""
    session = shop.session(session_id, create=False)
    with session.lock:
        return session_state(shop, session)


def delete_session(shop: Shop, session_id: str) -> None:
    """``DELETE /api/sessions/<id>``."""
    if not shop.sessions.remove(shop.session(session_id, create=False).id):
        raise ShopError(404, f"unknown session {session_id!r}")


def _json_body() -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise ShopError(400, "the request body is not valid JSON") from None
    except RecursionError:
        raise ShopError(400, "the request body is nested too deeply") from None


def api_blueprint(shop: Shop) -> Blueprint:
    """Flask routes of the JSON API under ``/api``."""
    api = Blueprint("api", __name__, url_prefix="/api")

    @api.get("/info")
    def get_info():
        return jsonify(info(shop))

    @api.post("/sessions")
    def post_session():
        return jsonify(create_session(shop, _json_body())), 201

    @api.get("/sessions/<session_id>")
    def read_session(session_id: str):
        return jsonify(get_session(shop, session_id))

    @api.post("/sessions/<session_id>/reset")
    def post_reset(session_id: str):
        return jsonify(reset_session(shop, session_id, _json_body()))

    @api.post("/sessions/<session_id>/step")
    def post_step(session_id: str):
        return jsonify(step_session(shop, session_id, _json_body()))

    @api.delete("/sessions/<session_id>")
    def remove_session(session_id: str):
        delete_session(shop, session_id)
        return "", 204

    return api
