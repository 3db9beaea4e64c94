"""MT-Bench-style single-answer grading through the evobox LLM gateway (task image only).

Standard library only: the gateway is an OpenAI-compatible server on a unix socket mounted at
/run/llm; the token in EVOBOX_LLM_TOKEN is this evaluation's grant (budgeted, logged).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket

RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
GRADER = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant "
    "to the user question below. Consider helpfulness, relevance, accuracy, depth and level of detail. "
    "Be as objective as possible. After a short explanation, rate the response on a scale of 1 to 10 in "
    "exactly this format: \"Rating: [[5]]\".\n\n[Question]\n{question}\n\n[The Start of Assistant's Answer]\n"
    "{answer}\n[The End of Assistant's Answer]"
)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("gateway", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def chat(messages: list[dict[str, str]], *, max_tokens: int = 512, timeout: float = 600.0) -> str:
    body = json.dumps({"model": os.environ.get("EVOBOX_LLM_MODEL", ""), "messages": messages,
                       "max_tokens": max_tokens, "temperature": 0.0})
    connection = _UnixConnection(os.environ.get("EVOBOX_LLM_SOCKET", "/run/llm/gateway.sock"), timeout)
    try:
        connection.request("POST", "/v1/chat/completions", body=body, headers={
            "Authorization": f"Bearer {os.environ['EVOBOX_LLM_TOKEN']}", "Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"judge call failed: HTTP {response.status}: {payload[:200]!r}")
    return json.loads(payload)["choices"][0]["message"]["content"] or ""


def grade(question: str, answer: str) -> float | None:
    """The judge's 1-10 rating, or None when the reply has no readable rating."""
    reply = chat([{"role": "user", "content": GRADER.format(question=question, answer=answer)}])
    match = RATING.search(reply)
    return float(match.group(1)) if match else None
