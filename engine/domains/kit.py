"""The sandbox glue every domain shares, written once: a third domain inherits all of it.

A domain says what to run; the kit does the rest the same way for every domain:
- the candidate's image is labelled as this run's build of this candidate (`candidate_image`),
  so the reaper removes it with the run;
- each container gets its name and labels from `Sandbox.work(stage, candidate_id)` (the
  sandbox's `ContainerSpec`), and its stdout and stderr tails are kept in the candidate's
  directory under the names the spec derives (`run_stage`);
- a container that did not end cleanly becomes the candidate's failure by one mapping of
  `RunResult.outcome` to `Status` (`run_failure`);
- a result file in /out is read through the sandbox's one capped, typed reader with one error
  policy (`collect`): an unreadable file is the candidate's failure with the reader's reason;
  when the run itself also failed, the run's outcome is the failure (a killed process explains a
  missing or torn file better than the file does) and the reader's reason follows it in the same
  line, so it reaches the archive record and the repair prompt either way;
- any other result file read through the sandbox's reader (`result_files`) makes its
  `ResultError` the candidate's failure the same way (the sandbox knows no search types).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from engine.sandbox.errors import ResultError
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.results import read_result
from engine.sandbox.runner import Mount, Outcome, RunResult, Stage
from engine.search.candidate import CandidateFailure, Status
from engine.search.domain import CandidateContext

Report = TypeVar("Report")

STDERR_DETAIL_CHARS = 2000  # how much of a failed run's stderr the archive record keeps
_STATUS = {Outcome.TIMEOUT: Status.TIMEOUT, Outcome.OOM: Status.OOM,
           Outcome.OUTPUT_REFUSED: Status.FAILED, Outcome.CRASHED: Status.FAILED}


def candidate_image(ctx: CandidateContext, runtime: str, files: Mapping[str, bytes], *, kind: str) -> str:
    """`runtime` + the candidate's `files`, labelled as this run's build of this candidate."""
    labels = ctx.run.sandbox.work(Stage.BUILD, ctx.candidate_id).labels()
    return ctx.run.images.layer(runtime, files, kind=kind, labels=labels)


def run_stage(ctx: CandidateContext, image: str, command: list[str], *, stage: Stage, limits: SandboxLimits,
              out_dir: Path | None = None, in_dir: Path | None = None, mounts: Sequence[Mount] = (),
              env: Mapping[str, str] = {}) -> RunResult:
    """One container of the candidate's `stage`; its logs are kept whatever the outcome."""
    result = ctx.run.sandbox.run(image, command, limits=limits, out_dir=out_dir, in_dir=in_dir, mounts=mounts,
                                 env=env, stage=stage, candidate_id=ctx.candidate_id)
    save_logs(ctx, stage, result)
    return result


def save_logs(ctx: CandidateContext, stage: Stage, result: RunResult) -> None:
    stdout, stderr = ctx.run.sandbox.work(stage, ctx.candidate_id).log_paths(ctx.candidate_dir)
    stdout.write_text(result.stdout_tail, encoding="utf-8")
    stderr.write_text(result.stderr_tail, encoding="utf-8")


def run_failure(result: RunResult, what: str, *, partial: Any = None, result_error: str | None = None) -> CandidateFailure:
    """The candidate's failure for a container that did not end cleanly (or ended without a
    final result): status from the outcome; `what: why` as the reason, then why its result file
    was unreadable, if it was; the end of stderr and the partial report in the detail."""
    status = _STATUS.get(result.outcome, Status.FAILED)
    detail: dict[str, Any] = {"outcome": result.outcome.value}
    if status is Status.FAILED:
        detail["stderr_tail"] = result.stderr_tail[-STDERR_DETAIL_CHARS:]
    if partial is not None:
        detail["partial"] = partial
    reason = f"{what}: {result.failure_reason() or 'ended without a final result'}"
    return CandidateFailure(status, f"{reason}; {result_error}" if result_error else reason, detail)


@dataclass(frozen=True)
class Collected(Generic[Report]):
    """A run and its result file: the parsed report, or why it could not be read."""

    result: RunResult
    what: str
    report: Report | None
    error: CandidateFailure | None

    def failure(self, partial: Any = None) -> CandidateFailure:
        """The run's failure, carrying the reader's reason when the file was unreadable too."""
        error = self.error.reason.removeprefix(f"{self.what}: ") if self.error is not None else None
        return run_failure(self.result, self.what, partial=partial, result_error=error)

    def readable(self) -> Report:
        """The report, even from a run that did not end ok (a report that says why it stopped
        explains more than the exit does); else the run's failure, or the reader's."""
        if self.report is not None:
            return self.report
        if not self.result.ok:
            raise self.failure()
        assert self.error is not None
        raise self.error

    def require(self) -> Report:
        """The report of a run that ended ok; else the run's failure, or the reader's."""
        if not self.result.ok:
            raise self.failure()
        return self.readable()


def collect(result: RunResult, out_dir: Path, name: str, model: type[Report], *, max_bytes: int,
            what: str) -> Collected[Report]:
    """Read /out/`name` of `result`'s run through the sandbox's capped reader into `model`."""
    try:
        report = read_result(out_dir, name, model, max_bytes=max_bytes, what=what)  # type: ignore[type-var]
    except ResultError as error:
        return Collected(result, what, None, result_failure(error))
    return Collected(result, what, report, None)


def result_failure(error: ResultError) -> CandidateFailure:
    """The candidate's failure for a result file the sandbox's reader refused."""
    return CandidateFailure(Status.FAILED, error.reason)


@contextmanager
def result_files() -> Iterator[None]:
    """Result files read in this block (engine.sandbox.results): one the reader refuses is the
    candidate's failure."""
    try:
        yield
    except ResultError as error:
        raise result_failure(error) from None
