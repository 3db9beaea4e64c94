"""The [domain] table of an ADAS run. Defaults: the small local run of `make search-adas`."""

from __future__ import annotations

import enum
import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.domains.adas.baselines import BaselineName
from engine.domains.adas.benchmarks import Benchmark, Split
from engine.sandbox.limits import parse_size


class PromptStyle(str, enum.Enum):
    COMPACT = "compact"  # short rules: a 1.5B local meta model reads ~50 prompt tokens/s
    FULL = "full"  # adds worked wrong/right examples, as in the paper


class FinalTestConfig(BaseModel):
    """[domain.final_test]: when the search completes, the best agents and the best baseline,
    chosen on the validation split, are evaluated on the held-out test split (the paper's
    final numbers: validation-selected scores are biased upward)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Evaluate on the test split when the search completes.")
    top_k: int = Field(1, ge=1, description="How many of the best discovered agents (by validation fitness).")
    n_questions: int = Field(5, ge=0, description="First N test questions; 0 = the paper's whole test split. "
                                                  "Default 5: cheap on the embedded model, wide intervals.")


class AdasConfig(BaseModel):
    """Benchmark, evaluation sizes, in-container limits and per-candidate LLM budgets."""

    model_config = ConfigDict(extra="forbid")

    benchmark: Benchmark = Field(Benchmark.MGSM, description="mgsm, drop, mmlu, gpqa or arc.")
    split: Split = Field(Split.VALID, description="valid (search fitness) or test (final numbers).")
    n_questions: int = Field(5, ge=0, description="First N questions of the split; 0 = the paper's split size.")
    languages: list[str] = Field(["en"], description="MGSM languages (the paper mixes all 11).")
    source: str | None = Field(None, description="Local path or Hugging Face dataset id; default: under data_dir.")
    data_dir: str | None = Field(None, description="Offline data root; default $EVOBOX_DATA_DIR or ../shared/data/adas.")
    repeats: int | None = Field(None, ge=1, description="Times each question is asked; null = paper (GPQA, ARC: 5).")
    arc_max_side: int = Field(5, ge=1, le=30, description="ARC: keep training tasks whose grids are at most this size.")
    seed: int = Field(0, description="Shuffle seed of the split and of GPQA's option order.")
    baselines: list[BaselineName] = Field(
        [BaselineName.COT, BaselineName.STEP_BACK, BaselineName.ROLE_ASSIGNMENT],
        description="Baselines that seed the archive. Default: the three cheapest (1-2 LLM calls per question) "
                    "for the local run; the paper's configs list all seven.")
    agents_from: str | None = Field(None, description="Run directory whose best discovered agents join the "
                                                       "baselines (transfer: `evobox adas evaluate`).")
    top_k: int = Field(3, ge=1, description="How many of agents_from's best agents to re-evaluate.")
    prompt_style: PromptStyle = Field(PromptStyle.COMPACT, description="compact or full meta prompt.")
    final_test: FinalTestConfig = Field(default_factory=FinalTestConfig,
                                        description="The end-of-run evaluation on the test split.")

    threads: int = Field(2, ge=1, le=128, description="Questions answered in parallel inside the container.")
    question_timeout_s: float = Field(300.0, gt=0, description="An unfinished question scores 0 after this.")
    agent_max_tokens: int = Field(512, ge=16, description="max_tokens of each agent LLM call.")
    llm_calls_per_question: int = Field(
        150, ge=1, description="Agent LLM calls per question; a candidate's gateway budget is this times its "
                               "questions (repeats included). Agents from the paper use 1 to ~115 per question.")
    llm_tokens_per_question: int = Field(300_000, ge=1, description="Agent tokens per question (same sizing).")
    memory: int = Field(parse_size("768m"), description="Memory limit of the agent's container.")
    cpus: float = Field(1.0, gt=0, description="CPU quota of the agent's container.")
    pids: int = Field(256, ge=16, description="Process/thread limit of the agent's container.")

    selftest_questions: int = Field(2, ge=1, description="Sample tasks of the stub-LLM unit test.")
    selftest_timeout_s: float = Field(20.0, gt=0, description="Per sample task in the unit test.")
    bootstrap_resamples: int = Field(100_000, ge=100, description="Resamples of the fitness bootstrap.")
    min_accuracy: float = Field(0.01, ge=0, le=1, description="A lower mean score fails the candidate ('All 0 accuracy').")

    @field_validator("memory", mode="before")
    @classmethod
    def _size(cls, value: int | str) -> int:
        return parse_size(value)

    def llm_budget(self, questions: int) -> tuple[int, int]:
        """(calls, tokens) one candidate may spend on `questions` questions: sized per question, so
        a larger evaluation never cuts an agent short that a smaller one would not."""
        return self.llm_calls_per_question * questions, self.llm_tokens_per_question * questions

    def harness_deadline_s(self, questions: int) -> float:
        """Time the harness gives itself: every wave of `threads` questions may use its timeout."""
        return math.ceil(questions / self.threads) * self.question_timeout_s + 10.0
