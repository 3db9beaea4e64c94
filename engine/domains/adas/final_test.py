"""The run ends the way the paper's does: the best agents on the held-out test split.

Candidates are selected on the validation split, so their validation scores are biased upward.
When a search completes, the top-k discovered agents and the best baseline (both by validation
fitness) are evaluated on the test split through the transfer path (`transfer.evaluate_run`,
the same as `evobox adas evaluate`): a run of zero generations in RUN_DIR/test/, durable and
resumable like any run; once its archive holds every agent it is not run again.

The verdict compares the best discovered agent (the top one on validation: choosing it on the
test numbers would bias them again) with the best baseline by a paired bootstrap over the test
questions both answered: it beats the baseline beyond the interval when the 95% interval of
the difference in mean score lies above zero. Paired, not non-overlapping intervals: both
agents answer the same questions, and pairing removes the questions' shared difficulty from
the noise (two overlapping intervals can still hide a clear difference).
"""

from __future__ import annotations

import enum
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from engine.domains.adas.baselines import BASELINES, BaselineName
from engine.domains.adas.benchmarks import Split
from engine.domains.adas.benchmarks.bootstrap import paired_difference
from engine.domains.adas.config import AdasConfig
from engine.domains.adas.transfer import TransferError, evaluate_run, initial_agents, transfer_config
from engine.search.archive import Record, load_records
from engine.search.candidate import Status
from engine.search.domain import Domain
from engine.search.stop import StopReason

log = structlog.get_logger()

FINAL_DIR = "test"


class Verdict(str, enum.Enum):
    BETTER = "beats the best baseline beyond the interval"
    WORSE = "is worse than the best baseline beyond the interval"
    UNCLEAR = "does not differ from the best baseline beyond the interval"


@dataclass(frozen=True)
class FinalRow:
    """One agent on the test split, beside its validation score."""

    name: str
    discovered: bool
    validation: Record | None
    test: Record

    @property
    def scores(self) -> dict[str, float]:
        return dict(self.test.fitness_detail.get("scores", {}))


@dataclass(frozen=True)
class Comparison:
    """Best discovered agent minus best baseline, in percentage points, paired by question."""

    agent: str
    baseline: str
    n: int
    low: float
    median: float
    high: float

    @property
    def verdict(self) -> Verdict:
        if self.low > 0:
            return Verdict.BETTER
        if self.high < 0:
            return Verdict.WORSE
        return Verdict.UNCLEAR


def final_dir(run_dir: Path) -> Path:
    return run_dir / FINAL_DIR


def best_baseline(records: list[Record]) -> BaselineName | None:
    """The hand-written baseline with the best validation fitness."""
    by_code = {proposal.code: name for name, proposal in BASELINES.items()}
    scored = [r for r in records if r.generation == "initial" and r.status is Status.OK and r.fitness is not None
              and r.code in by_code]
    best = max(scored, key=lambda r: r.fitness, default=None)  # type: ignore[arg-type, return-value]
    return by_code[best.code] if best else None


def run_final_test(domain_cls: type[Domain], run_dir: Path, config: AdasConfig,
                   **run_kwargs: Any) -> tuple[StopReason, str] | None:
    """Evaluate the chosen agents on the test split (a run of `domain_cls`, the caller's class:
    domain.py imports this module) unless done already; None when there is nothing to do
    (disabled, a transfer run itself, no scored discovered agent)."""

    settings = config.final_test
    if not settings.enabled or config.agents_from or config.split is Split.TEST:
        return None
    baseline = best_baseline(load_records(run_dir))
    kwargs = dict(top_k=settings.top_k, n_questions=settings.n_questions, baselines=[baseline] if baseline else [])
    try:
        planned = transfer_config(run_dir, config.benchmark, Split.TEST, **kwargs)  # type: ignore[arg-type]
    except TransferError as exc:
        log.info("adas.final_test_skipped", reason=str(exc))
        return None
    target = final_dir(run_dir)
    expected = len(initial_agents(AdasConfig.model_validate(planned.domain)))
    if _done(target, expected):
        return StopReason.COMPLETED, "test split already evaluated"
    log.info("adas.final_test", agents=expected, questions=settings.n_questions or "all", run_dir=str(target))
    outcome = evaluate_run(domain_cls, run_dir, config.benchmark, Split.TEST, target=target, write_report=False,
                           **kwargs, **run_kwargs)  # type: ignore[arg-type]
    if outcome.reason is StopReason.COMPLETED:
        return outcome.reason, f"test split evaluated ({expected} agents, {target})"
    return outcome.reason, f"test split: {outcome.detail}"


def _done(target: Path, expected: int) -> bool:
    try:
        slots = {r.slot for r in load_records(target)}
    except Exception:  # noqa: BLE001 - an unreadable archive is continued by the run itself
        return False
    return slots >= {("initial", i) for i in range(expected)}


def final_rows(run_dir: Path) -> list[FinalRow]:
    """The test-split records of a run (scored ones), each with its validation record."""
    target = final_dir(run_dir)
    if not (target / "archive.jsonl").exists():
        return []
    validation = {r.code: r for r in load_records(run_dir) if r.status is Status.OK}
    rows = []
    for record in load_records(target):
        if record.status is not Status.OK or record.fitness is None:
            continue
        source = validation.get(record.code)
        discovered = source is not None and source.generation != "initial"
        rows.append(FinalRow(record.name, discovered, source, record))
    return rows


def compare(rows: list[FinalRow], *, seed: int = 0, resamples: int = 10_000) -> Comparison | None:
    """The best discovered agent (on validation) against the best baseline, on the test split."""
    agents = [r for r in rows if r.discovered]
    baselines = [r for r in rows if not r.discovered]
    if not agents or not baselines:
        return None
    agent = max(agents, key=lambda r: r.validation.fitness)  # type: ignore[union-attr, return-value, arg-type]
    baseline = max(baselines, key=lambda r: r.test.fitness)  # type: ignore[return-value, arg-type]
    common = sorted(set(agent.scores) & set(baseline.scores))
    if not common:
        return None
    result = paired_difference([agent.scores[q] for q in common], [baseline.scores[q] for q in common],
                               seed=seed, resamples=resamples)
    return Comparison(agent.name, baseline.name, len(common), result.low, result.median, result.high)


def lead_html(run_dir: Path, config: AdasConfig) -> str:
    """The report's first section: the test-split table and the verdict, or why there is none."""
    if config.agents_from or config.split is Split.TEST:  # a transfer run is itself the evaluation
        return ""
    rows = final_rows(run_dir)
    if not rows:
        state = "is disabled in [domain.final_test]" if not config.final_test.enabled else (
            "has not run yet: it runs when the search completes with a scored discovered agent "
            "(`evobox resume` finishes it)")
        return f"<h2>Test split</h2><p>The held-out test evaluation {state}.</p>"
    rows.sort(key=lambda r: (not r.discovered, -(r.validation.fitness if r.validation else 0.0)))
    comparison = compare(rows, seed=config.seed, resamples=config.bootstrap_resamples)
    parts = ["<h2>Test split (held out; agents chosen on validation)</h2>", _verdict_html(comparison),
             "<table><tr><th>agent</th><th>kind</th><th>validation</th><th>test (n)</th></tr>"]
    for row in rows:
        validation = row.validation.fitness_text if row.validation else ""
        detail = row.test.fitness_detail
        parts.append(f"<tr class='ok'><td><b>{html.escape(row.name)}</b></td>"
                     f"<td>{'discovered' if row.discovered else 'baseline'}</td>"
                     f"<td><small>{html.escape(validation or '')}</small></td>"
                     f"<td><b>{html.escape(row.test.fitness_text or '')}</b> ({detail.get('n', '?')})</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)


def _verdict_html(comparison: Comparison | None) -> str:
    if comparison is None:
        return "<p>No comparison: the test split holds no scored discovered agent or no scored baseline.</p>"
    c = comparison
    return (f"<p class='verdict'><b>{html.escape(c.agent)}</b> (the best discovered agent on validation) "
            f"<b>{c.verdict.value}</b> ({html.escape(c.baseline)}): difference {c.median:+.1f} points, paired "
            f"bootstrap 95% interval ({c.low:+.1f}, {c.high:+.1f}) over {c.n} test questions.</p>")
