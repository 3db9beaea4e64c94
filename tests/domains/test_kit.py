"""The domain kit's one mapping from a container's outcome to the candidate's failure, and its
one policy for result files (no Docker: RunResults are built by hand, /out is a plain dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.domains import kit
from engine.sandbox import owner
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.naming import CANDIDATE_LABEL, RUN_LABEL, STAGE_LABEL, ContainerSpec
from engine.sandbox.owner import PID_LABEL
from engine.sandbox.results import ResultModel
from engine.sandbox.runner import Outcome, RunResult, Stage
from engine.search.candidate import CandidateFailure, Status

LIMITS = SandboxLimits(timeout_s=7, memory_bytes="256m")


def _result(*, exit_code: int | None = 0, timed_out: bool = False, oom: bool = False, overflow: str | None = None,
            stderr: str = "") -> RunResult:
    return RunResult(exit_code=exit_code, timed_out=timed_out, oom_killed=oom, duration_s=1.0, stdout_tail="",
                     stderr_tail=stderr, out_files={}, out_dir=None, out_overflow=overflow, limits=LIMITS)


class Report(ResultModel):
    ok: bool


CASES = {  # outcome -> (run result, status, reason)
    Outcome.TIMEOUT: (_result(exit_code=None, timed_out=True), Status.TIMEOUT, "training: timed out after 7s"),
    Outcome.OOM: (_result(exit_code=137, oom=True), Status.OOM, "training: out of memory (256 MiB)"),
    Outcome.OUTPUT_REFUSED: (_result(overflow="/out holds 9 files, over the cap of 8"), Status.FAILED,
                             "training: /out holds 9 files, over the cap of 8"),
    Outcome.CRASHED: (_result(exit_code=1, stderr="Traceback\nValueError: boom\n"), Status.FAILED,
                      "training: exit 1: ValueError: boom"),
}


@pytest.mark.parametrize("outcome", sorted(CASES, key=lambda o: o.value))
def test_each_outcome_maps_to_one_status_and_reason(outcome: Outcome) -> None:
    result, status, reason = CASES[outcome]
    assert result.outcome is outcome and not result.ok
    failure = kit.run_failure(result, "training", partial={"status": "running"})
    assert (failure.status, failure.reason) == (status, reason)
    assert failure.detail["outcome"] == outcome.value and failure.detail["partial"] == {"status": "running"}
    assert ("stderr_tail" in failure.detail) is (status is Status.FAILED)


def test_a_timeout_wins_over_the_exit_code_and_an_ok_run_has_no_failure() -> None:
    assert _result(exit_code=1, timed_out=True).outcome is Outcome.TIMEOUT
    assert _result().outcome is Outcome.OK and _result().ok and _result().failure_reason() == ""


def test_a_readable_report_of_an_ok_run_is_returned(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text('{"ok": true}')
    assert kit.collect(_result(), tmp_path, "r.json", Report, max_bytes=100, what="unit test").require().ok


def test_an_unreadable_report_of_an_ok_run_fails_with_the_readers_reason(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("[]")
    with pytest.raises(CandidateFailure) as caught:
        kit.collect(_result(), tmp_path, "r.json", Report, max_bytes=100, what="unit test").require()
    assert caught.value.status is Status.FAILED
    assert caught.value.reason == "unit test: /out/r.json is malformed at the top level: Input should be a valid dictionary or instance of Report"


@pytest.mark.parametrize("read", ["require", "readable"])
def test_a_failed_run_with_an_unreadable_report_keeps_both_reasons(tmp_path: Path, read: str) -> None:
    (tmp_path / "r.json").write_text('{"ok": tr')
    collected = kit.collect(_result(exit_code=None, timed_out=True), tmp_path, "r.json", Report, max_bytes=100,
                            what="training")
    with pytest.raises(CandidateFailure) as caught:
        getattr(collected, read)()
    assert caught.value.status is Status.TIMEOUT
    assert caught.value.reason.startswith("training: timed out after 7s; /out/r.json is not valid JSON: ")


def test_a_report_of_a_failed_run_is_readable_but_not_required(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text('{"ok": false}')
    collected = kit.collect(_result(exit_code=3), tmp_path, "r.json", Report, max_bytes=100, what="training")
    assert collected.readable().ok is False
    with pytest.raises(CandidateFailure) as caught:
        collected.require()
    assert caught.value.reason == "training: exit 3: (no stderr)"


def test_the_container_spec_derives_labels_name_and_logs(tmp_path: Path) -> None:
    spec = ContainerSpec(run_id="run-1", owner=owner.current(), stage=Stage.TRAIN, candidate_id="abc")
    labels = spec.labels()
    assert labels[RUN_LABEL] == "run-1" and labels[CANDIDATE_LABEL] == "abc" and labels[STAGE_LABEL] == "train"
    assert PID_LABEL in labels
    assert spec.container_name().startswith("evobox-run-1-abc-train-")
    assert spec.log_paths(tmp_path) == (tmp_path / "train.stdout.log", tmp_path / "train.stderr.log")
