"""After a container that used a gateway grant, and before anything it produced is judged:
was the evaluation cut short by something that is not the candidate's doing?

- The run's budget ran out while it ran (the gateway refused calls): the evaluation is not
  scored; `Stopped` leaves the candidate pending, and the loop stops cleanly.
- The upstream failed some of its calls (5xx, 429, timeouts, connection errors, counted by the
  gateway): the engine probes the upstream with a request of its own (engine.llm.probe). No
  answer: an outage, `UpstreamOutage` stops the run and the candidate stays pending for resume.
  An answer: the failures were transient or provoked by the candidate's own requests, and the
  candidate is scored on what it produced. So a candidate cannot stop the run by provoking
  upstream errors, and an outage is never scored as the candidate's failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from engine.llm.probe import probe
from engine.search.stop import Stopped

if TYPE_CHECKING:
    from engine.llm.gateway import Gateway

log = structlog.get_logger()


def settle_grant(gateway: Gateway, token: str) -> None:
    """Raise Stopped or UpstreamOutage as above; return when the evaluation can be judged."""
    health = gateway.health(token)
    if health.run_budget_refusals:
        raise Stopped(f"the run's LLM budget ran out during the evaluation ({health.run_budget_refusals} "
                      "calls refused); it stays pending")
    if health.upstream_failures:
        log.warning("llm.upstream_failures_seen", failures=health.upstream_failures)
        probe(gateway.upstream, timeout_s=gateway.config.upstream_timeout_s)
