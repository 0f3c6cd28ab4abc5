"""The WebShop site as a Flask app: WebShop's routes and pages, plus the JSON API under ``/api``.

Routes (as in WebShop, so its clients and parsers keep working):

- ``/``: redirect to a new session;
- ``/<session_id>`` (GET, POST): the search page; a POST of the form field ``search_query``
  redirects to its first results page;
- ``/search_results/<session_id>/<keywords>/<page>``;
- ``/item_page/<session_id>/<asin>/<keywords>/<page>/<options>``;
- ``/item_sub_page/<session_id>/<asin>/<keywords>/<page>/<sub_page>/<options>``;
- ``/done/<session_id>/<asin>/<options>``: scores the purchase.

A new session id in a page URL creates an *anonymous* session (WebShop's way); sessions created or
played through the JSON API are *pinned*. See ``session.SessionStore`` for how the server stays
bounded without dropping a session in use.

Serve it with waitress (``webshop-server``); the app is plain WSGI.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, redirect, request
from werkzeug.exceptions import HTTPException

from .api import api_blueprint
from .session import PAGE_RULES, Page, Session, Shop, ShopConfig, ShopError, WorldLike, new_session_id

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1 << 20


def create_app(world: WorldLike, config: ShopConfig | None = None) -> Flask:
    """A Flask app serving ``world``; ``app.extensions["webshop"]`` is its :class:`Shop`."""
    shop = Shop(world, config)
    app = Flask(__name__, template_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.sort_keys = False
    app.extensions["webshop"] = shop
    app.register_blueprint(api_blueprint(shop))

    @app.get("/")
    def home() -> Response:
        return redirect(Page("index").path(new_session_id()))

    def show(session: Session, page: Page) -> str:
        # The page served becomes the session's current page for the JSON API too: one state.
        with session.lock:
            return shop.show(session, page)

    def index(session_id: str) -> Any:
        session = shop.session(session_id)
        if request.method == "POST" and "search_query" in request.form:
            return redirect(Page.results(request.form["search_query"]).path(session.id))
        return show(session, Page("index"))

    def page_view(endpoint: str):
        def view(**args: str) -> str:
            session = shop.session(args["session_id"])
            return show(session, shop.page_from_route(endpoint, args))

        return view

    for endpoint, rule in PAGE_RULES.items():
        view_func = index if endpoint == "index" else page_view(endpoint)
        app.add_url_rule(rule, endpoint, view_func, methods=["GET", "POST"])

    @app.errorhandler(ShopError)
    def shop_error(error: ShopError):
        return jsonify(error=error.message, status=error.status), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return jsonify(error=error.description, status=error.code), error.code

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        logger.exception("error serving %s", request.path)
        return jsonify(error=f"internal error: {type(error).__name__}", status=500), 500

    return app
