"""Hostile candidates against the LLM gateway, from inside real containers through the mounted socket.

Each case asserts the containment the engine sees: descriptors the engine holds, another
candidate's call, tokens that reached the (scripted, loopback) upstream, bytes of transcript,
the key in every reply. The in-container code uses the stdlib only (the base image has no
openai package), speaking HTTP over the unix socket as any agent could.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import docker
import pytest

from engine.llm.config import GatewayConfig
from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.llm.scripted import Reply, ScriptedLLM
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.runner import RunResult, Sandbox

pytestmark = pytest.mark.docker

KEY = "sk-proj/" + "5be0c9d2" * 5
LIMITS = SandboxLimits(timeout_s=90, memory_bytes="512m")
OTHER_UID = 65533  # a second concurrent candidate runs as its own uid

CLIENT = r'''
import http.client, json, os, socket, sys, threading

class UnixHTTP(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.environ["EVOBOX_LLM_SOCKET"])

def call(body):
    conn = UnixHTTP("gateway", timeout=60)
    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                 {"Authorization": "Bearer " + os.environ["EVOBOX_LLM_TOKEN"], "Content-Type": "application/json"})
    answer = conn.getresponse()
    return answer.status, answer.read().decode("utf-8", "replace")
'''

HOG = CLIENT + r'''
import time
socks, failed = [], 0
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(os.environ["EVOBOX_LLM_SOCKET"])
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n")  # never finished
        socks.append(s)
    except OSError:
        failed += 1
time.sleep(2)
held = refused = 0
for s in socks:
    s.setblocking(False)
    try:
        refused += s.recv(4096).startswith(b"HTTP/1.1 503")
    except BlockingIOError:
        held += 1
    except OSError:
        pass
json.dump({"held": held, "refused": refused, "failed": failed}, open("/out/ready.json", "w"))
time.sleep(float(sys.argv[2]))
'''

DRIP = CLIENT + r'''
import time
socks = []
for _ in range(3):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.environ["EVOBOX_LLM_SOCKET"])
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
    s.settimeout(0.3)
    socks.append(s)
answers = [b""] * 3
closed = [False] * 3
deadline = time.monotonic() + 30
while not all(closed) and time.monotonic() < deadline:
    for i, s in enumerate(socks):
        if closed[i]:
            continue
        try:
            s.sendall(b"x")  # one more header byte: the request is always progressing
        except OSError:
            pass  # closed by the server: its answer may still wait in the receive buffer
        try:
            chunk = s.recv(4096)
            answers[i] += chunk
            closed[i] = not chunk
        except socket.timeout:
            pass
        except OSError:
            closed[i] = True
print(json.dumps({"closed": closed, "status": [a[:12].decode() for a in answers]}))
'''

FLOOD = CLIENT + r'''
huge = {"messages": [{"role": "user", "content": "x" * 3_900_000}], "max_tokens": 1}
results = []
threads = [threading.Thread(target=lambda: results.append(call(huge)[0])) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
hello = [{"role": "user", "content": "hi"}]
report = {"huge": results,
          "n64": call({"messages": hello, "n": 64, "max_tokens": 1}),
          "service_tier": call({"messages": hello, "service_tier": "priority"}),
          "reasoning_effort": call({"messages": hello, "reasoning_effort": "high"}),
          "small": call({"messages": hello, "n": 8, "max_tokens": 5000})[0]}
print(json.dumps(report))
'''

ECHO = CLIENT + r'''
replies = {}
for name in sys.argv[1].split(","):
    for path in ("200", "error"):
        replies[name + "|" + path] = call({"messages": [{"role": "user", "content": name + "|" + path}]})
json.dump(replies, open("/out/replies.json", "w"))
'''

ENCODINGS = {
    "raw": lambda k: f"the key is {k}",
    "json-escaped": lambda k: json.dumps(k).replace("/", "\\/").replace("s", "\\u0073"),
    "percent": lambda k: "".join(f"%{b:02x}" for b in k.encode()),
    "base64-0": lambda k: base64.b64encode(k.encode()).decode(),
    "base64-1": lambda k: base64.b64encode(b"a" + k.encode()).decode(),
    "base64-2": lambda k: base64.b64encode(b"ab" + k.encode()).decode(),
    "hex": lambda k: k.encode().hex(),
}


def run_id() -> str:
    return f"gwattack-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def upstream() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(default=Reply("ok", prompt_tokens=20, completion_tokens=10), model="gpt-4o-mini") as llm:
        yield llm


def gateway(upstream: ScriptedLLM, tmp_path: Path, **config: object) -> Gateway:
    return Gateway(Endpoint(upstream.base_url, KEY, "gpt-4o-mini"), tmp_path / "llm", config=GatewayConfig(**config))


def engine_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def report_of(result: RunResult) -> dict:
    assert result.ok, result.failure_reason() + result.stderr_tail[-2000:]
    return json.loads(result.stdout_tail.strip().splitlines()[-1])


def test_connection_hog_holds_few_engine_descriptors_and_another_candidate_still_calls(
        upstream: ScriptedLLM, tmp_path: Path, base_image: str, docker_client: docker.DockerClient) -> None:
    cap = 8
    hog_out = tmp_path / "hog-out"
    with gateway(upstream, tmp_path, max_connections_per_peer=cap, header_timeout_s=120) as gw, \
            Sandbox(run_id(), client=docker_client) as box:
        hog_grant = gw.grant("hog", transcript=tmp_path / "hog.jsonl", max_calls=5, max_tokens=10_000)
        other_grant = gw.grant("other", transcript=tmp_path / "other.jsonl", max_calls=5, max_tokens=10_000)
        baseline = engine_fds()
        hog: list[RunResult] = []
        thread = threading.Thread(target=lambda: hog.append(box.run(
            base_image, ["python3", "-c", HOG, "200", "15"], mounts=[hog_grant.mount], env=hog_grant.env,
            out_dir=hog_out, limits=LIMITS)))
        thread.start()
        deadline = time.monotonic() + 60
        while not (hog_out / "ready.json").exists() and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.2)
        during = engine_fds()
        other = box.run(base_image, ["python3", "-c", CLIENT + "print(json.dumps(call({'messages': "
                                     "[{'role': 'user', 'content': 'hi'}]})))"],
                        mounts=[other_grant.mount], env=other_grant.env,
                        limits=LIMITS.model_copy(update={"uid": OTHER_UID}))
        thread.join()
    ready = json.loads((hog_out / "ready.json").read_text())
    assert ready["held"] <= cap and ready["held"] + ready["refused"] + ready["failed"] == 200
    assert during - baseline <= cap + 12, f"the engine went from {baseline} to {during} descriptors"
    status, _ = report_of(other)
    assert status == 200


def test_dripped_headers_are_cut_at_the_header_timeout(upstream: ScriptedLLM, tmp_path: Path, base_image: str,
                                                       docker_client: docker.DockerClient) -> None:
    with gateway(upstream, tmp_path, header_timeout_s=2) as gw, Sandbox(run_id(), client=docker_client) as box:
        grant = gw.grant("drip", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        result = box.run(base_image, ["python3", "-c", DRIP], mounts=[grant.mount], env=grant.env, limits=LIMITS)
    report = report_of(result)
    assert report["closed"] == [True] * 3 and report["status"] == ["HTTP/1.1 408"] * 3


def test_prompt_flood_n_and_cost_fields_never_overspend_the_grant(upstream: ScriptedLLM, tmp_path: Path,
                                                                  base_image: str,
                                                                  docker_client: docker.DockerClient) -> None:
    budget = 1_000
    transcript = tmp_path / "t.jsonl"
    with gateway(upstream, tmp_path) as gw, Sandbox(run_id(), client=docker_client) as box:
        grant = gw.grant("flood", transcript=transcript, max_calls=100, max_tokens=budget)
        result = box.run(base_image, ["python3", "-c", FLOOD], mounts=[grant.mount], env=grant.env, limits=LIMITS)
        usage = gw.usage(grant.token)
    report = report_of(result)
    assert report["huge"] == [429] * 16
    assert report["n64"][0] == 400 and "'n' is 64" in report["n64"][1]
    assert report["service_tier"][0] == 400 and "'service_tier'" in report["service_tier"][1]
    assert report["reasoning_effort"][0] == 400 and "'reasoning_effort'" in report["reasoning_effort"][1]
    assert report["small"] == 200
    # what reached upstream: one small call whose worst case fits the budget
    reached = [(len(r["messages"][0]["content"].encode()), r.get("n", 1), r["max_tokens"]) for r in upstream.requests]
    assert len(reached) == 1
    assert sum(size + n * completion for size, n, completion in reached) <= budget
    assert usage.total_tokens <= budget
    assert transcript.stat().st_size < 16 * 1024  # 19 refusals and 1 call, no 3.9 MB bodies


def test_key_echoed_by_upstream_in_any_encoding_never_reaches_the_container(upstream: ScriptedLLM, tmp_path: Path,
                                                                            base_image: str,
                                                                            docker_client: docker.DockerClient) -> None:
    def echo(body: dict) -> Reply:
        name, path = body["messages"][0]["content"].split("|")
        key = upstream.headers[-1]["authorization"].removeprefix("Bearer ")
        text = ENCODINGS[name](key)
        return Reply(text) if path == "200" else Reply(status=400, content=f"Incorrect API key provided: {text}")

    upstream._default = echo
    out = tmp_path / "out"
    with gateway(upstream, tmp_path) as gw, Sandbox(run_id(), client=docker_client) as box:
        grant = gw.grant("echo", transcript=tmp_path / "t.jsonl", max_calls=100, max_tokens=100_000)
        result = box.run(base_image, ["python3", "-c", ECHO, ",".join(ENCODINGS)], mounts=[grant.mount],
                         env=grant.env, out_dir=out, limits=LIMITS)
    assert result.ok, result.failure_reason() + result.stderr_tail[-2000:]
    replies = json.loads((out / "replies.json").read_text())
    assert len(replies) == 2 * len(ENCODINGS) and len(upstream.requests) == 2 * len(ENCODINGS)
    forms = [KEY, quote(KEY, safe=""), *(encode(KEY) for encode in ENCODINGS.values())]
    for name, (status, text) in replies.items():
        decoded = json.dumps(json.loads(text), ensure_ascii=False)
        assert status in (400, 502), name
        assert not any(form in text or form in decoded for form in forms), f"{name}: {text[:200]}"
    assert KEY not in (tmp_path / "t.jsonl").read_text()
