"""The typed result files of the DiscoPOP containers, read by engine.sandbox.results.

result.json is written by the candidate's container, in the same process as the candidate's
loss: every byte of it is the candidate's to choose. eval.json comes from the evaluator (no
candidate code) but its numbers are measured on the candidate's trained policy.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from engine.domains.discopop.dpbox.protocol import BoxStatus
from engine.sandbox.results import ResultModel

JUDGE_MIN, JUDGE_MAX = 1.0, 10.0  # the judge prompt's rating scale


class TrainReport(ResultModel):
    """/out/result.json of the candidate container (dpbox.run_candidate)."""

    status: BoxStatus
    reason: str | None = Field(None, max_length=2_000)
    runs: list[dict[str, Any]] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    threads: int | None = None
    validity: dict[str, Any] | None = None


class PolicyScore(ResultModel):
    """One trained policy's raw numbers, or why it could not be scored."""

    reward: float | None = None
    reward_sd: float | None = None
    kl: float | None = None
    kl_sd: float | None = None
    n: int | None = None
    score: float | None = Field(None, ge=JUDGE_MIN, le=JUDGE_MAX)  # judge setting: mean rating
    unreadable: int | None = None
    error: str | None = None


class EvalReport(ResultModel):
    """/out/eval.json of the evaluation container (dpbox.evaluate)."""

    scores: dict[str, PolicyScore]
    seconds: float = 0.0
