"""The embedded model: cache location, refusal of a wrong file, and (slow) a real JSON-schema reply and
concurrent requests served in parallel slots."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from engine.llm.client import LLMClient
from engine.llm.config import EmbeddedConfig, LLMConfig
from engine.llm.embedded import MODEL_FILE, EmbeddedError, EmbeddedServer, cache_root, ensure_model, model_path
from engine.llm.config import Role
from engine.llm.endpoint import Source, resolve


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("EVOBOX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "evobox"
    monkeypatch.setenv("EVOBOX_CACHE_DIR", str(tmp_path / "evo"))
    assert cache_root() == tmp_path / "evo"
    assert cache_root(EmbeddedConfig(cache_dir=tmp_path / "cfg")) == tmp_path / "cfg"
    assert model_path() == tmp_path / "evo" / "models" / MODEL_FILE


def test_model_file_with_wrong_content_is_refused(tmp_path):
    config = EmbeddedConfig(cache_dir=tmp_path)
    path = model_path(config)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF not really a model")
    with pytest.raises(EmbeddedError, match="does not match") as err:
        ensure_model(config)
    assert "cc324af070c2" in str(err.value) and "delete it" in str(err.value)
    with pytest.raises(EmbeddedError):  # and no marker was written that would skip the check next time
        ensure_model(config)


def test_missing_custom_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddedError, match="does not exist"):
        ensure_model(EmbeddedConfig(model_path=tmp_path / "nope.gguf"))


@pytest.mark.slow
def test_embedded_model_answers_with_json_matching_a_schema(monkeypatch):
    """Downloads and assembles the 1.1 GB model on first use (~30 s), then loads it (~10 s)."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    config = LLMConfig()
    schema = {"title": "answer", "type": "object",
              "properties": {"language": {"type": "string"}, "year": {"type": "integer"}},
              "required": ["language", "year"]}
    with EmbeddedServer(config.embedded) as server:
        endpoint = resolve(config, Role.META, server)
        assert endpoint.source is Source.EMBEDDED
        client = LLMClient(endpoint, config.meta)
        reply = client.chat_json([{"role": "user", "content": "Which programming language did Guido van Rossum "
                                   "create, and in which year was it first released? Answer in JSON."}],
                                 schema=schema, max_tokens=60, temperature=0)
        log_path: Path = server.log_path
    assert isinstance(reply.data["language"], str) and isinstance(reply.data["year"], int)
    assert "python" in reply.data["language"].lower()
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0 and reply.usage.cost_usd == 0
    assert log_path.exists()


def _stream_events(base_url: str, name: str, events: list[tuple[str, str]], lock: threading.Lock) -> None:
    """One streamed completion; records (name, "first") at its first token and (name, "done") at its end."""
    body = {"model": "any", "max_tokens": 40, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "Count from 1 to 100, separated by spaces."}]}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=300) as response:
        response.raise_for_status()
        first = True
        for line in response.iter_lines():
            if first and line.startswith("data: {") and '"content"' in line:
                first = False
                with lock:
                    events.append((name, "first"))
    with lock:
        events.append((name, "done"))


@pytest.mark.slow
def test_embedded_server_answers_concurrent_requests_together():
    """Two requests at once are decoded side by side in separate slots (the ADAS harness asks with 2
    threads): each has its first token before the other is done. With one slot the second would
    start only after the first finished."""
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    with EmbeddedServer(EmbeddedConfig(parallel=2, ctx_size=1024)) as server:
        threads = [threading.Thread(target=_stream_events, args=(server.endpoint.base_url, name, events, lock))
                   for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(events) == [("a", "done"), ("a", "first"), ("b", "done"), ("b", "first")]
    firsts = [i for i, (_, kind) in enumerate(events) if kind == "first"]
    dones = [i for i, (_, kind) in enumerate(events) if kind == "done"]
    assert max(firsts) < min(dones), events
