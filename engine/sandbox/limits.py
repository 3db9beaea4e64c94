"""Resource limits for one sandboxed run.

One typed object, validated at the boundary, so every container the engine starts gets the
same hardened profile and a caller can only tighten or loosen a named limit, never pass raw
docker options through.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

# Candidate uids come from a block that no convention hands out: systemd's UID table leaves
# 0x70000000-0x7FFDFFFF unused (above nspawn's container ranges at 0x80000-0x6FFFFFFF, below
# the foreign-uid range and INT32_MAX), and shadow's default subuid blocks (100000 + 65536 k)
# stay far below it. Host users, nobody (65534) and 16-bit ids are all outside.
DEFAULT_UID_RANGE = (0x7000_0000, 0x7000_FFFF)
_UID_FLOOR = 65536
_UID_CEILING = 2**31 - 2


def parse_size(value: int | str) -> int:
    """Parse '512m', '1g', '64MiB' or a plain byte count into bytes."""
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"size must be positive, got {value}")
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 512m, 1g, 4096)")
    number, unit = match.groups()
    size = int(float(number) * _UNITS[unit.lower()])
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return size


def human_size(n: int) -> str:
    """'8 MiB', '1 GiB', '512 B': sizes in failure reasons."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


class SandboxLimits(BaseModel):
    """Every limit of one hardened run. Defaults are safe for an untrusted candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(60.0, gt=0, description="Wall-clock limit; the container is killed after it.")
    memory_bytes: int = Field(parse_size("1g"), description="RAM limit; swap is not allowed (memswap == memory).")
    cpus: float = Field(1.0, gt=0, description="CPU quota in cores.")
    pids: int = Field(256, ge=8, description="Max processes/threads in the container (fork bombs stop here).")
    tmp_bytes: int = Field(parse_size("64m"), description="Size of the tmpfs at /tmp.")
    shm_bytes: int = Field(parse_size("64m"), description="Size of /dev/shm.")
    fsize_bytes: int = Field(parse_size("256m"), description="Largest file a process may write (ulimit fsize).")
    nofile: int = Field(1024, ge=16, description="Max open files per process.")
    out_max_bytes: int = Field(parse_size("64m"), description="Total bytes the engine reads back from /out.")
    out_max_files: int = Field(1000, ge=1, description="Max files the engine reads back from /out.")
    out_tmpfs_max_bytes: int = Field(parse_size("1g"), description=(
        "/out caps up to this are a tmpfs (RAM, charged to the container's memory); larger ones a sparse "
        "ext4 image on disk. Both are size-capped filesystems the kernel enforces."))
    log_tail_bytes: int = Field(64 * 1024, ge=1024, description="Bytes of stdout/stderr kept (the tail).")
    uid_range: tuple[int, int] = Field(
        DEFAULT_UID_RANGE,
        description="Host uids leased to candidates, first and last (inclusive); each concurrent run gets its own.")
    uid: int | None = Field(None, description="Set by the sandbox for each run to the uid it leased; not a setting.")
    gpus: int = Field(0, ge=0, description="GPUs to lease for this run (0 = CPU only).")
    gpu_wait_s: float = Field(3600.0, ge=0, description="How long a run waits for busy GPUs before failing (0: fail at once).")

    @field_validator("uid_range")
    @classmethod
    def _uid_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        first, last = value
        if not _UID_FLOOR <= first <= last <= _UID_CEILING:
            raise ValueError(f"need {_UID_FLOOR} <= first <= last <= {_UID_CEILING} (above every 16-bit id, "
                             f"below INT32_MAX), got {first}-{last}")
        return value

    @field_validator("uid")
    @classmethod
    def _uid_is_leased(cls, value: int | None) -> int | None:
        if value is not None:  # the sandbox sets it with model_copy, which skips validation
            raise ValueError("uid is leased per run from uid_range; set uid_range instead")
        return value

    @field_validator("memory_bytes", "tmp_bytes", "shm_bytes", "fsize_bytes", "out_max_bytes",
                     "out_tmpfs_max_bytes", mode="before")
    @classmethod
    def _sizes(cls, value: int | str) -> int:
        return parse_size(value)
