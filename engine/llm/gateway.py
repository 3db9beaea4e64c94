"""The LLM gateway: an OpenAI-compatible server on a unix socket for sandboxed candidates.

Candidates have no network; the only way out is <socket_dir>/gateway.sock, bind-mounted
read-only at /run/llm. Each candidate gets a grant: a bearer token minted here, with its own
budget of calls and tokens and its own JSONL transcript. The gateway forwards to the upstream
endpoint with the real key, which never leaves this process: it is not in any grant's
environment, and it is scrubbed from every response and transcript line (an upstream error
message may echo it).

Model allow-list: the upstream model and `GatewayConfig.allowed_models` are forwarded as
named; any other name is refused with 403 (policy `reject`, the default: a candidate cannot
pick a pricier model) or served by the upstream model (policy `map`: code written for another
model runs unchanged). A request without a model gets the upstream model.

Budgets: a call is refused with 429 once the grant's calls or tokens are spent (with
`x-should-retry: false`, so the openai SDK does not retry it). Completion tokens of each call
are clamped to what remains of the grant's token budget (in-flight calls reserve theirs);
prompt tokens are only known afterwards, so the last call may overshoot by its prompt.
Streaming is not supported (400). The cache key is the request as the candidate sent it
(model resolved, before budget clamping); cached replies count against the budget like fresh
ones (reruns behave the same) but cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.llm.config import GatewayConfig, ModelPolicy, Price, default_prices
from engine.llm.endpoint import Endpoint
from engine.llm.usage import Usage, call_usage
from engine.sandbox.runner import Mount

log = structlog.get_logger()

SOCKET_NAME = "gateway.sock"
CONTAINER_DIR = "/run/llm"
TOKEN_ENV = "EVOBOX_LLM_TOKEN"
MODEL_ENV = "EVOBOX_LLM_MODEL"
SOCKET_ENV = "EVOBOX_LLM_SOCKET"
_REDACTED = b"[redacted]"
_MAX_UDS_PATH = 107


class GatewayError(Exception):
    """The gateway could not start, or was used after close."""


@dataclass
class Grant:
    """What a candidate's container needs to call the LLM: mount the socket dir, set the env."""

    token: str
    mount: Mount          # socket_dir -> /run/llm, read-only
    env: dict[str, str]   # EVOBOX_LLM_TOKEN, EVOBOX_LLM_MODEL, EVOBOX_LLM_SOCKET
    candidate_id: str = ""


@dataclass
class _GrantState:
    candidate_id: str
    transcript: Path
    max_calls: int
    max_tokens: int
    usage: Usage = field(default_factory=Usage)
    calls_started: int = 0
    reserved_tokens: int = 0
    revoked: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Reject(Exception):
    """An HTTP error answer with a reason the candidate (and the LLM behind it) can read."""

    def __init__(self, status: int, message: str, kind: str, *, retry: bool = True):
        super().__init__(message)
        self.status, self.message, self.kind, self.retry = status, message, kind, retry

    def response(self) -> JSONResponse:
        headers = {} if self.retry else {"x-should-retry": "false"}
        return JSONResponse({"error": {"message": self.message, "type": self.kind, "code": self.status}},
                            status_code=self.status, headers=headers)


class Gateway:
    """`with Gateway(upstream, socket_dir) as gw: grant = gw.grant(...)`. Usable once."""

    def __init__(self, upstream: Endpoint, socket_dir: Path, *, config: GatewayConfig | None = None,
                 prices: Mapping[str, Price] | None = None):
        self.upstream = upstream
        self.socket_dir = Path(socket_dir)
        self.config = config or GatewayConfig()
        self.prices = dict(default_prices() if prices is None else prices)
        self._grants: dict[str, _GrantState] = {}
        self._lock = threading.Lock()
        self._state = "new"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._secret = upstream.api_key.encode() if len(upstream.api_key) >= 8 else b""
        self._allowed = [upstream.model, *[m for m in self.config.allowed_models if m != upstream.model]]
        self._in_flight = 0
        self._peak = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._http: httpx.AsyncClient | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def socket_path(self) -> Path:
        return self.socket_dir / SOCKET_NAME

    def __enter__(self) -> Gateway:
        if self._state != "new":
            raise GatewayError(f"gateway is {self._state}; a Gateway is usable once, create a new one")
        if len(str(self.socket_path)) > _MAX_UDS_PATH:
            raise GatewayError(f"socket path too long for a unix socket ({len(str(self.socket_path))} > "
                               f"{_MAX_UDS_PATH} bytes): {self.socket_path}")
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o755)  # uid 65534 in the container must traverse it
        self.socket_path.unlink(missing_ok=True)
        self._state = "running"
        config = uvicorn.Config(self._app(), uds=str(self.socket_path), log_level="warning", access_log=False,
                                lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="evobox-llm-gateway", daemon=True)
        self._thread.start()
        self._wait_started()
        os.chmod(self.socket_path, 0o666)  # any uid may connect; the token is the identity
        log.info("llm.gateway.started", socket=str(self.socket_path), upstream=self.upstream.base_url,
                 model=self.upstream.model)
        return self

    def _wait_started(self) -> None:
        assert self._server and self._thread
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise GatewayError(f"gateway did not start on {self.socket_path}")
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving (graceful, then forced, each bounded) and remove the socket. Idempotent."""
        if self._state == "closed":
            return
        self._state = "closed"
        if self._server and self._thread:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        self.socket_path.unlink(missing_ok=True)

    # ---- grants ----------------------------------------------------------------------------
    def grant(self, candidate_id: str, *, transcript: Path, max_calls: int, max_tokens: int) -> Grant:
        """Mint a token for one candidate with its budget; calls are logged to `transcript` (JSONL)."""
        if self._state == "closed":
            raise GatewayError("gateway is closed")
        token = "evobox-" + secrets.token_urlsafe(24)
        transcript.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._grants[token] = _GrantState(candidate_id, Path(transcript), max_calls, max_tokens)
        env = {TOKEN_ENV: token, MODEL_ENV: self.upstream.model, SOCKET_ENV: f"{CONTAINER_DIR}/{SOCKET_NAME}"}
        return Grant(token, Mount(self.socket_dir, CONTAINER_DIR, read_only=True), env, candidate_id)

    def usage(self, token: str) -> Usage:
        """Calls and tokens the grant used so far, and their cost (cached replies cost 0)."""
        state = self._grant_state(token)
        with state.lock:
            return Usage(**vars(state.usage))

    def revoke(self, token: str) -> None:
        """Refuse any further call with this token (the candidate is done); usage stays readable."""
        self._grant_state(token).revoked = True

    @property
    def peak_concurrency(self) -> int:
        """Most upstream calls ever in flight at once (never above config.max_concurrency)."""
        return self._peak

    def _grant_state(self, token: str) -> _GrantState:
        with self._lock:
            state = self._grants.get(token)
        if state is None:
            raise KeyError("unknown grant token")
        return state

    # ---- HTTP ------------------------------------------------------------------------------
    def _app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
            limits = httpx.Limits(max_connections=self.config.max_concurrency,
                                  max_keepalive_connections=self.config.max_concurrency)
            async with httpx.AsyncClient(timeout=self.config.upstream_timeout_s, limits=limits) as http:
                self._http = http
                yield

        return Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"]),
                                 Route("/v1/models", self._models, methods=["GET"])], lifespan=lifespan)

    def _authorize(self, request: Request) -> _GrantState:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            state = self._grants.get(token.strip()) if scheme.lower() == "bearer" else None
        if state is None:
            raise _Reject(401, "missing or unknown bearer token (use evobox_llm.client())", "authentication_error",
                          retry=False)
        if state.revoked:
            raise _Reject(403, "this candidate's LLM access has ended", "permission_error", retry=False)
        return state

    async def _models(self, request: Request) -> Response:
        try:
            self._authorize(request)
        except _Reject as rej:
            return rej.response()
        return JSONResponse({"object": "list",
                             "data": [{"id": m, "object": "model", "owned_by": "evobox"} for m in self._allowed]})

    async def _chat(self, request: Request) -> Response:
        try:
            state = self._authorize(request)
        except _Reject as rej:
            log.warning("llm.gateway.unauthorized")
            return rej.response()
        started = time.perf_counter()
        body: dict[str, Any] | None = None
        reserved = 0
        try:
            body = await self._read_body(request)
            cache_key = self._cache_key(body)  # before budget clamping: a rerun hits whatever its budget
            reserved = self._reserve(state, body)
            return await self._serve(state, body, cache_key, started)
        except _Reject as rej:
            self._record(state, status=rej.status, body=body, error=rej.message, started=started)
            return rej.response()
        finally:
            if reserved:
                with state.lock:
                    state.reserved_tokens -= reserved

    async def _read_body(self, request: Request) -> dict[str, Any]:
        limit = self.config.max_request_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Reject(413, f"request body of {int(declared):,} bytes exceeds the gateway limit of {limit:,}",
                          "invalid_request_error", retry=False)
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise _Reject(413, f"request body exceeds the gateway limit of {limit:,} bytes",
                              "invalid_request_error", retry=False)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Reject(400, f"request body is not valid JSON: {exc}", "invalid_request_error",
                          retry=False) from None
        except RecursionError:
            raise _Reject(400, "request body is nested too deeply", "invalid_request_error", retry=False) from None
        self._validate(body)
        return body

    def _validate(self, body: Any) -> None:
        def bad(reason: str) -> _Reject:
            return _Reject(400, reason, "invalid_request_error", retry=False)

        if not isinstance(body, dict):
            raise bad("request body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise bad("'messages' must be a non-empty list")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise bad(f"messages[{i}] must be an object with a string 'role'")
        if body.get("stream"):
            raise bad("streaming is not supported by the evobox gateway; set stream=false")
        for key in ("max_tokens", "max_completion_tokens", "n"):
            value = body.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise bad(f"'{key}' must be a positive integer")
        model = body.get("model")
        if model is None:
            body["model"] = self.upstream.model
        elif not isinstance(model, str):
            raise bad("'model' must be a string")
        elif model not in self._allowed:
            if self.config.model_policy is ModelPolicy.REJECT:
                raise _Reject(403, f"model {model!r} is not allowed here; allowed: {', '.join(self._allowed)}",
                              "permission_error", retry=False)
            body["model"] = self.upstream.model

    def _reserve(self, state: _GrantState, body: dict[str, Any]) -> int:
        """Take one call from the budget and reserve completion tokens; clamp the request to them."""
        with state.lock:
            if state.calls_started >= state.max_calls:
                raise _Reject(429, f"LLM call budget spent: {state.calls_started} of {state.max_calls} calls used "
                                   f"by this candidate", "budget_exhausted", retry=False)
            left = state.max_tokens - state.usage.total_tokens - state.reserved_tokens
            if left <= 0:
                raise _Reject(429, f"LLM token budget spent: {state.usage.total_tokens:,} of {state.max_tokens:,} "
                                   "tokens used by this candidate", "budget_exhausted", retry=False)
            keys = [k for k in ("max_completion_tokens", "max_tokens") if body.get(k)] or ["max_tokens"]
            want = min(min(body.get(k) or self.config.default_max_tokens for k in keys), left)
            body.update({k: want for k in keys})
            reserved = want * int(body.get("n") or 1)
            state.calls_started += 1
            state.reserved_tokens += reserved
            return reserved

    async def _serve(self, state: _GrantState, body: dict[str, Any], cache_key: str | None,
                     started: float) -> Response:
        raw = self._cache_get(cache_key)
        cached = raw is not None
        status = 200
        if raw is None:
            status, raw = await self._forward(body)
        reply = _json_or_none(raw)
        if status != 200:
            raise self._upstream_error(status, reply)
        if not isinstance(reply, dict):
            raise _Reject(502, "upstream returned a reply that is not a JSON object", "upstream_error")
        usage = self._account(state, body["model"], reply, cached)
        if not cached:
            self._cache_put(cache_key, raw)
        self._record(state, status=200, body=body, reply=reply, usage=usage, cached=cached, started=started)
        return Response(raw, media_type="application/json")

    async def _forward(self, body: dict[str, Any]) -> tuple[int, bytes]:
        assert self._semaphore is not None and self._http is not None
        url = self.upstream.base_url.rstrip("/") + "/chat/completions"
        headers = {"authorization": f"Bearer {self.upstream.api_key}", "content-type": "application/json"}
        async with self._semaphore:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            try:
                response = await self._http.post(url, content=json.dumps(body).encode(), headers=headers)
            except httpx.TimeoutException:
                raise _Reject(504, f"upstream LLM timed out after {self.config.upstream_timeout_s:.0f}s",
                              "upstream_error") from None
            except httpx.HTTPError as exc:
                raise _Reject(502, f"upstream LLM unreachable ({type(exc).__name__})", "upstream_error") from None
            finally:
                self._in_flight -= 1
        return response.status_code, self._scrub(response.content)

    def _upstream_error(self, status: int, reply: Any) -> _Reject:
        if status in (401, 403):
            return _Reject(502, f"upstream refused the gateway's credentials (HTTP {status})", "upstream_error",
                           retry=False)
        message = ""
        if isinstance(reply, dict):
            inner = reply.get("error", reply)
            message = str(inner.get("message", "")) if isinstance(inner, dict) else str(inner)
        return _Reject(status if 400 <= status < 600 else 502, f"upstream LLM error (HTTP {status}): {message[:500]}",
                       "upstream_error", retry=status == 429 or status >= 500)

    def _account(self, state: _GrantState, model: str, reply: dict[str, Any], cached: bool) -> Usage:
        tokens = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
        prompt = _count(tokens.get("prompt_tokens"))
        completion = _count(tokens.get("completion_tokens"))
        usage = call_usage(model, prompt, completion, self.prices)
        if cached:
            usage.cost_usd = 0.0
        with state.lock:
            state.usage = state.usage + usage
        return usage

    def _scrub(self, raw: bytes) -> bytes:
        return raw.replace(self._secret, _REDACTED) if self._secret and self._secret in raw else raw

    # ---- cache and transcript --------------------------------------------------------------
    def _cache_key(self, body: dict[str, Any]) -> str | None:
        if self.config.cache_dir is None:
            return None
        # the URL is left out on purpose: the embedded server gets a new port on every run
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def _cache_file(self, key: str) -> Path:
        assert self.config.cache_dir is not None
        return self.config.cache_dir / key[:2] / f"{key}.json"

    def _cache_get(self, key: str | None) -> bytes | None:
        if key is None:
            return None
        try:
            return self._cache_file(key).read_bytes()
        except FileNotFoundError:
            return None

    def _cache_put(self, key: str | None, raw: bytes) -> None:
        if key is None:
            return
        path = self._cache_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the whole reply or none

    def _record(self, state: _GrantState, *, status: int, body: dict[str, Any] | None, started: float,
                reply: dict[str, Any] | None = None, usage: Usage | None = None, error: str | None = None,
                cached: bool = False) -> None:
        """Append one line to the grant's transcript: the request (never headers), the reply or error."""
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                 "candidate": state.candidate_id, "status": status, "cached": cached,
                 "duration_s": round(time.perf_counter() - started, 4), "request": body,
                 "reply": reply, "error": error, "usage": vars(usage) if usage else None}
        line = self._scrub(json.dumps(entry, default=str).encode()) + b"\n"
        with state.lock, state.transcript.open("ab") as fh:
            fh.write(line)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
