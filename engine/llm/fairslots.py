"""Upstream call slots shared fairly between grants.

The gateway keeps at most `max_concurrency` calls in flight upstream. With a plain FIFO
semaphore, a candidate that queues dozens of calls makes every other candidate wait behind all
of them; here the waiters are queued per grant and a freed slot goes to the grant that was
served least recently (round robin over grants, FIFO within one), so another candidate's call
waits for at most one call of each busy grant.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Hashable


class FairSlots:
    """`async with slots.slot(key): ...` holds one of `limit` slots. Runs inside one event loop."""

    def __init__(self, limit: int):
        self.limit = limit
        self.busy = 0
        self._waiting: OrderedDict[Hashable, deque[asyncio.Future[None]]] = OrderedDict()

    @contextlib.asynccontextmanager
    async def slot(self, key: Hashable) -> AsyncIterator[None]:
        if self.busy < self.limit and not self._waiting:
            self.busy += 1
        else:
            await self._wait(key)
        try:
            yield
        finally:
            self._release()

    async def _wait(self, key: Hashable) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # the slot was handed over just as the caller gave up: pass it on
            else:
                self._forget(key, future)
            raise

    def _release(self) -> None:
        """Hand the slot to the next grant in turn (the slot stays busy), or free it."""
        while self._waiting:
            key, queue = next(iter(self._waiting.items()))
            future = queue.popleft()
            if queue:
                self._waiting.move_to_end(key)
            else:
                del self._waiting[key]
            if not future.done():
                future.set_result(None)
                return
        self.busy -= 1

    def _forget(self, key: Hashable, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(key)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._waiting[key]
