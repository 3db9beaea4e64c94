"""The run ends the way the paper's does: `evobox search adas` evaluates the best discovered
agent and the best baseline on the held-out test split, durably, and the report leads with
those numbers and the paired-bootstrap verdict. Real containers, real gateway, a scripted LLM."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.domains.adas.final_test import FINAL_DIR
from engine.llm.scripted import ScriptedLLM
from engine.search.archive import load_records
from engine.search.candidate import Status

pytestmark = [pytest.mark.docker, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
QUESTIONS = 160  # the paper's MGSM split: 128 validation questions, then 32 test questions here
MARKER = "SCRIPTED-AGENT"

AGENT = f'''def forward(self, taskInfo):
    agent = LLMAgentBase(['thinking', 'answer'], 'Careful Agent')
    thinking, answer = agent([taskInfo], '{MARKER}: solve the problem step by step.')
    return answer
'''

CONFIG = """
[search]
generations = 1
reflection_rounds = 0
repair_rounds = 0

[domain]
baselines = ["cot"]
threads = 4
bootstrap_resamples = 2000

[domain.final_test]
top_k = 1
n_questions = 0
"""


def scripted(body: dict[str, Any]) -> str:
    """The discovered agent always answers right; the baseline misses every question whose
    number is 2 modulo 3 (a third of them), on validation and test alike."""
    system = body["messages"][0]["content"]
    if "keys:\n" not in system:
        return json.dumps({"thought": "one careful call", "name": "Careful Agent", "code": AGENT})
    fields = json.loads(system.split("keys:\n", 1)[1].split("\nDo not add", 1)[0])
    asked = " ".join(m["content"] for m in body["messages"] if m["role"] == "user")
    first, second = map(int, re.findall(r"What is (\d+) plus (\d+)\?", asked)[-1])
    right = MARKER in asked or first % 3 != 2
    answer = str(first + second if right else first + second + 1)
    return json.dumps({name: answer if name == "answer" else f"some {name}" for name in fields})


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="final-", dir="/tmp"))  # short: unix socket paths are capped
    data = path / "data" / "mgsm"
    data.mkdir(parents=True)
    (data / "mgsm_en.tsv").write_text("".join(f"What is {i} plus {i + 3}?\t{2 * i + 3}\n" for i in range(QUESTIONS)))
    (path / "run.toml").write_text(CONFIG)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def evobox(workdir: Path, llm: ScriptedLLM, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")},
           "EVOBOX_CACHE_DIR": str(workdir / "cache"), "EVOBOX_DATA_DIR": str(workdir / "data"),
           "OPENAI_BASE_URL": llm.base_url}
    return subprocess.run([sys.executable, "-c", "from engine.cli import app; app()", *args, "--no-progress"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)


def test_search_ends_with_the_test_split_in_the_report_and_resume_does_not_redo_it(workdir: Path) -> None:
    run_dir = workdir / "run"
    with ScriptedLLM(default=scripted) as llm:
        result = evobox(workdir, llm, "search", "adas", "--config", str(workdir / "run.toml"), "--model", "m",
                        "--run-dir", str(run_dir))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "stopped: completed" in result.stderr and "test split" in result.stderr
        requests_after_search = len(llm.requests)

        resumed = evobox(workdir, llm, "resume", str(run_dir))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "test split already evaluated" in resumed.stderr
        assert len(llm.requests) == requests_after_search  # a finished test evaluation is not redone

    tested = load_records(run_dir / FINAL_DIR)
    assert [(r.name, r.status) for r in tested] == [("Chain-of-Thought", Status.OK), ("Careful Agent", Status.OK)]
    assert {r.fitness_detail["split"] for r in tested} == {"test"}
    assert {r.fitness_detail["n"] for r in tested} == {QUESTIONS - 128}
    baseline, agent = tested
    assert agent.fitness == pytest.approx(100.0) and baseline.fitness < 90.0

    report = (run_dir / "report.html").read_text()
    lead = report.index("Test split (held out")
    assert lead < report.index("Fitness over generations")  # the report leads with the test numbers
    section = report[lead:report.index("Fitness over generations")]
    assert "<b>Careful Agent</b> (the best discovered agent on validation) <b>beats the best baseline beyond the " \
           "interval</b> (Chain-of-Thought)" in section
    assert section.count("95% Bootstrap Confidence Interval") == 2 + 2  # validation and test, both agents
    assert "paired bootstrap 95% interval" in section
