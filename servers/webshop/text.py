"""WebShop's text observations and available actions, read from a page's HTML.

The formats follow WebShop's text environment (Yao et al., 2022; see notes/webshop.md):

- ``text``: the visible text nodes, stripped, joined by `` [SEP] `` (text under ``style``,
  ``script``, ``head``, ``title`` and ``meta`` is not visible);
- ``text_rich``: one node per line; button text as ``[button] X [button_]``, option labels as
  ``  [button] X [button_]`` or, when selected, ``  [clicked button] X [clicked button_]`` with
  ``You have clicked X.`` put in front of the observation, product links on their own line,
  ``[clicked button]`` once visited;
- available actions: ``{"has_search_bar": bool, "clickables": [...]}``, the clickables being the
  lowercased text of elements of class ``btn`` then ``product-link``, then radio option values.

Two deliberate differences: whitespace-only text nodes are dropped (upstream's output depends on
how its templates were indented), and elements hidden with ``hidden`` / ``display: none`` are not
read, so the text matches what a browser shows (the done page's hidden purchase details).
The browser env reads Chromium's rendered DOM with the same function, so both envs agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.html

_INVISIBLE_PARENTS = frozenset({"style", "script", "head", "title", "meta"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none")
# WebShop's action syntax, exactly as upstream matches it (``re.match``, no flags): the name group is
# greedy, so "search[size [large]]" splits at the inner bracket; text after the last "]" is ignored;
# a newline inside the brackets makes no match.
_ACTION_RE = re.compile(r"(.+)\[(.+)\]")
SEARCH_PLACEHOLDER = "search[<query>]"


@dataclass(frozen=True)
class PageView:
    """A page as the text environment sees it."""

    text: str
    text_rich: str
    has_search_bar: bool
    #: lowercased clickable text -> the URL it leads to (None for the search box's own button)
    clickables: dict[str, str | None]

    @property
    def available_actions(self) -> dict:
        """WebShop's ``get_available_actions()`` result."""
        return {"has_search_bar": self.has_search_bar, "clickables": list(self.clickables)}


class _PageReader:
    """One walk over the parsed page in document order: its text nodes and clickable elements.

    (lxml keeps an element's leading text in ``.text`` and the text after it in ``.tail``, whose
    parent is the enclosing element; upstream walked BeautifulSoup strings, same nodes, same order.)
    """

    def __init__(self, root: lxml.html.HtmlElement):
        self.texts: list[tuple[str, lxml.html.HtmlElement]] = []  # (stripped text, parent element)
        self.buttons: list[lxml.html.HtmlElement] = []  # class "btn"
        self.product_links: list[lxml.html.HtmlElement] = []  # class "product-link"
        self.radios: list[lxml.html.HtmlElement] = []
        self.has_search_bar = False
        self._walk(root)

    def _add_text(self, text: str | None, parent: lxml.html.HtmlElement) -> None:
        if text and parent.tag not in _INVISIBLE_PARENTS:
            stripped = text.strip()
            if stripped:
                self.texts.append((stripped, parent))

    def _walk(self, element: lxml.html.HtmlElement) -> None:
        if not isinstance(element.tag, str):  # comment or processing instruction: only its tail counts
            return
        if element.get("hidden") is not None or _HIDDEN_STYLE.search(element.get("style", "")):
            return  # not shown by a browser: neither its text nor its clickables
        classes = element.get("class", "").split()
        if "btn" in classes:
            self.buttons.append(element)
        if "product-link" in classes:
            self.product_links.append(element)
        if element.tag == "input" and element.get("type") == "radio":
            self.radios.append(element)
        if element.get("id") == "search_input":
            self.has_search_bar = True
        self._add_text(element.text, element)
        for child in element:
            self._walk(child)
            self._add_text(child.tail, element)


def parse_page(html: str) -> PageView:
    """Observation texts and clickables of a WebShop page (our templates, or the DOM Chromium rendered)."""
    page = _PageReader(lxml.html.document_fromstring(html))
    checked_ids = {radio.get("id") for radio in page.radios if radio.get("checked") is not None}

    rich: list[str] = []
    clicked: list[str] = []
    for text, parent in page.texts:
        if parent.tag == "button":
            rich.append(f"[button] {text} [button_]")
        elif parent.tag == "label":
            if parent.get("for") in checked_ids:
                rich.append(f"  [clicked button] {text} [clicked button_]")
                clicked.append(text)
            else:
                rich.append(f"  [button] {text} [button_]")
        elif parent.get("class") == "product-link":
            mark = "clicked button" if parent.get("data-visited") else "button"
            rich.append(f"\n[{mark}] {text} [{mark}_]")
        else:
            rich.append(text)
    # Upstream prepends "You have clicked X." as it meets each selected option: last one first.
    text_rich = "".join(f"You have clicked {t}.\n" for t in reversed(clicked))
    text_rich += "".join(f"{r}\n" for r in rich)

    clickables: dict[str, str | None] = {}
    for element in page.buttons:
        form = next(element.iterancestors("form"), None)
        clickables[element.text_content().strip().lower()] = form.get("action") if form is not None else None
    for element in page.product_links:
        clickables[element.text_content().strip().lower()] = element.get("href")
    for element in page.radios:
        clickables[element.get("value", "").lower()] = element.get("data-url")
    return PageView(
        text=" [SEP] ".join(text for text, _ in page.texts),
        text_rich=text_rich,
        has_search_bar=page.has_search_bar,
        clickables=clickables,
    )


def parse_action(action: str) -> tuple[str, str | None]:
    """Split an action as WebShop's text env does: ``"search[Red Shoes]"`` -> ``("search", "red shoes")``.

    Upstream's rules exactly: ``re.match(r"(.+)\\[(.+)\\]", action)``; the name is kept as written
    (so ``Click[x]``, ``SEARCH[x]`` and `` click[x]`` name no action) and the argument is lowercased.
    No match: ``(action, None)``.
    """
    match = _ACTION_RE.match(action)
    if match is None:
        return action, None
    return match.group(1), match.group(2).lower()


def admissible_actions(available: dict) -> list[str]:
    """Env-style action strings: ``search[<query>]`` (any query) when there is a search bar, then
    ``click[x]`` for each clickable except the search button (clicking it does nothing upstream)."""
    actions = [SEARCH_PLACEHOLDER] if available.get("has_search_bar") else []
    actions += [f"click[{name}]" for name in available.get("clickables", []) if name != "search"]
    return actions
