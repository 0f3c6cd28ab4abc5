"""Every WebShop route and page, over real HTTP: URL patterns, element ids, classes and texts."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

import requests
from bs4 import BeautifulSoup

from servers.webshop.session import parse_str_dict, parse_str_list
from servers.webshop.text import parse_page

from .conftest import WinningCase


def get_page(http: requests.Session, url: str, **kwargs: Any) -> BeautifulSoup:
    response = http.get(url, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/html")
    return BeautifulSoup(response.text, "lxml")


def instruction_of(soup: BeautifulSoup) -> str:
    h4 = soup.select_one("#instruction-text h4")
    assert h4 is not None and h4.contents[0] == "Instruction:" and h4.contents[1].name == "br"
    return h4.contents[2].strip()


def buttons(soup: BeautifulSoup) -> list[str]:
    return [b.get_text() for b in soup.find_all("button")]


def url_part(words: list[str] | dict[str, str]) -> str:
    """A URL part as WebShop's url_for built it: str() of the list / dict, URL-quoted."""
    return quote(str(words), safe="")


def test_home_redirects_to_a_new_session(http: requests.Session, base_url: str) -> None:
    first = http.get(base_url + "/", allow_redirects=False)
    second = http.get(base_url + "/", allow_redirects=False)
    assert first.status_code == second.status_code == 302
    assert re.fullmatch(r"/[0-9a-f]{32}", first.headers["Location"])
    assert first.headers["Location"] != second.headers["Location"]
    soup = get_page(http, base_url + first.headers["Location"])
    assert soup.find(id="search_input") is not None


def test_search_page(http: requests.Session, base_url: str, world: Any) -> None:
    soup = get_page(http, f"{base_url}/fixed_3")
    instruction = world.goals[3]["instruction_text"]
    assert soup.find("h2").get_text() == "WebShop"
    assert instruction_of(soup) == instruction
    box = soup.find(id="search_input")
    assert box.name == "input" and box["name"] == "search_query"
    assert buttons(soup) == ["Search"]
    assert "btn" in soup.find("button")["class"]
    view = parse_page(str(soup))
    assert view.text == f"WebShop [SEP] Instruction: [SEP] {instruction} [SEP] Search"
    assert view.available_actions == {"has_search_bar": True, "clickables": ["search"]}


def test_fixed_sessions_take_their_goal_and_other_ids_a_stable_one(
    http: requests.Session, base_url: str, world: Any
) -> None:
    for index in (0, 1, len(world.goals) - 1):
        soup = get_page(http, f"{base_url}/fixed_{index}")
        assert instruction_of(soup) == world.goals[index]["instruction_text"]
    drawn = instruction_of(get_page(http, f"{base_url}/my-session_x"))
    assert drawn in {goal["instruction_text"] for goal in world.goals}
    assert instruction_of(get_page(http, f"{base_url}/my-session_x")) == drawn


def test_search_form_redirects_to_results(http: requests.Session, base_url: str) -> None:
    response = http.post(f"{base_url}/fixed_0", data={"search_query": "Red Shoes"}, allow_redirects=False)
    assert response.status_code == 302
    match = re.fullmatch(r"/search_results/fixed_0/([^/]+)/1", response.headers["Location"])
    assert match is not None
    assert parse_str_list(unquote(match.group(1))) == ["red", "shoes"]
    # A POST without the field shows the search page, as WebShop's index route does.
    assert http.post(f"{base_url}/fixed_0", data={}).status_code == 200


def test_results_pages(http: requests.Session, base_url: str, world: Any) -> None:
    query = " ".join(world.product(world.goals[0]["asin"])["Title"].lower().split()[:3])
    expected = world.search(query, k=50)
    assert len(expected) > 10, "pick a query with more than one page of results"
    url = f"{base_url}/search_results/fixed_0/{url_part(query.split(' '))}"

    first = get_page(http, url + "/1")
    assert buttons(first) == ["Back to Search", "Next >"]  # no "< Prev" on page 1
    assert first.find(string=f"Page 1 (Total results: {len(expected)})") is not None
    links = first.find_all("a", class_="product-link")
    assert [a.get_text() for a in links] == expected[:10]
    for link in links:
        assert link["class"] == ["product-link"]
        title = link.find_next("h4").get_text()
        price = link.find_next("h5").get_text()
        product = world.product(link.get_text())
        assert title == product["Title"]
        assert re.fullmatch(r"\$\d+\.\d+( to \$\d+\.\d+)?", price)
    view = parse_page(str(first))
    assert view.text.startswith(
        f"Instruction: [SEP] {world.goals[0]['instruction_text']} [SEP] Back to Search [SEP] "
        f"Page 1 (Total results: {len(expected)}) [SEP] Next > [SEP] {expected[0]} [SEP] "
    )
    assert view.available_actions["clickables"] == ["back to search", "next >"] + [
        a.lower() for a in expected[:10]
    ]

    second = get_page(http, url + "/2")
    assert buttons(second) == ["Back to Search", "< Prev", "Next >"]
    assert [a.get_text() for a in second.find_all("a", class_="product-link")] == expected[10:20]
    # "Next >" is always shown, past the last result too (WebShop does the same).
    beyond = get_page(http, url + "/6")
    assert beyond.find_all("a", class_="product-link") == [] and "Next >" in buttons(beyond)


def test_item_page(http: requests.Session, base_url: str, winning: WinningCase) -> None:
    product, asin = winning.product, winning.goal["asin"]
    name, value = next(iter(winning.options.items()))
    base = f"{base_url}/item_page/fixed_{winning.goal_index}/{asin}/{url_part(['x'])}/2"
    soup = get_page(http, f"{base}/{url_part({name: value})}")

    assert buttons(soup) == ["Back to Search", "< Prev", "Description", "Features", "Reviews", "Buy Now"]
    assert soup.find("button", string="Buy Now")["class"] == ["btn", "btn-lg", "purchase"]
    assert soup.find("h2").get_text() == product["Title"]
    assert soup.find(string=re.compile(r"^Price: \$")) is not None
    assert soup.find(string="Rating: N.A.") is not None
    for option_name, values in product["options"].items():
        assert soup.find("h4", string=option_name) is not None
        radios = soup.find_all("input", attrs={"type": "radio", "name": option_name})
        assert [r["value"] for r in radios] == values
        for radio in radios:
            assert soup.find("label", attrs={"for": radio["id"]}).get_text() == radio["value"]
            assert radio.has_attr("checked") == (option_name == name and radio["value"] == value)
            assert parse_str_dict(unquote(radio["data-url"].rsplit("/", 1)[1])) == {
                **({name: value} if option_name != name else {}),
                option_name: radio["value"],
            }
    # < Prev returns to the results page the item was opened from; Buy Now posts to /done.
    prev_form = soup.find("button", string="< Prev").find_parent("form")
    assert prev_form["action"] == f"/search_results/fixed_{winning.goal_index}/{url_part(['x'])}/2"
    buy_form = soup.find("button", string="Buy Now").find_parent("form")
    assert buy_form["method"] == "post"
    assert buy_form["action"] == f"/done/fixed_{winning.goal_index}/{asin}/{url_part({name: value})}"

    text = parse_page(str(soup)).text
    options_text = " [SEP] ".join(f"{n} [SEP] " + " [SEP] ".join(v) for n, v in product["options"].items())
    assert (
        f"[SEP] Back to Search [SEP] < Prev [SEP] {options_text} [SEP] {product['Title']} [SEP] Price: $"
        in text
    )
    assert text.endswith("[SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")


def test_item_sub_pages(http: requests.Session, base_url: str, winning: WinningCase) -> None:
    product, asin = winning.product, winning.goal["asin"]
    base = f"{base_url}/item_sub_page/fixed_0/{asin}/{url_part(['x'])}/1"
    expected = {
        "Description": [product["Description"]],
        "Features": product["BulletPoints"],
        "Reviews": [],
        "Attributes": product["Attributes"],
    }
    for sub_page, texts in expected.items():
        soup = get_page(http, f"{base}/{sub_page}/{url_part(winning.options)}")
        assert buttons(soup) == ["Back to Search", "< Prev"]
        assert [p.get_text() for p in soup.select(f"#{sub_page.lower()} p, #{sub_page.lower()} h4")] == [
            t for t in texts if t.strip()
        ]
        prev_form = soup.find("button", string="< Prev").find_parent("form")
        assert (
            prev_form["action"]
            == f"/item_page/fixed_0/{asin}/{url_part(['x'])}/1/{url_part(winning.options)}"
        )
    # The sub page name is matched without regard to case, as a convenience.
    assert http.get(f"{base}/description/{url_part({})}").status_code == 200


def test_done_page_scores_the_purchase(
    http: requests.Session, base_url: str, world: Any, winning: WinningCase
) -> None:
    asin = winning.goal["asin"]
    for options, expected in [(winning.options, 1.0), ({}, world.reward(asin, {}, winning.goal)[0])]:
        response = http.post(f"{base_url}/done/fixed_{winning.goal_index}/{asin}/{url_part(options)}")
        assert response.status_code == 200
        soup = BeautifulSoup(response.text, "lxml")
        assert soup.find("h1").get_text() == "Thank you for shopping with us!"
        reward = soup.find("h3", id="reward")
        assert reward.contents[0] == "Your score (min 0.0, max 1.0)"
        assert float(reward.find("pre").get_text()) == expected
        assert soup.find(id="purchased-asin").get_text() == asin
        text = parse_page(response.text).text
        assert text.endswith(
            f"Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] {expected}"
        )
    assert expected < 1.0, "buying without the goal's options must lose points"


def test_webshop_style_urls_with_either_quote_style(
    http: requests.Session, base_url: str, world: Any
) -> None:
    asin = world.goals[0]["asin"]
    double_quoted = quote('["red", "shoes"]', safe="")
    raw = "['red', 'shoes']"  # unquoted brackets and quotes, as a hand-written client may send
    for keywords in (double_quoted, raw):
        assert http.get(f"{base_url}/search_results/fixed_0/{keywords}/1").status_code == 200
        assert http.get(f"{base_url}/item_page/fixed_0/{asin}/{keywords}/1/{{}}").status_code == 200
    # ASINs are matched in upper case, so a lowercased click target still opens the product.
    assert http.get(f"{base_url}/item_page/fixed_0/{asin.lower()}/{raw}/1/{{}}").status_code == 200


def test_static_files(http: requests.Session, base_url: str) -> None:
    css = http.get(f"{base_url}/static/style.css")
    js = http.get(f"{base_url}/static/webshop.js")
    assert css.status_code == js.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css") and ".btn" in css.text
    assert "data-url" in js.text
    page = http.get(f"{base_url}/fixed_0").text
    assert "/static/style.css" in page and "/static/webshop.js" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from the internet
