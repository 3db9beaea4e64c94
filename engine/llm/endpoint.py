"""Which OpenAI-compatible server a role talks to, decided in one place.

Precedence: the run config (base_url/model) > the standard environment (OPENAI_BASE_URL,
OPENAI_API_KEY) > the embedded local model. Nothing here is tied to one provider.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.llm.config import RoleConfig

if TYPE_CHECKING:
    from engine.llm.embedded import EmbeddedServer

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_DEFAULT_MODEL = "gpt-4o-mini"
NO_KEY = "none"  # the openai SDK refuses an empty key; local servers ignore it


class EndpointError(Exception):
    """No usable LLM endpoint can be derived from config and environment."""


class Source(str, enum.Enum):
    """Where the endpoint came from (shown by `evobox llm check`)."""

    CONFIG = "config"
    ENVIRONMENT = "environment"
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


def needs_embedded(role: RoleConfig) -> bool:
    """True when neither the config nor the environment names a server: the embedded model is used."""
    return (role.base_url is None and not os.environ.get("OPENAI_BASE_URL")
            and not os.environ.get(role.api_key_env))


def resolve(role: RoleConfig, embedded: EmbeddedServer | None) -> Endpoint:
    """The endpoint for `role`; `embedded` is required only when `needs_embedded(role)`."""
    key = os.environ.get(role.api_key_env) or NO_KEY
    if role.base_url is not None:
        return Endpoint(role.base_url, key, _model(role, role.base_url), Source.CONFIG)
    env_url = os.environ.get("OPENAI_BASE_URL")
    if env_url or key != NO_KEY:
        base_url = env_url or OPENAI_BASE_URL
        return Endpoint(base_url, key, _model(role, base_url), Source.ENVIRONMENT)
    if embedded is None:
        raise EndpointError("no LLM configured: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (any "
                            "OpenAI-compatible server), or [llm] base_url in the run config, or start the "
                            "embedded model")
    local = embedded.endpoint  # the role's model name is ignored: the embedded server has one model
    return Endpoint(local.base_url, local.api_key, local.model, Source.EMBEDDED)


def _model(role: RoleConfig, base_url: str) -> str:
    if role.model:
        return role.model
    if base_url.rstrip("/") == OPENAI_BASE_URL:
        return OPENAI_DEFAULT_MODEL
    raise EndpointError(f"base URL {base_url} is set but no model: set `model` for this role in the [llm] "
                        "table of the run config")
