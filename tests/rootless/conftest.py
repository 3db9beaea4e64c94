"""Unprivileged users with rootless engines of their own, made by root (CI runs as root).

What `make shared-host` and `make rootless` do on a shared machine, done here for two test users:
accounts, subuid/subgid blocks, and each user's own rootless engine (stopped afterwards if this
session started it). Commands run as a user through `runuser` with a clean environment, so no
root variable (DOCKER_HOST, lock dirs) leaks in. Needs root; skipped otherwise (a user without
root runs the whole suite on their own rootless engine instead: `make test`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE_SCRIPT = ROOT / "sandbox_images" / "rootless_engine.sh"
USERS = ("evobox-ci-a", "evobox-ci-b")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making users and their engines needs root")


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    home: Path
    python: str
    checkout: Path  # the repository as this user reaches it (ROOT, or a readable copy of it)

    def run(self, argv: list[str], *, timeout: float = 600, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """argv as this user, with a clean environment, from the repository root."""
        clean = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "LANG": "C.UTF-8",
                 "PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(self.checkout),
                 "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        return subprocess.run(["runuser", "-u", self.name, "--", "env", "-i", *(f"{k}={v}" for k, v in clean.items()),
                               *argv], cwd=cwd or self.checkout, capture_output=True, text=True, timeout=timeout)

    def py(self, code: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self.run([self.python, "-c", textwrap.dedent(code)], **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def shared_host(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The administrator's `make shared-host` for the test users (GPU lock dir kept apart)."""
    for name in USERS:
        if subprocess.run(["id", name], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    gpu_dir = tmp_path_factory.mktemp("gpu-locks-admin")
    proc = subprocess.run(["bash", str(ROOT / "sandbox_images" / "setup_shared_host.sh")], capture_output=True,
                          text=True, env={**os.environ, "USERS": " ".join(USERS), "EVOBOX_GPU_LOCK_DIR": str(gpu_dir)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return list(USERS)


def _can_read(name: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", name, "--", "test", "-r", str(path)], capture_output=True).returncode == 0


def _readable_checkout(names: list[str]) -> tuple[Path, Path | None]:
    """The repository and its .venv where every test user can read them: the checkout itself, or
    (when it lies under a directory of root's such as /root, as a CI checkout may) a copy in a
    world-readable temporary dir. Returns (checkout, copy to remove afterwards or None)."""
    wanted = [ROOT / "pyproject.toml", Path(sys.prefix) / "pyvenv.cfg"]
    if all(_can_read(name, path) for name in names for path in wanted):
        return ROOT, None
    copy = Path(tempfile.mkdtemp(prefix="evobox-rootless-checkout-", dir="/var/tmp"))
    copy.chmod(0o755)
    skip = shutil.ignore_patterns(".git", "runs", "__pycache__", "*.egg-info", ".pytest_cache")
    shutil.copytree(ROOT, copy / "repo", symlinks=True, ignore=skip)
    if not (copy / "repo" / ".venv").exists() and sys.prefix != sys.base_prefix:
        shutil.copytree(sys.prefix, copy / "repo" / ".venv", symlinks=True, ignore=skip)
    subprocess.run(["chmod", "-R", "a+rX", str(copy)], check=True)
    return copy / "repo", copy


def _python_for(name: str, checkout: Path, scratch: Path) -> str:
    """An interpreter the user can run that imports evobox's dependencies: this venv's, or (when
    it or its base Python lives where the user cannot go, e.g. a pyenv under /root) a throwaway
    venv of the system's Python of the same version that reads the reachable venv's packages."""
    probe = ["-c", "import docker, pydantic, structlog, pytest"]
    check = lambda python: subprocess.run(["runuser", "-u", name, "--", python, *probe],  # noqa: E731
                                          capture_output=True, text=True, cwd="/")
    if checkout == ROOT and check(sys.executable).returncode == 0:
        return sys.executable
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")
    if base is None:
        pytest.fail(f"user {name} cannot run {sys.executable} and there is no system python{version}", pytrace=False)
    packages = ([Path(p) for p in site.getsitepackages()] if checkout == ROOT
                else list((checkout / ".venv").glob(f"lib/python{version}/site-packages")))
    venv = scratch / "venv"
    if not venv.exists():
        subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
        (next(venv.glob("lib/python*/site-packages")) / "evobox-deps.pth").write_text(
            "\n".join(map(str, packages)) + "\n")
        subprocess.run(["chmod", "-R", "a+rX", str(scratch)], check=True)
    proc = check(str(venv / "bin" / "python"))
    if proc.returncode != 0:
        pytest.fail(f"user {name} cannot import evobox's dependencies from {packages}: {proc.stderr.strip()[-500:]}",
                    pytrace=False)
    return str(venv / "bin" / "python")


@pytest.fixture()
def world_tmp() -> Iterator[Path]:
    """A temporary dir the test users can reach (pytest's own are under a 0700 dir of root's)."""
    path = Path(tempfile.mkdtemp(prefix="evobox-rootless-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def users(shared_host: list[str]) -> Iterator[dict[str, User]]:
    """Each test user with their own rootless engine up (`make rootless`)."""
    checkout, copy = _readable_checkout(shared_host)
    scratch = Path(tempfile.mkdtemp(prefix="evobox-user-python-", dir="/var/tmp"))
    scratch.chmod(0o755)
    made: dict[str, User] = {}
    started: list[User] = []
    try:
        for name in shared_host:
            entry = pwd.getpwnam(name)
            user = User(name, entry.pw_uid, Path(entry.pw_dir), _python_for(name, checkout, scratch), checkout)
            script = str(checkout / "sandbox_images" / ENGINE_SCRIPT.name)
            if user.run(["bash", script, "status"]).returncode != 0:
                proc = user.run(["bash", script, "start"], timeout=120)
                assert proc.returncode == 0, f"make rootless failed for {name}:\n{proc.stdout}{proc.stderr}"
                started.append(user)
            made[name] = user
        yield made
    finally:
        for user in started:
            user.run(["bash", str(user.checkout / "sandbox_images" / ENGINE_SCRIPT.name), "stop"])
        shutil.rmtree(scratch, ignore_errors=True)
        if copy is not None:
            shutil.rmtree(copy, ignore_errors=True)
