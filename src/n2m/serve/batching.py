"""Micro-batching: requests that arrive together share one forward pass, run off the event loop.

Each request's inputs wait in a bounded queue. One worker takes what is queued (up to `max_batch_size`
inputs, whole requests only), runs the model in a single background thread (the model already uses every
core for one batch; two batches at once would only fight over them) and hands each request its slice.

Waiting for company costs a lone request latency, so the worker waits (up to `max_wait_ms`, and only
until it has as many inputs as the last batch) only when the last batch was shared: a request on a quiet
server runs at once. Under load, requests that arrive during a forward pass form the next batch anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

RunBatch = Callable[[list[Any]], Sequence[Any]]


class QueueFull(Exception):
    """The queue holds `max_queue` inputs already; the client should retry after `retry_after` seconds."""

    def __init__(self, waiting: int, limit: int, retry_after: int) -> None:
        super().__init__(f"server busy: {waiting} inputs are waiting (limit {limit}); retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Job:
    inputs: list[Any]
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    def __init__(
        self,
        run: RunBatch,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        on_batch: Callable[[int, float], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_size and max_queue must be ≥ 1, max_wait_ms ≥ 0")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.on_depth = on_depth
        self._jobs: deque[_Job] = deque()
        self._waiting = 0  # inputs in `_jobs`
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._last_batch_shared = False
        self._last_batch_size = 0
        self._batch_seconds = 0.05  # running estimate, for Retry-After

    @property
    def depth(self) -> int:
        """Inputs waiting for the model (not counting the batch running now)."""
        return self._waiting

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="n2m-batch")
        self._worker = asyncio.create_task(self._loop(), name="n2m-batcher")

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for job in self._jobs:
            if not job.future.done():
                job.future.set_exception(RuntimeError("server shutting down"))
        self._jobs.clear()
        if self._executor:
            self._executor.shutdown(wait=True, cancel_futures=True)

    async def submit(self, inputs: list[Any]) -> list[Any]:
        """Queue one request's inputs; returns their results in order. Raises `QueueFull` at once when full."""
        if self._worker is None or self._arrived is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        if self._waiting + len(inputs) > self.max_queue:
            raise QueueFull(self._waiting, self.max_queue, self.retry_after())
        job = _Job(inputs, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._set_waiting(self._waiting + len(inputs))
        self._arrived.set()
        return await job.future

    def retry_after(self) -> int:
        """Seconds until the queue has drained, from the recent time per batch (at least 1)."""
        batches = math.ceil(max(self._waiting, 1) / self.max_batch_size)
        return max(1, math.ceil(batches * self._batch_seconds))

    def _set_waiting(self, value: int) -> None:
        self._waiting = value
        if self.on_depth:
            self.on_depth(value)

    def _take(self, batch: list[_Job], size: int) -> int:
        """Move whole queued requests into the batch while they fit (the first one always does)."""
        while self._jobs and (not batch or size + len(self._jobs[0].inputs) <= self.max_batch_size):
            job = self._jobs.popleft()
            self._set_waiting(self._waiting - len(job.inputs))
            if job.future.done():  # the client went away while waiting
                continue
            batch.append(job)
            size += len(job.inputs)
        return size

    async def _loop(self) -> None:
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._jobs:
                self._arrived.clear()
                await self._arrived.wait()
            batch: list[_Job] = []
            size = self._take(batch, 0)
            # a busy server (the last batch was shared) waits a little for as many inputs as last time
            target = min(self.max_batch_size, self._last_batch_size) if self._last_batch_shared else 0
            deadline = loop.time() + self.max_wait
            while size < target and not self._jobs:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
                size = self._take(batch, size)
            if not batch:
                continue
            self._last_batch_shared = len(batch) > 1
            self._last_batch_size = size
            await self._run_batch(loop, batch, size)

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Job], size: int) -> None:
        inputs = [x for job in batch for x in job.inputs]
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self.run, inputs)
            if len(results) != len(inputs):
                raise RuntimeError(f"the model returned {len(results)} results for {len(inputs)} inputs")
        except Exception as error:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(error)  # the endpoint decides the status code
                return
            # one request's input broke the shared batch: run each request alone, so only it fails
            for job in batch:
                await self._run_batch(loop, [job], len(job.inputs))
            return
        elapsed = time.perf_counter() - started
        self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * elapsed
        if self.on_batch:
            self.on_batch(size, elapsed)
        position = 0
        for job in batch:
            if not job.future.done():
                job.future.set_result(list(results[position : position + len(job.inputs)]))
            position += len(job.inputs)
