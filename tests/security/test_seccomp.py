"""Syscalls Docker 20.10's default profile allows but evobox's profile refuses, tried from inside
a real candidate container, and the proof that the profile is on every container the Sandbox
starts. x86_64 syscall numbers (the machines this suite runs on)."""

from __future__ import annotations

import platform
import threading
import time

import docker
import pytest

from engine.sandbox.reaper import RUN_LABEL
from engine.sandbox.runner import Sandbox
from engine.sandbox.seccomp import profile_json
from tests.security.conftest import HOSTILE
from tests.security.test_hostile import hostile, report

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 syscall numbers")]

PROBE = """
    import ctypes, errno, json, os
    libc = ctypes.CDLL(None, use_errno=True)
    def sc(number, *args):
        r = libc.syscall(number, *args)
        return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
    buf = ctypes.create_string_buffer(4096)
    iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 16)
    got = {
        "io_uring_setup": sc(425, 8, buf),                # a ring would run open/read/socket unseen
        "io_uring_enter": sc(426, 0, 1, 0, 0, None, 0),
        "io_uring_register": sc(427, 0, 0, None, 0),
        "ptrace_traceme": sc(101, 0, 0, 0, 0),            # allowed to anyone under Docker's profile
        "process_vm_readv": sc(310, os.getpid(), iov, 1, iov, 1, 0),
        "name_to_handle_at": sc(303, -100, b"/", buf, buf, 0),
        "modify_ldt": sc(154, 0, buf, 16),
        "userfaultfd": sc(323, 0),
        "perf_event_open": sc(298, buf, 0, -1, -1, 0),
        "bpf": sc(321, 0, buf, 48),
        "keyctl": sc(250, 0, 0, 0, 0, 0),
        "unshare": sc(272, 0x10000000),
    }
    print(json.dumps(got))
"""


def test_io_uring_ptrace_and_kernel_surface_are_refused(box: Sandbox, base_image: str) -> None:
    got = report(hostile(box, base_image, PROBE))
    assert got == {name: "EPERM" for name in got}, got


def test_a_32_bit_syscall_kills_the_process(box: Sandbox, base_image: str) -> None:
    """No i386 ABI: its syscall numbers differ, a classic way around a 64-bit-only filter."""
    result = hostile(box, base_image, """
        import ctypes, json, mmap, os
        code = bytes.fromhex("b814000000cd80c3")  # mov eax, 20 (i386 getpid); int 0x80; ret
        page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        page.write(code)
        call = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
        pid = os.fork()
        if pid == 0:
            call()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}))
    """)
    assert report(result) == {"signal": 31}  # SIGSYS


def test_threads_forks_mmap_and_sockets_still_work(box: Sandbox, base_image: str) -> None:
    result = hostile(box, base_image, """
        import json, mmap, multiprocessing, socket, threading
        got = []
        threads = [threading.Thread(target=got.append, args=(i,)) for i in range(8)]
        [t.start() for t in threads]; [t.join() for t in threads]
        page = mmap.mmap(-1, 1 << 20); page[:3] = b"abc"
        a, b = socket.socketpair(); a.sendall(b"x")
        with multiprocessing.get_context("fork").Pool(2) as pool:
            squares = pool.map(abs, [-1, -2, -3])
        print(json.dumps({"threads": len(got), "mmap": page[:3].decode(), "pair": b.recv(1).decode(),
                          "pool": squares}))
    """)
    assert report(result) == {"threads": 8, "mmap": "abc", "pair": "x", "pool": [1, 2, 3]}


def test_every_container_the_sandbox_starts_carries_the_profile(box: Sandbox, base_image: str,
                                                               docker_client: docker.DockerClient) -> None:
    """Read back from the engine while the candidate runs: the profile, its uid, no GPU."""
    done = threading.Event()
    runner = threading.Thread(target=lambda: (hostile(box, base_image, "import time; time.sleep(60)",
                                                      limits=HOSTILE.model_copy(update={"timeout_s": 90})),
                                              done.set()))
    runner.start()
    try:
        while not (running := docker_client.containers.list(filters={"label": f"{RUN_LABEL}={box.run_id}"})):
            assert runner.is_alive(), "the run ended before it could be inspected"
            time.sleep(0.05)
        attrs = running[0].attrs
        assert f"seccomp={profile_json()}" in attrs["HostConfig"]["SecurityOpt"]
        assert "no-new-privileges" in attrs["HostConfig"]["SecurityOpt"]
        uid = int(attrs["Config"]["User"].split(":")[0])
        assert attrs["Config"]["User"] == f"{uid}:{uid}" and uid != 65534
        assert "NVIDIA_VISIBLE_DEVICES=void" in attrs["Config"]["Env"]
    finally:
        for container in docker_client.containers.list(filters={"label": f"{RUN_LABEL}={box.run_id}"}):
            container.kill()
        runner.join(timeout=60)
    assert done.is_set()

