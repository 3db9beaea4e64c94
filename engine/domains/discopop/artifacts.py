"""Artifacts built once and shared by every candidate: the proxy task's reference (tokenizer,
reference policy, ranked pairs) and, for the GPU settings, the converted preference data.

Each is built in a task-image container into a temporary directory of the cache, then renamed
into place under a key derived from its settings, so a crash never leaves a half artifact and
a second run (or a second process, under the file lock) reuses it. The builder container ran
as a uid leased for that run alone, and torch writes some files 0600, so the engine takes the
tree over (owner root when it can, read-only modes for everyone) before any candidate, which
runs as another uid, mounts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from engine.sandbox.limits import SandboxLimits
from engine.sandbox.naming import ARTIFACT_LABEL
from engine.sandbox.runner import Mount, Sandbox, Stage


class ArtifactError(Exception):
    """A shared artifact could not be built (infrastructure or configuration, not a candidate)."""


@dataclass(frozen=True)
class ArtifactBuild:
    kind: str  # e.g. "reference", "hf-data"
    settings: dict
    command: list[str]
    mounts: tuple[Mount, ...] = ()


def key_of(build: ArtifactBuild, image: str) -> str:
    """Settings and the task image's tag (a hash of the builder's code): new code, new artifact."""
    keyed = {"kind": build.kind, "image": image, **build.settings}
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
    return f"{build.kind}-{digest[:16]}"


def ensure(build: ArtifactBuild, root: Path, sandbox: Sandbox, image: str, limits: SandboxLimits) -> Path:
    """The artifact's directory, building it first if missing."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / key_of(build, image)
    with FileLock(str(target) + ".lock"):
        if (target / "done.json").exists():
            _share(target)  # also fixes a tree cached before candidates had uids of their own
            return target
        work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=root))
        try:
            result = sandbox.run(image, build.command, limits=limits, out_dir=work, mounts=build.mounts,
                                 labels={ARTIFACT_LABEL: build.kind}, stage=Stage.ARTIFACT)
            if not result.ok:
                raise ArtifactError(f"building the {build.kind} artifact failed: {result.failure_reason()}")
            (work / "done.json").write_text(json.dumps(build.settings, sort_keys=True))
            _share(work)
            if target.exists():
                shutil.rmtree(target)
            work.rename(target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return target


def _share(tree: Path) -> None:
    """Owner root (when the engine is root), directories 0755, files 0644; symlinks untouched."""
    for directory, _, files in os.walk(tree):
        for path in [directory, *(os.path.join(directory, name) for name in files)]:
            if os.path.islink(path):
                continue
            if os.geteuid() == 0:
                os.chown(path, 0, 0, follow_symlinks=False)
            os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
