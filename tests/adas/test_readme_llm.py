"""The README's "Bringing your own LLM" lines, run as written: the real `evobox search adas`
command in a subprocess, real containers, the real gateway, against an OpenAI-compatible fake
server on loopback. Both the meta LLM's calls and the agents' calls (through the gateway) must
reach the server the user named, with the model the user named."""

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

from engine.llm.scripted import ScriptedLLM

pytestmark = [pytest.mark.docker, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
QUESTIONS = 140  # above the paper's 128 validation questions, so the test split is not empty

AGENT = '''def forward(self, taskInfo):
    agent = LLMAgentBase(['thinking', 'answer'], 'Scripted Agent')
    thinking, answer = agent([taskInfo], 'Solve the problem step by step.')
    return answer
'''


def is_agent_call(body: dict[str, Any]) -> bool:
    """Agents' calls come from the in-container framework, which asks for JSON keys."""
    return "keys:\n" in body["messages"][0]["content"]


def scripted(body: dict[str, Any]) -> str:
    """Agents get the right sum; the meta LLM always proposes the same small agent."""
    if not is_agent_call(body):
        return json.dumps({"thought": "ask once", "name": "Scripted Agent", "code": AGENT})
    system = body["messages"][0]["content"]
    fields = json.loads(system.split("keys:\n", 1)[1].split("\nDo not add", 1)[0])
    asked = " ".join(m["content"] for m in body["messages"] if m["role"] == "user")
    numbers = re.findall(r"What is (\d+) plus (\d+)\?", asked)
    answer = str(int(numbers[-1][0]) + int(numbers[-1][1])) if numbers else "0"
    return json.dumps({name: answer if name == "answer" else f"some {name}" for name in fields})


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="readme-", dir="/tmp"))  # short: unix socket paths are capped
    data = path / "data" / "mgsm"
    data.mkdir(parents=True)
    (data / "mgsm_en.tsv").write_text("".join(f"What is {i} plus {i + 3}?\t{2 * i + 3}\n" for i in range(QUESTIONS)))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_readme_line(workdir: Path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`evobox search adas ARGS` as a user types it (plus --generations 1 and a run dir)."""
    run_dir = workdir / "run"
    full_env = {**{k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")},
                "EVOBOX_CACHE_DIR": str(workdir / "cache"), "EVOBOX_DATA_DIR": str(workdir / "data"), **env}
    result = subprocess.run([sys.executable, "-c", "from engine.cli import app; app()", "search", "adas", *args,
                             "--generations", "1", "--run-dir", str(run_dir), "--no-progress"],
                            cwd=REPO, env=full_env, capture_output=True, text=True, timeout=1500)
    return result, run_dir


def assert_both_roles_reached(llm: ScriptedLLM, model: str, result: subprocess.CompletedProcess[str],
                              run_dir: Path) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    agent_calls = [r for r in llm.requests if is_agent_call(r)]
    meta_calls = [r for r in llm.requests if not is_agent_call(r)]
    assert len(meta_calls) >= 3  # a proposal and its two reflections
    assert len(agent_calls) >= 5 * 3  # 5 questions x 3 baselines at least, through the gateway
    assert {r["model"] for r in llm.requests} == {model}
    transcripts = list((run_dir / "candidates").glob("*/llm_transcript.jsonl"))
    assert transcripts and all(t.read_text() for t in transcripts)
    for role in ("meta", "agent"):  # the run start says which server and model each role uses
        line = next(line for line in result.stderr.splitlines() if "llm.role" in line and f"role={role}" in line)
        assert llm.base_url in line and model in line, line


def test_readme_vllm_example_with_a_key_in_the_shell(workdir: Path) -> None:
    """export OPENAI_BASE_URL=http://localhost:8000/v1; evobox search adas --model Qwen/Qwen2.5-Coder-7B-Instruct
    (an OPENAI_API_KEY left in the shell must not send the agents to OpenAI)."""
    model = "Qwen/Qwen2.5-Coder-7B-Instruct"
    with ScriptedLLM(default=scripted) as llm:
        result, run_dir = run_readme_line(workdir, {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-test-shell"},
                                          "--model", model)
    assert_both_roles_reached(llm, model, result, run_dir)
    assert "sk-test-shell" not in (run_dir / "config.json").read_text() + (run_dir / "events.jsonl").read_text()


def test_readme_ollama_example(workdir: Path) -> None:
    """export OPENAI_BASE_URL=http://localhost:11434/v1; evobox search adas --model qwen2.5-coder:7b"""
    model = "qwen2.5-coder:7b"
    with ScriptedLLM(default=scripted) as llm:
        result, run_dir = run_readme_line(workdir, {"OPENAI_BASE_URL": llm.base_url}, "--model", model)
    assert_both_roles_reached(llm, model, result, run_dir)
