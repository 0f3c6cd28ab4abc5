"""The strict parser of WebShop's URL literals (keywords list, options dict) and the action syntax."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.webshop.session import MAX_LITERAL_CHARS, Page, ShopError, parse_str_dict, parse_str_list
from servers.webshop.text import admissible_actions, parse_action

TEXT = st.text(st.characters(codec="utf-8"), max_size=12)


@settings(deadline=None)  # a loaded CI machine can pause any example past the 200 ms default
@given(st.lists(TEXT, max_size=6))
def test_keywords_round_trip_python_repr(words: list[str]) -> None:
    # WebShop builds the URL part with str(list); literal_eval read it back. We must agree.
    assert parse_str_list(str(words)) == words == ast.literal_eval(str(words))


@settings(deadline=None)
@given(st.dictionaries(TEXT, TEXT, max_size=4))
def test_options_round_trip_python_repr(options: dict[str, str]) -> None:
    assert parse_str_dict(str(options)) == options == ast.literal_eval(str(options))


@pytest.mark.parametrize(
    "text",
    [
        "['red', 'shoes']",
        '["red", "shoes"]',
        "[ 'a' ,\"b\", ]",
        '[\'it\\\'s\', "say \\"hi\\""]',
        "['tab\\there', 'caf\\xe9', '\\u2122', '\\U0001f600', '\\101']",
        "[u'old', 'back\\\\slash', 'keep\\d']",
        "[]",
    ],
)
def test_keywords_accept_what_literal_eval_accepts(text: str) -> None:
    assert parse_str_list(text) == ast.literal_eval(text)


@pytest.mark.parametrize(
    "text",
    ["{'size': 'large', 'color': 'navy | blue'}", '{"a": "b",}', "{}", "{'k': 'v1', 'k': 'v2'}"],
)
def test_options_accept_what_literal_eval_accepts(text: str) -> None:
    assert parse_str_dict(text) == ast.literal_eval(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("red shoes", "unexpected"),
        ("[1, 2]", "unexpected"),
        ("['a' 'b']", "expected ','"),
        ("['a',, 'b']", "expected a quoted string"),
        ("['unterminated]", "unexpected"),
        ("__import__('os').system('true')", "unexpected"),
        ("['a'] + ['b']", "unexpected"),
        ("{'a': 'b'}", "must be a literal"),
        ("[['nested']]", "expected a quoted string"),
        ("['a'", "must be a literal"),
        ("['\\x4']", "truncated"),
        ("['\\N{DEGREE SIGN}']", "not supported"),
        ("", "must be a literal"),
        ("[" + "'a'," * MAX_LITERAL_CHARS + "]", "limit"),
    ],
)
def test_keywords_reject_anything_else(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_str_list(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{'a': 1}", "unexpected"),
        ("{'a'}", "expected ':'"),
        ("{'a': 'b' 'c': 'd'}", "expected ','"),
        ("['a']", "must be a literal"),
        ("{'a': 'b'", "must be a literal"),
        ("dict(a='b')", "unexpected"),
    ],
)
def test_options_reject_anything_else(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_str_dict(text)


def test_results_page_from_a_query() -> None:
    page = Page.results("Red  Shoes 1/2")
    assert page.keywords == ("red", "", "shoes", "1", "2")  # WebShop's split(' '); '/' cannot go in a path
    assert (
        page.path("fixed_0")
        == "/search_results/fixed_0/%5B%27red%27%2C%20%27%27%2C%20%27shoes%27%2C%20%271%27%2C%20%272%27%5D/1"
    )
    assert Page.results("   ").keywords == ("", "", "", "")  # a blank query runs, as upstream (no results)
    for bad, message in [("a" * 1001, "1001 characters long; the limit is 1000"), ("x\ud800", "lone surrogate")]:
        with pytest.raises(ShopError, match=message) as error:
            Page.results(bad)
        assert error.value.status == 400


@pytest.mark.parametrize(
    ("action", "parsed"),
    [
        # upstream's re.match(r"(.+)\[(.+)\]", action): name as written, argument lowercased
        ("search[Red Shoes]", ("search", "red shoes")),
        ("click[< Prev]", ("click", "< prev")),
        ("  click[Buy Now]\n", ("  click", "buy now")),  # the name keeps its whitespace: no action
        ("Click[x]", ("Click", "x")),
        ("SEARCH[x]", ("SEARCH", "x")),
        ("click[a[b]]", ("click[a", "b]")),  # greedy name: the last '[' opens the argument
        ("search[size [large]]", ("search[size ", "large]")),
        ("click[buy now] please", ("click", "buy now")),  # text after the last ']' is ignored
        ("search[red\nshoes]", ("search[red\nshoes]", None)),  # '.' does not match a newline
        ("search[  ]", ("search", "  ")),
        ("think: I should search", ("think: I should search", None)),
        ("click[]", ("click[]", None)),
    ],
)
def test_parse_action_follows_upstream(action: str, parsed: tuple[str, str | None]) -> None:
    assert parse_action(action) == parsed


def test_admissible_actions_use_a_query_placeholder_and_drop_the_search_button() -> None:
    assert admissible_actions({"has_search_bar": True, "clickables": ["search"]}) == ["search[<query>]"]
    assert admissible_actions({"has_search_bar": False, "clickables": ["back to search", "b0"]}) == [
        "click[back to search]",
        "click[b0]",
    ]
