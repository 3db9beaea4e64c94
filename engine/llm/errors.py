"""Typed errors of the LLM layer."""

from __future__ import annotations

import enum
from typing import Any


class LLMError(Exception):
    """Base of every LLM-layer error."""


class LLMCallError(LLMError):
    """The server could not give an answer (after retries, for transient errors). Not the candidate's
    fault: the search should treat it as an infrastructure failure."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class LLMReplyError(LLMError):
    """The reply could not be read; `reason` is phrased so the caller can show it to the LLM."""

    def __init__(self, reason: str, raw_text: str = "", usage: Any = None):
        super().__init__(reason)
        self.reason = reason
        self.raw_text = raw_text
        self.usage = usage  # what the unreadable call cost (engine.llm.usage.Usage), when known


class RefusalKind(str, enum.Enum):
    """The `type` of a gateway refusal, as an OpenAI-shaped error body carries it."""

    INVALID_REQUEST = "invalid_request_error"
    AUTHENTICATION = "authentication_error"
    PERMISSION = "permission_error"
    BUDGET = "budget_exhausted"
    UPSTREAM = "upstream_error"


class Refusal(LLMError):
    """The gateway's answer to a call it will not (or could not) serve; `message` is written for the
    candidate and the LLM behind it, never copied from upstream. `retry` False adds
    `x-should-retry: false` so the openai SDK gives up at once."""

    def __init__(self, status: int, message: str, kind: RefusalKind, *, retry: bool = False,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.retry, self.code = status, message, kind, retry, code
