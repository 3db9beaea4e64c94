"""A sandboxed container with no network reaches the LLM through the gateway socket and nothing else."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from engine.llm import box_client
from engine.sandbox.images import ImageBuilder
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.runner import Sandbox
from tests.llm.conftest import SECRET, open_gateway

pytestmark = pytest.mark.docker

# stdlib only: the base image has python3 but no openai package
PROBE = r'''
import errno, http.client, json, os, socket

class UnixHTTP(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.environ["EVOBOX_LLM_SOCKET"])

def tcp(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "connected"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc))

conn = UnixHTTP("gateway")
body = json.dumps({"model": os.environ["EVOBOX_LLM_MODEL"], "messages": [{"role": "user", "content": "hi"}]})
conn.request("POST", "/v1/chat/completions", body,
             {"Authorization": "Bearer " + os.environ["EVOBOX_LLM_TOKEN"], "Content-Type": "application/json"})
answer = conn.getresponse()
reply = json.loads(answer.read())
try:
    open("/run/llm/planted", "w")
    socket_dir_writable = True
except OSError:
    socket_dir_writable = False
print(json.dumps({
    "status": answer.status,
    "content": reply["choices"][0]["message"]["content"],
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "public_ip": tcp("1.1.1.1", 443),
    "upstream_port": tcp("127.0.0.1", int(os.environ["UPSTREAM_PORT"])),
    "socket_dir_writable": socket_dir_writable,
    "environ": dict(os.environ),
}))
'''


def run_id() -> str:
    return f"llmtest-{secrets.token_hex(4)}"


def test_container_without_network_reaches_gateway_only_through_socket(upstream, tmp_path: Path):
    upstream.push("hello from upstream")
    image = ImageBuilder().base()
    with open_gateway(upstream, tmp_path) as gw, Sandbox(run_id()) as sandbox:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=2, max_tokens=1000)
        result = sandbox.run(image, ["python3", "-c", PROBE], mounts=[grant.mount],
                             env={**grant.env, "UPSTREAM_PORT": str(upstream.port)},
                             limits=SandboxLimits(timeout_s=60))
        usage = gw.usage(grant.token)
    assert result.ok, result.failure_reason() + result.stderr_tail
    report = json.loads(result.stdout_tail.strip().splitlines()[-1])
    assert (report["status"], report["content"]) == (200, "hello from upstream")
    assert usage.calls == 1
    assert report["interfaces"] == ["lo"]
    assert report["public_ip"] in ("ENETUNREACH", "EHOSTUNREACH")
    assert report["upstream_port"] == "ECONNREFUSED"  # the engine's loopback is not the container's
    assert report["socket_dir_writable"] is False
    assert SECRET not in json.dumps(report["environ"])
    assert not (tmp_path / "llm" / "planted").exists()


@pytest.mark.slow  # builds the ADAS runtime image on a fresh machine
def test_box_client_in_a_sandbox_calls_the_llm_like_outside(upstream, tmp_path: Path):
    """The real in-sandbox helper, copied as evobox_llm.py into an image with the openai package."""
    upstream.push("agent answer")
    builder = ImageBuilder()
    image = builder.layer(builder.runtime("adas"), {"evobox_llm.py": Path(box_client.__file__).read_bytes()},
                          kind="llm-test")
    code = ("import evobox_llm\n"
            "r = evobox_llm.client().chat.completions.create(model=evobox_llm.MODEL,"
            " messages=[{'role': 'user', 'content': 'hi'}])\n"
            "print(r.choices[0].message.content, r.usage.total_tokens)\n")
    with open_gateway(upstream, tmp_path) as gw, Sandbox(run_id()) as sandbox:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=2, max_tokens=1000)
        result = sandbox.run(image, ["python", "-c", code], mounts=[grant.mount], env=grant.env,
                             limits=SandboxLimits(timeout_s=60))
    assert result.ok, result.failure_reason() + result.stderr_tail
    assert result.stdout_tail.strip() == "agent answer 15"
    assert upstream.requests[0]["model"] == "gpt-4o-mini"
