"""What the gateway lets through, both ways: the request allow-list, the prompt bound and `n` in the
reservation, the key in every encoding, upstream errors, transcripts, revocation. Real gateway on
its real unix socket, a scripted upstream over real loopback HTTP."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from urllib.parse import quote

import openai
import pytest

from engine.llm import box_client
from engine.llm.config import GatewayConfig
from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.llm.scripted import Reply, ScriptedLLM
from tests.llm.conftest import open_gateway, socket_client

HELLO = {"messages": [{"role": "user", "content": "hello"}]}
KEY = "sk-proj/9f3a+7c21_" + "b8e4d0a6" * 4  # '/' and '+' so escaped-slash and base64 variants differ


def _b64(prefix: int, alphabet: str = "std") -> Callable[[str], str]:
    encode = base64.b64encode if alphabet == "std" else base64.urlsafe_b64encode
    return lambda key: encode(b"x" * prefix + key.encode() + b" trailing bytes").decode()


# Each encoding: what an upstream puts in its reply text; "wire:" ones are raw JSON on the wire.
ENCODINGS = {
    "raw": lambda key: f"your key is {key}",
    "upper": lambda key: key.upper(),
    "json-in-text": lambda key: json.dumps({"k": key}).replace("/", "\\/").replace("s", "\\u0073"),
    "all-unicode-escapes": lambda key: "".join(f"\\u{ord(c):04x}" for c in key),
    "percent": lambda key: quote(key, safe=""),
    "percent-every-char": lambda key: "".join(f"%{b:02X}" for b in key.encode()),
    "base64-0": _b64(0), "base64-1": _b64(1), "base64-2": _b64(2),
    "urlsafe-base64-1": _b64(1, "urlsafe"),
    "base64-wrapped": lambda key: "\n".join(base64.b64encode(key.encode() * 3).decode()[i:i + 19]
                                             for i in range(0, 200, 19)),
    "hex": lambda key: key.encode().hex(),
    "HEX-spaced": lambda key: " ".join(f"{b:02X}" for b in key.encode()),
    "html-entities": lambda key: "".join(f"&#{ord(c)};" for c in key),
}


def wire_escaped_reply(key: str) -> Reply:
    """The key in a 200 reply whose JSON escapes every character on the wire."""
    content = "".join(f"\\u{ord(c):04x}" for c in key)
    raw = ('{"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", "choices": [{"index": 0, '
           '"message": {"role": "assistant", "content": "' + content + '"}, "finish_reason": "stop"}], '
           '"usage": {"prompt_tokens": 1, "completion_tokens": 1}}')
    return Reply(raw=raw.encode())


def echoed_key(upstream: ScriptedLLM) -> str:
    return upstream.headers[-1]["authorization"].removeprefix("Bearer ")


def assert_no_key(text: str, key: str) -> None:
    decoded = json.dumps(json.loads(text), ensure_ascii=False)
    for form in (key, key.lower(), key.upper(), *(encode(key) for encode in ENCODINGS.values())):
        assert form not in text and form not in decoded, f"the key leaked as {form[:40]!r}"


@pytest.mark.parametrize("path", ["200", "error"])
@pytest.mark.parametrize("encoding", [*ENCODINGS, "wire-escaped"])
def test_key_never_reaches_the_candidate_in_any_encoding(tmp_path, encoding, path):
    def echo(body):
        if encoding == "wire-escaped":
            reply = wire_escaped_reply(echoed_key(upstream))
            return reply if path == "200" else Reply(status=400, raw=reply.raw)
        text = ENCODINGS[encoding](echoed_key(upstream))
        return Reply(text) if path == "200" else Reply(status=400, content=f"Incorrect API key provided: {text}")

    with ScriptedLLM(default=echo, model="gpt-4o-mini") as upstream, \
            Gateway(Endpoint(upstream.base_url, KEY, "gpt-4o-mini"), tmp_path / "llm") as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        with socket_client(gw, grant.token) as http:
            answer = http.post("/v1/chat/completions", json=HELLO)
    assert echoed_key(upstream) == KEY  # the key did go upstream
    assert answer.status_code in (400, 502)
    assert_no_key(answer.text, KEY)
    assert KEY not in (tmp_path / "t.jsonl").read_text()


def test_a_reply_without_the_key_is_rebuilt_from_known_fields_only(upstream, tmp_path):
    extra = {"id": "abc", "object": "chat.completion", "created": 7, "model": "something-else",
             "debug": {"authorization": "whatever"}, "system_fingerprint": "fp",
             "choices": [{"index": 0, "finish_reason": "stop", "logprobs": {"x": 1},
                          "message": {"role": "assistant", "content": "hi", "audio": {"data": "..."}}}],
             "usage": {"prompt_tokens": 3, "completion_tokens": 2, "prompt_tokens_details": {"cached": 1}}}
    upstream.push(Reply(raw=json.dumps(extra).encode()))
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        with socket_client(gw, grant.token) as http:
            reply = http.post("/v1/chat/completions", json=HELLO).json()
    assert reply == {"id": "abc", "object": "chat.completion", "created": 7, "model": "gpt-4o-mini",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "hi"}}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


@pytest.mark.parametrize("field", ["service_tier", "store", "prediction", "reasoning_effort", "audio", "modalities",
                                   "web_search_options", "metadata", "tools", "functions", "logprobs", "stream_options",
                                   "parallel_tool_calls", "user"])
def test_fields_outside_the_allow_list_are_refused_naming_the_field(upstream, tmp_path, field):
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        with socket_client(gw, grant.token) as http:
            answer = http.post("/v1/chat/completions", json={**HELLO, field: "flex"})
    assert answer.status_code == 400 and f"field '{field}' is not allowed" in answer.json()["error"]["message"]
    assert upstream.requests == []


@pytest.mark.parametrize(("message", "reason"), [
    ({"role": "tool", "content": "x"}, "role 'tool' is not allowed"),
    ({"role": "user", "content": "x", "tool_calls": []}, "field 'tool_calls' is not allowed"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}, "only text parts"),
])
def test_message_fields_and_parts_outside_the_allow_list_are_refused(upstream, tmp_path, message, reason):
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        with socket_client(gw, grant.token) as http:
            answer = http.post("/v1/chat/completions", json={"messages": [message]})
    assert answer.status_code == 400 and reason in answer.json()["error"]["message"]
    assert upstream.requests == []


def test_allowed_fields_are_forwarded_as_given_and_nothing_else(upstream, tmp_path):
    upstream.push("ok")
    request = {"model": "gpt-4o-mini", "temperature": 0.3, "top_p": 0.9, "presence_penalty": 0.1,
               "frequency_penalty": 0.2, "seed": 7, "stop": ["\n"], "logit_bias": {"50256": -100},
               "response_format": {"type": "json_object"}, "stream": False, "max_tokens": 20, "n": 2,
               "messages": [{"role": "system", "content": "be brief"},
                            {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "alice"}]}
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        with socket_client(gw, grant.token) as http:
            assert http.post("/v1/chat/completions", json=request).status_code == 200
    sent = upstream.requests[0]
    assert sent == {k: v for k, v in request.items() if k != "stream"}


def test_n_is_bounded_and_multiplies_the_completion_reservation(upstream, tmp_path):
    upstream._default = Reply("ok", prompt_tokens=1, completion_tokens=1)
    with open_gateway(upstream, tmp_path, max_n=4) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=500)
        with socket_client(gw, grant.token) as http:
            too_many = http.post("/v1/chat/completions", json={**HELLO, "n": 64})
            four = http.post("/v1/chat/completions", json={**HELLO, "n": 4, "max_tokens": 1000})
    assert too_many.status_code == 400 and "at most 4 choices" in too_many.json()["error"]["message"]
    assert four.status_code == 200
    assert [(r["n"], r["max_tokens"]) for r in upstream.requests] == [(4, (500 - 77) // 4)]


def test_concurrent_huge_prompts_never_reach_upstream_on_a_small_grant(upstream, tmp_path):
    upstream._default = "ok"
    prompt = {"messages": [{"role": "user", "content": "x" * 3_900_000}], "max_tokens": 1}
    codes: list[int] = []
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=100, max_tokens=1_000)

        def call() -> None:
            with socket_client(gw, grant.token) as http:
                codes.append(http.post("/v1/chat/completions", json=prompt).status_code)

        threads = [threading.Thread(target=call) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        usage = gw.usage(grant.token)
    assert codes == [429] * 16 and upstream.requests == [] and usage.total_tokens == 0


def test_an_upstream_that_reports_no_usage_is_charged_the_reservation(upstream, tmp_path):
    upstream.push(Reply(raw=b'{"choices": [{"message": {"content": "hi"}}]}'))
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=1_000)
        with socket_client(gw, grant.token) as http:
            reply = http.post("/v1/chat/completions", json={**HELLO, "max_tokens": 10}).json()
        usage = gw.usage(grant.token)
    assert (usage.prompt_tokens, usage.completion_tokens) == (77, 10)
    assert reply["usage"]["total_tokens"] == 87


def test_context_length_error_is_told_in_the_gateways_words(upstream, tmp_path, monkeypatch):
    upstream.push(Reply(status=400, content="This model's maximum context length is 8192 tokens. secret-ish detail"))
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        monkeypatch.setenv("EVOBOX_LLM_TOKEN", grant.token)
        monkeypatch.setenv("EVOBOX_LLM_SOCKET", str(gw.socket_path))
        with pytest.raises(openai.BadRequestError) as err:
            box_client.client(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=HELLO["messages"])
    assert err.value.code == "context_length_exceeded"
    assert "detail" not in err.value.message and "context window" in err.value.message


def test_refused_requests_are_one_short_line_without_their_body(upstream, tmp_path):
    upstream._default = "ok"
    transcript = tmp_path / "t.jsonl"
    big = {"messages": [{"role": "user", "content": "y" * 3_000_000}]}
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=transcript, max_calls=1, max_tokens=100_000)
        with socket_client(gw, grant.token) as http:
            assert http.post("/v1/chat/completions", json=HELLO).status_code == 200
            codes = {http.post("/v1/chat/completions", json=big).status_code for _ in range(20)}
    assert codes == {429}
    lines = transcript.read_text().splitlines()
    assert len(lines) == 21 and all(len(line) < 400 for line in lines[1:])
    assert transcript.stat().st_size < 20_000


def test_transcript_stops_at_its_cap_with_a_marker_and_calls_go_on(upstream, tmp_path):
    upstream._default = "ok"
    transcript = tmp_path / "t.jsonl"
    with open_gateway(upstream, tmp_path, transcript_max_bytes=8192) as gw:
        grant = gw.grant("c1", transcript=transcript, max_calls=100, max_tokens=10**7)
        with socket_client(gw, grant.token) as http:
            codes = [http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "z" * 1500}]})
                     .status_code for _ in range(10)]
        usage = gw.usage(grant.token)
    assert codes == [200] * 10 and usage.calls == 10
    assert transcript.stat().st_size <= 8192
    assert json.loads(transcript.read_text().splitlines()[-1])["truncated"] is True


def test_a_grant_used_as_a_context_manager_is_revoked_however_its_block_ends(upstream, tmp_path):
    upstream._default = "ok"
    with open_gateway(upstream, tmp_path) as gw:
        with pytest.raises(RuntimeError), gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5,
                                                   max_tokens=10_000) as grant:
            with socket_client(gw, grant.token) as http:
                assert http.post("/v1/chat/completions", json=HELLO).status_code == 200
            raise RuntimeError("the evaluation crashed")
        with socket_client(gw, grant.token) as http:
            after = http.post("/v1/chat/completions", json=HELLO)
        assert gw.usage(grant.token).calls == 1  # usage stays readable
    assert after.status_code == 403 and len(upstream.requests) == 1


def test_gateway_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="max_connections_per_uid"):
        GatewayConfig(max_connections_per_uid=3)



def test_a_candidate_queueing_many_calls_delays_another_by_one_turn_at_most(upstream, tmp_path):
    """One upstream slot; the hog queues 12 slow calls; the other candidate's call is served within a
    turn or two of its arrival (a FIFO queue would serve it last)."""
    upstream._default = lambda body: Reply(body["messages"][0]["content"], delay_s=0.4)
    with open_gateway(upstream, tmp_path, max_concurrency=1) as gw:
        hog = gw.grant("hog", transcript=tmp_path / "hog.jsonl", max_calls=100, max_tokens=100_000)
        other = gw.grant("other", transcript=tmp_path / "other.jsonl", max_calls=5, max_tokens=100_000)

        def call(token: str, text: str) -> None:
            with socket_client(gw, token) as http:
                http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": text}]})

        hogs = [threading.Thread(target=call, args=(hog.token, f"hog-{i}")) for i in range(12)]
        for thread in hogs:
            thread.start()
        deadline = threading.Event()
        while len(upstream.requests) < 1 and not deadline.wait(0.02):
            pass
        deadline.wait(0.5)  # the hog's other calls are queued by now
        call(other.token, "other")
        for thread in hogs:
            thread.join()
    order = [r["messages"][0]["content"] for r in upstream.requests]
    assert len(order) == 13 and order.index("other") <= 5, order


def test_lone_surrogates_in_a_request_are_served_and_recorded(upstream, tmp_path):
    upstream._default = "ok"
    transcript = tmp_path / "t.jsonl"
    with open_gateway(upstream, tmp_path) as gw:
        grant = gw.grant("c1", transcript=transcript, max_calls=5, max_tokens=10_000)
        with socket_client(gw, grant.token) as http:
            answer = http.post("/v1/chat/completions",
                               content=b'{"messages": [{"role": "user", "content": "\\ud800"}]}')
    assert answer.status_code == 200
    [line] = transcript.read_text().splitlines()
    assert json.loads(line)["status"] == 200
