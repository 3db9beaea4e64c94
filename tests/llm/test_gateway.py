"""The gateway over a real unix socket, forwarding to a scripted upstream over real HTTP."""

from __future__ import annotations

import json
import os
import stat
import threading

import openai
import pytest
import structlog.testing

from engine.llm import box_client
from engine.llm.config import GatewayConfig, ModelPolicy
from engine.llm.gateway import CONTAINER_DIR, Gateway, GatewayError
from engine.llm.scripted import Reply, ScriptedLLM
from tests.llm.conftest import SECRET, endpoint_of, open_gateway, socket_client

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


def sdk_client(monkeypatch, gateway: Gateway, token: str) -> openai.OpenAI:
    """The in-sandbox helper, pointed at the host-side socket path."""
    monkeypatch.setenv("EVOBOX_LLM_TOKEN", token)
    monkeypatch.setenv("EVOBOX_LLM_SOCKET", str(gateway.socket_path))
    return box_client.client(max_retries=0)


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sdk_call_through_socket_returns_upstream_reply_and_usage(upstream, tmp_path, monkeypatch):
    upstream.push(Reply("forty-two", prompt_tokens=100, completion_tokens=20))
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "c1" / "llm.jsonl", max_calls=5, max_tokens=10_000)
        reply = sdk_client(monkeypatch, gw, grant.token).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "6*7?"}])
        usage = gw.usage(grant.token)
    assert reply.choices[0].message.content == "forty-two"
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (1, 100, 20)
    assert usage.cost_usd == pytest.approx((100 * 0.15 + 20 * 0.60) / 1e6)
    [entry] = lines(tmp_path / "c1" / "llm.jsonl")
    assert entry["candidate"] == "c1" and entry["status"] == 200
    assert entry["request"]["messages"][0]["content"] == "6*7?"
    assert entry["reply"]["choices"][0]["message"]["content"] == "forty-two"


def test_grant_gives_container_env_and_read_only_socket_mount(upstream, tmp_path):
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=1, max_tokens=1)
        assert stat.S_IMODE(os.stat(gw.socket_path).st_mode) == 0o666
    assert grant.env == {"EVOBOX_LLM_TOKEN": grant.token, "EVOBOX_LLM_MODEL": "gpt-4o-mini",
                         "EVOBOX_LLM_SOCKET": f"{CONTAINER_DIR}/gateway.sock"}
    assert (grant.mount.source, grant.mount.target, grant.mount.read_only) == (tmp_path / "llm", "/run/llm", True)
    assert SECRET not in repr(grant)


def test_upstream_key_is_forwarded_but_never_reaches_the_candidate(upstream, tmp_path, monkeypatch):
    def echo_auth(body):  # a hostile or careless upstream echoing the credentials it received
        return f"your key is {upstream.headers[-1]['authorization']}"

    def error_echo(body):
        return Reply(status=400, content=f"Incorrect API key provided: {upstream.headers[-1]['authorization']}")

    upstream.push(echo_auth, error_echo, Reply(status=401, content=f"bad key {SECRET}"))
    transcript = tmp_path / "t.jsonl"
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=transcript, max_calls=5, max_tokens=10_000)
        with socket_client(gw, grant.token) as http:
            answers = [http.post("/v1/chat/completions", json=HELLO) for _ in range(3)]
            answers.append(http.get("/v1/models"))
    assert upstream.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert [a.status_code for a in answers] == [502, 400, 502, 200]
    for answer in answers:
        assert SECRET not in answer.text and SECRET not in str(answer.headers)
    assert "withheld" in answers[0].json()["error"]["message"]  # a leaking reply is withheld, never patched
    assert SECRET not in transcript.read_text() and len(lines(transcript)) == 3
    assert SECRET not in json.dumps(grant.env)


def test_call_budget_spent_gives_429_that_the_sdk_does_not_retry(upstream, tmp_path, monkeypatch):
    upstream._default = "ok"
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=2, max_tokens=10_000)
        monkeypatch.setenv("EVOBOX_LLM_TOKEN", grant.token)
        monkeypatch.setenv("EVOBOX_LLM_SOCKET", str(gw.socket_path))
        sdk = box_client.client(max_retries=3)
        for _ in range(2):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO["messages"])
        with pytest.raises(openai.RateLimitError) as err:
            sdk.chat.completions.create(model="gpt-4o-mini", messages=HELLO["messages"])
        assert gw.usage(grant.token).calls == 2
    assert "call budget spent: 2 of 2" in err.value.message
    assert err.value.response.headers["x-should-retry"] == "false"
    assert len(upstream.requests) == 2
    assert [e["status"] for e in lines(tmp_path / "t.jsonl")] == [200, 200, 429]


def test_chat_without_the_sdk_answers_then_gives_up_at_once_on_a_spent_budget(upstream, tmp_path, monkeypatch):
    """evobox_llm.chat (the ADAS framework's way) keeps the SDK's rule: a spent budget is final."""
    upstream._default = "ok"
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=1, max_tokens=10_000)
        monkeypatch.setenv("EVOBOX_LLM_TOKEN", grant.token)
        monkeypatch.setenv("EVOBOX_LLM_SOCKET", str(gw.socket_path))
        reply = box_client.chat({"model": "gpt-4o-mini", **HELLO})
        with pytest.raises(box_client.ChatError) as err:
            box_client.chat({"model": "gpt-4o-mini", **HELLO})
    assert reply["choices"][0]["message"]["content"] == "ok"
    assert err.value.status == 429 and err.value.type == "budget_exhausted"
    assert [e["status"] for e in lines(tmp_path / "t.jsonl")] == [200, 429]


def test_chat_without_the_sdk_retries_an_upstream_failure(upstream, tmp_path, monkeypatch):
    upstream.push(Reply(status=500), "ok")
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        monkeypatch.setenv("EVOBOX_LLM_TOKEN", grant.token)
        monkeypatch.setenv("EVOBOX_LLM_SOCKET", str(gw.socket_path))
        reply = box_client.chat({"model": "gpt-4o-mini", **HELLO})
    assert reply["choices"][0]["message"]["content"] == "ok"
    assert len(upstream.requests) == 2


def test_token_budget_reserves_prompt_bound_and_clamps_completions_then_gives_429(upstream, tmp_path):
    # "hello" is bounded at 64 + 8 + 5 = 77 prompt tokens; the upstream reports 30 each time
    upstream.push(Reply("a", prompt_tokens=30, completion_tokens=40), Reply("b", prompt_tokens=30, completion_tokens=30))
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=10, max_tokens=200)
        with socket_client(gw, grant.token) as http:
            statuses = [http.post("/v1/chat/completions", json={**HELLO, "max_tokens": 500}) for _ in range(3)]
    assert [upstream.requests[0]["max_tokens"], upstream.requests[1]["max_tokens"]] == [200 - 77, 200 - 70 - 77]
    assert [s.status_code for s in statuses] == [200, 200, 429]
    assert "this prompt may take up to 77 tokens" in statuses[2].json()["error"]["message"]


@pytest.mark.parametrize(("limits", "expected"), [
    ({}, {"max_tokens": 64}),                                        # none given: default_max_tokens
    ({"max_completion_tokens": 5000}, {"max_completion_tokens": 100}),
    ({"max_tokens": 50, "max_completion_tokens": 5000}, {"max_tokens": 50, "max_completion_tokens": 50}),
])
def test_every_completion_limit_is_clamped_to_the_budget(upstream, tmp_path, limits, expected):
    upstream.push("ok")
    with open_gateway(upstream, tmp_path, default_max_tokens=64) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=10, max_tokens=177)  # 77: the prompt
        with socket_client(gw, grant.token) as http:
            assert http.post("/v1/chat/completions", json={**HELLO, **limits}).status_code == 200
    sent = upstream.requests[0]
    assert {k: sent[k] for k in ("max_tokens", "max_completion_tokens") if k in sent} == expected


def test_budgets_are_per_grant(upstream, tmp_path):
    upstream._default = "ok"
    with open_gateway(upstream, tmp_path) as gw:
        first = gw.grant("a", transcript=tmp_path / "a.jsonl", max_calls=1, max_tokens=1000)
        second = gw.grant("b", transcript=tmp_path / "b.jsonl", max_calls=1, max_tokens=1000)
        with socket_client(gw, first.token) as a, socket_client(gw, second.token) as b:
            codes = [c.post("/v1/chat/completions", json=HELLO).status_code for c in (a, a, b)]
    assert codes == [200, 429, 200]


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"{not json", 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"{}", 400, "'messages' must be a non-empty list"),
    (b'{"messages": []}', 400, "'messages' must be a non-empty list"),
    (b'{"messages": ["hi"]}', 400, "messages[0] must be an object"),
    (b'{"messages": [{"role": "user"}], "stream": true}', 400, "streaming is not supported"),
    (b'{"messages": [{"role": "user"}], "max_tokens": -5}', 400, "'max_tokens' must be a positive integer"),
    (b'{"messages": [{"role": "user"}], "model": 7}', 400, "'model' must be a string"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    (b'{"messages": [{"role": "user", "content": "' + b"x" * 5_000_000 + b'"}]}', 413, "exceeds the gateway limit"),
])
def test_malformed_request_gets_4xx_with_reason_and_gateway_keeps_serving(upstream, tmp_path, body, status, reason):
    upstream.push("still here")
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=1000)
        with socket_client(gw, grant.token) as http:
            bad = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
            good = http.post("/v1/chat/completions", json=HELLO)
    assert bad.status_code == status and reason in bad.json()["error"]["message"]
    assert good.status_code == 200 and good.json()["choices"][0]["message"]["content"] == "still here"
    assert gw.usage(grant.token).calls == 1


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic abc", f"Bearer {SECRET}"])
def test_missing_or_unknown_token_is_401(upstream, tmp_path, auth):
    with open_gateway(upstream, tmp_path) as gw:
        gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=1000)
        with socket_client(gw) as http:
            headers = {"authorization": auth} if auth else {}
            answers = [http.post("/v1/chat/completions", json=HELLO, headers=headers),
                       http.get("/v1/models", headers=headers)]
    assert [a.status_code for a in answers] == [401, 401]
    assert upstream.requests == []


def test_revoked_grant_is_refused(upstream, tmp_path):
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=1000)
        gw.revoke(grant.token)
        with socket_client(gw, grant.token) as http:
            assert http.post("/v1/chat/completions", json=HELLO).status_code == 403


def test_model_outside_allow_list_is_rejected_by_default(upstream, tmp_path):
    upstream._default = "ok"
    with open_gateway(upstream, tmp_path, allowed_models=["gpt-4.1-nano"]) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=1000)
        with socket_client(gw, grant.token) as http:
            pricey = http.post("/v1/chat/completions", json={**HELLO, "model": "gpt-4o"})
            listed = http.post("/v1/chat/completions", json={**HELLO, "model": "gpt-4.1-nano"})
            unnamed = http.post("/v1/chat/completions", json=HELLO)
            models = http.get("/v1/models").json()
    assert pricey.status_code == 403 and "'gpt-4o' is not allowed" in pricey.json()["error"]["message"]
    assert listed.status_code == 200 and unnamed.status_code == 200
    assert [r["model"] for r in upstream.requests] == ["gpt-4.1-nano", "gpt-4o-mini"]
    assert [m["id"] for m in models["data"]] == ["gpt-4o-mini", "gpt-4.1-nano"]


def test_model_outside_allow_list_is_mapped_under_map_policy(upstream, tmp_path):
    upstream._default = "ok"
    with open_gateway(upstream, tmp_path, model_policy=ModelPolicy.MAP) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=1000)
        with socket_client(gw, grant.token) as http:
            answer = http.post("/v1/chat/completions", json={**HELLO, "model": "gpt-3.5-turbo-0125"})
    assert answer.status_code == 200 and upstream.requests[0]["model"] == "gpt-4o-mini"


def _calls_at_once(gw: Gateway, tmp_path, count: int) -> list[int]:
    grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=100, max_tokens=100_000)
    codes: list[int] = []

    def call() -> None:
        with socket_client(gw, grant.token) as http:
            codes.append(http.post("/v1/chat/completions", json=HELLO).status_code)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_limit_caps_upstream_calls_in_flight(upstream, tmp_path, limit):
    # the upstream answers calls in parallel: each lasts long enough for the threads to overlap
    upstream._default = Reply("slow", delay_s=0.2)
    with open_gateway(upstream, tmp_path, max_concurrency=limit) as gw:
        codes = _calls_at_once(gw, tmp_path, 8)
        assert codes == [200] * 8
        assert gw.peak_concurrency == limit


def test_default_concurrency_follows_the_runs_demand(upstream, tmp_path):
    """Without a configured limit, as many calls as the run asks for (threads x evaluation slots)
    are in flight at once: none waits in the gateway behind a fixed default."""
    upstream._default = Reply("slow", delay_s=1.0)
    with Gateway(endpoint_of(upstream), tmp_path / "llm", demand=12) as gw:
        codes = _calls_at_once(gw, tmp_path, 12)
    assert codes == [200] * 12
    assert gw.max_concurrency == 12 and gw.peak_concurrency == 12


def test_configured_concurrency_below_the_demand_is_kept_and_logged(upstream, tmp_path):
    upstream._default = Reply("slow", delay_s=1.0)
    with structlog.testing.capture_logs() as logs:
        with Gateway(endpoint_of(upstream), tmp_path / "llm", config=GatewayConfig(max_concurrency=2),
                     demand=6) as gw:
            codes = _calls_at_once(gw, tmp_path, 6)
    assert codes == [200] * 6 and gw.peak_concurrency == 2
    warnings = [e for e in logs if e["event"] == "llm.gateway.concurrency_below_demand"]
    assert warnings and warnings[0]["max_concurrency"] == 2 and warnings[0]["demand"] == 6


def test_cache_replays_an_identical_request_without_calling_upstream(upstream, tmp_path):
    upstream.push(Reply("first answer", prompt_tokens=10, completion_tokens=5), "second answer")
    cache = tmp_path / "cache"
    with open_gateway(upstream, tmp_path, cache_dir=cache) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=1000)
        with socket_client(gw, grant.token) as http:
            first = http.post("/v1/chat/completions", json=HELLO).json()
            again = http.post("/v1/chat/completions", json=HELLO).json()
            other = http.post("/v1/chat/completions", json={**HELLO, "temperature": 0.1}).json()
        usage = gw.usage(grant.token)
    assert first == again and first["choices"][0]["message"]["content"] == "first answer"
    assert other["choices"][0]["message"]["content"] == "second answer"
    assert len(upstream.requests) == 2
    assert usage.calls == 3 and usage.cost_usd == pytest.approx(2 * (10 * 0.15 + 5 * 0.60) / 1e6)
    assert [e["cached"] for e in lines(tmp_path / "t.jsonl")] == [False, True, False]
    with ScriptedLLM(model="gpt-4o-mini") as fresh, open_gateway(fresh, tmp_path / "rerun", cache_dir=cache) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t2.jsonl", max_calls=5, max_tokens=1000)
        with socket_client(gw, grant.token) as http:
            assert http.post("/v1/chat/completions", json=HELLO).json() == first  # a rerun replays
        assert fresh.requests == []


def test_upstream_errors_keep_their_status_but_not_their_text(upstream, tmp_path):
    upstream.push(Reply(status=503, content="overloaded"))
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=1000)
        with socket_client(gw, grant.token) as http:
            answer = http.post("/v1/chat/completions", json=HELLO)
    message = answer.json()["error"]["message"]
    assert answer.status_code == 503 and "unavailable (HTTP 503)" in message and "overloaded" not in message


def test_unreachable_upstream_gives_502(tmp_path):
    with ScriptedLLM() as gone:
        pass
    with open_gateway(gone, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=1000)
        with socket_client(gw, grant.token) as http:
            answer = http.post("/v1/chat/completions", json=HELLO)
    assert answer.status_code == 502 and "unreachable" in answer.json()["error"]["message"]


def test_closed_gateway_removes_its_socket_and_refuses_reuse(upstream, tmp_path):
    gw = Gateway(endpoint_of(upstream), tmp_path / "s")
    with gw:
        assert gw.socket_path.exists()
    assert not gw.socket_path.exists()
    with pytest.raises(GatewayError, match="usable once"):
        gw.__enter__()
    with pytest.raises(GatewayError, match="closed"):
        gw.grant("c", transcript=tmp_path / "t.jsonl", max_calls=1, max_tokens=1)
