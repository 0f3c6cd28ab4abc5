"""Action parsing (reference rules), projection, and HiPER turns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory import parse_action, parse_hiper_turn, project_action
from tests.memory.transcripts import ALFWORLD_ADMISSIBLE, WEBSHOP_ITEM_ADMISSIBLE, WEBSHOP_RESULTS_ADMISSIBLE


def test_reference_extraction_lowercases_and_strips():
    response = "<think>The mug is in cabinet 1.</think>\n<action> Take Mug 1 from Cabinet 1 </action>"
    parsed = parse_action(response, env="alfworld")
    assert parsed.action == "take mug 1 from cabinet 1"
    assert parsed.valid and parsed.reason is None and not parsed.projected
    start, end = parsed.span
    assert response[start:end] == "<action> Take Mug 1 from Cabinet 1 </action>"


def test_first_action_element_counts_and_tags_are_case_insensitive():
    response = "<think>ok</think><ACTION>go to fridge 1</Action> then <action>look</action>"
    assert parse_action(response).action == "go to fridge 1"


def test_missing_tags_send_the_tail_and_are_invalid():
    response = "<think>I should look around</think> I will go to the countertop number 1 now"
    alf = parse_action(response, env="alfworld")
    assert alf.action == response.lower()[-30:] and len(alf.action) == 30
    assert not alf.valid and alf.reason == "missing <action> tag" and alf.span is None
    shop = parse_action(response, env="webshop")
    assert shop.action == response.lower()[-20:] and not shop.valid
    unclosed = parse_action("<think>x</think><action>look", env="alfworld")
    assert not unclosed.valid and unclosed.reason == "missing </action> tag"


def test_closing_tag_before_opening_tag_is_not_an_action():
    parsed = parse_action("<think>x</think></action> noise <action>look")
    assert not parsed.valid and parsed.reason == "missing </action> tag"


def test_think_block_is_required_unless_disabled():
    response = "<action>look</action>"
    assert parse_action(response).reason == "missing <think> or </think> tag"
    assert parse_action(response, require_think=False).valid


@pytest.mark.parametrize("cjk", ["我去冰箱", "，", "りんご", "냉장고"])
def test_cjk_characters_make_the_step_invalid(cjk):
    parsed = parse_action(f"<think>{cjk}</think><action>go to fridge 1</action>")
    assert parsed.action == "go to fridge 1" and not parsed.valid
    assert parsed.reason == "CJK characters in the response"


def test_empty_action_is_invalid():
    assert parse_action("<think>x</think><action>  </action>").reason == "empty action"


def test_projection_exact_after_normalisation():
    parsed = parse_action(
        "<think>x</think><action>'Go to  Cabinet 1.'</action>", admissible=ALFWORLD_ADMISSIBLE, project=True
    )
    assert parsed.action == "go to cabinet 1" and parsed.valid and parsed.projected
    exact = parse_action(
        "<think>x</think><action>go to cabinet 1</action>", admissible=ALFWORLD_ADMISSIBLE, project=True
    )
    assert exact.action == "go to cabinet 1" and not exact.projected


def test_projection_to_the_closest_admissible_action():
    parsed = parse_action(
        "<think>x</think><action>put mug 1 in coffeemachine 1</action>",
        admissible=ALFWORLD_ADMISSIBLE,
        project=True,
    )
    assert parsed.action == "move mug 1 to coffeemachine 1" and parsed.projected and parsed.valid
    # Without projection the text is sent as written.
    assert parse_action("<think>x</think><action>put mug 1 in coffeemachine 1</action>").action == (
        "put mug 1 in coffeemachine 1"
    )
    with pytest.raises(ValueError, match="needs the admissible actions"):
        parse_action("<action>look</action>", project=True)


def test_webshop_projection_keeps_free_search_queries():
    free = parse_action(
        "<think>x</think><action>search[Perfume 6.76 fl oz]</action>",
        env="webshop",
        admissible=WEBSHOP_RESULTS_ADMISSIBLE,
        project=True,
    )
    assert free.action == "search[perfume 6.76 fl oz]" and not free.projected
    option = parse_action(
        "<think>x</think><action>click[6.76 fl oz]</action>",
        env="webshop",
        admissible=WEBSHOP_ITEM_ADMISSIBLE,
        project=True,
    )
    assert option.action == "click[6.76 fl oz (pack of 1)]" and option.projected
    # No search bar on an item page: a search is projected onto a clickable.
    no_bar = project_action("search[perfume]", WEBSHOP_ITEM_ADMISSIBLE, "webshop")
    assert no_bar in WEBSHOP_ITEM_ADMISSIBLE
    assert project_action("look", [], "alfworld") == "look"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_parses_without_raising(text):
    for env in ("alfworld", "webshop"):
        parsed = parse_action(text, env=env, admissible=ALFWORLD_ADMISSIBLE, project=True)
        assert parsed.action in ALFWORLD_ADMISSIBLE
        turn = parse_hiper_turn(text, env=env)
        assert turn.switch in ("KEEP", "SWITCH")
        assert isinstance(turn.valid, bool)


def test_bad_env_and_types():
    with pytest.raises(ValueError, match="env must be one of"):
        parse_action("<action>look</action>", env="sciworld")
    with pytest.raises(TypeError, match="response must be str"):
        parse_action(None)


HIPER = "<switch>SWITCH</switch><subgoal>Find a Mug</subgoal><action>Go to cabinet 1</action>"


def test_hiper_turn_fields_and_spans():
    turn = parse_hiper_turn(HIPER)
    assert (turn.switch, turn.subgoal, turn.action) == ("SWITCH", "Find a Mug", "go to cabinet 1")
    assert turn.valid and turn.boundary and turn.reason is None
    assert HIPER[slice(*turn.switch_span)] == "<switch>SWITCH</switch>"
    assert HIPER[slice(*turn.subgoal_span)] == "<subgoal>Find a Mug</subgoal>"
    assert HIPER[slice(*turn.action_span)] == "<action>Go to cabinet 1</action>"
    assert turn.switch_span[1] == turn.subgoal_span[0] and turn.subgoal_span[1] == turn.action_span[0]


def test_hiper_missing_or_empty_switch_is_keep():
    for response in (
        "<subgoal>find a mug</subgoal><action>look</action>",
        "<switch> </switch><subgoal>find a mug</subgoal><action>look</action>",
        "<switch>keep</switch><subgoal>find a mug</subgoal><action>look</action>",
    ):
        turn = parse_hiper_turn(response)
        assert turn.switch == "KEEP" and turn.valid and not turn.boundary
    assert parse_hiper_turn("<subgoal>find a mug</subgoal><action>look</action>").switch_span is None
    assert parse_hiper_turn("<subgoal>find a mug</subgoal><action>look</action>", first_turn=True).boundary


def test_hiper_invalid_turns():
    bad_switch = parse_hiper_turn("<switch>MAYBE</switch><subgoal>g</subgoal><action>look</action>")
    assert not bad_switch.valid and bad_switch.switch == "KEEP" and "KEEP or SWITCH" in bad_switch.reason
    no_subgoal = parse_hiper_turn("<switch>KEEP</switch><action>look</action>")
    assert (
        not no_subgoal.valid
        and no_subgoal.reason == "missing <subgoal> element"
        and no_subgoal.action == "look"
    )
    response = "<switch>SWITCH</switch><subgoal>find a mug</subgoal> Go to cabinet 1"
    no_action = parse_hiper_turn(response, env="webshop")
    assert not no_action.valid and no_action.action == "oal> go to cabinet 1" == response.lower()[-20:]
    cjk = parse_hiper_turn("<switch>KEEP</switch><subgoal>找杯子</subgoal><action>look</action>")
    assert not cjk.valid and cjk.reason == "CJK characters in the response"


def test_hiper_keep_consistency_and_projection():
    keep = parse_hiper_turn(
        "<switch>KEEP</switch><subgoal>find a mug </subgoal><action>go to cabinet one</action>",
        admissible=ALFWORLD_ADMISSIBLE,
        project=True,
    )
    assert keep.action == "go to cabinet 1" and keep.projected
    assert not keep.subgoal_changed("find a mug")
    assert keep.subgoal_changed("clean the mug")
    assert not keep.subgoal_changed(None)
    switch = parse_hiper_turn(HIPER)
    assert not switch.subgoal_changed("something else")  # only KEEP turns must copy
