"""A third domain is one package and `module:Class`, nothing else: this package is run by the
real `evobox search` CLI in a subprocess, its candidates built and evaluated in real containers
of a runtime whose recipe lives in this package, against a scripted meta LLM. What the kit gives
it (labels, names, logs, result reading, failure mapping) is checked on the way."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import pytest

from engine.llm.scripted import ScriptedLLM
from engine.search.archive import load_records
from engine.search.candidate import Status
from tests.search.conftest import proposal, square

REPO = Path(__file__).resolve().parents[2]
PACKAGE = Path(__file__).resolve().parent
DOMAIN = "tests.third_domain.domain:ToyDomain"
CRASH = 'def f(x):\n    raise ValueError("boom {n}")\n'


def test_no_file_outside_the_package_names_it() -> None:
    """The engine, the image recipes, the benchmarks and the packaging know nothing of it."""
    roots = [REPO / "engine", REPO / "sandbox_images", REPO / "benchmarks", REPO / "pyproject.toml", REPO / "Makefile"]
    files = [p for root in roots for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file()]
    named = [p for p in files if "__pycache__" not in p.parts
             and any(word in p.read_bytes() for word in (b"third_domain", b"toy_box", b"runtime-toy"))]
    assert named == []


@pytest.mark.docker
def test_a_short_search_runs_in_real_containers(tmp_path: Path) -> None:
    run_dir = tmp_path / f"third-{uuid.uuid4().hex[:8]}"
    counter = itertools.count()

    def reply(body: dict) -> str:  # the first proposal is right, every later one crashes (distinct code)
        n = next(counter)
        return proposal(square() if n == 0 else CRASH.format(n=n), name=f"cand-{n}")

    config = tmp_path / "run.toml"
    with ScriptedLLM(default=reply) as llm:
        config.write_text(f"""
[search]
generations = 1
candidates_per_generation = 2
reflection_rounds = 0
repair_rounds = 1
[llm.meta]
base_url = "{llm.base_url}"
model = "scripted"
max_retries = 0
[sandbox]
timeout_s = 60
memory_bytes = "256m"
[domain]
mode = "sandbox"
""")
        env = {**os.environ, "EVOBOX_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
        env.pop("OPENAI_BASE_URL", None)
        done = subprocess.run([sys.executable, "-c", "from engine.cli import app; app()", "search", DOMAIN,
                               "--config", str(config), "--run-dir", str(run_dir), "--no-progress"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    records = {r.name: r for r in load_records(run_dir)}
    assert records["Zero"].status is Status.OK and records["Identity"].status is Status.OK
    assert records["cand-0"].status is Status.OK and records["cand-0"].fitness == 0.0
    crashed = next(r for name, r in records.items() if name.startswith("cand-") and name != "cand-0")
    assert crashed.status is Status.FAILED
    # the kit's one mapping: `what: why`, the last stderr line, then why /out held no result
    assert crashed.attempts[0].error is not None
    assert crashed.attempts[0].error.startswith("evaluation: exit 1: ValueError: boom "), crashed.attempts[0].error
    assert "values.json" in crashed.attempts[0].error
    # the kit's logs, named by the container spec, split by stream
    candidate = run_dir / "candidates" / records["cand-0"].code_id  # type: ignore[operator]
    assert (candidate / "evaluate.stdout.log").exists()
    assert (candidate / "evaluate.stderr.log").exists()
    assert any("ValueError: boom" in p.read_text() for p in run_dir.glob("candidates/*/evaluate.stderr.log"))
    client = docker.from_env()
    # the runtime came from this package's recipe; the run's containers and candidate images are gone
    assert any(t.startswith("evobox/runtime-toy:") for image in client.images.list() for t in image.tags)
    assert client.containers.list(all=True, filters={"label": f"evobox.run={run_dir.name}"}) == []
    assert client.images.list(filters={"label": f"evobox.run={run_dir.name}"}) == []
