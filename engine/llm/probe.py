"""The engine's own look at the upstream LLM: is it reachable right now?

A candidate's container sees the LLM only through the gateway, so when its calls fail the
engine cannot tell from them alone whether the upstream is down or the candidate provoked the
errors (absurd requests, floods). The probe settles it with a request of the engine's making:
a one-token chat completion sent straight to the upstream endpoint, retried with exponential
backoff. It failing every time is an outage: an infrastructure failure, never the candidate's.
Its few tokens are not counted in any budget.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from tenacity import RetryError, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from engine.llm.endpoint import Endpoint
from engine.llm.errors import LLMCallError

log = structlog.get_logger()

PROBE_ATTEMPTS = 4
PROBE_MAX_WAIT_S = 8.0


class UpstreamOutage(LLMCallError):
    """The upstream LLM did not answer the engine's own probe: stop the run, keep the candidate."""


class _ProbeFailed(Exception):
    pass


def probe(endpoint: Endpoint, *, timeout_s: float = 60.0, attempts: int = PROBE_ATTEMPTS) -> None:
    """Return once the upstream answers a tiny chat completion; raise UpstreamOutage otherwise."""
    body = {"model": endpoint.model, "messages": [{"role": "user", "content": "Reply with: ok"}],
            "max_tokens": 1, "temperature": 0.0}
    headers = {"authorization": f"Bearer {endpoint.api_key}"}
    url = endpoint.base_url.rstrip("/") + "/chat/completions"

    @retry(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=1.0, max=PROBE_MAX_WAIT_S),
           retry=retry_if_exception_type(_ProbeFailed), reraise=False)
    def once() -> None:
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=timeout_s)
        except httpx.HTTPError as exc:
            log.warning("llm.probe_failed", error=type(exc).__name__)
            raise _ProbeFailed(f"{type(exc).__name__}") from None
        if response.status_code != 200 or not _is_completion(response):
            log.warning("llm.probe_failed", status=response.status_code)
            raise _ProbeFailed(f"HTTP {response.status_code}")

    try:
        once()
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise UpstreamOutage(f"LLM upstream unreachable: {endpoint.base_url} did not answer the engine's probe "
                             f"after {attempts} tries ({last})", attempts=attempts) from None
    log.info("llm.probe_ok", base_url=endpoint.base_url)


def _is_completion(response: httpx.Response) -> bool:
    try:
        data: Any = response.json()
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("choices"), list)
