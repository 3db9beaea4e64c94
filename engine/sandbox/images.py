"""Images, built offline and named by what they contain.

Three tiers, each tagged by a hash of its inputs so that building twice is a lookup:
- base: a Debian bookworm rootfs with python3 made by mmdebstrap, wrapped with a fixed image
  config and `docker load`ed, so the same packages always give the same image id
  (`docker import` would stamp the current time into the config);
- runtime: a recipe folder (Dockerfile + requirements.txt), wheels downloaded on the host with
  pip and installed in a two-stage `docker build --network none` (see sandbox_images/README.md).
  The engine's own runtimes are the folders of sandbox_images/; a domain that lives elsewhere
  passes its own folder (`runtime(name, recipe=...)`), so a new runtime needs no edit here;
- layer: a candidate's files copied onto a runtime image from a tiny in-memory context.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

import docker
import docker.errors
import structlog

from engine.sandbox.client import connect
from engine.sandbox.errors import ImageBuildError, SandboxError

log = structlog.get_logger()

SOURCE_DATE_EPOCH = 1700000000  # fixed: every file and the image config carry this time
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "libstdc++6", "libgomp1", "ca-certificates")
WORKDIR = "/opt/evobox"
IMAGE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONPATH": WORKDIR,
    "HOME": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "LANG": "C.UTF-8",
}
_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
             "/usr/share/lintian/*", "/usr/share/linda/*")
_MOUNT_POINTS = (WORKDIR, "/out", "/in")
_RECIPE_VERSION = "1"  # bump when the recipe below changes in a way the arguments do not show
_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

Progress = Callable[[str], None]


def images_dir() -> Path:
    """Where runtime recipes live: $EVOBOX_IMAGES_DIR or the repository's sandbox_images/."""
    env = os.environ.get("EVOBOX_IMAGES_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "sandbox_images"


def runtime_names(root: Path | None = None) -> list[str]:
    """Every runtime recipe: a folder of sandbox_images/ with a Dockerfile."""
    root = root or images_dir()
    return sorted(p.parent.name for p in root.glob("*/Dockerfile") if p.parent.name != "base")


def _sha(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


class ImageBuilder:
    """Builds (or finds) the base, runtime and candidate images. Never pulls."""

    def __init__(self, client: docker.DockerClient | None = None, *, progress: Progress | None = None) -> None:
        self._client = connect(client)
        self._progress = progress or (lambda _msg: None)

    # ---- lookups ---------------------------------------------------------------------------
    def exists(self, tag: str) -> bool:
        """True when the engine already holds `tag` (a lookup, no pull)."""
        try:
            self._client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as exc:
            raise SandboxError(f"docker image lookup failed for {tag}: {exc}") from exc
        return True

    def image_id(self, ref: str) -> str:
        try:
            return self._client.images.get(ref).id
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(f"image {ref} is not present (images are built locally, never pulled)") from exc

    # ---- base ------------------------------------------------------------------------------
    def base_tag(self) -> str:
        """The base tag is a hash of the recipe, so it is known without building."""
        return f"evobox/base:{_sha(_RECIPE_VERSION, SUITE, *BASE_PACKAGES, *_EXCLUDES, *_MOUNT_POINTS, json.dumps(IMAGE_ENV, sort_keys=True))[:16]}"

    def base(self) -> str:
        """Debian bookworm + python3, built with mmdebstrap if missing. Returns its tag."""
        tag = self.base_tag()
        if self.exists(tag):
            return tag
        if shutil.which("mmdebstrap") is None:
            raise ImageBuildError("mmdebstrap is not installed (apt-get install mmdebstrap, or make host)")
        self._progress(f"base: mmdebstrap {SUITE} + {', '.join(BASE_PACKAGES)}")
        with tempfile.TemporaryDirectory(prefix="evobox-base-", dir=_fast_tmp()) as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            self._mmdebstrap(rootfs)
            self._progress("base: loading rootfs with a fixed image config")
            self._load_rootfs(rootfs, tag, Path(tmp) / "image.tar")
        log.info("image.built", tier="base", tag=tag)
        return tag

    def _mmdebstrap(self, out: Path) -> None:
        mkdirs = " ".join(f'"$1{p}"' for p in _MOUNT_POINTS)
        cmd = [
            "mmdebstrap", "--variant=essential", f"--include={','.join(BASE_PACKAGES)}",
            "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
            *(f"--dpkgopt=path-exclude={p}" for p in _EXCLUDES),
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            f"--customize-hook=mkdir -p {mkdirs}",
            "--customize-hook=rm -rf \"$1\"/var/cache/* \"$1\"/var/log/* \"$1\"/var/lib/apt/lists/*",
            SUITE, str(out),
        ]
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH), "TMPDIR": _fast_tmp()}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError(f"mmdebstrap failed (exit {proc.returncode})", proc.stderr[-4000:])

    def _load_rootfs(self, rootfs: Path, tag: str, image_tar: Path) -> None:
        """Wrap one layer in a `docker save`-format archive whose config is fully fixed."""
        diff_id = "sha256:" + _file_sha256(rootfs)
        created = "2023-11-14T22:13:20Z"  # SOURCE_DATE_EPOCH in ISO form
        config = {
            "architecture": "amd64", "os": "linux", "created": created,
            "config": {
                "Env": [f"{k}={v}" for k, v in IMAGE_ENV.items()],
                "WorkingDir": WORKDIR, "Cmd": ["python3"],
                "Labels": {"evobox.kind": "base", "evobox.tier": "base"},
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": f"mmdebstrap {SUITE} {' '.join(BASE_PACKAGES)}"}],
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
        manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]).encode()
        with tarfile.open(image_tar, "w") as tar:
            _add_bytes(tar, config_name, config_bytes)
            _add_bytes(tar, "manifest.json", manifest)
            tar.add(rootfs, arcname=layer_name)
        with image_tar.open("rb") as fh:
            try:
                self._client.images.load(fh)
            except docker.errors.APIError as exc:
                raise ImageBuildError(f"docker load of the base image failed: {exc}") from exc

    # ---- runtime ---------------------------------------------------------------------------
    def runtime_tag(self, name: str, base: str | None = None, *, recipe: Path | None = None) -> str:
        files = _recipe_files(name, recipe)
        base_id = self.image_id(base or self.base())
        parts = [f"{p}\0".encode() + data for p, data in sorted(files.items())]
        return f"evobox/runtime-{name}:{_sha(base_id, *parts)[:16]}"

    def runtime(self, name: str, *, recipe: Path | None = None) -> str:
        """The runtime image `name` of the folder `recipe` (default: sandbox_images/<name>/),
        built if its tag is missing."""
        _check_kind(f"runtime-{name}")
        base = self.base()
        tag = self.runtime_tag(name, base, recipe=recipe)
        if self.exists(tag):
            return tag
        folder = _recipe_dir(name, recipe)
        files = _recipe_files(name, recipe)
        if "requirements.txt" not in files:
            raise ImageBuildError(f"{folder}/requirements.txt is missing")
        _check_stages(folder, files["Dockerfile"].decode())
        with tempfile.TemporaryDirectory(prefix=f"evobox-rt-{name}-") as tmp:
            wheels = Path(tmp) / "wheels"
            self._progress(f"runtime {name}: downloading wheels on the host")
            _pip_download(["-r", str(folder / "requirements.txt")], wheels)
            tools = Path(tmp) / "tools"
            _pip_download(["pip"], tools, no_deps=True)
            wheel_set = _sha(*(f"{w.name}:{_file_sha256(w)}" for w in sorted(wheels.glob("*.whl"))))
            context = Path(tmp) / "context.tar"
            with tarfile.open(context, "w") as tar:
                labels = {"evobox.kind": f"runtime-{name}", "evobox.tier": "runtime", "evobox.wheels": wheel_set[:16]}
                for rel, data in sorted(files.items()):
                    _add_bytes(tar, rel, data + _label_line(labels) if rel == "Dockerfile" else data)
                for whl in sorted(wheels.glob("*.whl")):
                    tar.add(whl, arcname=f"wheels/{whl.name}")
                tar.add(next(tools.glob("pip-*.whl")), arcname="tools/pip.whl")
            self._progress(f"runtime {name}: docker build --network none ({_mib(context)} MiB context)")
            with context.open("rb") as fh:
                self._build(fh, tag, buildargs={"BASE": base})
        log.info("image.built", tier="runtime", tag=tag)
        return tag

    # ---- candidate layer -------------------------------------------------------------------
    def layer(self, parent: str, files: Mapping[str, bytes], *, kind: str, labels: Mapping[str, str] = {},
              verify: bool = False) -> str:
        """`parent` + `files` under /opt/evobox (root-owned, read-only for the candidate).

        Tagged evobox/<kind>:<hash of parent id, files and labels>: the same inputs are a lookup.
        With `verify`, the tag is not trusted: the layer is built anyway, and Docker's build cache
        (keyed by the files' content) makes that a lookup only when an identical layer exists; a
        tag naming other content is re-pointed to the right image.
        """
        _check_kind(kind)
        clean = {_safe_relpath(p): data for p, data in files.items()}
        all_labels = {"evobox.kind": kind, "evobox.tier": "layer", **labels}
        parent_id = self.image_id(parent)
        # Labels are inputs too: an image labelled with another run is reaped when that run ends,
        # so two live runs must never share one.
        digest = _sha(parent_id, json.dumps(all_labels, sort_keys=True),
                      *(f"{p}\0".encode() + hashlib.sha256(d).digest() for p, d in sorted(clean.items())))
        tag = f"evobox/{kind}:{digest[:20]}"
        if not verify and self.exists(tag):
            return tag
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            dockerfile = f"FROM {parent}\n" + ("COPY files/ /opt/evobox/\n" if clean else "")
            _add_bytes(tar, "Dockerfile", dockerfile.encode() + _label_line(all_labels))
            for dirname in sorted(_parents(clean)):
                _add_dir(tar, f"files/{dirname}")
            for rel, data in sorted(clean.items()):
                _add_bytes(tar, f"files/{rel}", data)
        context.seek(0)
        self._build(context, tag)
        return tag

    # ---- shared ----------------------------------------------------------------------------
    def _build(self, context: io.BufferedIOBase | io.BytesIO, tag: str, *, buildargs: Mapping[str, str] | None = None) -> None:
        """Legacy-builder build with no network and no pull; raises with the build log's tail."""
        lines: list[str] = []
        try:
            stream = self._client.api.build(
                fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, pull=False,
                network_mode="none", buildargs=dict(buildargs or {}), decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    raise ImageBuildError(f"docker build of {tag} failed: {chunk['error'].strip()}", "".join(lines[-40:]))
                text = chunk.get("stream", "")
                if text:
                    lines.append(text)
                    if text.startswith("Step "):
                        self._progress(f"{tag}: {text.strip()}")
        except docker.errors.APIError as exc:
            raise ImageBuildError(f"docker build of {tag} failed: {exc}", "".join(lines[-40:])) from exc
        if not self.exists(tag):
            raise ImageBuildError(f"docker build of {tag} finished without the image", "".join(lines[-40:]))


_FROM_RE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", re.IGNORECASE | re.MULTILINE)


def _check_kind(kind: str) -> None:
    if not _KIND_RE.match(kind):
        raise ValueError(f"bad image kind {kind!r} (lowercase letters, digits, . _ -)")


def _check_stages(folder: Path, dockerfile: str) -> None:
    """Every stage must start FROM ${BASE} or an earlier stage: anything else would be a pull."""
    stages: set[str] = set()
    for image, alias in _FROM_RE.findall(dockerfile):
        if image not in ("${BASE}", "$BASE") and image.lower() not in stages:
            raise ImageBuildError(f"{folder}/Dockerfile: FROM {image} would need a registry; "
                                  "use FROM ${BASE} (see sandbox_images/README.md)")
        if alias:
            stages.add(alias.lower())


def _label_line(labels: Mapping[str, str]) -> bytes:
    """All labels in one LABEL instruction: the legacy builder commits a layer per instruction."""
    for key, value in labels.items():
        if not re.match(r"^[A-Za-z0-9._-]+$", key) or "\n" in value:
            raise ValueError(f"bad image label {key!r}={value!r}")
    return ("\nLABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "\n").encode()


def _fast_tmp() -> str:
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _mib(path: Path) -> int:
    return path.stat().st_size >> 20


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, SOURCE_DATE_EPOCH
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, SOURCE_DATE_EPOCH
    tar.addfile(info)


def _safe_relpath(path: str) -> str:
    """A relative POSIX path with no '..', so a file can only land under /opt/evobox."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or any(part in ("", ".", "..") for part in path.split("/")) or "\\" in path:
        raise ValueError(f"bad file path for an image layer: {path!r}")
    return str(pure)


def _parents(paths: Iterable[str]) -> set[str]:
    return {str(parent) for p in paths for parent in PurePosixPath(p).parents if str(parent) != "."}


def _recipe_dir(name: str, recipe: Path | None) -> Path:
    return recipe if recipe is not None else images_dir() / name


def _recipe_files(name: str, recipe: Path | None = None) -> dict[str, bytes]:
    """The files of the recipe folder that define the image (not downloaded wheels)."""
    root = _recipe_dir(name, recipe)
    if not (root / "Dockerfile").is_file():
        raise SandboxError(f"no runtime recipe {root}/Dockerfile")
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(("wheels/", "tools/")) and "__pycache__" not in rel:
            files[rel] = path.read_bytes()
    return files


def _manylinux_platforms() -> list[str]:
    """Wheel platforms the bookworm image (glibc 2.36, x86_64) can run."""
    modern = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)]
    return [*modern, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]


def _pip_download(args: list[str], dest: Path, *, no_deps: bool = False) -> None:
    """Wheels for CPython 3.11 on bookworm, whatever the host Python is (binary only)."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
           "--abi", "abi3", "--abi", "none", "--dest", str(dest)]
    for platform in _manylinux_platforms():
        cmd += ["--platform", platform]
    if no_deps:
        cmd.append("--no-deps")
    proc = subprocess.run(cmd + args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"pip download {' '.join(args)} failed (exit {proc.returncode})", proc.stderr[-4000:])
