"""Engine performance of the sandbox: prints figures, asserts nothing.

- run: create -> start -> wait -> collect -> remove of a trivial candidate (python3 -c pass)
  through `Sandbox.run` with the full hardened profile; again with an /out (mounted, read back);
- candidate image build on a cache miss (new files) and a hit (same files again);
- the same trivial work in-process and as a host subprocess, for the ratio.

Goals on a 2-core machine: run p50 < 0.5 s, candidate build < 0.5 s, cache hit < 0.05 s.
Usage: python -m benchmarks.perf_sandbox [--runs 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from engine.cli.logging import configure as configure_logging
from engine.sandbox.images import ImageBuilder
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.reaper import RUN_LABEL
from engine.sandbox.runner import Sandbox

TRIVIAL = "pass"


def timings(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(name: str, values: list[float], goal: float | None = None) -> str:
    p50, p90 = pct(values, 0.5), pct(values, 0.9)
    verdict = "" if goal is None else ("  goal < %.3f s: %s" % (goal, "met" if p50 < goal else "MISSED"))
    return f"{name:<34} p50 {_ms(p50)}   p90 {_ms(p90)}   n={len(values)}{verdict}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms" if seconds >= 0.001 else f"{seconds * 1e6:8.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    configure_logging(Console(stderr=True), level="warning")
    builder = ImageBuilder()
    base = builder.base()
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    limits = SandboxLimits(timeout_s=30, memory_bytes="256m")
    with Sandbox(run_id) as box:
        tag = builder.layer(base, {"cand.py": TRIVIAL.encode()}, kind="bench-candidate", labels={RUN_LABEL: run_id})
        box.run(tag, ["python3", "cand.py"], limits=limits)  # warm-up
        runs = timings(lambda _: _check(box.run(tag, ["python3", "cand.py"], limits=limits)), args.runs)
        with tempfile.TemporaryDirectory() as tmp:
            with_out = timings(lambda i: _check(box.run(tag, ["python3", "cand.py"], limits=limits,
                                                        out_dir=Path(tmp) / str(i))), args.runs)
        nonce = uuid.uuid4().hex
        miss = timings(lambda i: builder.layer(base, {"cand.py": f"# {nonce} {i}\n{TRIVIAL}\n".encode()},
                                               kind="bench-candidate", labels={RUN_LABEL: run_id}), max(5, args.runs // 2))
        hit = timings(lambda i: builder.layer(base, {"cand.py": f"# {nonce} {i % 5}\n{TRIVIAL}\n".encode()},
                                              kind="bench-candidate", labels={RUN_LABEL: run_id}), args.runs)
    in_process = timings(lambda _: exec(compile(TRIVIAL, "cand.py", "exec"), {}), 1000)
    host_proc = timings(lambda _: subprocess.run([sys.executable, "-S", "-c", TRIVIAL], check=True), 10)
    print("evobox sandbox performance (trivial candidate; base image)")
    print(line("sandbox run (create..remove)", runs, 0.5))
    print(line("sandbox run with /out", with_out))
    print(line("candidate build, cache miss", miss, 0.5))
    print(line("candidate build, cache hit", hit, 0.05))
    print(line("in-process exec", in_process))
    print(line("host subprocess (python -S)", host_proc))
    print(f"ratio sandbox run / in-process: {pct(runs, 0.5) / pct(in_process, 0.5):,.0f}x; "
          f"sandbox run / host subprocess: {pct(runs, 0.5) / pct(host_proc, 0.5):.1f}x")


def _check(result) -> None:
    if not result.ok:
        raise SystemExit(f"benchmark run failed: {result.failure_reason()}")


if __name__ == "__main__":
    main()
