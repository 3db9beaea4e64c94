"""The real CLI in a subprocess, the toy domain evaluating in real containers: SIGKILL in the
middle of an evaluation, then resume: no duplicate, no loss, no orphan container. SIGINT and
SIGTERM stop cleanly. These need Docker and the base image (built once if missing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from engine.sandbox.client import connect
import pytest

from engine.llm.scripted import ScriptedLLM
from engine.sandbox.owner import PID_LABEL
from engine.search.archive import load_records
from engine.search.candidate import Status
from engine.search.stop import StopReason
from tests.search.conftest import proposal, square

pytestmark = [pytest.mark.docker, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
DOMAIN = "tests.third_domain.domain:ToyDomain"


def _distinct(body: dict) -> str:
    return proposal(square(str(body["seed"])), name=f"seed-{body['seed']}")


def _config(tmp_path: Path, base_url: str, *, generations: int, delay: float) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(f"""
[search]
generations = {generations}
candidates_per_generation = 2
eval_slots = 2
reflection_rounds = 1
[llm.meta]
base_url = "{base_url}"
model = "scripted"
temperature = 0.0
max_tokens = 256
max_retries = 0
[sandbox]
timeout_s = 120
memory_bytes = "256m"
[domain]
mode = "sandbox"
eval_delay_s = {delay}
""")
    return path


def _cli(*args: str, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "EVOBOX_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    env.pop("OPENAI_BASE_URL", None)
    return subprocess.Popen([sys.executable, "-c", "from engine.cli import app; app()", *args, "--no-progress"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _containers(run_id: str) -> list:
    return connect().containers.list(all=True, filters={"label": f"evobox.run={run_id}"}, ignore_removed=True)


def _wait_for(predicate, timeout_s: float, what: str, process: subprocess.Popen | None = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended before {what}:\n{process.stdout.read()}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _log(run_dir: Path) -> list[str]:
    path = run_dir / "evaluations.log"
    return path.read_text().splitlines() if path.exists() else []


def _finish(process: subprocess.Popen[str], timeout_s: float = 300) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout_s)
    return process.returncode, output


def _assert_complete(run_dir: Path, generations: int) -> None:
    records = load_records(run_dir)
    slots = [r.slot for r in records]
    assert slots == [("initial", 0), ("initial", 1)] + [(g, k) for g in range(1, generations + 1) for k in (0, 1)]
    assert all(r.status is Status.OK for r in records), [(r.slot, r.error) for r in records]
    ends = Counter(line.split()[1] for line in _log(run_dir) if line.startswith("end"))
    assert set(ends.values()) == {1}, ends  # no candidate evaluated twice
    assert set(ends) == {r.code_id for r in records}  # evaluations are named by code id
    assert list((run_dir / "pending").iterdir()) == []


def test_sigkill_during_evaluation_then_resume_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / f"toy-kill-{uuid.uuid4().hex[:8]}"
    with ScriptedLLM(default=_distinct) as llm:
        config = _config(tmp_path, llm.base_url, generations=2, delay=4.0)
        search = _cli("search", DOMAIN, "--config", str(config), "--run-dir", str(run_dir), cache=tmp_path / "cache")
        try:
            _wait_for(lambda: len([x for x in _log(run_dir) if x.startswith("start")]) >= 4
                      and len(_containers(run_dir.name)) >= 2, 240, "generation 1 in containers", search)
        finally:
            search.send_signal(signal.SIGKILL)
            search.wait()
        assert _containers(run_dir.name), "the kill should have left the running container behind"
        started = [x for x in _log(run_dir) if x.startswith("start")]
        requests_before = len(llm.requests)
        events_before = (run_dir / "events.jsonl").stat().st_size

        resumed = _cli("resume", str(run_dir), cache=tmp_path / "cache")
        _wait_for(lambda: b'"search.started"' in (run_dir / "events.jsonl").read_bytes()[events_before:], 240,
                  "the resumed search", resumed)
        leftovers = connect().containers.list(
            all=True, filters={"label": [f"evobox.run={run_dir.name}", f"{PID_LABEL}={search.pid}"]}, ignore_removed=True)
        assert leftovers == [], "the resumed run must remove the killed process's containers before it starts"
        code, output = _finish(resumed)
        assert code == 0, output
        assert "stopped: completed" in output and "report:" in output
    _assert_complete(run_dir, generations=2)
    assert _containers(run_dir.name) == []
    restarted = [x for x in _log(run_dir) if x.startswith("start")]
    assert len(restarted) > len(started)
    # replies received before the kill were journaled, not asked for again: 2 generations x 2
    # candidates x (proposal + reflection), the kill having hit generation 1's evaluations
    assert requests_before == 4 and len(llm.requests) == 8
    assert (run_dir / "report.html").exists()
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert {"search.started", "candidate.archived", "search.finished"} <= {e["event"] for e in events}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_finishes_in_flight_work_and_rerunning_search_completes(tmp_path: Path, signum: int) -> None:
    """Ctrl-C, and SIGTERM alike (`kill`, a scheduler), stop cleanly after the work in flight."""
    run_dir = tmp_path / f"toy-int-{uuid.uuid4().hex[:8]}"
    with ScriptedLLM(default=_distinct) as llm:
        config = _config(tmp_path, llm.base_url, generations=3, delay=2.0)
        search = _cli("search", DOMAIN, "--config", str(config), "--run-dir", str(run_dir), cache=tmp_path / "cache")
        _wait_for(lambda: len([x for x in _log(run_dir) if x.startswith("start")]) >= 3, 240,
                  "a generated candidate evaluating", search)
        in_flight = {x.split()[1] for x in _log(run_dir) if x.startswith("start")}
        search.send_signal(signum)
        code, output = _finish(search)
        assert code == 130, output
        assert f"stopped: {StopReason.INTERRUPTED.value}" in output and "evobox resume" in output
        archived = {r.id for r in load_records(run_dir)}
        ended = {x.split()[1] for x in _log(run_dir) if x.startswith("end")}
        assert in_flight <= ended  # evaluations in flight were finished...
        assert _containers(run_dir.name) == []
        # the same search command on the same run directory continues it
        code, output = _finish(_cli("search", DOMAIN, "--config", str(config), "--run-dir", str(run_dir),
                                    cache=tmp_path / "cache"))
        assert code == 0, output
    _assert_complete(run_dir, generations=3)
    assert archived <= {r.id for r in load_records(run_dir)}  # ...and nothing archived was lost


def test_search_honours_openai_base_url_and_model_flag(tmp_path: Path) -> None:
    run_dir = tmp_path / f"toy-env-{uuid.uuid4().hex[:8]}"
    with ScriptedLLM(default=_distinct) as llm:
        env = {**os.environ, "EVOBOX_CACHE_DIR": str(tmp_path / "cache"), "OPENAI_BASE_URL": llm.base_url,
               "OPENAI_API_KEY": "sk-test-not-a-secret"}
        result = subprocess.run(
            [sys.executable, "-c", "from engine.cli import app; app()", "search", DOMAIN, "--generations", "1",
             "--model", "env-model", "--run-dir", str(run_dir), "--no-progress"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert {r["model"] for r in llm.requests} == {"env-model"}
        assert all(h.get("authorization") == "Bearer sk-test-not-a-secret" for h in llm.headers)
    assert f"report: {run_dir}/report.html" in result.stderr
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["search"]["generations"] == 1 and saved["llm"]["meta"]["model"] == "env-model"
    assert "sk-test" not in (run_dir / "config.json").read_text() + (run_dir / "events.jsonl").read_text()
