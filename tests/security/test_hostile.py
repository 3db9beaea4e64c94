"""Hostile candidates through the real sandbox: each one is contained and clearly reported.

The harness (conftest.py) checks after every case that the host is unchanged, the engine still
works and no container is left. Addresses used for network attempts are 192.0.2.1 (TEST-NET-1,
never routed) and the host's own 127.0.0.1, so nothing can reach a real machine even if the
sandbox were broken.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from engine.llm.endpoint import Endpoint
from engine.llm.gateway import Gateway
from engine.sandbox.engine import Engine
from engine.sandbox.errors import OutFileError
from engine.sandbox.runner import RunResult, Sandbox, read_out_file
from tests.security.conftest import HOSTILE

pytestmark = pytest.mark.docker
CANARY_PREFIX = "sk-evobox-canary-"


def hostile(box: Sandbox, image: str, code: str, **kwargs) -> RunResult:
    limits = kwargs.pop("limits", HOSTILE)
    return box.run(image, ["python3", "-c", textwrap.dedent(code)], limits=limits, **kwargs)


def report(result: RunResult) -> dict:
    """The JSON object the hostile script printed on its last stdout line."""
    lines = result.stdout_tail.strip().splitlines()
    assert lines, f"no report; stderr: {result.stderr_tail[-500:]}"
    return json.loads(lines[-1])


def test_fork_bomb_is_stopped_by_the_pids_limit(box: Sandbox, base_image: str, engine_info: Engine) -> None:
    """Every process of the bomb forks forever and reports its birth on a pipe; the first
    process counts the births, reads the pids cgroup (or, on an engine without cgroups, its
    RLIMIT_NPROC, which counts the candidate's own uid), reports, and waits to be killed."""
    result = hostile(box, base_image, """
        import json, os, resource, time
        def cgroup(name):
            for path in (f'/sys/fs/cgroup/pids/{name}', f'/sys/fs/cgroup/{name}'):  # cgroup v1, v2
                try:
                    return open(path).read().split()
                except OSError:
                    pass
        r, w = os.pipe()
        if os.fork() == 0:
            os.close(r)
            while True:
                try:
                    if os.fork() == 0:
                        os.write(w, b'.')
                except OSError:
                    pass
        os.close(w)
        os.set_blocking(r, False)
        born, quiet = 0, 0
        while quiet < 20:  # 1 s without a birth: the bomb has reached whatever stops it
            try:
                born += len(os.read(r, 65536))
                quiet = 0
            except BlockingIOError:
                quiet += 1
                time.sleep(0.05)
        print(json.dumps({"born": born, "max": cgroup('pids.max'), "events": cgroup('pids.events'),
                          "nproc": resource.getrlimit(resource.RLIMIT_NPROC)}), flush=True)
        time.sleep(600)
    """, limits=HOSTILE.model_copy(update={"timeout_s": 8}))
    assert result.timed_out and result.failure_reason() == "timed out after 8s"
    got = report(result)
    if engine_info.cgroup_limits:
        assert got["max"] == [str(HOSTILE.pids)] and int(got["events"][1]) > 0  # the cap refused forks...
    else:
        assert got["nproc"] == [HOSTILE.pids, HOSTILE.pids]  # the rlimit that stands in for the cgroup
    processes = got["born"] + 3  # the engine's init (PID 1), the bomb's first process and the counter
    assert HOSTILE.pids - 4 <= processes <= HOSTILE.pids, got  # ...when the bomb reached it, not before


def test_memory_bomb_is_oom_killed(box: Sandbox, base_image: str, engine_info: Engine) -> None:
    """The memory cgroup OOM-kills it; an engine without cgroups refuses its allocations past
    RLIMIT_DATA instead (per process: see runner._rlimits)."""
    result = hostile(box, base_image, """
        blocks = []
        while True:
            blocks.append(bytearray(16 << 20))
    """)
    assert not result.ok
    if engine_info.cgroup_limits:
        assert result.oom_killed and result.failure_reason() == "out of memory (256 MiB)"
    else:
        assert result.failure_reason() == "exit 1: MemoryError", result.stderr_tail


def test_filling_tmp_stops_at_the_tmpfs_cap(box: Sandbox, base_image: str) -> None:
    result = hostile(box, base_image, """
        import errno, json
        written = 0
        try:
            with open('/tmp/fill', 'wb') as fh:
                while True:
                    fh.write(b'x' * (1 << 20)); fh.flush(); written += 1 << 20
        except OSError as exc:
            print(json.dumps({"written": written, "errno": errno.errorcode[exc.errno]}))
    """)
    got = report(result)
    assert got["errno"] in {"ENOSPC", "EFBIG"} and got["written"] <= HOSTILE.tmp_bytes


def test_one_huge_file_stops_at_the_fsize_limit(box: Sandbox, base_image: str, out_dir: Path) -> None:
    result = hostile(box, base_image, """
        import errno, json
        written = 0
        try:
            with open('/out/huge', 'wb', buffering=0) as fh:
                while True:
                    written += fh.write(b'x' * (1 << 20))
        except OSError as exc:
            print(json.dumps({"written": written, "errno": errno.errorcode[exc.errno]}))
    """, out_dir=out_dir)
    got = report(result)
    assert got["errno"] == "EFBIG" and got["written"] <= HOSTILE.fsize_bytes
    assert (out_dir / "huge").stat().st_size <= HOSTILE.fsize_bytes


def test_filling_out_is_killed_reported_and_cleaned(box: Sandbox, base_image: str, out_dir: Path) -> None:
    result = hostile(box, base_image, """
        i = 0
        while True:
            with open(f'/out/part{i}', 'wb') as fh:
                fh.write(b'x' * (1 << 20))
            i += 1
    """, out_dir=out_dir, limits=HOSTILE.model_copy(update={"timeout_s": 30}))
    assert not result.ok and not result.timed_out
    assert result.failure_reason() == "wrote more than 8 MiB to /out"
    assert result.out_files == {} and os.listdir(out_dir) == []


def test_a_million_tiny_files_hit_the_caps_and_the_engine_survives(box: Sandbox, base_image: str,
                                                                  out_dir: Path) -> None:
    in_tmp = hostile(box, base_image, """
        import errno, json
        n = 0
        try:
            while n < 1_000_000:
                open(f'/tmp/f{n}', 'w').close(); n += 1
        except OSError as exc:
            print(json.dumps({"files": n, "errno": errno.errorcode[exc.errno]}))
    """)
    got = report(in_tmp)
    assert got["errno"] == "ENOSPC" and got["files"] < 100_000
    in_out = hostile(box, base_image, """
        n = 0
        while n < 1_000_000:
            open(f'/out/f{n}', 'w').close(); n += 1
    """, out_dir=out_dir, limits=HOSTILE.model_copy(update={"timeout_s": 30}))
    assert in_out.failure_reason() == "wrote more than 200 files to /out"
    assert os.listdir(out_dir) == []


def test_writing_outside_tmp_and_out_fails(box: Sandbox, base_image: str, in_dir: Path, out_dir: Path) -> None:
    result = hostile(box, base_image, """
        import json
        targets = ['/x', '/etc/passwd', '/usr/bin/python3', '/opt/evobox/x', '/var/tmp/x', '/root/x',
                   '/in/canary.txt', '/in/new', '/proc/sys/kernel/hostname', '/sys/kernel/x']
        ok = []
        for path in targets:
            try:
                with open(path, 'a') as fh:
                    fh.write('pwned')
                ok.append(path)
            except OSError:
                pass
        print(json.dumps({"written": ok}))
    """, in_dir=in_dir, out_dir=out_dir)
    assert report(result) == {"written": []}


def test_network_tcp_udp_dns_and_raw_sockets_all_fail(box: Sandbox, base_image: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    result = hostile(box, base_image, f"""
        import json, os, socket
        got = {{"ifaces": sorted(os.listdir('/sys/class/net'))}}
        def attempt(name, fn):
            try:
                fn(); got[name] = "reached"
            except OSError as exc:
                got[name] = type(exc).__name__
        def tcp(host, port):
            s = socket.create_connection((host, port), timeout=2); s.close()
        attempt("tcp_out", lambda: tcp("192.0.2.1", 80))
        attempt("tcp_host_loopback", lambda: tcp("127.0.0.1", {port}))
        attempt("udp_out", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 53)))
        attempt("dns", lambda: socket.getaddrinfo("example.com", 443))
        attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        attempt("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
        print(json.dumps(got))
    """)
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing reached the host's loopback
    listener.close()
    got = report(result)
    assert got.pop("ifaces") == ["lo"]
    assert "reached" not in got.values(), got
    assert got["raw"] == got["packet"] == "PermissionError"


def test_engine_secrets_are_invisible_inside_proc_included(box: Sandbox, base_image: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's own secrets: the API key in the engine's (and so the gateway's) environment
    and upstream endpoint, and a key file the engine reads. An agent with its gateway grant
    looks for them in its environment, every /proc/*/environ and cmdline, and every file it can
    read (its mounts included); the prefix is split so the search itself does not carry it."""
    canary = f"{CANARY_PREFIX}{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    key_file = tmp_path / "engine" / "openai.key"
    key_file.parent.mkdir()
    key_file.write_text(canary)
    upstream = Endpoint("http://127.0.0.1:9/v1", key_file.read_text(), "scripted")
    with tempfile.TemporaryDirectory(prefix="gw-", dir="/tmp") as sockets, Gateway(upstream, Path(sockets)) as gateway:
        grant = gateway.grant("secret-hunter", transcript=tmp_path / "t.jsonl", max_calls=1, max_tokens=10)
        result = hostile(box, base_image, """
            import glob, json, os
            prefix = 'sk-evobox-' + 'canary-'
            found, read = [], 0
            if any(prefix in f'{k}={v}' for k, v in os.environ.items()):
                found.append('env')
            for path in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):
                try:
                    if prefix.encode() in open(path, 'rb').read():
                        found.append(path)
                except OSError:
                    pass
            for root, dirs, files in os.walk('/'):
                if root == '/':
                    dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev')]
                for name in files:
                    path = os.path.join(root, name)
                    try:
                        if os.path.isfile(path) and os.path.getsize(path) < (1 << 20):
                            read += 1
                            if prefix.encode() in open(path, 'rb').read():
                                found.append(path)
                    except OSError:
                        pass
            own = open('/proc/self/environ', 'rb').read().decode(errors='replace')
            try:
                init = open('/proc/1/environ', 'rb').read() and 'read'
            except OSError as exc:
                init = type(exc).__name__
            print(json.dumps({"found": found, "read": read, "own": own, "init": init,
                              "mounted": sorted(os.listdir('/run/llm'))}))
        """, env={**grant.env, "EVOBOX_ON_PURPOSE": "1"}, mounts=[grant.mount],
            limits=HOSTILE.model_copy(update={"timeout_s": 60}))
    got = report(result)
    assert "PYTHONPATH=/opt/evobox" in got["own"] and "EVOBOX_ON_PURPOSE=1" in got["own"]  # the reads worked
    assert got["init"] == "PermissionError"  # PID 1 is the engine's init: not the candidate's to read
    assert got["mounted"] and got["read"] > 1000  # the gateway's mount and the image's files were searched
    assert got["found"] == [] and canary not in result.stdout_tail + result.stderr_tail


def test_no_docker_socket_inside(box: Sandbox, base_image: str) -> None:
    result = hostile(box, base_image, """
        import json, os, socket
        paths = ['/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock']
        got = {"exists": [p for p in paths if os.path.exists(p)]}
        try:
            s = socket.socket(socket.AF_UNIX); s.connect('/var/run/docker.sock'); got["connect"] = "reached"
        except OSError as exc:
            got["connect"] = type(exc).__name__
        print(json.dumps(got))
    """)
    assert report(result) == {"exists": [], "connect": "FileNotFoundError"}


def test_setuid_mount_unshare_and_ptrace_are_denied(box: Sandbox, base_image: str) -> None:
    result = hostile(box, base_image, """
        import ctypes, errno, json, os
        libc = ctypes.CDLL(None, use_errno=True)
        def call(fn, *args):
            r = fn(*args)
            return "ok" if r == 0 else errno.errorcode[ctypes.get_errno()]
        got = {}
        try:
            os.setuid(0); got["setuid"] = "ok"
        except OSError as exc:
            got["setuid"] = errno.errorcode[exc.errno]
        got["mount"] = call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None)
        got["unshare_user"] = call(libc.unshare, 0x10000000)
        got["unshare_mnt"] = call(libc.unshare, 0x00020000)
        got["ptrace_pid1"] = call(libc.ptrace, 16, 1, None, None)
        status = dict(line.split(":\\t", 1) for line in open('/proc/self/status').read().splitlines() if ":\\t" in line)
        got["cap_eff"] = status["CapEff"].strip()
        got["no_new_privs"] = status["NoNewPrivs"].strip()
        got["pids_visible"] = len([p for p in os.listdir('/proc') if p.isdigit()])
        print(json.dumps(got))
    """)
    got = report(result)
    assert got["setuid"] == got["mount"] == got["unshare_user"] == got["unshare_mnt"] == "EPERM"
    assert got["ptrace_pid1"] == "EPERM"
    assert got["cap_eff"] == "0000000000000000" and got["no_new_privs"] == "1"
    assert got["pids_visible"] <= 2  # only the container's own processes: no host pid to attach to


@pytest.mark.timeout(120)  # hang guards; kill latencies are figures of benchmarks/perf_containment.py
def test_infinite_loop_is_killed_at_the_timeout(box: Sandbox, base_image: str) -> None:
    result = hostile(box, base_image, "while True: pass", limits=HOSTILE.model_copy(update={"timeout_s": 1.5}))
    assert result.timed_out and result.exit_code is None
    assert result.failure_reason() == "timed out after 1.5s"


@pytest.mark.timeout(120)
def test_process_ignoring_sigterm_is_still_killed(box: Sandbox, base_image: str) -> None:
    result = hostile(box, base_image, """
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(1)
    """, limits=HOSTILE.model_copy(update={"timeout_s": 1}))
    assert result.timed_out  # and (conftest) no container is left


def _memory_kib(field: str) -> int:
    """VmRSS / VmHWM of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def test_a_gigabyte_to_stdout_keeps_only_a_capped_tail(box: Sandbox, base_image: str) -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
    rss_before = _memory_kib("VmRSS")
    result = hostile(box, base_image, """
        import sys
        block = b'y' * (1 << 20)
        for _ in range(1024):
            sys.stdout.buffer.write(block)
        sys.stdout.buffer.write(b'THE END')
    """, limits=HOSTILE.model_copy(update={"timeout_s": 60}))
    assert result.ok, result.failure_reason()
    assert len(result.stdout_tail) <= HOSTILE.log_tail_bytes and result.stdout_tail.endswith("THE END")
    assert _memory_kib("VmHWM") - rss_before < 200 * 1024  # KiB: the engine's peak during this flood


def test_symlink_result_to_a_host_file_is_refused(box: Sandbox, base_image: str, out_dir: Path) -> None:
    result = hostile(box, base_image, """
        import os
        os.symlink('/etc/passwd', '/out/result.json')
        os.symlink('/etc', '/out/etc')
    """, out_dir=out_dir)
    assert result.ok and result.out_files == {}
    with pytest.raises(OutFileError):
        read_out_file(out_dir, "result.json", 1 << 20)
    with pytest.raises(OutFileError):
        read_out_file(out_dir, "etc/passwd", 1 << 20)


@pytest.mark.timeout(30)
def test_fifo_result_is_refused_without_hanging(box: Sandbox, base_image: str, out_dir: Path) -> None:
    result = hostile(box, base_image, "import os; os.mkfifo('/out/result.json')", out_dir=out_dir)
    assert result.ok and result.out_files == {}
    outcome: list[BaseException | bytes] = []

    def read() -> None:
        try:
            outcome.append(read_out_file(out_dir, "result.json", 1 << 20))
        except OutFileError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading a FIFO result hung the engine"
    assert isinstance(outcome[0], OutFileError)
