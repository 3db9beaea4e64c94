"""A Hugging Face hub snapshot (relative symlinks into ../../blobs) reads right inside a
container: the directory that gets mounted is self-contained. The layout is built by hand, as
huggingface_hub writes it (offline; the host venv need not have huggingface_hub)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.domains.discopop.domain import resolve_source
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.runner import Mount, Sandbox

pytestmark = pytest.mark.docker


def hub_snapshot(cache: Path) -> Path:
    """models--org--tiny/{blobs/<sha>, snapshots/<rev>/<file> -> ../../blobs/<sha>}."""
    repo = cache / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "0123abcd"
    (snapshot / "sub").mkdir(parents=True)
    for relative, blob, text in (("config.json", "aa11", '{"n_layer": 2}'), ("sub/tokenizer.json", "bb22", "{}")):
        (repo / "blobs" / blob).write_text(text)
        up = "../" * (len(Path(relative).parts) - 1)
        (snapshot / relative).symlink_to(f"{up}../../blobs/{blob}")
        assert (snapshot / relative).read_text() == text  # a valid link on the host
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    return snapshot


def test_a_hub_snapshot_is_mounted_self_contained(sandbox: Sandbox, base_image: str, tmp_path: Path) -> None:
    snapshot = hub_snapshot(tmp_path / "hub")
    mounted = resolve_source(str(snapshot), tmp_path / "hub", "model")
    code = "print(open('/models/policy/config.json').read(), open('/models/policy/sub/tokenizer.json').read())"
    result = sandbox.run(base_image, ["python3", "-c", code], limits=SandboxLimits(timeout_s=20, memory_bytes="256m"),
                         mounts=[Mount(mounted, "/models/policy")])
    assert result.ok, result.failure_reason() + result.stderr_tail
    assert result.stdout_tail == '{"n_layer": 2} {}\n'
    assert not any(p.is_symlink() for p in mounted.rglob("*"))
    assert resolve_source(str(snapshot), tmp_path / "hub", "model") == mounted  # built once, reused


def test_a_plain_directory_is_mounted_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    assert resolve_source(str(tmp_path / "model"), tmp_path / "hub", "model") == tmp_path / "model"
