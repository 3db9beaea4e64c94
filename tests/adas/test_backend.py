"""Lenient parsing of the agent LLM's replies (small local models wrap and mangle JSON)."""

import pytest

from engine.domains.adas.box.backend import parse_json

FIELDS = ["thinking", "answer"]


@pytest.mark.parametrize(("text", "expected"), [
    ('{"thinking": "t", "answer": "4"}', {"thinking": "t", "answer": "4"}),
    ('```json\n{"answer": 4}\n```', {"answer": 4}),
    ('Sure! Here it is: {"answer": "4"} Hope this helps.', {"answer": "4"}),
    ("{'thinking': 't', 'answer': '4'}", {"thinking": "t", "answer": "4"}),  # Python literal
    ("The answer is 4.", {"answer": "The answer is 4."}),  # no object: the last field gets the text
    ("", {}),
])
def test_replies_are_parsed_leniently(text, expected):
    assert parse_json(text, FIELDS) == expected


def test_a_json_list_is_not_taken_for_the_object():
    assert parse_json('["a", "b"]', FIELDS) == {"answer": '["a", "b"]'}
