"""The fitness bootstrap against distributions whose answer is known."""

import math

import pytest

from engine.domains.adas.benchmarks.bootstrap import bootstrap_fitness


def test_bootstrap_of_a_known_bernoulli_sample_matches_the_normal_approximation():
    scores = [1.0] * 300 + [0.0] * 700  # p = 0.3, n = 1000
    result = bootstrap_fitness(scores, seed=0, resamples=20_000)
    half_width = 1.96 * math.sqrt(0.3 * 0.7 / 1000) * 100  # ~2.84 points
    assert result.median == pytest.approx(30.0, abs=0.3)
    assert result.low == pytest.approx(30.0 - half_width, abs=0.4)
    assert result.high == pytest.approx(30.0 + half_width, abs=0.4)
    assert result.mean == pytest.approx(30.0)


def test_bootstrap_is_reproducible_with_its_seed():
    scores = [0.0, 1.0, 1.0, 0.5, 0.0, 1.0, 0.25]
    first = bootstrap_fitness(scores, seed=3, resamples=5_000)
    assert first == bootstrap_fitness(scores, seed=3, resamples=5_000)


def test_constant_scores_have_a_zero_width_interval():
    result = bootstrap_fitness([1.0] * 50, resamples=1_000)
    assert (result.low, result.median, result.high) == (100.0, 100.0, 100.0)


def test_fitness_text_is_the_papers_string():
    text = bootstrap_fitness([1.0, 0.0], resamples=1_000).text
    assert text.startswith("95% Bootstrap Confidence Interval: (")
    assert "%), Median: " in text and text.endswith("%")


def test_empty_scores_are_refused():
    with pytest.raises(ValueError):
        bootstrap_fitness([])
