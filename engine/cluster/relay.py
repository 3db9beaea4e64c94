"""The LLM on remote nodes: a node-local unix-socket relay that forwards over Ray to the head.

A candidate on a worker node finds the same thing at /run/llm/gateway.sock as on one machine:
an OpenAI-compatible server on a unix socket. On a node it is `NodeRelay`, which holds no key,
no budget and no transcript: it reads each request under the gateway's own HTTP limits (header,
body and idle timeouts, size caps, per-uid connection caps: engine/llm/httpserver.py), keeps
only the method, the path, the bearer token and the body, and hands them to `GatewayBridge`, a
Ray actor on the head's node, which sends them to the head's real gateway socket. There the
grant token is checked, the budgets charged, the transcript written and the upstream called
with the key; the reply (already rebuilt and key-checked by the gateway) goes back the same way.
What crosses the wire: the candidate's request body and token, and the gateway's reply.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import structlog

from engine.llm.gateway import SOCKET_NAME
from engine.llm.httpserver import HttpRequest, HttpResponse, ServerLimits, UnixHttpServer, error_response

log = structlog.get_logger()

_FORWARDED_HEADERS = ("authorization", "content-type")
_RETURNED_HEADERS = ("x-should-retry", "retry-after")
_START_TIMEOUT_S = 15.0


class GatewayBridge:
    """Head side (a Ray actor pinned to the head's node): relayed requests into the gateway socket."""

    def __init__(self, socket_path: str, max_connections: int, timeout_s: float):
        transport = httpx.AsyncHTTPTransport(uds=socket_path)
        pool = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(transport=transport, limits=pool, timeout=timeout_s,
                                         base_url="http://gateway")

    async def forward(self, method: str, path: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, bytes, str, list[tuple[str, str]]]:
        try:
            reply = await self._client.request(method, path, headers=headers, content=body)
        except httpx.HTTPError as exc:
            log.warning("cluster.bridge_failed", error=f"{type(exc).__name__}: {exc}")
            response = error_response(502, "the head's LLM gateway could not be reached", kind="api_error")
            return response.status, response.body, response.content_type, response.headers
        kept = [(name, reply.headers[name]) for name in _RETURNED_HEADERS if name in reply.headers]
        return reply.status_code, reply.content, reply.headers.get("content-type", "application/json"), kept

    def ready(self) -> bool:
        return True


class NodeRelay:
    """Node side: `with NodeRelay(socket_dir, bridge, limits):` serves <socket_dir>/gateway.sock."""

    def __init__(self, socket_dir: Path, bridge: object, limits: ServerLimits):
        self.socket_dir = socket_dir
        self._bridge = bridge
        self._limits = limits
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="evobox-llm-relay", daemon=True)

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / SOCKET_NAME

    def __enter__(self) -> NodeRelay:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o755)  # a non-root uid in the container must traverse it
        self.socket_path.unlink(missing_ok=True)
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_S) or self._failure is not None:
            self.close()
            raise RuntimeError(f"LLM relay did not start on {self.socket_path}: {self._failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)
        self.socket_path.unlink(missing_ok=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by __enter__ when it happens at start
            self._failure = exc
            log.error("cluster.relay_crashed", error=repr(exc))
        finally:
            self._started.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = UnixHttpServer(self._handle, self._limits)
        await server.start(self.socket_path)
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await server.close()

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        headers = {name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers}
        try:
            status, body, content_type, kept = await self._bridge.forward.remote(  # type: ignore[attr-defined]
                request.method, request.path, headers, request.body)
        except Exception as exc:  # the head or the bridge is gone: the candidate sees an upstream error
            log.warning("cluster.relay_failed", error=f"{type(exc).__name__}: {exc}")
            return error_response(502, "the head's LLM gateway could not be reached", kind="api_error")
        return HttpResponse(status, body, kept, content_type=content_type)
