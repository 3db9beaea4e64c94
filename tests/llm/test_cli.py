"""`evobox llm check` names the endpoint, never prints the key, and reports whether it answers."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from engine.cli.llm import llm_app
from engine.llm.scripted import Reply
from tests.llm.conftest import SECRET


def write_config(tmp_path, base_url: str):
    path = tmp_path / "run.toml"
    path.write_text("".join(f'[llm.{role}]\nbase_url = "{base_url}"\nmodel = "tiny"\ntemperature = 0.5\n'
                            f"max_tokens = 8\nretry_initial_s = 0.01\n" for role in ("meta", "agent")))
    return path


def test_check_reports_endpoint_and_answer_without_printing_the_key(upstream, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    upstream._default = "ok"
    result = CliRunner().invoke(llm_app, ["check", "--config", str(write_config(tmp_path, upstream.base_url))])
    assert result.exit_code == 0, result.output
    assert upstream.base_url in result.output and "set (OPENAI_API_KEY)" in result.output
    assert result.output.count("yes") == 2
    assert SECRET not in result.output
    assert upstream.headers[0]["authorization"] == f"Bearer {SECRET}"


def test_check_fails_when_the_endpoint_does_not_answer(upstream, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    upstream._default = Reply(status=404, content="no such model: tiny")
    result = CliRunner().invoke(llm_app, ["check", "--config", str(write_config(tmp_path, upstream.base_url))])
    assert result.exit_code == 1
    assert "no such model" in result.output and "not set (OPENAI_API_KEY)" in result.output


MGSM = Path(__file__).resolve().parents[2] / "engine" / "domains" / "adas" / "configs" / "mgsm.toml"


def test_check_no_call_resolves_the_readme_openai_example_without_traffic(monkeypatch):
    """`export OPENAI_API_KEY=...` + the paper's config: both roles on api.openai.com with the
    config's models, said without sending anything (no server is contacted by --no-call)."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    result = CliRunner().invoke(llm_app, ["check", "--config", str(MGSM), "--no-call"])
    assert result.exit_code == 0, result.output
    meta, agent = result.output.split("agent", 1)
    assert "https://api.openai.com/v1" in meta and "gpt-4o-2024-05-13" in meta
    assert "https://api.openai.com/v1" in agent and "gpt-3.5-turbo-0125" in agent
    assert SECRET not in result.output


def test_check_with_base_url_from_environment_and_model_flag_covers_both_roles(upstream, monkeypatch):
    """`export OPENAI_BASE_URL=...` + `--model M` (the README's vLLM/Ollama line), a key in the shell too."""
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    upstream._default = "ok"
    result = CliRunner().invoke(llm_app, ["check", "--model", "qwen2.5-coder:7b"])
    assert result.exit_code == 0, result.output
    assert result.output.count(upstream.base_url) == 2 and result.output.count("model:    qwen2.5-coder:7b") == 2
    assert [r["model"] for r in upstream.requests] == ["qwen2.5-coder:7b"] * 2
