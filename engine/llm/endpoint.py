"""Which OpenAI-compatible server and model each role uses, decided in one place.

A server or model the user names once covers both roles, unless the config says otherwise for
a role; a role never falls back to a server the user did not name. Per role:

- server: the role's `[llm.<role>] base_url` (`--base-url` writes both roles' tables) >
  `OPENAI_BASE_URL` > the other role's `base_url` > OpenAI's API when the role's key variable
  is set > the embedded local model.
- model: the role's `model` (`--model` writes both roles' tables) > the other role's model when
  both roles talk to the same server > `gpt-4o-mini` on OpenAI's API. Any other server without
  a model is an error: guessing would send the user's requests somewhere they did not ask for.

`route()` decides without starting anything (for `evobox llm check --no-call` and the run's
start line); `resolve()` adds the key, and the embedded server's address once it runs.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Protocol

from engine.llm.config import LLMConfig, Role, RoleConfig

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_DEFAULT_MODEL = "gpt-4o-mini"
NO_KEY = "none"  # the openai SDK refuses an empty key; local servers ignore it
ENV_BASE_URL = "OPENAI_BASE_URL"


class EndpointError(Exception):
    """No usable LLM endpoint can be derived from config and environment."""


class Source(str, enum.Enum):
    """Where a role's server came from (shown by `evobox llm check` and at run start)."""

    CONFIG = "config"  # its own [llm.<role>] table, or --base-url
    ENVIRONMENT = "environment"  # OPENAI_BASE_URL, or OPENAI_API_KEY alone (OpenAI's API)
    OTHER_ROLE = "other role"  # the server the other role's table names
    EMBEDDED = "embedded"


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: base URL, the key to send, the model to ask for."""

    base_url: str
    api_key: str = field(repr=False)  # never in logs or reprs
    model: str
    source: Source = Source.CONFIG

    @property
    def has_key(self) -> bool:
        return self.api_key != NO_KEY


@dataclass(frozen=True)
class Route:
    """What a role resolves to before any server starts; never holds the key itself."""

    role: Role
    source: Source
    base_url: str | None  # None: the embedded server, whose address exists once it runs
    model: str
    key_env: str
    has_key: bool

    def describe(self) -> dict[str, str]:
        """The fields shown to the user (check, run start): never the key."""
        key = "not needed" if self.source is Source.EMBEDDED else (
            f"set ({self.key_env})" if self.has_key else f"not set ({self.key_env})")
        return {"source": self.source.value, "base URL": self.base_url or "local (started by evobox)",
                "model": self.model, "key": key}


def _other(role: Role) -> Role:
    return Role.AGENT if role is Role.META else Role.META


def _settings(llm: LLMConfig, role: Role) -> RoleConfig:
    return llm.meta if role is Role.META else llm.agent


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.rstrip("/") == b.rstrip("/")


def _server(llm: LLMConfig, role: Role) -> tuple[Source, str | None]:
    own, other = _settings(llm, role), _settings(llm, _other(role))
    if own.base_url:
        return Source.CONFIG, own.base_url
    if os.environ.get(ENV_BASE_URL):
        return Source.ENVIRONMENT, os.environ[ENV_BASE_URL]
    if other.base_url:
        return Source.OTHER_ROLE, other.base_url
    if os.environ.get(own.api_key_env):
        return Source.ENVIRONMENT, OPENAI_BASE_URL
    return Source.EMBEDDED, None


def route(llm: LLMConfig, role: Role) -> Route:
    """Where `role` goes and with which model; EndpointError if a named server lacks a model."""
    own = _settings(llm, role)
    source, base_url = _server(llm, role)
    has_key = bool(os.environ.get(own.api_key_env))
    if source is Source.EMBEDDED:  # one model: the role's model name is not sent anywhere
        return Route(role, source, None, llm.embedded.served_name(), own.api_key_env, has_key)
    assert base_url is not None
    return Route(role, source, base_url, _model(llm, role, base_url), own.api_key_env, has_key)


def _model(llm: LLMConfig, role: Role, base_url: str) -> str:
    own, other_role = _settings(llm, role), _other(role)
    if own.model:
        return own.model
    other = _settings(llm, other_role)
    if other.model and _same(base_url, _server(llm, other_role)[1]):
        return other.model
    if _same(base_url, OPENAI_BASE_URL):
        return OPENAI_DEFAULT_MODEL
    raise EndpointError(f"the {role.value} role would use {base_url} but names no model: pass --model, or set "
                        f"`model` in [llm.{role.value}] of the run config")


class LocalServer(Protocol):
    """What `resolve` needs of the embedded server (`engine.llm.embedded`, which imports this
    module): the endpoint it serves once it runs."""

    @property
    def endpoint(self) -> Endpoint: ...


def needs_embedded(llm: LLMConfig, role: Role) -> bool:
    """True when no server is named for `role` anywhere: the embedded model serves it."""
    return _server(llm, role)[0] is Source.EMBEDDED


def resolve(llm: LLMConfig, role: Role, embedded: LocalServer | None = None) -> Endpoint:
    """The endpoint `role` talks to; `embedded` is required only when `needs_embedded(llm, role)`."""
    decided = route(llm, role)
    if decided.source is Source.EMBEDDED:
        if embedded is None:
            raise EndpointError("no LLM configured: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (any "
                                "OpenAI-compatible server) with --model, or [llm] base_url in the run config, "
                                "or start the embedded model")
        local = embedded.endpoint
        return Endpoint(local.base_url, local.api_key, local.model, Source.EMBEDDED)
    key = os.environ.get(decided.key_env) or NO_KEY
    return Endpoint(decided.base_url, key, decided.model, decided.source)  # type: ignore[arg-type]
