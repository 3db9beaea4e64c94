"""The LLM gateway: an OpenAI-compatible server on a unix socket for sandboxed candidates.

Candidates have no network; the only way out is <socket_dir>/gateway.sock, bind-mounted
read-only at /run/llm. Each candidate gets a grant: a bearer token minted here, with its own
budget of calls and tokens and its own capped JSONL transcript; `with gateway.grant(...) as
grant:` revokes it when the evaluation ends, however it ends. The gateway forwards to the
upstream endpoint with the real key, which never leaves this process.

Every candidate is treated as hostile; each protection lives in one module:

- `httpserver.py`: the HTTP/1.1 server (h11 + asyncio) with header, body, idle and write
  timeouts, head and body size caps, and per-uid and total connection caps (the uid read with
  SO_PEERCRED). Starting the gateway raises the process's soft RLIMIT_NOFILE to its hard limit
  and keeps the total connection cap at most half of it, so candidates cannot take the
  descriptors the engine needs to run and remove containers.
- `chatpolicy.py`: only an allow-list of request fields is forwarded (a request rebuilt from
  them), `n` is bounded, and the prompt's tokens are bounded from above before forwarding.
- here: budgets. A call reserves its prompt bound plus `n` x its completion limit, clamped to
  what the grant has left (in-flight calls included), so a grant's token budget is a hard cap
  within one call's rounding (the bound is bytes; the tokenizer's count replaces it after the
  reply, and an upstream that reports no usage is charged the reservation). Spent budgets get
  429 with `x-should-retry: false`, so the openai SDK does not retry.
- `fairslots.py`: `max_concurrency` upstream calls in flight (by default what the run asks for:
  `demand`, its threads x evaluation slots), handed out round robin between grants, so a candidate queueing many calls does not delay another's by more than one turn.
- `chatreply.py`: replies are rebuilt from known fields; upstream errors become a status and a
  fixed category (never the upstream's text).
- `secretguard.py`: a rebuilt reply that carries the key in any encoding a client could decode
  is withheld (502).
- `transcript.py`: the per-grant transcript is capped in bytes; refusals are one line without body.

Model allow-list: the upstream model and `GatewayConfig.allowed_models` are forwarded as
named; any other name is refused with 403 (policy `reject`, the default: a candidate cannot
pick a pricier model) or served by the upstream model (policy `map`). A request without a
model gets the upstream model. Streaming is not supported (400). The cache key is the request
as forwarded before budget clamping; cached replies count against the budget like fresh ones
(reruns behave the same) but cost nothing.

Run budget and health: with a `spend` hook (the run's budget over every role) a call is also
refused once the run's whole budget is spent, and each accounted call is reported to it. Per
grant the gateway counts upstream failures (5xx, 429, timeouts, connection errors; never a 4xx
the request provoked) and run-budget refusals (`health(token)`), so that the engine can tell an
outage or a spent run budget from the candidate's own failure (engine/search/settle.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import json
import os
import resource
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import structlog

from engine.llm.chatpolicy import ChatRequest, parse_chat_request
from engine.llm.chatreply import rebuild_reply, reported_usage, upstream_refusal
from engine.llm.config import GatewayConfig, ModelPolicy, Price, default_prices, upstream_concurrency
from engine.llm.endpoint import Endpoint
from engine.llm.errors import Refusal, RefusalKind
from engine.llm.fairslots import FairSlots
from engine.llm.httpserver import HttpRequest, HttpResponse, ServerLimits, UnixHttpServer, error_response
from engine.llm.secretguard import SecretGuard
from engine.llm.transcript import Transcript
from engine.llm.usage import SpendHook, Usage, call_usage
from engine.sandbox.runner import Mount

log = structlog.get_logger()

SOCKET_NAME = "gateway.sock"
CONTAINER_DIR = "/run/llm"
TOKEN_ENV = "EVOBOX_LLM_TOKEN"
MODEL_ENV = "EVOBOX_LLM_MODEL"
SOCKET_ENV = "EVOBOX_LLM_SOCKET"
_MAX_UDS_PATH = 107
_START_TIMEOUT_S = 15.0


class GatewayError(Exception):
    """The gateway could not start, or was used after close."""


class GatewayState(str, enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass
class Grant:
    """What a candidate's container needs to call the LLM: mount the socket dir, set the env.

    A context manager: leaving the `with` block revokes the token, so it dies with the evaluation
    it was minted for whether that ends well, fails or raises."""

    token: str
    mount: Mount          # socket_dir -> /run/llm, read-only
    env: dict[str, str]   # EVOBOX_LLM_TOKEN, EVOBOX_LLM_MODEL, EVOBOX_LLM_SOCKET
    candidate_id: str = ""
    _revoke: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def revoke(self) -> None:
        if self._revoke is not None:
            self._revoke(self.token)

    def __enter__(self) -> Grant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.revoke()


@dataclass
class _GrantState:
    candidate_id: str
    transcript: Transcript
    max_calls: int
    max_tokens: int
    usage: Usage = field(default_factory=Usage)
    calls_started: int = 0
    reserved_tokens: int = 0
    revoked: bool = False
    upstream_failures: int = 0  # 5xx, 429, timeouts, connection errors: the upstream's doing, or provoked
    run_budget_refusals: int = 0  # calls refused because the run's whole budget was spent
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class GrantHealth:
    """What went wrong for a grant that was not the candidate's plain doing: read after its
    container to tell an outage or a spent run budget from the candidate's own failure."""

    upstream_failures: int
    run_budget_refusals: int


class Gateway:
    """`with Gateway(upstream, socket_dir) as gw: grant = gw.grant(...)`. Usable once."""

    def __init__(self, upstream: Endpoint, socket_dir: Path, *, config: GatewayConfig | None = None,
                 prices: Mapping[str, Price] | None = None, spend: SpendHook | None = None,
                 demand: int | None = None):
        """`demand`: upstream calls the run will have in flight at once (each candidate's threads x
        evaluation slots); the concurrency limit follows it unless the config sets one."""
        self.upstream = upstream
        self.spend = spend  # the run's budget over every role; None: only per-grant budgets
        self.socket_dir = Path(socket_dir)
        self.config = config or GatewayConfig()
        self.max_concurrency = upstream_concurrency(self.config, demand)
        self.prices = dict(default_prices() if prices is None else prices)
        self._grants: dict[str, _GrantState] = {}
        self._lock = threading.Lock()
        self._state = GatewayState.NEW
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._guard = SecretGuard(upstream.api_key)
        self._allowed = [upstream.model, *[m for m in self.config.allowed_models if m != upstream.model]]
        self._in_flight = 0
        self._peak = 0
        self._slots: FairSlots | None = None
        self._http: httpx.AsyncClient | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def socket_path(self) -> Path:
        return self.socket_dir / SOCKET_NAME

    def __enter__(self) -> Gateway:
        if self._state is not GatewayState.NEW:
            raise GatewayError(f"gateway is {self._state.value}; a Gateway is usable once, create a new one")
        if len(str(self.socket_path)) > _MAX_UDS_PATH:
            raise GatewayError(f"socket path too long for a unix socket ({len(str(self.socket_path))} > "
                               f"{_MAX_UDS_PATH} bytes): {self.socket_path}")
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o755)  # a non-root uid in the container must traverse it
        self.socket_path.unlink(missing_ok=True)
        self._state = GatewayState.RUNNING
        self._thread = threading.Thread(target=self._run, args=(self._server_limits(),), name="evobox-llm-gateway",
                                        daemon=True)
        self._thread.start()
        if not self._started.wait(_START_TIMEOUT_S) or self._failure is not None:
            self.close()
            raise GatewayError(f"gateway did not start on {self.socket_path}: {self._failure!r}")
        log.info("llm.gateway.started", socket=str(self.socket_path), upstream=self.upstream.base_url,
                 model=self.upstream.model, max_concurrency=self.max_concurrency)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving (open connections are closed, in-flight calls cancelled) and remove the socket.
        Idempotent."""
        if self._state is GatewayState.CLOSED:
            return
        self._state = GatewayState.CLOSED
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=15)
        self.socket_path.unlink(missing_ok=True)

    def _server_limits(self) -> ServerLimits:
        """The HTTP server's limits; the total connection cap stays under half the open-file limit."""
        c = self.config
        room = _raise_nofile_limit() // 2
        if c.max_connections > room:
            log.warning("llm.gateway.connections_capped", configured=c.max_connections, cap=room,
                        reason="half of RLIMIT_NOFILE is kept for the engine")
        return ServerLimits(header_timeout_s=c.header_timeout_s, idle_timeout_s=c.idle_timeout_s,
                            body_timeout_s=c.body_timeout_s, write_timeout_s=c.write_timeout_s,
                            max_header_bytes=c.max_header_bytes, max_body_bytes=c.max_request_bytes,
                            max_connections=min(c.max_connections, room),
                            max_connections_per_peer=c.max_connections_per_peer)

    def _run(self, limits: ServerLimits) -> None:
        try:
            asyncio.run(self._serve(limits))
        except BaseException as exc:  # reported by __enter__ when it happens at start
            self._failure = exc
            log.error("llm.gateway.crashed", error=repr(exc))
        finally:
            self._started.set()

    async def _serve(self, limits: ServerLimits) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._slots = FairSlots(self.max_concurrency)
        pool = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
        async with httpx.AsyncClient(timeout=self.config.upstream_timeout_s, limits=pool) as http:
            self._http = http
            server = UnixHttpServer(self._handle, limits)
            await server.start(self.socket_path)
            self._started.set()
            try:
                await self._stop.wait()
            finally:
                await server.close()

    # ---- grants ----------------------------------------------------------------------------
    def grant(self, candidate_id: str, *, transcript: Path, max_calls: int, max_tokens: int) -> Grant:
        """Mint a token for one candidate with its budget; calls are logged to `transcript` (JSONL).
        Use it as a context manager (`with gw.grant(...) as grant:`) so it is revoked at the end."""
        if self._state is GatewayState.CLOSED:
            raise GatewayError("gateway is closed")
        token = "evobox-" + secrets.token_urlsafe(24)
        record = Transcript(Path(transcript), self.config.transcript_max_bytes)
        with self._lock:
            self._grants[token] = _GrantState(candidate_id, record, max_calls, max_tokens)
        env = {TOKEN_ENV: token, MODEL_ENV: self.upstream.model, SOCKET_ENV: f"{CONTAINER_DIR}/{SOCKET_NAME}"}
        return Grant(token, Mount(self.socket_dir, CONTAINER_DIR, read_only=True), env, candidate_id, self.revoke)

    def usage(self, token: str) -> Usage:
        """Calls and tokens the grant used so far, and their cost (cached replies cost 0)."""
        state = self._grant_state(token)
        with state.lock:
            return state.usage

    def health(self, token: str) -> GrantHealth:
        """Upstream failures and run-budget refusals this grant saw so far."""
        state = self._grant_state(token)
        with state.lock:
            return GrantHealth(state.upstream_failures, state.run_budget_refusals)

    def revoke(self, token: str) -> None:
        """Refuse any further call with this token (the candidate is done); usage stays readable."""
        self._grant_state(token).revoked = True

    @property
    def peak_concurrency(self) -> int:
        """Most upstream calls ever in flight at once (never above max_concurrency)."""
        return self._peak

    def _grant_state(self, token: str) -> _GrantState:
        with self._lock:
            state = self._grants.get(token)
        if state is None:
            raise KeyError("unknown grant token")
        return state

    # ---- HTTP ------------------------------------------------------------------------------
    async def _handle(self, request: HttpRequest) -> HttpResponse:
        route = (request.method, request.path)
        if route == ("POST", "/v1/chat/completions"):
            return await self._chat(request)
        if route == ("GET", "/v1/models"):
            return self._models(request)
        return error_response(404, f"no route {request.method} {request.path[:100]}: the gateway serves "
                                   "POST /v1/chat/completions and GET /v1/models")

    def _authorize(self, request: HttpRequest) -> _GrantState:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            state = self._grants.get(token.strip()) if scheme.lower() == "bearer" else None
        if state is None:
            raise Refusal(401, "missing or unknown bearer token (use evobox_llm.client())", RefusalKind.AUTHENTICATION)
        if state.revoked:
            raise Refusal(403, "this candidate's LLM access has ended", RefusalKind.PERMISSION)
        return state

    def _models(self, request: HttpRequest) -> HttpResponse:
        try:
            self._authorize(request)
        except Refusal as rej:
            return _refusal_response(rej)
        models = {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "evobox"} for m in self._allowed]}
        return HttpResponse(200, json.dumps(models).encode())

    async def _chat(self, request: HttpRequest) -> HttpResponse:
        try:
            state = self._authorize(request)
        except Refusal as rej:
            log.warning("llm.gateway.unauthorized", status=rej.status, peer_uid=request.peer_uid)
            return _refusal_response(rej)
        started = time.perf_counter()
        reserved = 0
        try:
            chat = parse_chat_request(request.body, max_n=self.config.max_n,
                                      default_max_tokens=self.config.default_max_tokens)
            self._resolve_model(chat.body)
            cache_key = self._cache_key(chat.body)  # before budget clamping: a rerun hits whatever its budget
            reserved = self._reserve(state, chat)
            reply, usage, cached = await self._complete(state, chat, cache_key)
        except Refusal as rej:
            if rej.kind is RefusalKind.UPSTREAM and (rej.status == 429 or rej.status >= 500):
                with state.lock:
                    state.upstream_failures += 1
            self._record_refusal(state, rej, started)
            return _refusal_response(rej)
        finally:
            if reserved:
                with state.lock:
                    state.reserved_tokens -= reserved
        state.transcript.append({**_stamp(state, 200, started), "cached": cached, "request": chat.body,
                                 "reply": reply, "usage": usage.to_json()})
        return HttpResponse(200, json.dumps(reply).encode())

    def _resolve_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model is None:
            body["model"] = self.upstream.model
        elif model not in self._allowed:
            if self.config.model_policy is ModelPolicy.REJECT:
                raise Refusal(403, f"model {model!r} is not allowed here; allowed: {', '.join(self._allowed)}",
                              RefusalKind.PERMISSION)
            body["model"] = self.upstream.model

    def _reserve(self, state: _GrantState, chat: ChatRequest) -> int:
        """Take one call from the budget and reserve prompt bound + n x completion limit, the
        completion limit clamped to what the grant has left. Refused outright once the run's whole
        budget is spent (the `spend` hook)."""
        refusal = self.spend.refusal() if self.spend is not None else None
        if refusal:
            with state.lock:
                state.run_budget_refusals += 1
            raise Refusal(429, f"the run's LLM budget is spent ({refusal})", RefusalKind.BUDGET)
        with state.lock:
            if state.calls_started >= state.max_calls:
                raise Refusal(429, f"LLM call budget spent: {state.calls_started} of {state.max_calls} calls used "
                                   "by this candidate", RefusalKind.BUDGET)
            left = state.max_tokens - state.usage.total_tokens - state.reserved_tokens
            if left <= 0:
                raise Refusal(429, f"LLM token budget spent: {state.usage.total_tokens:,} of {state.max_tokens:,} "
                                   "tokens used by this candidate", RefusalKind.BUDGET)
            completion = min(chat.completion_cap, (left - chat.prompt_bound) // chat.n)
            if completion < 1:
                raise Refusal(429, f"LLM token budget: this prompt may take up to {chat.prompt_bound:,} tokens "
                                   f"(counted as UTF-8 bytes) and {left:,} of {state.max_tokens:,} are left for "
                                   "this candidate (calls in flight included): send shorter inputs",
                              RefusalKind.BUDGET)
            reserved = chat.clamp(completion)
            state.calls_started += 1
            state.reserved_tokens += reserved
            return reserved

    async def _complete(self, state: _GrantState, chat: ChatRequest,
                        cache_key: str | None) -> tuple[dict[str, Any], Usage, bool]:
        """The rebuilt reply, what it cost, whether it came from the cache. Tokens the upstream spent
        are charged even when the reply is then withheld."""
        upstream_reply = self._cache_get(cache_key)
        cached = upstream_reply is not None
        if upstream_reply is None:
            status, upstream_reply = await self._forward(chat.body, state)
            if status != 200:
                raise upstream_refusal(status, upstream_reply)
        prompt, completion = reported_usage(upstream_reply)
        completion_limit = max(chat.body.get(key, 0) for key in chat.completion_keys)
        prompt = chat.prompt_bound if prompt is None else prompt  # no usage reported: charge the reservation
        completion = chat.n * completion_limit if completion is None else completion
        reply = rebuild_reply(upstream_reply, chat.body["model"], prompt, completion)
        usage = self._account(state, chat.body["model"], prompt, completion, cached)
        if self._leaks(reply):
            log.warning("llm.gateway.key_withheld", candidate=state.candidate_id)
            raise Refusal(502, "the upstream reply was withheld: it contained the gateway's credentials",
                          RefusalKind.UPSTREAM)
        if not cached:
            self._cache_put(cache_key, reply)
        return reply, usage, cached

    async def _forward(self, body: dict[str, Any], state: _GrantState) -> tuple[int, Any]:
        assert self._slots is not None and self._http is not None
        url = self.upstream.base_url.rstrip("/") + "/chat/completions"
        headers = {"authorization": f"Bearer {self.upstream.api_key}", "content-type": "application/json"}
        async with self._slots.slot(id(state)):  # fair between grants: one cannot queue ahead of all others
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            try:
                response = await self._http.post(url, content=json.dumps(body).encode(), headers=headers)
            except httpx.TimeoutException:
                raise Refusal(504, f"upstream LLM timed out after {self.config.upstream_timeout_s:.0f}s",
                              RefusalKind.UPSTREAM, retry=True) from None
            except httpx.HTTPError as exc:
                raise Refusal(502, f"upstream LLM unreachable ({type(exc).__name__})", RefusalKind.UPSTREAM,
                              retry=True) from None
            finally:
                self._in_flight -= 1
        return response.status_code, _json_or_none(response.content)

    def _account(self, state: _GrantState, model: str, prompt: int, completion: int, cached: bool) -> Usage:
        usage = call_usage(model, prompt, completion, self.prices)
        if cached:
            usage = dataclasses.replace(usage, cost_usd=0.0)
        with state.lock:
            state.usage = state.usage + usage
        if self.spend is not None:
            self.spend.record(state.candidate_id, usage)
        return usage

    def _leaks(self, reply: dict[str, Any]) -> bool:
        """Checks every string the upstream chose (the rest of a rebuilt reply is the gateway's own)."""
        return bool(self._guard) and self._guard.leaks("\n".join(_upstream_strings(reply)))

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

    def _cache_get(self, key: str | None) -> Any:
        if key is None:
            return None
        try:
            return _json_or_none(self._cache_file(key).read_bytes())
        except FileNotFoundError:
            return None

    def _cache_put(self, key: str | None, reply: dict[str, Any]) -> None:
        """Stores the rebuilt reply (never upstream bytes); replayed through the same rebuild and checks."""
        if key is None:
            return
        path = self._cache_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(json.dumps(reply).encode())
        os.replace(tmp, path)  # atomic: a concurrent reader sees the whole reply or none

    def _record_refusal(self, state: _GrantState, refusal: Refusal, started: float) -> None:
        """One short line, never the request: a refused body is whatever a hostile candidate sent."""
        state.transcript.append({**_stamp(state, refusal.status, started), "error": refusal.message[:300]})


def _stamp(state: _GrantState, status: int, started: float) -> dict[str, Any]:
    return {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "candidate": state.candidate_id,
            "status": status, "duration_s": round(time.perf_counter() - started, 4)}


def _refusal_response(refusal: Refusal) -> HttpResponse:
    return error_response(refusal.status, refusal.message, kind=refusal.kind.value, retry=refusal.retry,
                          code=refusal.code)


def _upstream_strings(reply: dict[str, Any]) -> list[str]:
    texts = [reply["id"]]
    for choice in reply["choices"]:
        texts += [text for text in (choice["message"]["content"], choice["message"].get("refusal")) if text]
    return texts


def _raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard one (the engine's own descriptors must not be what
    candidates' connections use up); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("llm.gateway.nofile_not_raised", soft=soft, hard=hard, error=str(exc))
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
