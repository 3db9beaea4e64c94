"""Lenient JSON reading of LLM replies, and the reasons given when a reply cannot be read."""

from __future__ import annotations


import pytest

from engine.llm.errors import LLMReplyError
from engine.llm.jsonreply import MAX_REPLY_CHARS, parse_json_object


def test_plain_object_is_read():
    assert parse_json_object('{"name": "cot", "n": 3}') == {"name": "cot", "n": 3}


def test_fenced_object_with_prose_around_is_read():
    text = 'Here is my proposal:\n```json\n{"name": "debate", "code": "def f():\\n    return 1"}\n```\nHope it helps!'
    assert parse_json_object(text)["name"] == "debate"


def test_object_inside_prose_without_fence_is_read():
    assert parse_json_object('Sure. {"a": [1, 2]} That is all.') == {"a": [1, 2]}


def test_triple_quoted_code_field_as_small_models_emit_is_read():
    text = '```json\n{\n  "thought": "use a loop",\n  "code": """def forward(self, x):\n    return "done"\n"""\n}\n```'
    data = parse_json_object(text)
    assert data["thought"] == "use a loop"
    assert 'return "done"' in data["code"] and data["code"].strip().startswith("def forward")


def test_raw_newlines_and_trailing_comma_are_tolerated():
    assert parse_json_object('{"code": "line1\nline2",}') == {"code": "line1\nline2"}


def test_python_dict_literal_is_read():
    assert parse_json_object("{'ok': True, 'x': None}") == {"ok": True, "x": None}


def test_brace_inside_a_string_does_not_cut_the_object():
    assert parse_json_object('prefix {"code": "if x: d = {}\\n}"} suffix') == {"code": "if x: d = {}\n}"}


def test_reply_without_object_gives_a_reason_for_the_llm():
    with pytest.raises(LLMReplyError) as err:
        parse_json_object("I cannot help with that.")
    assert "no JSON object" in err.value.reason
    assert err.value.raw_text == "I cannot help with that."


def test_truncated_object_reason_names_the_syntax_error():
    with pytest.raises(LLMReplyError) as err:
        parse_json_object('{"name": "x", "code": "def f(')
    assert "not valid JSON" in err.value.reason and "line 1" in err.value.reason


def test_missing_required_field_is_named_in_the_reason():
    with pytest.raises(LLMReplyError) as err:
        parse_json_object('{"thought": "t"}', required=["thought", "code"])
    assert "'code'" in err.value.reason


def test_empty_reply_is_an_error():
    with pytest.raises(LLMReplyError, match="empty"):
        parse_json_object("  \n")


def test_oversized_reply_is_refused_without_scanning():
    with pytest.raises(LLMReplyError, match="too long"):
        parse_json_object("{" * (MAX_REPLY_CHARS + 1))


@pytest.mark.parametrize("text", ["{" * 500_000, '{"a": "' + "x" * 1_500_000, "{} " * 400_000, "[" * 100_000])
@pytest.mark.timeout(60)  # a hang guard against quadratic parsing; the figures: benchmarks/perf_containment.py
def test_huge_adversarial_replies_are_handled_quickly(text):
    try:
        parse_json_object(text)
    except LLMReplyError:
        pass
