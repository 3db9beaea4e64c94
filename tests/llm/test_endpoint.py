"""Which endpoint a role uses: run config > environment > embedded model; and the config's rules."""

from __future__ import annotations

import pydantic
import pytest

from engine.llm.config import LLMConfig, RoleConfig
from engine.llm.endpoint import NO_KEY, EndpointError, Source, needs_embedded, resolve
from engine.llm.usage import price_for

ROLE = RoleConfig(temperature=0.5, max_tokens=10)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_config_base_url_and_model_win_over_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    role = ROLE.model_copy(update={"base_url": "http://127.0.0.1:8000/v1", "model": "qwen"})
    endpoint = resolve(role, None)
    assert (endpoint.base_url, endpoint.model, endpoint.api_key, endpoint.source) == (
        "http://127.0.0.1:8000/v1", "qwen", "sk-env", Source.CONFIG)
    assert not needs_embedded(role)


def test_api_key_alone_means_openai_with_a_default_model(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    endpoint = resolve(ROLE, None)
    assert (endpoint.base_url, endpoint.model, endpoint.source) == (
        "https://api.openai.com/v1", "gpt-4o-mini", Source.ENVIRONMENT)


def test_base_url_from_environment_without_key_sends_a_placeholder(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    endpoint = resolve(ROLE.model_copy(update={"model": "qwen2.5-coder"}), None)
    assert endpoint.api_key == NO_KEY and not endpoint.has_key and endpoint.source is Source.ENVIRONMENT


def test_custom_server_without_model_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    with pytest.raises(EndpointError, match="no model"):
        resolve(ROLE, None)


def test_key_can_come_from_a_named_variable(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-mine")
    role = ROLE.model_copy(update={"api_key_env": "MY_KEY"})
    assert resolve(role, None).api_key == "sk-mine"


def test_nothing_configured_needs_the_embedded_model():
    assert needs_embedded(ROLE)
    with pytest.raises(EndpointError, match="OPENAI_API_KEY"):
        resolve(ROLE, None)


def test_key_never_appears_in_an_endpoint_repr(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    assert "sk-very-secret" not in repr(resolve(ROLE, None))


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
