"""Finding the engine (as Docker's tools do) and what a rootless one changes; no engine needed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from engine.sandbox import runner
from engine.sandbox.engine import ROOT_SOCKET, Engine, find_url
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.uids import ROOTLESS_NS_RANGE, lease_uid

ROOTLESS = Engine(url="unix:///x", source="test", rootless=True, cgroup_limits=False, ns_pid=1,
                  uid_map=((0, 1001, 1), (1, 100000, 65536)))


@pytest.fixture()
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path


def test_docker_host_wins_then_the_rootless_socket_then_the_root_socket(runtime: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_url() == (f"unix://{ROOT_SOCKET}", "root socket")  # no rootless socket yet
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(runtime / "docker.sock"))
        assert find_url() == (f"unix://{runtime}/docker.sock", "rootless socket")
        monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
        assert find_url() == ("tcp://127.0.0.1:2375", "DOCKER_HOST")


def test_a_rootless_uid_is_leased_in_the_users_subuid_block_and_locked_by_host_uid(tmp_path: Path) -> None:
    with lease_uid((0x7000_0000, 0x7000_0001), tmp_path, ROOTLESS) as first, \
            lease_uid((0x7000_0000, 0x7000_0001), tmp_path, ROOTLESS) as second:
        assert (first.uid, second.uid) == (ROOTLESS_NS_RANGE[0], ROOTLESS_NS_RANGE[0] + 1)
        assert ROOTLESS.host_uid(first.uid) == 100000 + first.uid - 1
        assert (tmp_path / f"uid-{100000 + first.uid - 1}.lock").exists()
    assert Engine(url="", source="").host_uid(5) == 5 and ROOTLESS.host_uid(70000) is None


def test_an_engine_without_cgroups_gets_rlimits_in_their_place() -> None:
    limits = SandboxLimits(pids=64, memory_bytes="256m", cpus=2, timeout_s=10).model_copy(update={"uid": 10000})
    spec = runner._container_spec("img", ["true"], limits, None, None, (), {}, None, {}, "n", ROOTLESS)
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in spec["ulimits"]}
    assert ulimits["nproc"] == (64, 64) and ulimits["data"] == (256 << 20, 256 << 20) and ulimits["cpu"] == (21, 21)
    assert "msgqueue" in ulimits and "pids_limit" not in spec and "mem_limit" not in spec
    rooted = runner._container_spec("img", ["true"], limits, None, None, (), {}, None, {}, "n", None)
    assert rooted["pids_limit"] == 64 and rooted["mem_limit"] == 256 << 20
    assert not {"nproc", "data", "cpu", "msgqueue"} & {u["Name"] for u in rooted["ulimits"]}
