"""Evaluation slots handed out in candidate order.

Records are archived in candidate order, so when several candidates wait for a slot the
earliest should get it first: a later one evaluating while an earlier one waits only delays
every commit behind the earlier one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class OrderedSlots:
    """At most `count` holders; among waiters, the smallest key goes first."""

    def __init__(self, count: int):
        self._free = count
        self._waiting: set[int] = set()
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, key: int) -> Iterator[None]:
        with self._cond:
            self._waiting.add(key)
            try:
                self._cond.wait_for(lambda: self._free > 0 and min(self._waiting) == key)
            finally:
                self._waiting.discard(key)
                self._cond.notify_all()
            self._free -= 1
        try:
            yield
        finally:
            with self._cond:
                self._free += 1
                self._cond.notify_all()
