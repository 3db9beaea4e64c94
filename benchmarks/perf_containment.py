"""How fast containment acts: prints figures, asserts nothing (the tests check that it acts).

- timeout: a busy loop with a 1 s limit, from start to the container gone;
- SIGTERM ignored: a process (and its child) ignoring SIGTERM, 1 s limit, to the container gone;
- fork bomb: a bomb under the hostile pids cap, 3 s limit, to the container gone;
- FIFO result: refusing a FIFO in /out (must never block);
- adversarial LLM replies: parsing deep or huge JSON replies.

Usage: python -m benchmarks.perf_containment
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console

from engine.cli.logging import configure as configure_logging
from engine.llm.errors import LLMReplyError
from engine.llm.jsonreply import parse_json_object
from engine.sandbox.errors import OutFileError
from engine.sandbox.images import ImageBuilder
from engine.sandbox.limits import SandboxLimits
from engine.sandbox.runner import Sandbox, read_out_file

HOSTILE = SandboxLimits(timeout_s=1, memory_bytes="256m", pids=64)
CASES = {
    "timeout (busy loop, 1 s limit)": ("while True: pass", 1),
    "SIGTERM ignored (1 s limit)": ("import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                    "os.fork()\nwhile True: time.sleep(1)\n", 1),
    "fork bomb (pids 64, 3 s limit)": ("import os\nwhile True:\n    try:\n        os.fork()\n"
                                       "    except OSError:\n        pass\n", 3),
}
REPLIES = {"500k '{'": "{" * 500_000, "1.5 MB string": '{"a": "' + "x" * 1_500_000,
           "400k '{} '": "{} " * 400_000, "100k '['": "[" * 100_000}


def _seconds(fn) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    configure_logging(Console(stderr=True), level="warning")
    base = ImageBuilder().base()
    with Sandbox(f"bench-containment-{uuid.uuid4().hex[:8]}") as box:
        for name, (code, limit) in CASES.items():
            limits = HOSTILE.model_copy(update={"timeout_s": limit})
            seconds = _seconds(lambda: box.run(base, ["python3", "-c", code], limits=limits))
            print(f"{name:<36} {seconds:6.2f} s to the container gone (limit {limit} s)")
    with tempfile.TemporaryDirectory() as tmp:
        os.mkfifo(Path(tmp) / "r.json")

        def refuse() -> None:
            try:
                read_out_file(Path(tmp), "r.json", 100)
            except OutFileError:
                pass

        print(f"{'FIFO result refused':<36} {_seconds(refuse) * 1000:6.2f} ms")
    for name, text in REPLIES.items():
        def parse() -> None:
            try:
                parse_json_object(text)
            except LLMReplyError:
                pass

        print(f"{'reply parse: ' + name:<36} {_seconds(parse) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
