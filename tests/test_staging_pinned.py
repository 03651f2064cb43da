"""The pinned staging buffers of the cuda upload, on a fake CuPy (no GPU needed).

The fake models what matters: copies queued on a stream read host memory only when the
stream runs, events complete when the stream reaches them, and the pinned pool hands a
released block to the next allocation at once (as CuPy's does, with no event check).
"""

from __future__ import annotations

import ctypes
import weakref

import numpy as np
import pytest

from gpuaug.executors import staging


class _Event:
    def __init__(self):
        self.done = False


class _Stream:
    def __init__(self):
        self.queue = []

    def record(self):
        event = _Event()
        self.queue.append(lambda: setattr(event, "done", True))
        return event

    def run(self):
        for work in self.queue:
            work()
        self.queue.clear()


class _PinnedPool:
    def __init__(self):
        self.free: dict[int, list] = {}
        self.handles: list = []  # weakrefs to every handle given out

    def alloc(self, nbytes):
        blocks = self.free.setdefault(nbytes, [])
        block = blocks.pop() if blocks else np.zeros(nbytes, np.uint8)
        handle = (ctypes.c_ubyte * nbytes).from_buffer(block)  # back to the pool when it dies
        weakref.finalize(handle, blocks.append, block)
        self.handles.append(weakref.ref(handle))
        return handle


class _DeviceMemory:
    def __init__(self, array):
        self.array = array

    def copy_from_host_async(self, ptr, nbytes, stream):
        dst = self.array
        stream.queue.append(lambda: dst.__setitem__(slice(0, nbytes), np.frombuffer(ctypes.string_at(ptr, nbytes),
                                                                                     np.uint8)))


class _DeviceArray(np.ndarray):
    @property
    def data(self):
        return _DeviceMemory(self)


class _FakeCupy:
    __name__ = "cupy"

    def __init__(self):
        self.stream = _Stream()
        self.pool = _PinnedPool()
        cupy = self

        class cuda:
            @staticmethod
            def alloc_pinned_memory(nbytes):
                return cupy.pool.alloc(nbytes)

            @staticmethod
            def get_current_stream():
                return cupy.stream

        self.cuda = cuda

    @staticmethod
    def empty(n, dtype):
        return np.full(n, 0xEE, dtype).view(_DeviceArray)


@pytest.fixture()
def fake(monkeypatch):
    monkeypatch.setattr(staging, "_held", [])
    return _FakeCupy()


def _parts(i):
    return {"a": np.full(1000, i, np.int32), "b": np.arange(3.0) + i}


def test_uploads_queued_behind_a_busy_stream_keep_their_bytes(fake):
    # 40 uploads of one size class while the stream has not run (a kernel still busy):
    # no pending buffer may be handed out again or released to the pool
    views = [staging.upload(fake, _parts(i)) for i in range(40)]
    fake.stream.run()
    for i, v in enumerate(views):
        assert np.array_equal(v["a"], np.full(1000, i, np.int32)), i
        assert np.array_equal(v["b"], np.arange(3.0) + i), i
    assert len({id(b) for b, _ in staging._held}) == 40


def test_a_pending_buffer_is_never_reused_nor_released(fake):
    staging.upload(fake, _parts(0))
    (first, event), = staging._held
    for i in range(1, 3 * staging._MAX_IDLE_BUFFERS):
        staging.upload(fake, _parts(i))
        assert any(b is first for b, _ in staging._held)  # still held, not handed out
    assert all(h() is not None for h in fake.pool.handles)  # nothing went back to the pool


def test_completed_buffers_are_reused_and_trimmed_to_the_cap(fake):
    for i in range(3 * staging._MAX_IDLE_BUFFERS):
        staging.upload(fake, _parts(i))
    fake.stream.run()  # every copy done
    allocated = len(fake.pool.handles)
    staging.upload(fake, _parts(99))  # reuses a completed buffer, then trims the rest
    assert len(fake.pool.handles) == allocated
    assert len(staging._held) == staging._MAX_IDLE_BUFFERS
    assert sum(h() is not None for h in fake.pool.handles) == staging._MAX_IDLE_BUFFERS
    fake.stream.run()
    assert all(e.done for _, e in staging._held)
