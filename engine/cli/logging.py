"""structlog set-up for the CLI: JSON lines into <run_dir>/events.jsonl, readable lines on the
console. Library code only calls structlog.get_logger(); only the CLI calls `configure`."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, TextIO

import structlog
from rich.console import Console
from rich.text import Text

EVENTS_NAME = "events.jsonl"


class _EventSink:
    """Appends one JSON object per event to a file (line-buffered, shared by all threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file: TextIO | None = None

    def open(self, path: Path) -> None:
        with self._lock:
            if self._file:
                self._file.close()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", buffering=1, encoding="utf-8")

    def close(self) -> None:
        with self._lock:
            if self._file:
                self._file.close()
                self._file = None

    def __call__(self, _logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._file:
                self._file.write(json.dumps(event_dict, default=str) + "\n")
        return event_dict


class _ConsoleLogger:
    """Prints rendered lines through the rich console, so they scroll above a live display."""

    def __init__(self, console: Console):
        self._console = console

    def msg(self, message: str) -> None:
        self._console.print(Text.from_ansi(message), soft_wrap=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


_sink = _EventSink()


def configure(console: Console, *, level: str = "info") -> None:
    """Console output at `level` and above; events go to the file set by `log_to_run_dir`."""
    threshold = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _sink,
            _drop_below(threshold),
            structlog.dev.ConsoleRenderer(colors=console.is_terminal),
        ],
        logger_factory=lambda *args: _ConsoleLogger(console),
        cache_logger_on_first_use=False,
    )


def _drop_below(threshold: int) -> Any:
    def processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        if logging.getLevelNamesMapping().get(str(event_dict.get("level", "info")).upper(), 20) < threshold:
            raise structlog.DropEvent
        return event_dict

    return processor


def log_to_run_dir(run_dir: Path) -> Path:
    """Start appending every event (all levels) to <run_dir>/events.jsonl."""
    path = run_dir / EVENTS_NAME
    _sink.open(path)
    return path


def close() -> None:
    _sink.close()
