"""Torch thread count from the container's CPU quota.

Why: torch defaults to one thread per visible core, but a container limited to 1 CPU by a CFS
quota still sees every host core; oversubscribed threads make small-model training several
times slower (1 thread is ~8x faster than 2 on a 2-core host for the proxy model).
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def cpu_quota(cgroup_root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs granted by the cgroup (v2 cpu.max or v1 cfs files), None when unlimited."""
    cpu_max = cgroup_root / "cpu.max"
    try:
        if cpu_max.exists():
            quota, period = cpu_max.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_v1 = int((cgroup_root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_v1 = int((cgroup_root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_v1 <= 0 else quota_v1 / period_v1
    except (OSError, ValueError):
        return None


def thread_count() -> int:
    """EVOBOX_THREADS wins; otherwise floor of the CPU quota; otherwise the visible cores."""
    forced = os.environ.get("EVOBOX_THREADS")
    if forced:
        return max(1, int(forced))
    quota = cpu_quota()
    if quota is not None:
        return max(1, math.floor(quota))
    return max(1, len(os.sched_getaffinity(0)))


def configure_torch() -> int:
    """Set torch's intra- and inter-op threads once, before any work; returns the count."""
    import torch

    count = thread_count()
    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (interop threads can be set once per process)
        pass
    return count
