"""A grant's JSONL transcript, capped in bytes so a candidate cannot fill the host disk through it.

Served calls are recorded with their request and the reply the candidate got; refused calls
(400, 401, 403, 413, 429...) as one short line without the request, since a refusal's body is
exactly what a hostile candidate controls. Once a line would pass `max_bytes`, one final
`{"truncated": ...}` line is written and nothing more (accounting goes on: usage never depends
on the transcript).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

_MARKER_RESERVE = 256  # room kept for the final truncation line


class Transcript:
    def __init__(self, path: Path, max_bytes: int):
        self.path = path
        self.max_bytes = max_bytes
        self.written = 0
        self.truncated = False
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, entry: dict[str, Any]) -> None:
        # ASCII JSON: a lone surrogate (from a \\ud800 escape in a request) stays writable
        line = json.dumps(entry, default=str).encode() + b"\n"
        with self._lock:
            if self.truncated:
                return
            if self.written + len(line) > self.max_bytes - _MARKER_RESERVE:
                self.truncated = True
                line = json.dumps({"truncated": True, "limit_bytes": self.max_bytes,
                                   "note": "transcript cap reached; later calls are not recorded"}).encode() + b"\n"
            with self.path.open("ab") as fh:
                fh.write(line)
            self.written += len(line)
