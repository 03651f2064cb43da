"""One upload per launch group: small host arrays packed into one buffer, sent at once.

:func:`upload` lays out the named host arrays (any dtypes) in one byte buffer, each part
8-byte aligned, copies it to the device in one transfer and returns typed device views
by name. On ``cuda`` the buffer is pinned host memory and the copy is asynchronous on the
current CuPy stream (no host sync). A pinned buffer is kept, neither reused nor
released, until the event recorded behind its copy has completed: CuPy's pinned pool
hands a released block straight to the next allocation without waiting for its copies,
so releasing one early lets the next upload overwrite bytes the DMA has not read yet.
Completed buffers are reused; beyond ``_MAX_IDLE_BUFFERS`` they are released.
On ``emulated`` the views are numpy arrays of one buffer; on ``recording`` the upload is
recorded (as pinned).
"""

from __future__ import annotations

import math
import threading

import numpy as np

_ALIGN = 8
_MAX_IDLE_BUFFERS = 16


def address(a) -> int:
    """Data address of a numpy array (emulated), CuPy array or recording stand-in."""
    return a.ctypes.data if isinstance(a, np.ndarray) else a.data.ptr


def layout(parts: dict) -> tuple[dict, int]:
    """Byte offset of each part (8-byte aligned) and the total size."""
    offsets, total = {}, 0
    for name, a in parts.items():
        offsets[name] = total
        total += -(-a.nbytes // _ALIGN) * _ALIGN
    return offsets, max(total, _ALIGN)


def pack(parts: dict, buffer=None) -> tuple[np.ndarray, dict]:
    """Host arrays -> (one uint8 buffer, {name: (offset, dtype, shape)}); ``buffer(nbytes)``
    gives the uint8 array to pack into (default: a new one)."""
    parts = {k: np.ascontiguousarray(v) for k, v in parts.items()}
    offsets, total = layout(parts)
    buf = buffer(total) if buffer is not None else np.empty(total, dtype=np.uint8)
    where = {}
    for name, a in parts.items():
        off = offsets[name]
        buf[off:off + a.nbytes] = a.reshape(-1).view(np.uint8)
        where[name] = (off, a.dtype, a.shape)
    return buf, where


def _views(device_buf, where: dict) -> dict:
    out = {}
    for name, (off, dtype, shape) in where.items():
        view = device_buf[off:off + math.prod(shape) * dtype.itemsize].view(dtype)
        out[name] = view if len(shape) == 1 else view.reshape(shape)
    return out


def upload(xp, parts: dict) -> dict:
    """Upload ``parts`` ({name: host array}) in one transfer; device views by name."""
    if xp is np:
        buf, where = pack(parts)
        return _views(buf, where)
    if getattr(xp, "__name__", "") == "cupy":
        return _cuda_upload(xp, parts)
    buf, where = pack(parts)  # the recording backend
    return _views(xp.upload_pinned(buf), where)


# ---------------------------------------------------------------- cuda: pinned ring

_lock = threading.Lock()
# (pinned uint8 array, event of its last copy), oldest first. Pending ones stay however
# many there are: how far the host runs ahead of the stream bounds them.
_held: list = []


def _pinned(cupy, nbytes: int):
    """A pinned buffer of at least ``nbytes`` whose last copy has completed (or a new one)."""
    with _lock:
        for i, (buf, event) in enumerate(_held):
            if buf.size >= nbytes and event.done:
                del _held[i]
                return buf
    mem = cupy.cuda.alloc_pinned_memory(max(nbytes, 64 << 10))
    return np.frombuffer(mem, np.uint8, max(nbytes, 64 << 10))


def _hold(buf, event) -> None:
    """Keep ``buf`` until ``event`` (recorded behind its copy) completes; release completed
    buffers beyond ``_MAX_IDLE_BUFFERS``, oldest first, never a pending one."""
    with _lock:
        _held.append((buf, event))
        excess = len(_held) - _MAX_IDLE_BUFFERS
        if excess > 0:
            done = [i for i, (_, e) in enumerate(_held) if e.done][:excess]
            for i in reversed(done):
                del _held[i]


def _cuda_upload(cupy, parts: dict) -> dict:
    held = []

    def buffer(nbytes):
        held.append(_pinned(cupy, nbytes))
        return held[0][:nbytes]

    host, where = pack(parts, buffer)  # packed straight into pinned memory
    pinned = held[0]
    stream = cupy.cuda.get_current_stream()
    dev = cupy.empty(host.size, dtype=np.uint8)
    dev.data.copy_from_host_async(host.ctypes.data, host.size, stream)
    _hold(pinned, stream.record())
    return _views(dev, where)
