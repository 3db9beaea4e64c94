"""Host-side parsing of candidate code is safe from parallel slots (CPython 3.11's AST converter
keeps its recursion counter per interpreter: two threads in ast.parse can raise SystemError,
which would stop the run as if the environment had broken)."""

from __future__ import annotations

import threading
from pathlib import Path

from engine import pyast

SOURCE = (Path(__file__).parents[2] / "engine" / "search" / "loop.py").read_text()


class _Finalised:
    """Garbage whose finaliser runs Python code: a thread switch in the middle of a parse."""

    def __del__(self) -> None:
        sum(range(50))


def _churn() -> None:
    for _ in range(3000):
        items = [_Finalised() for _ in range(100)]
        for item in items:
            item.cycle = item  # collected by the cyclic GC, in whichever thread triggers it
        del items


def _parse_in_parallel(errors: list[str]) -> None:
    def work() -> None:
        for _ in range(40):
            try:
                pyast.parse(SOURCE)
            except SystemError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=_churn)] + [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_parallel_parses_never_raise_system_error():
    errors: list[str] = []
    for _ in range(6):  # unserialised, about half of these rounds raise on CPython 3.11
        _parse_in_parallel(errors)
    assert errors == []
