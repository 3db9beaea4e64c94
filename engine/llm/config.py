"""Typed configuration of the LLM layer: the two roles, prices, budgets, the embedded model, the gateway.

Every model here forbids unknown keys, so a typo in a run config's [llm] table is an error at
load time instead of a silently ignored setting.
"""

from __future__ import annotations

import enum
import hashlib
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

log = structlog.get_logger()

EMBEDDED_MODEL_NAME = "qwen2.5-coder-1.5b-instruct"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Role(str, enum.Enum):
    """Who talks to the LLM: the meta LLM writes candidates; the agent LLM is called by candidates."""

    META = "meta"
    AGENT = "agent"


ROLE_DEFAULTS: dict[Role, dict[str, Any]] = {Role.META: {"temperature": 0.8, "max_tokens": 4096},
                                             Role.AGENT: {"temperature": 0.5, "max_tokens": 1024}}


def role_overrides(model: str | None, base_url: str | None) -> dict[str, str | None]:
    """The run-config overrides of `--model` / `--base-url`: one flag covers both roles (None: unset)."""
    return {f"llm.{role.value}.{key}": value for role in Role
            for key, value in (("model", model), ("base_url", base_url))}


class RoleConfig(_Strict):
    """Where and how one role talks to its LLM. Unset base_url/model are resolved by
    engine/llm/endpoint.py (the other role, the environment, then the embedded local model)."""

    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 "
                                                    "(vLLM), http://localhost:11434/v1 (Ollama). None: environment, then embedded.")
    model: str | None = Field(None, description="Model name sent to the server. None: the other role's model on the "
                                                "same server, else gpt-4o-mini for OpenAI; required for other servers.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Name of the environment variable holding the API key "
                                                           "(the key itself never goes into a config file).")
    temperature: float = Field(..., ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(..., gt=0, description="Upper bound on completion tokens per call.")
    timeout_s: float = Field(600.0, gt=0, description="Per-attempt HTTP timeout in seconds.")
    max_retries: int = Field(5, ge=0, description="Retries on rate limits, timeouts, connection errors and 5xx "
                                                  "(never on other 4xx).")
    retry_initial_s: float = Field(1.0, ge=0, description="Backoff scale: retry n waits a random time up to "
                                                        "retry_initial_s * 2**n (full jitter), at most retry_max_s.")
    retry_max_s: float = Field(60.0, ge=0, description="Longest single backoff wait (also caps a server's Retry-After).")


class Price(_Strict):
    """USD per 1M tokens."""

    input_per_m: float = Field(..., ge=0, description="USD per 1M prompt tokens.")
    output_per_m: float = Field(..., ge=0, description="USD per 1M completion tokens.")


def default_prices() -> dict[str, Price]:
    """Known list prices (USD per 1M tokens, late 2026 public price pages); local models cost 0.
    Lookup also matches dated variants by longest prefix (gpt-4o-mini-2024-07-18 -> gpt-4o-mini)."""
    table = {
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "gpt-3.5-turbo": (0.50, 1.50),
        "o3-mini": (1.10, 4.40),
        EMBEDDED_MODEL_NAME: (0.0, 0.0),
    }
    return {name: Price(input_per_m=i, output_per_m=o) for name, (i, o) in table.items()}


class EmbeddedConfig(_Strict):
    """The local llama.cpp server (xllamacpp) used when no base URL and no key are configured."""

    threads: int = Field(1, ge=1, description="CPU threads for generation. Default 1: on a 2-core machine 1 thread "
                                              "holds ~10 tok/s while evaluations run beside it, 2 collapse to ~4.5 "
                                              "(2 is faster only on an idle machine: `evobox llm serve --threads 2`).")
    ctx_size: int = Field(8192, ge=512, description="Context length of each request slot in tokens (the KV cache "
                                                    "holds ctx_size x parallel tokens, ~28 KB each: 8192 x 3 ~ 0.7 GB).")
    parallel: int = Field(3, ge=1, le=16, description="Requests served at once, decoded together in one batch "
                                                      "(continuous batching): the ADAS harness's 2 question threads "
                                                      "plus the meta LLM's conversation, which keeps its slot's "
                                                      "prompt cache across reflection rounds. 1: one at a time.")
    port: int = Field(0, ge=0, le=65535, description="Port on 127.0.0.1; 0 picks a free one.")
    cache_dir: Path | None = Field(None, description="Where the assembled GGUF is kept. None: $EVOBOX_CACHE_DIR, "
                                                     "else $XDG_CACHE_HOME/evobox, else ~/.cache/evobox (models/ below it).")
    model_path: Path | None = Field(None, description="Use this GGUF instead of the built-in Qwen2.5-Coder-1.5B "
                                                      "(not verified: your file, your model).")
    start_timeout_s: float = Field(180.0, gt=0, description="How long to wait for the server to load the model.")

    def served_name(self) -> str:
        """The model name the embedded server answers to. Scores are cached by model name, so a
        custom GGUF gets a name of its own (file name + a digest of its path, size and mtime):
        baselines scored with another model are never reused for it."""
        if self.model_path is None:
            return EMBEDDED_MODEL_NAME
        path = self.model_path.expanduser().resolve()
        try:
            st = path.stat()
            identity = f"{path}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            identity = str(path)
        return f"{path.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"


class ModelPolicy(str, enum.Enum):
    """What the gateway does with a request naming a model outside its allow-list."""

    REJECT = "reject"  # 403 with the allowed names: the candidate learns it cannot pick a model
    MAP = "map"        # silently served by the agent model (code written for another model runs unchanged)


class GatewayConfig(_Strict):
    """The OpenAI-compatible unix-socket server that sandboxed candidates call."""

    max_concurrency: int | None = Field(None, ge=1, description="Upstream calls in flight across all grants; "
                                        "more wait their turn, handed out round robin between grants. None: what "
                                        "the run asks for (calls in flight per candidate, e.g. ADAS threads, x "
                                        "[search] eval_slots). A number is an upper bound; a run that asks for "
                                        "more is told so in the log (llm.gateway.concurrency_below_demand).")
    allowed_models: list[str] = Field(default_factory=list, description="Models a candidate may name; the upstream "
                                                                        "model is always allowed. A request without a model gets the upstream model.")
    model_policy: ModelPolicy = Field(ModelPolicy.REJECT, description="reject (403) or map to the upstream model.")
    cache_dir: Path | None = Field(None, description="Response cache keyed by the whole request (reproducible reruns, "
                                                     "cheap repeats). None: no cache.")
    upstream_timeout_s: float = Field(600.0, gt=0, description="Timeout of one forwarded call.")
    default_max_tokens: int = Field(4096, gt=0, description="Completion cap for requests that set none (every call's "
                                                             "spend is bounded; also clamped to the grant's remaining tokens).")
    max_request_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    max_n: int = Field(8, ge=1, description="Most choices (`n`) one call may ask for; each is reserved in full.")
    transcript_max_bytes: int = Field(32 * 1024 * 1024, ge=4096, description="Cap of one grant's transcript; "
                                                                            "calls past it are served but not recorded.")
    header_timeout_s: float = Field(10.0, gt=0, description="A request's line and headers must arrive within this "
                                                            "(absolute: a slow drip does not extend it), else 408 and close.")
    idle_timeout_s: float = Field(30.0, gt=0, description="A kept-alive connection with no next request is closed.")
    body_timeout_s: float = Field(60.0, gt=0, description="A request body must arrive within this, else 408 and close.")
    write_timeout_s: float = Field(30.0, gt=0, description="A client that does not read its reply is cut off.")
    max_header_bytes: int = Field(16 * 1024, ge=1024, description="Larger request heads get 431.")
    max_connections: int = Field(512, ge=1, description="Open client connections across all candidates (more get "
                                                        "503); also kept at most half the process's open-file limit.")
    max_connections_per_peer: int = Field(64, ge=1, description="Open connections per peer uid (each concurrent "
                                                                 "candidate runs as its own uid); more get 503.")


UNSTATED_DEMAND = 8
"""Upstream calls in flight for a gateway whose user states neither a limit nor its demand."""


def upstream_concurrency(config: GatewayConfig, demand: int | None) -> int:
    """How many upstream calls the gateway lets run at once: the explicit limit, else the demand.

    A limit below what the run asks for would make calls queue in the gateway while the
    candidate's threads wait (an evaluation up to threads/limit times slower), so it is
    honoured but logged; without a limit the gateway follows the demand."""
    if config.max_concurrency is None:
        return demand or UNSTATED_DEMAND
    if demand is not None and config.max_concurrency < demand:
        log.warning("llm.gateway.concurrency_below_demand", max_concurrency=config.max_concurrency, demand=demand,
                    effect="calls beyond the limit queue in the gateway; unset [llm.gateway] max_concurrency "
                           "to follow the demand")
    return config.max_concurrency


class LLMConfig(_Strict):
    """The [llm] table of a run config."""

    meta: RoleConfig = Field(default_factory=lambda: RoleConfig(**ROLE_DEFAULTS[Role.META]),
                             description="The LLM that proposes, reflects on and repairs candidates.")
    agent: RoleConfig = Field(default_factory=lambda: RoleConfig(**ROLE_DEFAULTS[Role.AGENT]),
                              description="The LLM that candidate agents call through the gateway.")
    prices: dict[str, Price] = Field(default_factory=default_prices,
                                     description="USD per 1M tokens by model name; unknown models cost 0 (warned once).")
    budget_usd: float | None = Field(None, ge=0, description="Stop the search once LLM spend (meta, agents and judge together) reaches this.")
    budget_tokens: int | None = Field(None, ge=0, description="Stop the search once this many tokens (every role) were used.")
    embedded: EmbeddedConfig = Field(default_factory=EmbeddedConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)

    @model_validator(mode="before")
    @classmethod
    def _merge_role_defaults(cls, data: Any) -> Any:
        """A partial role table (`[llm.agent] model = "x"`) keeps the role's defaults for the rest."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for role, defaults in ROLE_DEFAULTS.items():
            if isinstance(merged.get(role.value), dict):
                merged[role.value] = {**defaults, **merged[role.value]}
        return merged
