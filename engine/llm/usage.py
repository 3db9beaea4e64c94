"""Token usage, its cost from a price table, and the budget the search checks.

`Usage` is the one type for spend everywhere: the client's and the gateway's counters, the
search's run ledger (`agent_spend.json`), archive records and journal entries. Records hold it as
a field (pydantic validates the dataclass, extra keys refused), so its JSON shape is the four
fields below; `to_json`/`from_json` are the one (de)serialisation for everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol

import structlog
from pydantic import ConfigDict, TypeAdapter

from engine.llm.config import Price

log = structlog.get_logger()
_warned_unpriced: set[str] = set()


@dataclass(frozen=True)
class Usage:
    """Calls and tokens spent, and what they cost in USD. Immutable; supports `+` and `-`: of
    the meta LLM (a candidate's proposal, reflection and repair calls) or of agents (every
    gateway call its evaluations made, the judge's included)."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.calls + other.calls, self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens, self.cost_usd + other.cost_usd)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.calls - other.calls, self.prompt_tokens - other.prompt_tokens,
                     self.completion_tokens - other.completion_tokens, self.cost_usd - other.cost_usd)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the four fields (the shape archives and ledgers hold)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Usage:
        """Validated from its JSON object; pydantic's ValidationError (a ValueError) if malformed."""
        return _ADAPTER.validate_python(data)


_ADAPTER: TypeAdapter[Usage] = TypeAdapter(Usage)


def price_for(model: str, prices: Mapping[str, Price]) -> Price | None:
    """Exact name, else the longest priced prefix (dated variants such as gpt-4o-mini-2024-07-18)."""
    if model in prices:
        return prices[model]
    matches = [name for name in prices if model.startswith(name)]
    return prices[max(matches, key=len)] if matches else None


def call_usage(model: str, prompt_tokens: int, completion_tokens: int, prices: Mapping[str, Price]) -> Usage:
    """Usage of one call; an unpriced model costs 0 and is warned about once per process."""
    price = price_for(model, prices)
    if price is None:
        if model not in _warned_unpriced:
            _warned_unpriced.add(model)
            log.warning("llm.unpriced_model", model=model, hint="add it to [llm.prices] to track cost")
        cost = 0.0
    else:
        cost = (prompt_tokens * price.input_per_m + completion_tokens * price.output_per_m) / 1e6
    return Usage(1, prompt_tokens, completion_tokens, cost)


@dataclass(frozen=True)
class Budget:
    """Spending limits; None means unlimited."""

    usd: float | None = None
    tokens: int | None = None

    def exceeded(self, total: Usage) -> str | None:
        """A one-line reason once `total` reaches a limit, else None."""
        if self.usd is not None and total.cost_usd >= self.usd:
            return f"LLM budget spent: ${total.cost_usd:.4f} of ${self.usd:.4f}"
        if self.tokens is not None and total.total_tokens >= self.tokens:
            return f"LLM token budget spent: {total.total_tokens:,} of {self.tokens:,} tokens"
        return None


class SpendHook(Protocol):
    """The run's spend as the gateway sees it (engine.search.spend.RunSpend): asked before each
    call whether the run's budget still allows one, told the usage of each accounted call."""

    def refusal(self) -> str | None:
        """A one-line reason when no new call may start, else None."""

    def record(self, candidate_id: str, usage: Usage) -> None:
        """One call of `candidate_id`'s grant was accounted."""
