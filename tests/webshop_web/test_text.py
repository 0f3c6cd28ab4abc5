"""HTML -> WebShop's ``text`` / ``text_rich`` observations and available actions, on hand-written pages."""

from __future__ import annotations

from servers.webshop.text import parse_page

ITEM_PAGE = """<!DOCTYPE html><html><head><title>WebShop</title><style>.x{}</style>
<script>var hidden = "no";</script></head><body>
<div id="instruction-text"><h4>Instruction:<br>i need a blue shirt</h4></div>
<!-- a comment -->
<form action="/s1"><button class="btn btn-success">Back to Search</button></form>
<form action="/prev"><button class="btn btn-primary">&lt; Prev</button></form>
<h4>color</h4>
<input type="radio" id="r0" name="color" value="navy | blue" data-url="/navy" checked>
<label for="r0">navy | blue</label>
<input type="radio" id="r1" name="color" value="Red" data-url="/red"><label for="r1">Red</label>
<h4>size</h4>
<input type="radio" id="r2" name="size" value="large" data-url="/large" checked><label for="r2">large</label>
<h2>Blue Shirt</h2><h4>Price: $12.5</h4>
<div style="display: none"><p>secret target</p></div><p hidden>also hidden</p>
<form action="/buy" method="post"><button class="btn btn-lg purchase">Buy Now</button></form>
</body></html>"""

RESULTS_PAGE = """<html><body><div id="instruction-text"><h4>Instruction:<br>find it</h4></div>
<h4>Page 1 (Total results: 2)</h4>
<a class="product-link" href="/item/B01" data-visited="true">B01</a><h4>First</h4>
<a class="product-link" href="/item/B02">B02</a><h4>Second</h4>
<form action="/next"><button class="btn btn-primary">Next &gt;</button></form>
</body></html>"""


def test_text_joins_visible_text_with_sep() -> None:
    view = parse_page(ITEM_PAGE)
    assert view.text == (
        "Instruction: [SEP] i need a blue shirt [SEP] Back to Search [SEP] < Prev [SEP] color [SEP] "
        "navy | blue [SEP] Red [SEP] size [SEP] large [SEP] Blue Shirt [SEP] Price: $12.5 [SEP] Buy Now"
    )
    assert "secret" not in view.text and "hidden" not in view.text and "comment" not in view.text


def test_text_rich_marks_buttons_and_clicked_options() -> None:
    view = parse_page(ITEM_PAGE)
    lines = view.text_rich.split("\n")
    # Upstream prepends each clicked option as it meets it, so the last one comes first.
    assert lines[:2] == ["You have clicked large.", "You have clicked navy | blue."]
    assert "[button] Back to Search [button_]" in lines
    assert "  [clicked button] navy | blue [clicked button_]" in lines
    assert "  [button] Red [button_]" in lines
    assert "[button] Buy Now [button_]" in lines
    assert view.text_rich.endswith("[button] Buy Now [button_]\n")


def test_text_rich_puts_product_links_on_their_own_line() -> None:
    view = parse_page(RESULTS_PAGE)
    assert "\n\n[clicked button] B01 [clicked button_]\nFirst\n" in view.text_rich
    assert "\n\n[button] B02 [button_]\nSecond\n" in view.text_rich


def test_clickables_in_webshop_order_with_their_targets() -> None:
    item = parse_page(ITEM_PAGE)
    assert item.has_search_bar is False
    assert item.clickables == {
        "back to search": "/s1",
        "< prev": "/prev",
        "buy now": "/buy",
        "navy | blue": "/navy",
        "red": "/red",
        "large": "/large",
    }
    results = parse_page(RESULTS_PAGE)
    # .btn elements first, then product links (WebShop's get_available_actions order).
    assert results.available_actions == {"has_search_bar": False, "clickables": ["next >", "b01", "b02"]}


def test_search_bar_detection() -> None:
    html = '<body><h2>WebShop</h2><form action="/s"><input id="search_input" name="search_query">'
    html += '<button class="btn btn-primary">Search</button></form></body>'
    view = parse_page(html)
    assert view.has_search_bar is True
    assert view.text == "WebShop [SEP] Search"
    assert view.available_actions["clickables"] == ["search"]
