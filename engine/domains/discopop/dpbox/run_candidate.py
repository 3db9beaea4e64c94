"""Entry point of the candidate container: validity tests, then training, in one process.

`python -m dpbox.run_candidate '<CandidateJob json>'`. Writes /out/result.json (status,
one-line reason, validity failures, per-run training records) after every stage, so a run
killed at its time limit still leaves what it finished. The exit status is 0 whenever the
outcome is recorded there (a failed candidate is a result, not a crash).
"""

from __future__ import annotations

from . import env  # noqa: F401  (must precede the HF imports)

import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from . import candidate, threads
from .protocol import BoxStatus, CandidateJob

OUT = Path(os.environ.get("EVOBOX_OUT", "/out"))
RESULT_FILE = "result.json"


class ValidityCollector:
    """pytest plugin: keeps each failing test's one-line message."""

    def __init__(self) -> None:
        self.failures: list[dict[str, str]] = []
        self.passed = 0

    def pytest_runtest_logreport(self, report) -> None:
        if report.passed and report.when == "call":
            self.passed += 1
        if not report.failed:
            return
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        line = message.strip().splitlines()[0] if message.strip() else "failed"
        for prefix in ("AssertionError: ", "Failed: "):
            line = line.removeprefix(prefix)
        self.failures.append({"test": report.nodeid.split("::")[-1], "reason": line})


def run_validity(job: CandidateJob, candidate_path: Path) -> ValidityCollector:
    os.environ["EVOBOX_VALIDITY_BETAS"] = ",".join(str(b) for b in job.validity_betas)
    os.environ["EVOBOX_CANDIDATE"] = str(candidate_path)
    collector = ValidityCollector()
    test_file = Path(__file__).with_name("test_validity.py")
    pytest.main([str(test_file), "-q", "-p", "no:cacheprovider", "--no-header", "-rN"], plugins=[collector])
    return collector


def write_result(result: dict) -> None:
    temporary = OUT / (RESULT_FILE + ".tmp")
    temporary.write_text(json.dumps(result))
    temporary.replace(OUT / RESULT_FILE)


def main(job_json: str, candidate_path: Path) -> int:
    job = CandidateJob.from_json(job_json)
    started = time.perf_counter()
    result: dict = {"status": BoxStatus.RUNNING.value, "reason": None, "threads": threads.configure_torch(), "runs": [], "timings": {}}
    write_result(result)
    if job.validate:
        collector = run_validity(job, candidate_path)
        result["validity"] = {"passed": collector.passed, "failures": collector.failures}
        result["timings"]["validity_s"] = round(time.perf_counter() - started, 3)
        if collector.failures:
            first = collector.failures[0]
            result.update(status=BoxStatus.REJECTED.value, reason=f"validity test {first['test']}: {first['reason']}")
            write_result(result)
            return 0
    from . import train  # heavy imports only once the loss is known to be sane

    loss = candidate.load(candidate_path)
    weights = OUT / "weights"
    weights.mkdir(exist_ok=True)

    def record(run: train.RunRecord) -> None:
        result["runs"].append(asdict(run))
        write_result(result)

    training_started = time.perf_counter()
    try:
        train.train_all(job.train, job.model, loss, weights, Path(tempfile.mkdtemp(prefix="evobox-train-")), record)
    except (train.NonFiniteLossError, train.LossShapeError) as error:
        result.update(status=BoxStatus.FAILED.value, reason=str(error))
    except Exception as error:  # the candidate's code raised inside training: a result, not a crash
        first_line = str(error).splitlines()[0] if str(error) else ""
        result.update(status=BoxStatus.FAILED.value, reason=f"training crashed: {type(error).__name__}: {first_line}"[:300])
    else:
        result["status"] = BoxStatus.OK.value
    result["timings"]["train_s"] = round(time.perf_counter() - training_started, 3)
    result["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    write_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/opt/evobox") / candidate.CANDIDATE_FILE))
