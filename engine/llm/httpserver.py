"""A small HTTP/1.1 server on a unix socket, with every limit a hostile client could abuse made explicit.

Why not uvicorn: it has no header-read timeout, and its keep-alive timer is cancelled by the
first byte of a next request, so a client that sends half a request line holds its connection
(and one of the engine's file descriptors) forever. Candidates are hostile clients, so this
server is built on `h11` (the sans-IO HTTP/1.1 parser httpx and uvicorn use) and asyncio
streams, where each limit is one line to audit:

- the peer's uid is read with SO_PEERCRED at accept, before any byte of HTTP: each concurrent
  candidate container runs as its own uid, so per-uid connection caps stop one candidate from
  holding the slots another needs, and a total cap keeps the server's descriptors well inside
  the process's RLIMIT_NOFILE (the engine needs its own to run containers);
- a head (request line + headers) must be complete within `header_timeout_s` of the moment the
  server starts waiting for it, however slowly its bytes trickle in (an absolute deadline, never
  reset by progress), and may not exceed `max_header_bytes`;
- a kept-alive connection with no byte of a next request for `idle_timeout_s` is closed;
- a body must be complete within `body_timeout_s` and may not exceed `max_body_bytes`
  (a declared Content-Length above it is refused before any byte of the body is read);
- writing a reply to a client that does not read it gives up after `write_timeout_s`.

Refusals made here (connection caps, 400, 408, 413, 431) close the connection. The handler
only ever sees complete, size-checked requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import h11
import structlog

log = structlog.get_logger()

_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """What one connection may hold and for how long (see the module docstring)."""

    header_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    body_timeout_s: float = 60.0
    write_timeout_s: float = 30.0
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 4 * 1024 * 1024
    max_connections: int = 256
    max_connections_per_peer: int = 32


@dataclass
class HttpRequest:
    """A complete request. `headers` keys are lower-case; `peer_uid` comes from the kernel."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_uid: int


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class _Closed(Exception):
    """The connection is done: the client left, timed out, or was refused."""


def error_response(status: int, message: str, *, kind: str = "invalid_request_error",
                   retry: bool = False, code: str | int | None = None) -> HttpResponse:
    """An OpenAI-shaped error; `x-should-retry: false` stops the openai SDK from retrying it."""
    body = json.dumps({"error": {"message": message, "type": kind, "code": status if code is None else code}})
    headers = [] if retry else [("x-should-retry", "false")]
    return HttpResponse(status, body.encode(), headers)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process that connected (SO_PEERCRED: set by the kernel at connect, unforgeable)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class UnixHttpServer:
    """`await server.start(path)` ... `await server.close()`; runs inside one asyncio loop."""

    def __init__(self, handler: Handler, limits: ServerLimits):
        self.handler = handler
        self.limits = limits
        self.per_peer: Counter[int] = Counter()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connections(self) -> int:
        return sum(self.per_peer.values())

    async def start(self, path: Path) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path=str(path), backlog=128)
        os.chmod(path, 0o666)  # any uid may connect; the grant token is the identity, the uid the quota key

    async def close(self) -> None:
        """Stop accepting and end every open connection (in-flight handlers are cancelled)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        uid = peer_uid(writer.get_extra_info("socket"))
        refusal = self._admit(uid)
        if refusal is not None:
            await self._refuse(writer, refusal)
            return
        self.per_peer[uid] += 1
        self._tasks.add(task)
        try:
            await _Connection(self, reader, writer, uid).serve()
        except (_Closed, ConnectionError, asyncio.TimeoutError, h11.LocalProtocolError, asyncio.CancelledError):
            pass  # the client left, stalled on its reply, or broke HTTP: the connection just ends
        finally:
            self._tasks.discard(task)
            self.per_peer[uid] -= 1
            if not self.per_peer[uid]:
                del self.per_peer[uid]
            writer.transport.abort()  # no lingering: the descriptor is freed now

    def _admit(self, uid: int) -> str | None:
        if self.per_peer[uid] >= self.limits.max_connections_per_peer:
            return (f"too many connections from this sandbox: {self.limits.max_connections_per_peer} open at most; "
                    "close some or wait")
        if self.connections >= self.limits.max_connections:
            return "the gateway is at its connection limit; retry shortly"
        return None

    async def _refuse(self, writer: asyncio.StreamWriter, message: str) -> None:
        """A best-effort 503 (the client may not read it), then close at once."""
        try:
            writer.write(_closing_response(error_response(503, message, kind="connection_limit", retry=True)))
            await asyncio.wait_for(writer.drain(), timeout=1.0)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.transport.abort()


class _Connection:
    """One client connection: read a request within its limits, hand it over, write the reply, repeat."""

    def __init__(self, server: UnixHttpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 uid: int):
        self.server, self.reader, self.writer, self.uid = server, reader, writer, uid
        self.limits = server.limits
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)

    async def serve(self) -> None:
        first = True
        while True:
            request = await self._read_request(first)
            first = False
            try:
                response = await self.server.handler(request)
            except Exception:  # a bug in the handler must cost one request, never the server
                log.exception("llm.gateway.handler_failed", path=request.path)
                response = error_response(500, "internal gateway error", kind="server_error", retry=True)
            await self._send(response)
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return
            self.h11.start_next_cycle()

    async def _read_request(self, first: bool) -> HttpRequest:
        loop = asyncio.get_running_loop()
        if not first and not self.h11.trailing_data[0]:  # kept alive: a next request starts within idle_timeout_s
            await self._fill(loop.time() + self.limits.idle_timeout_s, idle=True)
        head = await self._next(loop.time() + self.limits.header_timeout_s, 408, "request headers not complete in time")
        if not isinstance(head, h11.Request):
            raise _Closed
        # h11 caps only a head still incomplete in its buffer; one that arrived whole is measured here
        if len(head.target) + sum(len(k) + len(v) + 4 for k, v in head.headers) > self.limits.max_header_bytes:
            await self._fail(431, "request headers too large")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            await self._fail(413, f"request body of {int(declared):,} bytes exceeds the gateway limit of "
                                  f"{self.limits.max_body_bytes:,}")
        body = await self._read_body(loop.time() + self.limits.body_timeout_s)
        path = head.target.decode("latin-1").split("?", 1)[0]
        return HttpRequest(head.method.decode("latin-1"), path, headers, body, self.uid)

    async def _read_body(self, deadline: float) -> bytes:
        body = bytearray()
        while True:
            event = await self._next(deadline, 408, "request body not complete in time")
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.limits.max_body_bytes:
                    await self._fail(413, f"request body exceeds the gateway limit of "
                                          f"{self.limits.max_body_bytes:,} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            else:
                raise _Closed

    async def _next(self, deadline: float, status: int, why: str) -> h11.Event:
        """The next parsed event, reading as needed until `deadline` (absolute: slow drips do not extend it)."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                too_big = "exceed" in str(exc).lower() or exc.error_status_hint == 431
                await self._fail(431 if too_big else 400,
                                 "request headers too large" if too_big else f"malformed HTTP request: {exc}")
            if event is h11.NEED_DATA:
                if not await self._fill(deadline):
                    await self._fail(status, why)
                continue
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                raise _Closed
            return event

    async def _fill(self, deadline: float, *, idle: bool = False) -> bool:
        """Feed h11 with what arrives before `deadline`; False on timeout. EOF ends the connection."""
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            if idle:
                raise _Closed
            return False
        try:
            data = await asyncio.wait_for(self.reader.read(_READ_CHUNK), timeout=remaining)
        except asyncio.TimeoutError:
            if idle:
                raise _Closed from None
            return False
        if not data:
            raise _Closed
        self.h11.receive_data(data)
        return True

    async def _fail(self, status: int, message: str) -> None:
        """Answer a refusal made before the handler (best effort), then close the connection."""
        with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
            self.writer.write(_closing_response(error_response(status, message)))
            await asyncio.wait_for(self.writer.drain(), timeout=1.0)
        raise _Closed

    async def _send(self, response: HttpResponse) -> None:
        headers = [("content-type", response.content_type), ("content-length", str(len(response.body))),
                   *response.headers]
        data = self.h11.send(h11.Response(status_code=response.status, headers=headers,
                                          reason=HTTPStatus(response.status).phrase.encode()))
        data += self.h11.send(h11.Data(data=response.body)) + self.h11.send(h11.EndOfMessage())
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), timeout=self.limits.write_timeout_s)


def _closing_response(response: HttpResponse) -> bytes:
    """A whole response with `connection: close`, for refusals made outside h11's request cycle
    (the connection is closed right after, so no parser state has to agree with it)."""
    headers = [("content-type", response.content_type), ("content-length", str(len(response.body))),
               ("connection", "close"), *response.headers]
    head = f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    return head.encode("latin-1") + response.body
