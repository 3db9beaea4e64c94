"""Inside a candidate's sandbox: an openai client that talks to the evobox LLM gateway.

Copied by domains into the candidate image as `evobox_llm.py`; self-contained on purpose
(imports only os, httpx and openai). The container has no network: the client's transport is
the gateway's unix socket, and its key is the candidate's grant token (the real API key never
enters the sandbox). Agent code calls the LLM exactly as outside:

    import evobox_llm
    reply = evobox_llm.client().chat.completions.create(model=evobox_llm.MODEL, messages=[...])
"""

import os

import httpx
import openai

DEFAULT_SOCKET = "/run/llm/gateway.sock"
MODEL = os.environ.get("EVOBOX_LLM_MODEL", "")
BASE_URL = "http://gateway/v1"  # the host name is ignored: every request goes through the socket
# The gateway caps open connections per sandbox (64 by default) and answers more with 503: the
# pool stays below it, so an agent with many threads queues here instead of being refused.
MAX_CONNECTIONS = 32


def client(*, timeout: float = 600.0, max_retries: int = 2) -> openai.OpenAI:
    """An openai.OpenAI bound to the gateway socket, authenticated with this candidate's token."""
    token = os.environ.get("EVOBOX_LLM_TOKEN")
    if not token:
        raise RuntimeError("EVOBOX_LLM_TOKEN is not set: this sandbox was not granted LLM access")
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
    transport = httpx.HTTPTransport(uds=os.environ.get("EVOBOX_LLM_SOCKET", DEFAULT_SOCKET), limits=limits)
    return openai.OpenAI(base_url=BASE_URL, api_key=token, max_retries=max_retries,
                         http_client=httpx.Client(transport=transport, timeout=timeout))
