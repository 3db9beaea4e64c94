"""What a candidate gets back from upstream: a reply rebuilt from known fields, or a fixed error.

Upstream bytes are never relayed. A successful reply is rebuilt from the chat-completion fields
the gateway knows (id, created, choices' role/content/refusal/finish_reason, usage), so a field
an upstream or proxy adds (headers echoed into JSON, debug data, the key) cannot pass. An error
becomes its status and a fixed category in the gateway's own words: an upstream error message
may quote the request's credentials, and the candidate gains nothing from it that a category
does not say. The one error worth telling apart is a prompt longer than the model's context,
so an agent can learn to send less; it gets the code `context_length_exceeded` (OpenAI's).
"""

from __future__ import annotations

import time
from typing import Any

from engine.llm.errors import Refusal, RefusalKind

FINISH_REASONS = frozenset({"stop", "length", "content_filter"})
_CONTEXT_HINTS = ("context length", "context window", "context size", "maximum context", "too many tokens",
                  "exceed_context_size", "context_length_exceeded")
_MAX_ID_CHARS = 128


def rebuild_reply(reply: Any, model: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The reply as the gateway returns it; `usage` is what the grant was charged."""
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(choices, list) or not choices:
        raise Refusal(502, "upstream returned a reply the gateway cannot read", RefusalKind.UPSTREAM, retry=True)
    reply_id, created = reply.get("id"), reply.get("created")
    return {
        "id": reply_id if isinstance(reply_id, str) and len(reply_id) <= _MAX_ID_CHARS else "chatcmpl-evobox",
        "object": "chat.completion",
        "created": created if isinstance(created, int) and not isinstance(created, bool) else int(time.time()),
        "model": model,
        "choices": [_choice(i, choice) for i, choice in enumerate(choices)],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _choice(index: int, choice: Any) -> dict[str, Any]:
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = message.get("content")
    rebuilt: dict[str, Any] = {"role": "assistant", "content": content if isinstance(content, str) else None}
    if isinstance(message.get("refusal"), str):
        rebuilt["refusal"] = message["refusal"]
    finish = choice.get("finish_reason")
    return {"index": index, "message": rebuilt, "finish_reason": finish if finish in FINISH_REASONS else "stop"}


def reported_usage(reply: Any) -> tuple[int | None, int | None]:
    """(prompt, completion) tokens as the upstream reported them; None where it did not."""
    usage = reply.get("usage") if isinstance(reply, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def upstream_refusal(status: int, reply: Any) -> Refusal:
    """The candidate's view of an upstream error: status and category, never the upstream's text."""
    if status in (401, 403):
        return Refusal(502, f"upstream refused the gateway's credentials (HTTP {status})", RefusalKind.UPSTREAM)
    if status == 429:
        return Refusal(429, "upstream LLM rate limit (HTTP 429); retry later", RefusalKind.UPSTREAM, retry=True)
    if status in (408, 504):
        return Refusal(504, f"upstream LLM timed out (HTTP {status})", RefusalKind.UPSTREAM, retry=True)
    if 500 <= status < 600:
        return Refusal(status, f"upstream LLM unavailable (HTTP {status})", RefusalKind.UPSTREAM, retry=True)
    if 400 <= status < 500 and _context_too_long(reply):
        return Refusal(400, "the prompt is longer than the model's context window: send shorter inputs",
                       RefusalKind.INVALID_REQUEST, code="context_length_exceeded")
    if 400 <= status < 500:
        return Refusal(status, f"upstream LLM rejected the request (HTTP {status})", RefusalKind.UPSTREAM)
    return Refusal(502, f"upstream LLM answered HTTP {status}", RefusalKind.UPSTREAM, retry=True)


def _context_too_long(reply: Any) -> bool:
    """OpenAI's code, vLLM's and llama.cpp's wording: read here, never relayed."""
    error = reply.get("error", reply) if isinstance(reply, dict) else reply
    if not isinstance(error, dict):
        return any(hint in str(error).lower() for hint in _CONTEXT_HINTS)
    text = " ".join(str(error.get(key, "")) for key in ("code", "type", "message"))
    return any(hint in text.lower() for hint in _CONTEXT_HINTS)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
