"""Fixtures for the LLM layer: a scripted upstream over real HTTP and a gateway on a real unix socket."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.llm.config import GatewayConfig, RoleConfig
from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.llm.scripted import ScriptedLLM

SECRET = "sk-test-" + "9f3a7c21" * 4  # the upstream key that must never reach a candidate


def fast_role(**overrides: object) -> RoleConfig:
    """A role with near-zero backoff so retry tests run in milliseconds."""
    values = dict(temperature=0.5, max_tokens=64, timeout_s=5, max_retries=3, retry_initial_s=0.01, retry_max_s=0.05)
    values.update(overrides)
    return RoleConfig(**values)


@pytest.fixture
def upstream() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(model="gpt-4o-mini") as llm:
        yield llm


def endpoint_of(llm: ScriptedLLM, key: str = SECRET) -> Endpoint:
    return Endpoint(llm.base_url, key, "gpt-4o-mini")


@contextlib.contextmanager
def open_gateway(llm: ScriptedLLM, tmp_path: Path, **config: object) -> Iterator[Gateway]:
    with Gateway(endpoint_of(llm), tmp_path / "llm", config=GatewayConfig(**config)) as gateway:
        yield gateway


def socket_client(gateway: Gateway, token: str | None = None) -> httpx.Client:
    """Raw HTTP over the gateway's unix socket (for requests the openai SDK would refuse to send)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(gateway.socket_path)), base_url="http://gateway",
                        headers=headers, timeout=30)
