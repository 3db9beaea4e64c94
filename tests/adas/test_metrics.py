"""Scorers on hand-made cases: each would fail if the metric drifted from its definition."""

import pytest

from engine.domains.adas.benchmarks.metrics import choice_match, drop_f1, grid_match, numeric_match, parse_choice


@pytest.mark.parametrize(("answer", "gold", "expected"), [
    ("18", 18, 1.0), ("The answer is 18.", 18, 1.0), ("1,234", 1234, 1.0), ("18.0", 18, 1.0),
    ("-3", -3, 1.0), ("17", 18, 0.0), ("", 18, 0.0), ("eighteen", 18, 0.0), (18, 18, 1.0),
    ("first 5 then 18", 18, 1.0), ("18 then 5", 18, 0.0),
])
def test_mgsm_numeric_match_uses_the_last_number(answer, gold, expected):
    assert numeric_match(answer, gold) == expected


def test_drop_exact_answer_scores_one():
    assert drop_f1("Pakistanis and Filipinos", "Pakistanis and Filipinos") == 1.0


def test_drop_ignores_case_punctuation_and_articles():
    assert drop_f1("The Pakistanis, and Filipinos!", "Pakistanis and Filipinos") == 1.0


def test_drop_partial_overlap_is_bag_of_tokens_f1():
    # predicted {new, york, city}, gold {new, york}: precision 2/3, recall 1 -> F1 0.8
    assert drop_f1("New York City", "New York") == pytest.approx(0.8)


def test_drop_numbers_are_normalised():
    assert drop_f1("67.20", "67.2") == 1.0
    assert drop_f1("1,000", "1000") == 1.0


def test_drop_wrong_number_gets_no_credit_for_shared_words():
    assert drop_f1("12 yards", "13 yards") == 0.0


def test_drop_takes_the_max_over_pipe_separated_golds():
    assert drop_f1("Filipinos", "Pakistanis and Filipinos|Filipinos") == 1.0
    assert drop_f1("nothing alike", "a|b") == 0.0


def test_drop_empty_answer_scores_zero():
    assert drop_f1("", "touchdown") == 0.0


@pytest.mark.parametrize(("answer", "letter"), [
    ("B", "B"), ("(C)", "C"), ("D.", "D"), ("The answer is A", "A"), ("Answer: (b)", "B"),
    ("I pick (D) because", "D"), ("none", None), ("", None),
])
def test_choice_letter_is_parsed(answer, letter):
    assert parse_choice(answer) == letter


def test_choice_match_compares_letters():
    assert choice_match("The answer is C", "C") == 1.0
    assert choice_match("C", "A") == 0.0


def test_grid_match_is_exact():
    gold = [[1, 2], [3, 4]]
    assert grid_match([[1, 2], [3, 4]], gold) == 1.0
    assert grid_match("[[1, 2], [3, 4]]", gold) == 1.0
    assert grid_match([[1, 2], [3, 5]], gold) == 0.0
    assert grid_match([[1, 2]], gold) == 0.0
    assert grid_match("__import__('os').system('true')", gold) == 0.0  # never evaluated
    assert grid_match([[True, 2], [3, 4]], gold) == 0.0
