"""A small scripted OpenAI-compatible server: real HTTP on loopback, no mock objects. The fake
upstream of the tests and of the performance scripts in benchmarks/, which both import it from
here (the LLM layer, beside the embedded server it stands in for) rather than one importing the
other's files. Needs the dev extras (starlette, uvicorn); the engine itself never imports it.

Each POST /v1/chat/completions takes the next step of the script. A step is a string (the
assistant's reply), a `Reply` (content plus status code / usage), or a callable taking the
request body and returning either. Every request body is recorded in `requests`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    prompt_tokens: int = 10
    completion_tokens: int = 5
    delay_s: float = 0.0
    raw: bytes | None = None  # sent verbatim as the body (with `status`), e.g. JSON with \u escapes


Step = str | Reply | Callable[[dict[str, Any]], "str | Reply"]


class ScriptedLLM:
    """Context manager: `with ScriptedLLM(["reply 1", Reply(status=500), ...]) as llm: llm.base_url`."""

    def __init__(self, script: Iterable[Step] = (), *, default: Step | None = None, model: str = "scripted"):
        self._script = list(script)
        self._default = default
        self._lock = threading.Lock()
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = _free_port()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def set_default(self, step: Step | None) -> Step | None:
        """Replace the step used once the script is empty (e.g. an outage); returns the old one."""
        with self._lock:
            old, self._default = self._default, step
        return old

    def push(self, *steps: Step) -> None:
        with self._lock:
            self._script.extend(steps)

    def _next_step(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            step = self._script.pop(0) if self._script else self._default
        if step is None:
            return Reply(content="", status=500)
        if callable(step):
            step = step(body)
        return Reply(content=step) if isinstance(step, str) else step

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.headers.append(dict(request.headers))
        reply = self._next_step(body)
        if reply.delay_s:  # awaited: other requests are answered meanwhile, like a real server's
            await asyncio.sleep(reply.delay_s)
        if reply.raw is not None:
            return Response(reply.raw, status_code=reply.status, media_type="application/json")
        if reply.status != 200:
            return JSONResponse({"error": {"message": reply.content or "scripted error", "type": "scripted"}},
                                status_code=reply.status)
        return JSONResponse({
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply.content}}],
            "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                      "total_tokens": reply.prompt_tokens + reply.completion_tokens},
        })

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "tests"}]})

    def __enter__(self) -> "ScriptedLLM":
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"]),
                                Route("/v1/models", self._models, methods=["GET"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("scripted LLM server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server and self._thread
        self._server.should_exit = True
        self._thread.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
