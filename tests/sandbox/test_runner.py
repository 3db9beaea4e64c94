"""Behaviour of one hardened run, against the real Docker engine."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import docker
import pytest
import structlog

from engine.sandbox import gpu
from engine.sandbox.errors import GpuUnavailableError, OutFileError, SandboxError
from engine.sandbox.gpu import detect_gpus
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.reaper import RUN_LABEL
from engine.sandbox.runner import Mount, RunResult, Sandbox, read_out_file
from engine.sandbox.uids import ROOTLESS_NS_RANGE

pytestmark = pytest.mark.docker
FAST = SandboxLimits(timeout_s=20, memory_bytes="256m")


def py(code: str) -> list[str]:
    return ["python3", "-c", code]


def test_trivial_run_reports_exit_stdout_and_runs_as_its_leased_uid(sandbox: Sandbox, base_image: str) -> None:
    result = sandbox.run(base_image, py("import os; print('hi', os.getuid(), os.getgid(), os.getcwd())"), limits=FAST)
    assert result.ok and result.exit_code == 0 and not result.timed_out and not result.oom_killed
    uid = result.limits.uid
    assert result.stdout_tail == f"hi {uid} {uid} /opt/evobox\n"
    first, last = ROOTLESS_NS_RANGE if sandbox.engine.rootless else FAST.uid_range  # rootless: the subuid block
    assert first <= uid <= last and uid != 65534
    assert result.failure_reason() == ""


def test_environment_is_image_env_plus_only_what_is_passed(sandbox: Sandbox, base_image: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOBOX_HOST_ONLY", "leak")
    code = "import os, json; print(json.dumps(dict(os.environ)))"
    result = sandbox.run(base_image, py(code), limits=FAST, env={"EVOBOX_GIVEN": "yes"})
    env = json.loads(result.stdout_tail)
    assert env["EVOBOX_GIVEN"] == "yes"
    assert "EVOBOX_HOST_ONLY" not in env
    assert env["PYTHONPATH"] == "/opt/evobox" and env["HOME"] == "/tmp" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"  # no GPU without a lease, whatever the host's runtime
    assert set(env) <= {"PATH", "HOSTNAME", "PYTHONPATH", "HOME", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
                        "LANG", "EVOBOX_GIVEN", "NVIDIA_VISIBLE_DEVICES"}


def test_failure_reason_is_the_last_stderr_line(sandbox: Sandbox, base_image: str) -> None:
    result = sandbox.run(base_image, py("raise ValueError('bad candidate')"), limits=FAST)
    assert not result.ok and result.exit_code == 1
    assert result.failure_reason() == "exit 1: ValueError: bad candidate"


@pytest.mark.timeout(120)  # a hang guard; how fast the kill is: benchmarks/perf_containment.py
def test_timeout_kills_the_container_not_just_the_wait(sandbox: Sandbox, base_image: str,
                                                       docker_client: docker.DockerClient) -> None:
    result = sandbox.run(base_image, py("while True: pass"), limits=SandboxLimits(timeout_s=1))
    assert result.timed_out and result.exit_code is None and not result.ok
    assert result.failure_reason() == "timed out after 1s"
    assert not docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={sandbox.run_id}"})


def test_missing_image_is_a_sandbox_error_not_a_pull(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="never pulled"):
        sandbox.run("evobox/does-not-exist:0000", py("pass"), limits=FAST)


def test_labels_name_the_run_and_container_is_removed_after(sandbox: Sandbox, base_image: str,
                                                            docker_client: docker.DockerClient) -> None:
    candidate = f"cand-{uuid.uuid4().hex[:8]}"
    seen: list[dict] = []
    done = threading.Event()

    def spy() -> None:
        while not done.is_set():
            found = docker_client.containers.list(all=True, filters={"label": f"evobox.candidate={candidate}"})
            if found:
                seen.append(found[0].labels)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=spy)
    thread.start()
    try:
        sandbox.run(base_image, py("import time; time.sleep(3)"), limits=FAST, labels={"evobox.candidate": candidate})
    finally:
        done.set()
        thread.join()
    assert seen and seen[0][RUN_LABEL] == sandbox.run_id and seen[0]["evobox.candidate"] == candidate
    assert not docker_client.containers.list(all=True, filters={"label": f"evobox.candidate={candidate}"})


def test_out_dir_collects_regular_files_only(sandbox: Sandbox, base_image: str, tmp_path: Path) -> None:
    code = ("import os; os.makedirs('/out/d'); open('/out/a.txt','w').write('abc');"
            "open('/out/d/b.bin','wb').write(b'x'*10); os.symlink('/etc/passwd','/out/link'); os.mkfifo('/out/fifo')")
    result = sandbox.run(base_image, py(code), limits=FAST, out_dir=tmp_path / "out")
    assert result.ok, result.failure_reason()
    assert result.out_files == {"a.txt": 3, "d/b.bin": 10}
    assert read_out_file(tmp_path / "out", "d/b.bin", 100) == b"x" * 10


def test_in_dir_and_extra_mounts_are_read_only(sandbox: Sandbox, base_image: str, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "q.txt").write_text("question")
    (tmp_path / "extra").mkdir()
    code = ("import errno, os\n"
            "print(open('/in/q.txt').read(), os.path.isdir('/run/llm'))\n"
            "for path in ('/in/x', '/run/llm/x'):  # each write is tried: the first refusal must not hide the second\n"
            "    try:\n"
            "        open(path, 'w').close()\n"
            "        print(path, 'written')\n"
            "    except OSError as exc:\n"
            "        print(path, errno.errorcode[exc.errno])\n")
    result = sandbox.run(base_image, py(code), limits=FAST, in_dir=tmp_path / "in",
                         mounts=[Mount(tmp_path / "extra", "/run/llm")])
    assert result.stdout_tail == "question True\n/in/x EROFS\n/run/llm/x EROFS\n", result.stderr_tail
    assert sorted(os.listdir(tmp_path / "in")) == ["q.txt"] and not os.listdir(tmp_path / "extra")


def test_same_run_id_cannot_be_active_twice(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="already active"):
        Sandbox(sandbox.run_id)


def test_closed_sandbox_refuses_to_run(docker_client: docker.DockerClient, base_image: str) -> None:
    box = Sandbox("test-closed-sandbox", client=docker_client)
    box.close()
    with pytest.raises(SandboxError, match="closed"):
        box.run(base_image, py("pass"))


def test_failure_reason_names_oom_with_the_limit() -> None:
    result = RunResult(exit_code=137, timed_out=False, oom_killed=True, duration_s=1.0, stdout_tail="",
                       stderr_tail="", out_files={}, out_dir=None, limits=SandboxLimits(memory_bytes="1g"))
    assert result.failure_reason() == "out of memory (1 GiB)"


class TestReadOutFile:
    """The engine reads results without following links and without blocking on FIFOs."""

    def test_regular_file_is_read(self, tmp_path: Path) -> None:
        (tmp_path / "r.json").write_bytes(b"{}")
        assert read_out_file(tmp_path, "r.json", 10) == b"{}"

    def test_symlink_to_host_file_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "r.json").symlink_to("/etc/passwd")
        with pytest.raises(OutFileError, match="refused"):
            read_out_file(tmp_path, "r.json", 1 << 20)

    def test_symlinked_parent_dir_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "d").symlink_to("/etc")
        with pytest.raises(OutFileError, match="not a plain directory"):
            read_out_file(tmp_path, "d/passwd", 1 << 20)

    @pytest.mark.timeout(30)  # a blocking open of the FIFO would hang here for ever
    def test_fifo_is_refused_without_blocking(self, tmp_path: Path) -> None:
        os.mkfifo(tmp_path / "r.json")
        with pytest.raises(OutFileError, match="not a regular file"):
            read_out_file(tmp_path, "r.json", 100)

    def test_oversize_file_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "big").write_bytes(b"x" * 101)
        with pytest.raises(OutFileError, match="cap"):
            read_out_file(tmp_path, "big", 100)

    @pytest.mark.parametrize("relpath", ["../etc/passwd", "/etc/passwd", "", "a/../../x"])
    def test_paths_outside_out_are_refused(self, tmp_path: Path, relpath: str) -> None:
        with pytest.raises(OutFileError):
            read_out_file(tmp_path, relpath, 100)


def test_asking_for_a_gpu_without_one_fails_clearly_and_starts_nothing(
        sandbox: Sandbox, base_image: str, docker_client: docker.DockerClient) -> None:
    if detect_gpus():
        pytest.skip("this machine has a GPU")
    with pytest.raises(GpuUnavailableError, match="no GPU"):
        sandbox.run(base_image, py("pass"), limits=SandboxLimits(gpus=1))
    assert not docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={sandbox.run_id}"})


def test_a_busy_gpu_makes_the_run_wait_instead_of_failing(docker_client: docker.DockerClient, base_image: str,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake device list [0], held by another lease; once freed, the run leases it and asks Docker
    for exactly that device (this machine has no NVIDIA driver, so Docker refuses the request)."""
    monkeypatch.setattr(gpu, "detect_gpus", lambda: [0])
    holder = gpu.GpuLeaser(tmp_path, devices=[0]).lease(1)
    errors: list[Exception] = []

    def run() -> None:
        with Sandbox(f"test-gpu-wait-{uuid.uuid4().hex[:8]}", client=docker_client, gpu_lock_dir=tmp_path) as box:
            try:
                box.run(base_image, py("pass"), limits=SandboxLimits(gpus=1, gpu_wait_s=120))
            except SandboxError as exc:
                errors.append(exc)

    with structlog.testing.capture_logs() as logs:
        waiter = threading.Thread(target=run)
        waiter.start()
        while not any(entry["event"] == "sandbox.gpu_wait" for entry in logs):
            assert waiter.is_alive(), f"the run did not wait for the busy GPU: {errors}"
            time.sleep(0.05)
        holder.release()
        waiter.join(timeout=120)
    assert len(errors) == 1 and not isinstance(errors[0], GpuUnavailableError)
    assert "nvidia" in str(errors[0])  # the device request reached Docker: the lease was granted
