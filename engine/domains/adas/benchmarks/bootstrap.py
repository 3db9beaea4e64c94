"""The paper's fitness: a seeded bootstrap of the mean per-question score, reported in percent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_CHUNK = 2_000  # resamples drawn at once: bounds memory for 800-question test sets


@dataclass(frozen=True)
class BootstrapResult:
    """Percentages (0-100) of the bootstrap distribution of the mean score."""

    low: float
    high: float
    median: float
    mean: float
    n: int

    @property
    def text(self) -> str:
        """The paper's string, which is also what the meta LLM reads."""
        return (f"95% Bootstrap Confidence Interval: ({self.low:.1f}%, {self.high:.1f}%), "
                f"Median: {self.median:.1f}%")


def bootstrap_fitness(scores: Sequence[float], *, seed: int = 0, resamples: int = 100_000) -> BootstrapResult:
    """Resample the per-question scores with replacement; the median of the means is the fitness."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no scores to bootstrap")
    if resamples < 1:
        raise ValueError("resamples must be positive")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, _CHUNK):
        count = min(_CHUNK, resamples - start)
        idx = rng.integers(0, values.size, size=(count, values.size))
        means[start:start + count] = values[idx].mean(axis=1)
    low, median, high = np.percentile(means, [2.5, 50, 97.5]) * 100
    return BootstrapResult(low=float(low), high=float(high), median=float(median),
                           mean=float(values.mean() * 100), n=int(values.size))


def paired_difference(a: Sequence[float], b: Sequence[float], *, seed: int = 0,
                      resamples: int = 10_000) -> BootstrapResult:
    """Bootstrap of mean(a) - mean(b) in percentage points, resampling questions (pairs), so the
    difficulty both agents share cancels out. a[i] and b[i] are the scores of one question."""
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError("paired scores need one score of each agent per question")
    return bootstrap_fitness(first - second, seed=seed, resamples=resamples)
