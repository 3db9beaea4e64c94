"""Images are named by their inputs: the same inputs are a lookup, never a second build."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import docker
import pytest

from engine.sandbox.errors import ImageBuildError
from engine.sandbox.images import IMAGE_ENV, ImageBuilder
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.runner import Sandbox

pytestmark = pytest.mark.docker
FAST = SandboxLimits(timeout_s=20, memory_bytes="256m")


def test_base_has_python311_and_the_standard_env(docker_client: docker.DockerClient, base_image: str) -> None:
    config = docker_client.images.get(base_image).attrs["Config"]
    assert config["WorkingDir"] == "/opt/evobox"
    assert {f"{k}={v}" for k, v in IMAGE_ENV.items()} <= set(config["Env"])
    out = docker_client.containers.run(base_image, ["python3", "-c", "import sys; print(sys.version_info[:2])"],
                                       network_mode="none", remove=True)
    assert out.strip() == b"(3, 11)"


def test_base_tag_is_known_without_building(image_builder: ImageBuilder, base_image: str) -> None:
    assert image_builder.base_tag() == base_image == image_builder.base()


@pytest.mark.slow
def test_same_packages_give_the_same_base_image_id(image_builder: ImageBuilder, base_image: str,
                                                   docker_client: docker.DockerClient) -> None:
    """Rebuild the rootfs from scratch under another tag: the image id must not change."""
    tag = "evobox/base-repro:test"
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        image_builder._mmdebstrap(rootfs)
        image_builder._load_rootfs(rootfs, tag, Path(tmp) / "image.tar")
    try:
        assert docker_client.images.get(tag).id == docker_client.images.get(base_image).id
    finally:
        docker_client.images.remove(tag)


def test_layer_same_inputs_same_tag_and_a_cache_hit(image_builder: ImageBuilder, base_image: str,
                                                    docker_client: docker.DockerClient) -> None:
    files = {"cand.py": f"X = {time.time_ns()}\n".encode()}
    first = image_builder.layer(base_image, files, kind="test-candidate")
    try:
        image_id = docker_client.images.get(first).id
        started = time.monotonic()
        again = image_builder.layer(base_image, dict(files), kind="test-candidate")
        hit_s = time.monotonic() - started
        assert again == first and docker_client.images.get(again).id == image_id
        assert hit_s < 0.5  # a lookup, not a build (the goal is < 0.05 s; CI machines are noisy)
        other = image_builder.layer(base_image, {"cand.py": b"X = 0\n"}, kind="test-candidate")
        assert other != first
        relabelled = image_builder.layer(base_image, files, kind="test-candidate", labels={"evobox.candidate": "c1"})
        assert relabelled not in (first, other)  # labels are inputs: runs never share a reapable image
    finally:
        for tag in {first, locals().get("other", first), locals().get("relabelled", first)}:
            docker_client.images.remove(tag, force=True)


def test_layer_files_are_present_and_read_only_for_the_candidate(image_builder: ImageBuilder, base_image: str,
                                                                 sandbox: Sandbox, docker_client: docker.DockerClient) -> None:
    files = {"pkg/mod.py": b"VALUE = 41 + 1\n", "data.json": b'{"k": 1}'}
    tag = image_builder.layer(base_image, files, kind="test-candidate", labels={"evobox.run": sandbox.run_id})
    code = ("import os, json, pkg.mod as m; print(json.dumps([m.VALUE, open('data.json').read(),"
            " os.stat('pkg/mod.py').st_uid, oct(os.stat('pkg/mod.py').st_mode & 0o777), os.access('pkg/mod.py', os.W_OK)]));"
            "open('pkg/mod.py', 'a').write('x')")
    result = sandbox.run(tag, ["python3", "-c", code], limits=FAST)
    assert json.loads(result.stdout_tail) == [42, '{"k": 1}', 0, "0o644", False]
    assert "Read-only file system" in result.stderr_tail or "Permission denied" in result.stderr_tail
    assert docker_client.images.get(tag).labels["evobox.run"] == sandbox.run_id


@pytest.mark.parametrize("bad", ["../escape.py", "/abs.py", "a/./b.py", ""])
def test_layer_refuses_paths_outside_opt_evobox(image_builder: ImageBuilder, base_image: str, bad: str) -> None:
    with pytest.raises(ValueError, match="bad file path"):
        image_builder.layer(base_image, {bad: b""}, kind="test-candidate")


@pytest.mark.slow
def test_runtime_recipe_installs_wheels_in_a_venv_and_leaves_no_wheel(
        image_builder: ImageBuilder, base_image: str, sandbox: Sandbox, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's recipe, verbatim, with one small pinned wheel (downloaded from PyPI on the host)."""
    readme = (Path(__file__).resolve().parents[2] / "sandbox_images" / "README.md").read_text()
    dockerfile = readme.split("```dockerfile\n", 1)[1].split("```", 1)[0]
    recipe = tmp_path / "tiny"
    recipe.mkdir()
    (recipe / "Dockerfile").write_text(dockerfile)
    (recipe / "requirements.txt").write_text("six==1.16.0\n")
    monkeypatch.setenv("EVOBOX_IMAGES_DIR", str(tmp_path))
    tag = image_builder.runtime("tiny")
    assert tag.startswith("evobox/runtime-tiny:") and image_builder.runtime("tiny") == tag
    code = "import six, sys, os; print(six.__version__, sys.prefix, os.path.exists('/tmp/wheels'), os.path.exists('/tmp/pip.whl'))"
    result = sandbox.run(tag, ["python3", "-c", code], limits=FAST)
    assert result.stdout_tail == "1.16.0 /opt/venv False False\n", result.stderr_tail


def test_runtime_recipe_from_a_registry_image_is_refused(image_builder: ImageBuilder, base_image: str,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = tmp_path / "pulls"
    recipe.mkdir()
    (recipe / "Dockerfile").write_text("FROM python:3.11-slim\nRUN true\n")
    (recipe / "requirements.txt").write_text("six==1.16.0\n")
    monkeypatch.setenv("EVOBOX_IMAGES_DIR", str(tmp_path))
    with pytest.raises(ImageBuildError, match="would need a registry"):
        image_builder.runtime("pulls")
