"""The gateway's HTTP server against clients that never finish: raw sockets on the real unix socket.

Each case waits for the server to act with a generous bound (the limits under test are 1 s);
with the limit switched off the connection stays open and the read below times out.
"""

from __future__ import annotations

import resource
import socket
import time
from pathlib import Path

import pytest

from engine.llm.gateway import Gateway
from tests.llm.conftest import open_gateway, socket_client

HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
WAIT_S = 15.0


def connect(gw: Gateway) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(gw.socket_path))
    return sock


def answer_then_eof(sock: socket.socket, *, drip: bytes = b"") -> bytes:
    """Everything the server sends until it closes; drips one byte of `drip` every 0.2 s meanwhile."""
    sock.settimeout(0.2)
    received, deadline = b"", time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if drip:
            try:
                sock.send(drip[:1])
            except OSError:  # closed by the server while dripping
                drip = b""
            drip = drip[1:] or drip
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept the connection open for {WAIT_S}s; got {received[:200]!r}")


def test_headers_dripped_slowly_are_cut_at_the_header_timeout(upstream, tmp_path: Path):
    with open_gateway(upstream, tmp_path, header_timeout_s=1.0) as gw, connect(gw) as sock:
        sock.sendall(HEAD[:20])
        reply = answer_then_eof(sock, drip=b"x-slow: " + b"a" * 1000)
    assert reply.startswith(b"HTTP/1.1 408") and b"headers not complete in time" in reply


def test_a_partial_next_request_on_a_kept_alive_connection_is_cut_too(upstream, tmp_path: Path):
    upstream.push("first")
    with open_gateway(upstream, tmp_path, header_timeout_s=1.0, idle_timeout_s=30.0) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        with connect(gw) as sock:
            body = b'{"messages": [{"role": "user", "content": "hi"}]}'
            sock.sendall(HEAD + f"authorization: Bearer {grant.token}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                         + body)
            first = b""
            while b'"first"' not in first:
                first += sock.recv(65536)
            sock.sendall(HEAD[:10])  # the next request starts, and never finishes
            reply = answer_then_eof(sock, drip=b"x-slow: " + b"a" * 1000)
    assert first.startswith(b"HTTP/1.1 200") and reply.startswith(b"HTTP/1.1 408")


def test_an_idle_kept_alive_connection_is_closed(upstream, tmp_path: Path):
    with open_gateway(upstream, tmp_path, idle_timeout_s=1.0) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        with connect(gw) as sock:
            sock.sendall(f"GET /v1/models HTTP/1.1\r\nhost: g\r\nauthorization: Bearer {grant.token}\r\n\r\n".encode())
            reply = answer_then_eof(sock)
    assert reply.startswith(b"HTTP/1.1 200") and reply.count(b"HTTP/1.1") == 1


def test_a_body_that_never_completes_is_cut_at_the_body_timeout(upstream, tmp_path: Path):
    with open_gateway(upstream, tmp_path, body_timeout_s=1.0) as gw, connect(gw) as sock:
        sock.sendall(HEAD + b"content-length: 100000\r\n\r\n{")
        reply = answer_then_eof(sock, drip=b"a" * 1000)
    assert reply.startswith(b"HTTP/1.1 408") and b"body not complete in time" in reply


def test_oversized_headers_get_431(upstream, tmp_path: Path):
    with open_gateway(upstream, tmp_path, max_header_bytes=4096) as gw, connect(gw) as sock:
        sock.sendall(HEAD + b"x-big: " + b"a" * 8000 + b"\r\n\r\n")
        reply = answer_then_eof(sock)
    assert reply.startswith(b"HTTP/1.1 431")


def test_connections_over_the_per_peer_cap_are_refused_and_the_held_ones_keep_working(upstream, tmp_path: Path):
    upstream._default = "ok"
    with open_gateway(upstream, tmp_path, max_connections_per_peer=4, header_timeout_s=60.0) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        held = [connect(gw) for _ in range(4)]
        for sock in held:
            sock.sendall(HEAD[:10])
        time.sleep(0.5)  # let the server accept them (the cap counts accepted connections)
        extra = connect(gw)
        refused = answer_then_eof(extra)
        for sock in held:
            sock.close()
        time.sleep(0.5)
        with socket_client(gw, grant.token) as http:
            after = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert refused.startswith(b"HTTP/1.1 503") and b"too many connections from this sandbox" in refused
    assert after.status_code == 200


def test_unknown_route_is_404(upstream, tmp_path: Path):
    with open_gateway(upstream, tmp_path) as gw, socket_client(gw) as http:
        assert http.get("/admin").status_code == 404


def test_connections_over_the_total_cap_are_refused(upstream, tmp_path: Path):
    with open_gateway(upstream, tmp_path, max_connections=3, header_timeout_s=60.0) as gw:
        held = [connect(gw) for _ in range(3)]
        for sock in held:
            sock.sendall(HEAD[:10])
        time.sleep(0.5)
        refused = answer_then_eof(connect(gw))
        for sock in held:
            sock.close()
    assert refused.startswith(b"HTTP/1.1 503") and b"connection limit" in refused


def test_starting_the_gateway_raises_the_open_file_limit_to_its_hard_limit(upstream, tmp_path: Path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 256:
        pytest.skip(f"hard RLIMIT_NOFILE is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))
    try:
        with open_gateway(upstream, tmp_path):
            assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_pipelined_requests_are_both_answered(upstream, tmp_path: Path):
    with open_gateway(upstream, tmp_path, idle_timeout_s=30.0) as gw:
        grant = gw.grant("c1", transcript=tmp_path / "t.jsonl", max_calls=5, max_tokens=10_000)
        one = f"GET /v1/models HTTP/1.1\r\nhost: g\r\nauthorization: Bearer {grant.token}\r\n\r\n".encode()
        with connect(gw) as sock:
            sock.sendall(one + one)
            sock.settimeout(5)
            received = b""
            while received.count(b"HTTP/1.1 200") < 2:
                received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 200") == 2
