"""What crosses the wire is checked on arrival: trees are capped and hold only files and
directories inside their root; a node builds images from recipes and never trusts a tag."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import docker
import pytest

from engine.cluster.images import ImageRecipe, layer_recipe, materialize
from engine.cluster.wire import WireError, pack, tree_digest, unpack
from engine.sandbox.images import ImageBuilder


def tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.bin").write_bytes(b"\0beta")
    return root


def test_a_tree_round_trips_with_the_same_digest(tmp_path: Path):
    source = tree(tmp_path / "src")
    unpack(pack(source, 1 << 20), tmp_path / "dst", 1 << 20)
    assert (tmp_path / "dst" / "sub" / "b.bin").read_bytes() == b"\0beta"
    assert tree_digest(tmp_path / "dst") == tree_digest(source)
    (tmp_path / "dst" / "a.txt").write_text("changed")
    assert tree_digest(tmp_path / "dst") != tree_digest(source)


def test_symlinks_and_oversized_trees_are_not_sent(tmp_path: Path):
    source = tree(tmp_path / "src")
    with pytest.raises(WireError, match="over"):
        pack(source, 6)
    os.symlink("/etc/passwd", source / "link")
    with pytest.raises(WireError, match="neither a regular file"):
        pack(source, 1 << 20)


@pytest.mark.parametrize("member", ["link", "../escape.txt", "big"])
def test_a_forged_tree_is_refused_on_arrival(tmp_path: Path, member: str):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if member == "link":
            info = tarfile.TarInfo("link")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            data = b"x" * (4096 if member == "big" else 4)
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(WireError):
        unpack(buffer.getvalue(), tmp_path / "dst", 1024)
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.docker
def test_a_node_never_runs_an_image_planted_under_a_layers_tag(docker_client: docker.DockerClient):
    builder = ImageBuilder(docker_client)
    right = layer_recipe(ImageRecipe("base"), {"code.py": b"print('right')\n"}, "evobox-clustertest", {})
    tag, right_id = materialize(builder, right)
    planted = builder.layer(builder.base(), {"code.py": b"print('planted')\n"}, kind="evobox-clustertest")
    try:
        docker_client.images.get(planted).tag(tag)  # the tag now names other content
        assert builder.image_id(tag) != right_id
        again, image_id = materialize(builder, right)
        assert again == tag and image_id == right_id
    finally:
        for name in {tag, planted}:
            docker_client.images.remove(name, force=True)
