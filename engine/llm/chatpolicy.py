"""What a candidate may ask the LLM for: the request allow-list and the conservative prompt bound.

The gateway forwards a request it rebuilt from these fields only, never the candidate's JSON:

| field | forwarded as |
| --- | --- |
| `messages` | each message rebuilt as `role` (system, developer, user, assistant), `content` (a string or a list of `{"type": "text", "text": ...}` parts), optional `name` |
| `model` | checked against the allow-list by the gateway |
| `temperature`, `top_p`, `presence_penalty`, `frequency_penalty`, `seed`, `stop`, `logit_bias` | as given (type-checked): they change what is sampled, not what it costs |
| `max_tokens`, `max_completion_tokens` | clamped to the grant's budget |
| `n` | at most `GatewayConfig.max_n`; multiplies the completion reservation |
| `response_format` | as given (its JSON counts in the prompt bound: a schema is prompt tokens) |
| `stream` | only `false` (replies are rebuilt whole) |

Everything else is refused with 400 naming the field. Some change the cost outside the token
budget (`service_tier`, `store`, `prediction`, `reasoning_effort`, `audio`, `modalities`,
`web_search_options`, `metadata`); `tools`/`functions` add prompt tokens and tool replies the
gateway does not rebuild; `logprobs`/`top_logprobs` add reply fields it does not rebuild;
non-text message parts (images, audio, files) cost tokens that bytes cannot bound. A new field
enters here with its cost and its reply shape thought through.

The prompt bound: a tokenizer the gateway does not know turns text into tokens, and the byte
pair encodings used by OpenAI-compatible models (byte-level BPE, SentencePiece with byte
fallback) never make more tokens than UTF-8 bytes, so bytes of every text that reaches the model
plus a per-message and a per-request allowance for the chat template bound the prompt tokens
from above before the call is made.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from typing import Any

from engine.llm.errors import Refusal, RefusalKind

TEMPLATE_TOKENS_PER_MESSAGE = 8    # role markers and separators of a chat template
TEMPLATE_TOKENS_PER_REQUEST = 64   # a template's default system text and the reply primer


class MessageRole(str, enum.Enum):
    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"


SAMPLING_FIELDS: dict[str, tuple[type, ...]] = {
    "temperature": (int, float), "top_p": (int, float), "presence_penalty": (int, float),
    "frequency_penalty": (int, float), "seed": (int,), "stop": (str, list), "logit_bias": (dict,),
}
LIMIT_FIELDS = ("max_tokens", "max_completion_tokens", "n")
ALLOWED_FIELDS = frozenset({"messages", "model", "response_format", "stream", *SAMPLING_FIELDS, *LIMIT_FIELDS})


@dataclass
class ChatRequest:
    """A request fit to forward: `body` has allowed fields only; `prompt_bound` >= its prompt tokens."""

    body: dict[str, Any]
    prompt_bound: int
    n: int
    completion_keys: list[str]  # which of max_tokens / max_completion_tokens the candidate set
    completion_cap: int         # the candidate's completion limit (default when unset)

    def clamp(self, completion: int) -> int:
        """Set the completion limit to `completion`; returns the tokens this call reserves."""
        self.body.update({key: completion for key in self.completion_keys})
        return self.prompt_bound + self.n * completion


def parse_chat_request(raw: bytes, *, max_n: int, default_max_tokens: int) -> ChatRequest:
    """The candidate's JSON as a ChatRequest, or a Refusal (400) naming what is wrong."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise _bad("request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    refused = sorted(set(body) - ALLOWED_FIELDS)
    if refused:
        raise _bad(f"field {refused[0]!r} is not allowed by the evobox gateway (allowed: "
                   f"{', '.join(sorted(ALLOWED_FIELDS))})")
    if body.get("stream") not in (None, False):
        raise _bad("streaming is not supported by the evobox gateway; set stream=false")
    messages = [_message(i, m) for i, m in enumerate(_messages(body.get("messages")))]
    forward: dict[str, Any] = {"messages": messages}
    if body.get("model") is not None:
        if not isinstance(body["model"], str):
            raise _bad("'model' must be a string")
        forward["model"] = body["model"]
    for key, types in SAMPLING_FIELDS.items():
        if body.get(key) is not None:
            forward[key] = _typed(key, body[key], types)
    if body.get("response_format") is not None:
        forward["response_format"] = _typed("response_format", body["response_format"], (dict,))
    limits = {key: _positive(key, body.get(key)) for key in LIMIT_FIELDS if body.get(key) is not None}
    n = limits.pop("n", 1)
    if n > max_n:
        raise _bad(f"'n' is {n}; the evobox gateway allows at most {max_n} choices per call")
    if n > 1:
        forward["n"] = n
    keys = list(limits) or ["max_tokens"]
    return ChatRequest(forward, _prompt_bound(forward), n, keys, min(limits.values(), default=default_max_tokens))


def _messages(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _bad("'messages' must be a non-empty list")
    return value


def _message(index: int, message: Any) -> dict[str, Any]:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise _bad(f"messages[{index}] must be an object with a string 'role'")
    try:
        role = MessageRole(message["role"])
    except ValueError:
        raise _bad(f"messages[{index}]: role {message['role']!r} is not allowed (allowed: "
                   f"{', '.join(r.value for r in MessageRole)})") from None
    extra = sorted(set(message) - {"role", "content", "name"})
    if extra:
        raise _bad(f"messages[{index}]: field {extra[0]!r} is not allowed by the evobox gateway")
    rebuilt: dict[str, Any] = {"role": role.value, "content": _content(index, message.get("content"))}
    if message.get("name") is not None:
        rebuilt["name"] = _typed(f"messages[{index}].name", message["name"], (str,))
    return rebuilt


def _content(index: int, content: Any) -> str | list[dict[str, str]] | None:
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"messages[{index}].content must be a string or a list of text parts")
    parts = []
    for part in content:
        if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
            raise _bad(f"messages[{index}].content: only text parts ({{'type': 'text', 'text': ...}}) are allowed")
        parts.append({"type": "text", "text": part["text"]})
    return parts


def _prompt_bound(body: dict[str, Any]) -> int:
    """UTF-8 bytes of every text the model reads, plus the template allowances (see module docstring)."""
    total = TEMPLATE_TOKENS_PER_REQUEST
    for message in body["messages"]:
        content = message["content"]
        texts = [content or ""] if not isinstance(content, list) else [part["text"] for part in content]
        texts.append(message.get("name", ""))
        total += TEMPLATE_TOKENS_PER_MESSAGE + sum(len(text.encode("utf-8", "surrogatepass")) for text in texts)
    if "response_format" in body:
        total += len(json.dumps(body["response_format"]).encode())
    return total


def _typed(key: str, value: Any, types: tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, types):
        raise _bad(f"'{key}' must be of type {' or '.join(t.__name__ for t in types)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(f"'{key}' must be finite")
    return value


def _positive(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(f"'{key}' must be a positive integer")
    return value


def _bad(message: str) -> Refusal:
    return Refusal(400, message, RefusalKind.INVALID_REQUEST)
