"""MicroBatcher on its own: gathering, limits, the bounded queue and failure isolation.

The "model" here is a plain function that records the batches it is given: what is under test is the
queue, not inference (the API and browser tests run real models).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from n2m.serve.batching import MicroBatcher, QueueFull


class Recorder:
    """Doubles each input; remembers every batch; can be held (to fill the queue) and made to fail."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.seconds = seconds
        self.gate = threading.Event()
        self.gate.set()
        self.threads: set[str] = set()

    def __call__(self, inputs: list[int]) -> list[int]:
        self.threads.add(threading.current_thread().name)
        self.gate.wait(10)
        self.batches.append(list(inputs))
        if any(x < 0 for x in inputs):
            raise ValueError(f"negative input in {inputs}")
        time.sleep(self.seconds)
        return [2 * x for x in inputs]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_one_forward_pass_in_order():
    async def main():
        model = Recorder()
        batcher = MicroBatcher(model, max_batch_size=64, max_wait_ms=50)
        await batcher.start()
        model.gate.clear()  # hold the first batch, so the others queue up behind it
        first = asyncio.create_task(batcher.submit([0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.submit([i, 100 + i])) for i in range(1, 9)]
        await asyncio.sleep(0.05)
        model.gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return model, results

    model, results = run(main())
    assert results[0] == [0]
    assert results[1:] == [[2 * i, 200 + 2 * i] for i in range(1, 9)]  # each request gets its own slice
    assert model.batches[0] == [0]
    assert len(model.batches) == 2 and len(model.batches[1]) == 16  # 8 requests → one forward pass
    assert all(name.startswith("n2m-batch") for name in model.threads)  # never on the event loop


def test_batches_respect_max_batch_size_and_keep_requests_whole():
    async def main():
        model = Recorder()
        batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=20)
        await batcher.start()
        model.gate.clear()
        blocker = asyncio.create_task(batcher.submit([0]))
        await asyncio.sleep(0.05)
        tasks = [asyncio.create_task(batcher.submit([i] * 3)) for i in range(1, 5)]
        await asyncio.sleep(0.05)
        model.gate.set()
        await asyncio.gather(blocker, *tasks)
        await batcher.stop()
        return model.batches

    batches = run(main())
    assert all(len(b) <= 4 for b in batches)
    assert sorted(len(b) for b in batches[1:]) == [3, 3, 3, 3]  # 3 + 3 > 4: requests are never split


def test_a_lone_request_on_a_quiet_server_does_not_wait():
    async def main():
        batcher = MicroBatcher(Recorder(), max_batch_size=32, max_wait_ms=500)
        await batcher.start()
        started = time.perf_counter()
        for _ in range(3):
            await batcher.submit([1])
        elapsed = time.perf_counter() - started
        await batcher.stop()
        return elapsed

    assert run(main()) < 0.3  # three requests one after another, far less than one 500 ms wait


def test_a_busy_server_waits_for_company():
    """After a shared batch, the worker waits (up to max_wait) for as many inputs as last time."""

    async def main():
        model = Recorder()
        batcher = MicroBatcher(model, max_batch_size=32, max_wait_ms=300)
        await batcher.start()
        await asyncio.gather(*(batcher.submit([i]) for i in range(4)))  # a shared batch
        first = asyncio.create_task(batcher.submit([10]))
        await asyncio.sleep(0.05)  # arrives later, but within the wait
        second = asyncio.create_task(batcher.submit([11]))
        await asyncio.gather(first, second)
        await batcher.stop()
        return model.batches

    batches = run(main())
    assert [10, 11] in batches


def test_full_queue_refuses_at_once_with_retry_after_and_recovers():
    async def main():
        model = Recorder()
        batcher = MicroBatcher(model, max_batch_size=2, max_wait_ms=0, max_queue=4)
        await batcher.start()
        model.gate.clear()
        running = asyncio.create_task(batcher.submit([1]))
        await asyncio.sleep(0.05)  # taken by the worker, held at the gate
        queued = [asyncio.create_task(batcher.submit([i, i])) for i in range(2)]
        await asyncio.sleep(0.01)
        assert batcher.depth == 4
        with pytest.raises(QueueFull) as full:
            await batcher.submit([9])
        assert full.value.retry_after >= 1 and "4 inputs are waiting (limit 4)" in str(full.value)
        model.gate.set()
        await asyncio.gather(running, *queued)
        assert batcher.depth == 0
        again = await batcher.submit([5])
        await batcher.stop()
        return again

    assert run(main()) == [10]


def test_a_failing_input_fails_only_its_own_request():
    async def main():
        model = Recorder()
        batcher = MicroBatcher(model, max_batch_size=16, max_wait_ms=50)
        await batcher.start()
        model.gate.clear()
        blocker = asyncio.create_task(batcher.submit([0]))
        await asyncio.sleep(0.05)
        good = asyncio.create_task(batcher.submit([1, 2]))
        bad = asyncio.create_task(batcher.submit([-1]))
        other = asyncio.create_task(batcher.submit([3]))
        await asyncio.sleep(0.02)
        model.gate.set()
        results = await asyncio.gather(blocker, good, bad, other, return_exceptions=True)
        await batcher.stop()
        return results

    blocker, good, bad, other = run(main())
    assert good == [2, 4] and other == [6] and blocker == [0]
    assert isinstance(bad, ValueError) and "negative" in str(bad)


def test_cancelled_requests_are_dropped_from_the_queue():
    async def main():
        model = Recorder()
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=0)
        await batcher.start()
        model.gate.clear()
        blocker = asyncio.create_task(batcher.submit([0]))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(batcher.submit([7]))
        kept = asyncio.create_task(batcher.submit([8]))
        await asyncio.sleep(0.01)
        gone.cancel()  # the client disconnected
        model.gate.set()
        result = await kept
        await blocker
        await batcher.stop()
        return model.batches, result

    batches, result = run(main())
    assert result == [16]
    assert all(7 not in b for b in batches)
