"""LLMClient against a scripted OpenAI-compatible server over real HTTP."""

from __future__ import annotations

import threading

import pytest

from engine.llm.client import Budget, JsonMode, LLMCallError, LLMClient, LLMReplyError, Usage
from engine.llm.config import Price
from engine.llm.endpoint import Endpoint
from engine.llm.scripted import Reply, ScriptedLLM
from tests.llm.conftest import endpoint_of, fast_role

HELLO = [{"role": "user", "content": "hello"}]
SCHEMA = {"title": "proposal", "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def client_for(llm: ScriptedLLM, **role: object) -> LLMClient:
    return LLMClient(endpoint_of(llm), fast_role(**role))


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_transient_http_errors_are_retried(upstream, status):
    upstream.push(Reply(status=status), Reply(status=status), "ok")
    reply = client_for(upstream).chat(HELLO)
    assert reply.text == "ok"
    assert len(upstream.requests) == 3


def test_timeout_is_retried(upstream):
    # the scripted server blocks while it delays, so the retry is answered once the delay ends
    upstream.push(Reply(content="late", delay_s=1.0), "on time")
    reply = client_for(upstream, timeout_s=0.8).chat(HELLO)
    assert reply.text == "on time"


def test_connection_error_is_retried_then_reported():
    with ScriptedLLM() as llm:
        endpoint = endpoint_of(llm)
    client = LLMClient(endpoint, fast_role(max_retries=2))  # server gone: connection refused
    with pytest.raises(LLMCallError) as err:
        client.chat(HELLO)
    assert err.value.attempts == 3 and err.value.status is None


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_client_errors_are_not_retried(upstream, status):
    upstream.push(Reply(status=status, content="bad request"))
    with pytest.raises(LLMCallError) as err:
        client_for(upstream).chat(HELLO)
    assert err.value.status == status and "bad request" in str(err.value)
    assert len(upstream.requests) == 1


def test_retries_stop_after_max_retries(upstream):
    upstream.push(*[Reply(status=500)] * 10)
    with pytest.raises(LLMCallError) as err:
        client_for(upstream, max_retries=2).chat(HELLO)
    assert len(upstream.requests) == 3 and err.value.attempts == 3


def test_role_settings_and_overrides_reach_the_server(upstream):
    upstream.push("a")
    client_for(upstream, temperature=0.3, max_tokens=77).chat(HELLO, stop=["\n"], temperature=0.0)
    body = upstream.requests[0]
    assert (body["model"], body["max_tokens"], body["temperature"], body["stop"]) == ("gpt-4o-mini", 77, 0.0, ["\n"])


def test_json_schema_is_asked_first(upstream):
    upstream.push('{"name": "cot"}')
    reply = client_for(upstream).chat_json(HELLO, schema=SCHEMA)
    assert reply.data == {"name": "cot"} and reply.json_mode is JsonMode.SCHEMA
    assert upstream.requests[0]["response_format"]["json_schema"]["schema"] == SCHEMA


def test_rejected_json_schema_falls_back_to_json_object_and_is_remembered(upstream):
    upstream.push(Reply(status=400, content="response_format json_schema unsupported"), '{"name": "a"}', '{"name": "b"}')
    client = client_for(upstream)
    assert client.chat_json(HELLO, schema=SCHEMA).data == {"name": "a"}
    assert client.chat_json(HELLO, schema=SCHEMA).data == {"name": "b"}
    formats = [r.get("response_format", {}).get("type") for r in upstream.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    assert client.json_mode is JsonMode.OBJECT


def test_server_without_json_modes_gets_plain_requests_read_leniently(upstream):
    upstream.push(Reply(status=400), Reply(status=422), 'Sure!\n```json\n{"name": "x", "code": """pass"""}\n```')
    reply = client_for(upstream).chat_json(HELLO, schema=SCHEMA)
    assert reply.data == {"name": "x", "code": "pass"} and reply.json_mode is JsonMode.PLAIN
    assert "response_format" not in upstream.requests[-1]


def test_unreadable_reply_raises_reply_error_with_reason_and_cost(upstream):
    upstream.push("I'd rather write prose.")
    with pytest.raises(LLMReplyError) as err:
        client_for(upstream).chat_json(HELLO, schema=SCHEMA)
    assert "no JSON object" in err.value.reason
    assert err.value.raw_text == "I'd rather write prose."
    assert err.value.usage.calls == 1


def test_reply_missing_a_required_field_is_an_error(upstream):
    upstream.push('{"other": 1}')
    with pytest.raises(LLMReplyError, match="'name'"):
        client_for(upstream).chat_json(HELLO, schema=SCHEMA)


def test_usage_and_cost_come_from_the_price_table(upstream):
    upstream.push(Reply("a", prompt_tokens=1000, completion_tokens=500), Reply("b", prompt_tokens=2000, completion_tokens=0))
    dated_model = Endpoint(upstream.base_url, "k", "gpt-4o-2024-08-06")  # priced by its prefix gpt-4o
    client = LLMClient(dated_model, fast_role(), {"gpt-4o": Price(input_per_m=2.0, output_per_m=8.0)})
    first = client.chat(HELLO)
    client.chat(HELLO)
    assert first.usage == Usage(1, 1000, 500, pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6))
    assert client.total.calls == 2 and client.total.prompt_tokens == 3000
    assert client.total.cost_usd == pytest.approx((3000 * 2.0 + 500 * 8.0) / 1e6)


def test_unpriced_model_costs_nothing(upstream):
    upstream.push("a")
    client = LLMClient(endpoint_of(upstream), fast_role(), prices={})
    assert client.chat(HELLO).usage.cost_usd == 0.0


def test_running_total_is_exact_under_threads(upstream):
    upstream._default = "x"
    client = client_for(upstream)
    threads = [threading.Thread(target=lambda: [client.chat(HELLO) for _ in range(5)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.total.calls == 40 and client.total.completion_tokens == 200


def test_budget_names_the_limit_that_was_reached():
    assert Budget(usd=1.0, tokens=1000).exceeded(Usage(3, 100, 100, 0.5)) is None
    assert "$1.2" in Budget(usd=1.0).exceeded(Usage(3, 10, 10, 1.2))
    assert "1,000" in Budget(tokens=1000).exceeded(Usage(3, 600, 400, 0.0))
    assert Budget().exceeded(Usage(10**6, 10**9, 10**9, 10**6)) is None
