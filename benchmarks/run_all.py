"""`make bench`: run every engine performance benchmark in turn; each prints its own figures.

Each runs in its own interpreter so that one benchmark's threads, caches and containers never
skew the next one's numbers.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    "benchmarks.perf_sandbox",
    "benchmarks.perf_containment",
    "benchmarks.perf_llm",
    "benchmarks.perf_adas_eval",
    "benchmarks.perf_ray",
    "benchmarks.discopop.perf_discopop",
]


def main() -> int:
    failed = []
    for module in BENCHMARKS:
        print(f"\n=== {module} ===", flush=True)
        if subprocess.run([sys.executable, "-m", module]).returncode != 0:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
