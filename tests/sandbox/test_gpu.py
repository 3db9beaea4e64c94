"""GPU leases, tested with fake device lists: no two leases share a device, a dead process's lease returns."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.sandbox.errors import GpuUnavailableError
from engine.sandbox.gpu import GpuLeaser


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
