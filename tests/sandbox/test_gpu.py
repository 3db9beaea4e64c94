"""GPU leases, tested with fake device lists: no two leases share a device, a dead process's lease
returns, a busy device is waited for, and a container sees exactly its leased devices."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import structlog

from engine.sandbox.errors import GpuUnavailableError
from engine.sandbox.gpu import GpuLeaser
from engine.sandbox.limits import DEFAULT_UID_RANGE, SandboxLimits
from engine.sandbox.runner import _container_spec


def test_two_leases_never_share_a_device(tmp_path: Path) -> None:
    first = GpuLeaser(tmp_path, devices=[0, 1, 2, 3]).lease(2)
    second = GpuLeaser(tmp_path, devices=[0, 1, 2, 3]).lease(2)
    assert set(first.indices).isdisjoint(second.indices)
    assert sorted(first.indices + second.indices) == [0, 1, 2, 3]
    first.release()
    second.release()


def test_exhausted_devices_fail_with_a_clear_message_then_free_on_release(tmp_path: Path) -> None:
    leaser = GpuLeaser(tmp_path, devices=[0, 1])
    with leaser.lease(2) as held:
        assert held.indices == (0, 1)
        with pytest.raises(GpuUnavailableError, match="only 0 of 2 are free"):
            GpuLeaser(tmp_path, devices=[0, 1]).lease(1)
    with GpuLeaser(tmp_path, devices=[0, 1]).lease(1) as again:
        assert again.indices == (0,)


def test_asking_for_a_gpu_where_there_is_none_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GpuUnavailableError, match="this machine has no GPU"):
        GpuLeaser(tmp_path, devices=[]).lease(1)
    with pytest.raises(GpuUnavailableError, match="asked for 3 GPU"):
        GpuLeaser(tmp_path, devices=[0, 1]).lease(3)


def test_lease_of_a_killed_process_is_reclaimed(tmp_path: Path) -> None:
    holder = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from engine.sandbox.gpu import GpuLeaser
        lease = GpuLeaser(Path({str(tmp_path)!r}), devices=[0]).lease(1)
        print(lease.indices[0], flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "0"
        with pytest.raises(GpuUnavailableError):
            GpuLeaser(tmp_path, devices=[0]).lease(1)
    finally:
        proc.kill()
        proc.wait()
    with GpuLeaser(tmp_path, devices=[0]).lease(1, wait_s=2) as lease:
        assert lease.indices == (0,)


def test_device_request_names_exactly_the_leased_indices(tmp_path: Path) -> None:
    with GpuLeaser(tmp_path, devices=[3, 5, 7]).lease(2) as lease:
        request = lease.device_request()
        assert request["DeviceIDs"] == ["3", "5"] and request["Capabilities"] == [["gpu"]]


def test_lock_files_are_usable_by_every_user(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    with GpuLeaser(lock_dir, devices=[0]).lease(1):
        pass
    assert stat.S_IMODE(os.stat(lock_dir).st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(lock_dir / "gpu0.lock").st_mode) == 0o666


def test_a_busy_gpu_is_waited_for_with_progress_then_leased(tmp_path: Path) -> None:
    holder = GpuLeaser(tmp_path, devices=[0]).lease(1)
    got: list[tuple[int, ...]] = []
    with structlog.testing.capture_logs() as logs:
        waiter = threading.Thread(target=lambda: got.append(GpuLeaser(tmp_path, devices=[0]).lease(1, wait_s=120).indices))
        waiter.start()
        while not any(entry["event"] == "sandbox.gpu_wait" for entry in logs):
            assert waiter.is_alive(), "the lease gave up instead of waiting"
            time.sleep(0.05)
        holder.release()
        waiter.join(timeout=60)
    assert got == [(0,)]
    wait = next(entry for entry in logs if entry["event"] == "sandbox.gpu_wait")
    assert wait["free"] == 0 and wait["devices"] == 1 and wait["max_wait_s"] == 120


def test_the_wait_for_a_busy_gpu_is_bounded(tmp_path: Path) -> None:
    with GpuLeaser(tmp_path, devices=[0, 1]).lease(2):
        with pytest.raises(GpuUnavailableError, match="only 0 of 2 are free after waiting 0.5s"):
            GpuLeaser(tmp_path, devices=[0, 1]).lease(1, wait_s=0.5)


def test_a_gpu_that_does_not_exist_is_an_error_without_waiting(tmp_path: Path) -> None:
    with pytest.raises(GpuUnavailableError, match="this machine has 2 GPU"):
        GpuLeaser(tmp_path, devices=[0, 1]).lease(3, wait_s=3600)  # waiting would hang the test


def test_the_container_sees_exactly_the_leased_gpus_and_none_without_a_lease(tmp_path: Path) -> None:
    """NVIDIA_VISIBLE_DEVICES is always set: a host whose default runtime is nvidia reads it."""
    limits = SandboxLimits().model_copy(update={"uid": DEFAULT_UID_RANGE[0]})
    with GpuLeaser(tmp_path, devices=[3, 5, 7]).lease(2) as lease:
        spec = _container_spec("img", ["true"], limits, None, None, (), {}, lease, {}, "name")
        assert spec["environment"]["NVIDIA_VISIBLE_DEVICES"] == "3,5"
        assert spec["device_requests"][0]["DeviceIDs"] == ["3", "5"]
    spec = _container_spec("img", ["true"], limits, None, None, (), {"NVIDIA_VISIBLE_DEVICES": "all"}, None, {}, "n")
    assert spec["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void" and spec["device_requests"] == []


def test_no_image_recipe_defaults_to_all_gpus() -> None:
    recipes = list((Path(__file__).parents[2] / "sandbox_images").glob("*/Dockerfile"))
    assert any("cuda" in str(path) for path in recipes)
    for path in recipes:
        instructions = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        for value in re.findall(r"NVIDIA_VISIBLE_DEVICES=(\S+)", instructions):
            assert value == "void", f"{path} sets NVIDIA_VISIBLE_DEVICES={value}"
