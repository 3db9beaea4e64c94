"""/out cannot fill the host disk: the kernel caps it, and the read-back fails closed (issue 9.1).

Each attack runs in a real container; the assertions count what reached the host (`out_dir`)
and what the kernel let the candidate reserve.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.sandbox.errors import SandboxError
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.outfs import OutFsKind, fs_bytes, fs_kind, staging_root
from engine.sandbox.runner import Sandbox
from tests.security.conftest import HOSTILE
from tests.security.test_hostile import hostile, report

pytestmark = pytest.mark.docker

EXT4 = HOSTILE.model_copy(update={"out_tmpfs_max_bytes": 1 << 20})  # 8 MiB cap > 1 MiB: the ext4 image
KINDS = [pytest.param(HOSTILE, id="tmpfs"), pytest.param(EXT4, id="ext4-image")]


def refused_on_rootless(box: Sandbox, base_image: str, out_dir: Path, limits: SandboxLimits) -> bool:
    """A rootless engine cannot loop-mount the ext4 image: the run is refused, clearly, before any
    container starts (outfs). True when that is what happened (nothing else to test)."""
    if not box.engine.rootless or fs_kind(limits) is not OutFsKind.EXT4_IMAGE:
        return False
    with pytest.raises(SandboxError, match="a rootless engine cannot mount"):
        box.run(base_image, ["true"], out_dir=out_dir, limits=limits)
    assert not list(staging_root(box.engine).glob(f"{box.run_id}/*"))
    return True


def host_bytes(path: Path) -> int:
    """Allocated bytes under `path` on the host, counted without following links."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


@pytest.mark.parametrize("limits", KINDS)
def test_directories_nested_past_path_max_fail_the_run_closed(box: Sandbox, base_image: str, out_dir: Path,
                                                               limits: SandboxLimits) -> None:
    if refused_on_rootless(box, base_image, out_dir, limits):
        return
    result = hostile(box, base_image, """
        import errno, json, os
        os.chdir('/out')
        written = depth = 0
        try:
            for depth in range(1, 41):                 # 40 x 256 bytes: far past PATH_MAX
                os.mkdir('d' * 255); os.chdir('d' * 255)
                with open('blob', 'wb') as fh:
                    fh.write(b'x' * (128 << 10)); written += 128 << 10
            err = None
        except OSError as exc:
            err = errno.errorcode[exc.errno]
        print(json.dumps({"depth": depth, "written": written, "errno": err}))
    """, out_dir=out_dir, limits=limits)
    got = report(result)
    assert got["depth"] == 40 and got["written"] == 40 * (128 << 10)  # the tree was built, under the caps...
    assert not result.ok and result.out_overflow, result  # ...and the read-back failed closed, not skipped it
    assert "/out" in result.failure_reason()
    assert result.out_files == {} and os.listdir(out_dir) == [] and host_bytes(out_dir) == 0
    assert not list(staging_root(box.engine).glob(f"{box.run_id}/*"))  # unmounted and removed


@pytest.mark.parametrize("limits", KINDS)
@pytest.mark.parametrize("ask", [64 << 20, (8 << 20) + (512 << 10)], ids=["64MiB", "just-past-the-cap"])
def test_fallocate_keep_size_cannot_reserve_past_the_cap(box: Sandbox, base_image: str, out_dir: Path,
                                                         limits: SandboxLimits, ask: int) -> None:
    if refused_on_rootless(box, base_image, out_dir, limits):
        return
    result = hostile(box, base_image, f"""
        import ctypes, errno, json, os
        libc = ctypes.CDLL(None, use_errno=True)
        reserved = size = 0
        errors = set()
        for i in range(({ask} + (1 << 21) - 1) >> 21):  # 2 MiB per file: each under RLIMIT_FSIZE
            fd = os.open(f'/out/reserved{{i}}', os.O_CREAT | os.O_WRONLY)
            n = min(1 << 21, {ask} - (i << 21))
            if libc.fallocate(fd, 1, ctypes.c_long(0), ctypes.c_long(n)) != 0:  # 1: FALLOC_FL_KEEP_SIZE
                errors.add(errno.errorcode[ctypes.get_errno()])
            st = os.fstat(fd)
            reserved += st.st_blocks * 512; size += st.st_size
            os.close(fd)
        print(json.dumps({{"errors": sorted(errors), "size": size, "reserved": reserved}}))
    """, out_dir=out_dir, limits=limits)
    got = report(result)
    assert got["size"] == 0 and got["reserved"] <= fs_bytes(limits), got  # the kernel's cap held
    if got["reserved"] > limits.out_max_bytes:  # what it did reserve past the cap is counted, not missed
        assert result.failure_reason() == "wrote more than 8 MiB to /out" and os.listdir(out_dir) == []
    else:
        assert result.ok and set(result.out_files.values()) == {0}
    assert host_bytes(out_dir) <= limits.out_max_bytes


def test_out_is_mounted_nosuid_nodev_noexec(box: Sandbox, base_image: str, out_dir: Path) -> None:
    result = hostile(box, base_image, """
        import errno, json, os, shutil
        line = next(l for l in open('/proc/self/mountinfo') if l.split()[4] == '/out')
        shutil.copy('/bin/true', '/out/true'); os.chmod('/out/true', 0o755)
        try:
            os.execv('/out/true', ['true']); got = "ran"
        except OSError as exc:
            got = errno.errorcode[exc.errno]
        print(json.dumps({"options": line.split()[5].split(','), "exec": got}))
    """, out_dir=out_dir)
    got = report(result)
    assert {"nosuid", "nodev", "noexec"} <= set(got["options"]), got
    assert got["exec"] == "EACCES"
