"""Inside a candidate's sandbox: the way to the evobox LLM gateway.

Copied by domains into the candidate image as `evobox_llm.py`; self-contained on purpose
(imports only the standard library and httpx; openai only when `client()` is called). The
container has no network: the transport is the gateway's unix socket, and the key is the
candidate's grant token (the real API key never enters the sandbox). Agent code calls the LLM
exactly as outside:

    import evobox_llm
    reply = evobox_llm.client().chat.completions.create(model=evobox_llm.MODEL, messages=[...])

`chat(body)` is the same call without the openai SDK, for the domain's own framework (every
LLMAgentBase call): importing the SDK costs about a second of CPU per container (four on a
loaded 2-core machine), paid again by every candidate, while the framework needs one POST and
the SDK's retry rule, which `chat` keeps (connection errors, 408, 409, 429 and 5xx are retried
with backoff unless the gateway says `x-should-retry: false`, as it does for spent budgets).
"""

import json
import os
import random
import threading
import time

import httpx

DEFAULT_SOCKET = "/run/llm/gateway.sock"
MODEL = os.environ.get("EVOBOX_LLM_MODEL", "")
BASE_URL = "http://gateway/v1"  # the host name is ignored: every request goes through the socket
# The gateway caps open connections per sandbox (64 by default) and answers more with 503: the
# pool stays below it, so an agent with many threads queues here instead of being refused.
MAX_CONNECTIONS = 32
RETRIES = 2  # as the openai SDK's default
_RETRY_STATUS = {408, 409, 429}
_lock = threading.Lock()
_http = None
_http_key = None


class ChatError(Exception):
    """The gateway (or the upstream through it) refused or failed a call: its status and the
    OpenAI-shaped error's type, code and message."""

    def __init__(self, status: int, kind: str, code, message: str):
        super().__init__(f"Error code: {status} - {message}")
        self.status, self.type, self.code, self.message = status, kind, code, message


def _token() -> str:
    token = os.environ.get("EVOBOX_LLM_TOKEN")
    if not token:
        raise RuntimeError("EVOBOX_LLM_TOKEN is not set: this sandbox was not granted LLM access")
    return token


def _transport() -> httpx.HTTPTransport:
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
    return httpx.HTTPTransport(uds=os.environ.get("EVOBOX_LLM_SOCKET", DEFAULT_SOCKET), limits=limits)


def client(*, timeout: float = 600.0, max_retries: int = RETRIES):
    """An openai.OpenAI bound to the gateway socket, authenticated with this candidate's token."""
    import openai  # here, not at import: the framework's own calls go through chat()

    return openai.OpenAI(base_url=BASE_URL, api_key=_token(), max_retries=max_retries,
                         http_client=httpx.Client(transport=_transport(), timeout=timeout))


def _shared_http() -> httpx.Client:
    """One pooled client for all of chat()'s threads (made again if the token or socket changed)."""
    global _http, _http_key
    key = (_token(), os.environ.get("EVOBOX_LLM_SOCKET"))
    with _lock:
        if _http is None or _http_key != key:
            _http = httpx.Client(transport=_transport(), base_url=BASE_URL, timeout=600.0,
                                 headers={"authorization": f"Bearer {key[0]}"})
            _http_key = key
        return _http


def _error(response: httpx.Response) -> ChatError:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    return ChatError(response.status_code, str(error.get("type") or ""), error.get("code"),
                     str(error.get("message") or response.text[:300]))


def _retryable(response: httpx.Response) -> bool:
    if response.headers.get("x-should-retry") == "false":
        return False
    return response.status_code in _RETRY_STATUS or response.status_code >= 500


def chat(body: dict) -> dict:
    """POST /chat/completions with `body` (model defaults to MODEL, else the gateway's); the reply's JSON."""
    http = _shared_http()
    payload = json.dumps({**({"model": MODEL} if MODEL else {}), **body})
    for attempt in range(RETRIES + 1):
        last = attempt == RETRIES
        try:
            response = http.post("/chat/completions", content=payload, headers={"content-type": "application/json"})
        except httpx.TransportError:
            if last:
                raise
        else:
            if response.status_code == 200:
                return response.json()
            if last or not _retryable(response):
                raise _error(response)
        time.sleep(min(8.0, 0.5 * 2 ** attempt) * (0.75 + random.random() / 4))
    raise AssertionError("unreachable")
