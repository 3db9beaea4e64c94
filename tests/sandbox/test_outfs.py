"""The per-run /out filesystem and its read-back, on the real kernel (the engine runs as root)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from engine.sandbox.errors import SandboxError
from engine.sandbox.limits import DEFAULT_UID_RANGE, SandboxLimits
from engine.sandbox.outcopy import copy_out
from engine.sandbox.outfs import OutFs, OutFsKind, fs_bytes, reap_outfs, staging_root

# Sandbox.run fills in the uid it leased for the run; OutFs alone gets one the same way.
SMALL = SandboxLimits(out_max_bytes="4m", out_max_files=50).model_copy(update={"uid": DEFAULT_UID_RANGE[0] + 99})
KINDS = [pytest.param(SMALL, id="tmpfs"), pytest.param(SMALL.model_copy(update={"out_tmpfs_max_bytes": 1 << 20}),
                                                       id="ext4-image")]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting /out needs root")


@pytest.fixture(autouse=True)
def own_staging_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staging root of the test's own: the machine's other runs are not ours to judge or litter."""
    monkeypatch.setenv("EVOBOX_OUTFS_DIR", str(tmp_path / "outfs"))


def mount_line(path: Path) -> list[str]:
    return next(line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if line.split()[4] == str(path))


@pytest.mark.parametrize("limits", KINDS)
def test_out_is_a_capped_nosuid_nodev_noexec_fs_owned_by_the_candidate(limits: SandboxLimits) -> None:
    run_id = f"test-outfs-{uuid.uuid4().hex[:8]}"
    with OutFs(run_id, limits) as out:
        assert out.kind is (OutFsKind.TMPFS if limits.out_tmpfs_max_bytes > (1 << 20) else OutFsKind.EXT4_IMAGE)
        assert {"nosuid", "nodev", "noexec"} <= set(mount_line(out.path)[5].split(","))
        assert os.stat(out.path).st_uid == limits.uid and os.listdir(out.path) == []
        with pytest.raises(OSError, match="No space left"), open(out.path / "big", "wb") as fh:
            for _ in range(fs_bytes(limits) // (1 << 20) + 2):
                fh.write(b"x" * (1 << 20))
                fh.flush()
    assert not out.path.exists() and str(out.path) not in Path("/proc/self/mountinfo").read_text()


def test_copy_takes_regular_files_only_and_empties_the_target_first(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("abc")
    (src / "d" / "b.bin").write_bytes(b"x" * 10)
    (src / "link").symlink_to("/etc/passwd")
    os.mkfifo(src / "fifo")
    dest.mkdir()
    (dest / "stale.json").write_text("{}")
    got = copy_out(src, dest, SMALL)
    assert got.overflow is None and got.files == {"a.txt": 3, "d/b.bin": 10}
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["a.txt", "d", "d/b.bin"]
    assert (dest / "d" / "b.bin").read_bytes() == b"x" * 10 and (dest / "a.txt").stat().st_mode & 0o777 == 0o644


def test_sparse_file_over_the_cap_is_an_overflow_and_nothing_is_copied(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    with open(src / "sparse", "wb") as fh:
        fh.truncate(1 << 30)
    got = copy_out(src, dest, SMALL)
    assert got.overflow == "wrote more than 4 MiB to /out" and got.files == {} and os.listdir(dest) == []


def test_a_non_root_engine_gets_a_clear_error() -> None:
    """In a forked child that dropped root (the modules are already imported)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        message = "no error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            OutFs("r", SandboxLimits())
        except SandboxError as exc:
            message = str(exc)
        finally:
            os.write(write, message.encode())
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        message = fh.read().decode()
    os.waitpid(pid, 0)
    assert message == "mounting a size-capped /out needs root, or a rootless engine of your own (make rootless)"


def test_reap_removes_the_mounts_of_dead_owners_only(tmp_path: Path) -> None:
    """Liveness is the owner process's, not a lock's: this process holds no run lock in the
    reaper's lock dir, yet its mount is kept; a killed process's mount is removed."""
    alive_id, dead_id = f"test-alive-{uuid.uuid4().hex[:8]}", f"test-dead-{uuid.uuid4().hex[:8]}"
    alive = OutFs(alive_id, SMALL)
    pid = os.fork()
    if pid == 0:  # an engine that mounts its /out and dies without cleaning up
        try:
            OutFs(dead_id, SMALL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert any(os.path.ismount(p / "mnt") for p in (staging_root() / dead_id).iterdir())
    try:
        reap_outfs(tmp_path / "locks")
        assert os.path.ismount(alive.path) and not (staging_root() / dead_id).exists()
    finally:
        alive.close()
