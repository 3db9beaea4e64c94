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
import time

RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
RATING_MIN, RATING_MAX = 1.0, 10.0
TRANSIENT_ATTEMPTS = 3  # 429/5xx/connection errors: a few tries with backoff, then the rating is missing
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
        raise JudgeCallError(response.status, f"judge call failed: HTTP {response.status}: {payload[:200]!r}")
    return json.loads(payload)["choices"][0]["message"]["content"] or ""


class JudgeCallError(RuntimeError):
    """The gateway answered with an error; `status` tells a transient one (429, 5xx) apart."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def verdict(reply: str) -> float | None:
    """The judge's own rating: the last [[n]] of its reply (the answer it quotes comes first and
    may hold a rating of its own), kept only on the 1-10 scale."""
    matches = RATING.findall(reply)
    if not matches:
        return None
    rating = float(matches[-1])
    return rating if RATING_MIN <= rating <= RATING_MAX else None


def grade(question: str, answer: str) -> float | None:
    """The judge's 1-10 rating, or None when the reply has no readable rating or the judge stays
    unreachable. Whether an unreachable judge was an outage is the engine's call: it counts the
    upstream failures of this grant and probes the upstream itself."""
    messages = [{"role": "user", "content": GRADER.format(question=question, answer=answer)}]
    for attempt in range(TRANSIENT_ATTEMPTS):
        try:
            return verdict(chat(messages))
        except JudgeCallError as error:
            if error.status != 429 and error.status < 500:
                return None
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(min(2.0 ** attempt, 8.0))
    return None
