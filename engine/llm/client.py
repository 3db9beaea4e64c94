"""The engine's LLM client: the openai SDK with retries, JSON replies, usage and cost.

Works with any OpenAI-compatible server. Retries (tenacity, exponential backoff with jitter,
honouring Retry-After) cover rate limits, timeouts, connection errors and 5xx, never other
4xx; the SDK's own retries are off so there is one retry policy. JSON replies ask for
`response_format` json_schema, fall back to json_object, then to plain text, remembering what
the server accepted, and are always read leniently (engine.llm.jsonreply).
"""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import openai
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from engine.llm.config import Price, RoleConfig, default_prices
from engine.llm.endpoint import Endpoint
from engine.llm.errors import LLMCallError, LLMError, LLMReplyError
from engine.llm.jsonreply import parse_json_object
from engine.llm.usage import Budget, Usage, call_usage

__all__ = ["Budget", "ChatReply", "JsonMode", "LLMCallError", "LLMClient", "LLMError", "LLMReplyError", "Usage"]

log = structlog.get_logger()


class JsonMode(str, enum.Enum):
    """How JSON is asked for, from most to least constrained."""

    SCHEMA = "json_schema"
    OBJECT = "json_object"
    PLAIN = "plain"


_FALLBACK = {JsonMode.SCHEMA: JsonMode.OBJECT, JsonMode.OBJECT: JsonMode.PLAIN}


@dataclass
class ChatReply:
    """One answer: its text, what it cost, and the parsed object for chat_json."""

    text: str
    usage: Usage
    data: dict[str, Any] | None = None
    finish_reason: str | None = None
    json_mode: JsonMode | None = field(default=None)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: rate limit, timeout, connection error, any 5xx. Other 4xx never are."""
    if isinstance(exc, (openai.RateLimitError, openai.APIConnectionError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


class LLMClient:
    """Chat with one role's endpoint. Thread-safe; `total` is the running usage of this client."""

    def __init__(self, endpoint: Endpoint, role: RoleConfig, prices: Mapping[str, Price] | None = None):
        self.endpoint = endpoint
        self.role = role
        self.prices = dict(default_prices() if prices is None else prices)
        self._sdk = openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key,
                                  timeout=role.timeout_s, max_retries=0)
        self._lock = threading.Lock()
        self._total = Usage()
        self._json_mode = JsonMode.SCHEMA

    @property
    def total(self) -> Usage:
        with self._lock:
            return self._total

    @property
    def json_mode(self) -> JsonMode:
        """The most constrained JSON mode this server accepted so far."""
        return self._json_mode

    def chat(self, messages: list[dict[str, Any]], **overrides: Any) -> ChatReply:
        """One completion; `overrides` go to the API as is (model, temperature, max_tokens, stop...)."""
        request = {"model": self.endpoint.model, "temperature": self.role.temperature,
                   "max_tokens": self.role.max_tokens, **overrides, "messages": messages}
        response = self._with_retries(request)
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice else ""
        tokens = response.usage
        usage = call_usage(request["model"], tokens.prompt_tokens if tokens else 0,
                           tokens.completion_tokens if tokens else 0, self.prices)
        with self._lock:
            self._total = self._total + usage
        return ChatReply(text, usage, finish_reason=choice.finish_reason if choice else None)

    def chat_json(self, messages: list[dict[str, Any]], schema: dict[str, Any] | None = None,
                  **overrides: Any) -> ChatReply:
        """A completion read as a JSON object (with the schema's top-level `required` keys).

        Raises LLMReplyError (with a reason for the LLM) when no such object can be read.
        """
        mode = self._json_mode if schema is not None or self._json_mode is not JsonMode.SCHEMA else JsonMode.OBJECT
        while True:
            try:
                reply = self.chat(messages, **_response_format(mode, schema), **overrides)
                break
            except LLMCallError as exc:
                if exc.status not in (400, 422) or mode not in _FALLBACK:
                    raise
                log.info("llm.json_mode_fallback", rejected=mode.value, next=_FALLBACK[mode].value,
                         base_url=self.endpoint.base_url)
                mode = _FALLBACK[mode]
        if schema is not None or mode is not JsonMode.OBJECT:
            self._json_mode = mode  # remember only what actually worked
        required = schema.get("required", []) if schema else []
        try:
            reply.data = parse_json_object(reply.text, required=required)
        except LLMReplyError as exc:
            exc.usage = reply.usage
            raise
        reply.json_mode = mode
        return reply

    def _with_retries(self, request: dict[str, Any]) -> Any:
        retrying = Retrying(stop=stop_after_attempt(self.role.max_retries + 1), wait=self._wait,
                            retry=retry_if_exception(is_transient), reraise=True, before_sleep=self._log_retry)
        try:
            return retrying(self._sdk.chat.completions.create, **request)
        except openai.APIStatusError as exc:
            raise LLMCallError(f"LLM call failed: HTTP {exc.status_code}: {_message(exc)}",
                               status=exc.status_code, attempts=_attempts(retrying)) from exc
        except openai.APIConnectionError as exc:
            raise LLMCallError(f"LLM call failed: {type(exc).__name__}: {exc} ({self.endpoint.base_url})",
                               attempts=_attempts(retrying)) from exc

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the server gives one (capped), else exponential backoff with full jitter."""
        exc = state.outcome.exception() if state.outcome else None
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        if header:
            try:
                return min(max(float(header), 0.0), self.role.retry_max_s)
            except ValueError:
                pass
        return wait_random_exponential(multiplier=self.role.retry_initial_s, max=self.role.retry_max_s)(state)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("llm.retry", attempt=state.attempt_number, error=type(exc).__name__,
                    status=getattr(exc, "status_code", None), base_url=self.endpoint.base_url)


def _response_format(mode: JsonMode, schema: dict[str, Any] | None) -> dict[str, Any]:
    if mode is JsonMode.SCHEMA and schema is not None:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title", "reply")))[:64] or "reply"
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": name, "schema": schema, "strict": False}}}
    if mode in (JsonMode.SCHEMA, JsonMode.OBJECT):
        return {"response_format": {"type": "json_object"}}
    return {}


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
    return str(exc.message)[:500]


def _attempts(retrying: Retrying) -> int:
    return int(retrying.statistics.get("attempt_number", 1))
