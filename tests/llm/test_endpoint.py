"""Which endpoint a role uses: run config > environment > embedded model; and the config's rules."""

from __future__ import annotations

import pydantic
import pytest

from pathlib import Path

from engine.config import build_config, load_config
from engine.llm.config import EMBEDDED_MODEL_NAME, EmbeddedConfig, LLMConfig, Role, role_overrides
from engine.llm.endpoint import NO_KEY, EndpointError, Source, needs_embedded, resolve, route
from engine.llm.usage import price_for

LLM = LLMConfig()
MGSM = Path(__file__).resolve().parents[2] / "engine" / "domains" / "adas" / "configs" / "mgsm.toml"


def llm(meta: dict | None = None, agent: dict | None = None, **extra: object) -> LLMConfig:
    """An [llm] table as a user writes it: partial role tables."""
    return LLMConfig.model_validate({"meta": meta or {}, "agent": agent or {}, **extra})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_config_base_url_and_model_win_over_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    config = llm(meta={"base_url": "http://127.0.0.1:8000/v1", "model": "qwen"})
    endpoint = resolve(config, Role.META)
    assert (endpoint.base_url, endpoint.model, endpoint.api_key, endpoint.source) == (
        "http://127.0.0.1:8000/v1", "qwen", "sk-env", Source.CONFIG)
    assert not needs_embedded(config, Role.META)


def test_api_key_alone_means_openai_with_a_default_model(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    for role in Role:
        endpoint = resolve(LLM, role)
        assert (endpoint.base_url, endpoint.model, endpoint.source) == (
            "https://api.openai.com/v1", "gpt-4o-mini", Source.ENVIRONMENT)


def test_base_url_from_environment_without_key_sends_a_placeholder(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    endpoint = resolve(llm(meta={"model": "qwen2.5-coder"}), Role.META)
    assert endpoint.api_key == NO_KEY and not endpoint.has_key and endpoint.source is Source.ENVIRONMENT


def test_custom_server_without_model_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    with pytest.raises(EndpointError, match="names no model"):
        resolve(LLM, Role.AGENT)


def test_key_can_come_from_a_named_variable(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-mine")
    assert resolve(llm(meta={"api_key_env": "MY_KEY"}), Role.META).api_key == "sk-mine"


def test_nothing_configured_needs_the_embedded_model():
    assert all(needs_embedded(LLM, role) for role in Role)
    assert route(LLM, Role.AGENT).model == EMBEDDED_MODEL_NAME
    with pytest.raises(EndpointError, match="OPENAI_API_KEY"):
        resolve(LLM, Role.META)


def test_key_never_appears_in_an_endpoint_repr(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    assert "sk-very-secret" not in repr(resolve(LLM, Role.META))
    assert "sk-very-secret" not in repr(route(LLM, Role.META).describe())


def test_role_defaults_and_unknown_keys_are_rejected():
    config = LLMConfig()
    assert (config.meta.temperature, config.agent.temperature) == (0.8, 0.5)
    assert config.embedded.threads == 1
    with pytest.raises(pydantic.ValidationError):
        LLMConfig.model_validate({"meta": {"temperature": 0.8, "max_tokens": 10, "temprature": 1}})
    with pytest.raises(pydantic.ValidationError):
        LLMConfig.model_validate({"budget_dollars": 3})


def test_prices_match_dated_variants_by_longest_prefix():
    prices = LLMConfig().prices
    assert price_for("gpt-4o-mini-2024-07-18", prices) == prices["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06", prices) == prices["gpt-4o"]
    assert price_for("qwen2.5-coder-1.5b-instruct", prices).input_per_m == 0
    assert price_for("mystery-model", prices) is None


# ---- issue 11 part 2: one server and model named once cover both roles ----------------------

def test_base_url_from_environment_and_one_model_cover_both_roles(monkeypatch):
    """The README's vLLM/Ollama example: OPENAI_BASE_URL + --model (written to both role tables)."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")  # a key in the shell must not pull a role to OpenAI
    config = build_config({}, role_overrides("Qwen/Qwen2.5-Coder-7B-Instruct", None)).llm
    for role in Role:
        endpoint = resolve(config, role)
        assert (endpoint.base_url, endpoint.model) == ("http://localhost:8000/v1", "Qwen/Qwen2.5-Coder-7B-Instruct")


def test_base_url_flag_covers_both_roles_even_with_a_key_set(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    config = build_config({}, role_overrides("m", "http://127.0.0.1:9/v1")).llm
    assert {resolve(config, role).base_url for role in Role} == {"http://127.0.0.1:9/v1"}


def test_a_server_named_for_one_role_is_used_by_the_other(monkeypatch):
    """Never a different server than the one the user named: not OpenAI because a key is set."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    config = llm(meta={"base_url": "http://127.0.0.1:8000/v1", "model": "qwen"})
    agent = resolve(config, Role.AGENT)
    assert (agent.base_url, agent.model, agent.source) == ("http://127.0.0.1:8000/v1", "qwen", Source.OTHER_ROLE)
    assert not needs_embedded(llm(agent={"base_url": "http://127.0.0.1:8000/v1", "model": "q"}), Role.META)


def test_the_config_says_otherwise_for_one_role(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    config = llm(meta={"model": "big"}, agent={"base_url": "http://127.0.0.1:11434/v1", "model": "small"})
    meta, agent = resolve(config, Role.META), resolve(config, Role.AGENT)
    assert (meta.base_url, meta.model) == ("http://127.0.0.1:8000/v1", "big")
    assert (agent.base_url, agent.model) == ("http://127.0.0.1:11434/v1", "small")


def test_a_named_server_without_a_model_is_an_error_for_that_role(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    config = llm(meta={"base_url": "http://127.0.0.1:8000/v1"})
    with pytest.raises(EndpointError, match="the meta role would use http://127.0.0.1:8000/v1 but names no model"):
        route(config, Role.META)


def test_openai_readme_example_resolves_both_roles_to_openai_with_the_configs_models(monkeypatch):
    """`export OPENAI_API_KEY=...; evobox search adas --config .../mgsm.toml`, resolved only."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    config = load_config(MGSM).llm
    meta, agent = route(config, Role.META), route(config, Role.AGENT)
    assert (meta.base_url, meta.model, meta.has_key) == ("https://api.openai.com/v1", "gpt-4o-2024-05-13", True)
    assert (agent.base_url, agent.model) == ("https://api.openai.com/v1", "gpt-3.5-turbo-0125")


def test_partial_role_tables_are_merged_over_the_role_defaults():
    config = build_config({"llm": {"agent": {"model": "qwen"}, "meta": {"temperature": 0.2}}}).llm
    assert (config.agent.model, config.agent.temperature, config.agent.max_tokens) == ("qwen", 0.5, 1024)
    assert (config.meta.temperature, config.meta.max_tokens) == (0.2, 4096)


def test_a_custom_embedded_model_file_gets_its_own_name(tmp_path):
    """Baseline scores are cached by model name: another GGUF must not reuse the built-in's."""
    first, second = tmp_path / "a.gguf", tmp_path / "b" / "a.gguf"
    second.parent.mkdir()
    first.write_bytes(b"one")
    second.write_bytes(b"other")
    names = {EmbeddedConfig().served_name(), EmbeddedConfig(model_path=first).served_name(),
             EmbeddedConfig(model_path=second).served_name()}
    assert len(names) == 3 and EMBEDDED_MODEL_NAME in names
    assert route(llm(embedded={"model_path": str(first)}), Role.AGENT).model == EmbeddedConfig(model_path=first).served_name()
