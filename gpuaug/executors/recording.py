"""The ``recording`` backend: the cuda executor's host side, with no device at all.

Everything a batch does on the host runs for real (planning, parameter packing, argument
checks, launch set-up), but device work is only *recorded*: each kernel launch (with the
bytes it would read and write), host->device upload, memset, device-to-device copy,
element-wise CuPy-style pass and device synchronisation. It measures the executor's host
cost and counts its device operations on a CPU-only machine (``python -m bench --suite
host``).

Device arrays are :class:`RecArray` stand-ins (shape, dtype, a fake device pointer; no
pixel storage). Arrays uploaded from the host keep a reference to their host data, so the
per-kernel bytes models below can read plan parameters (which samples a launch works on).

Use::

    with recording.session() as rec:
        method.execute(plan, recording.device_images(n, h, w), pictures, get_backend("recording"))
    rec.summary()
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from dataclasses import dataclass, field

import numpy as np

_addresses = itertools.count(1 << 32, 1 << 20)  # fake device addresses, never dereferenced
_local = threading.local()


# ---------------------------------------------------------------- events

@dataclass
class Recorder:
    """Device operations of one recording session, in order."""

    launches: list = field(default_factory=list)   # (kernel signature, grid, {param name: argument})
    uploads: list = field(default_factory=list)    # (bytes, pinned)
    memsets: list = field(default_factory=list)    # bytes
    copies: list = field(default_factory=list)     # (what, bytes read, bytes written): d2d / element-wise
    syncs: int = 0

    def traffic(self) -> list:
        """(kernel name, grid, bytes read, bytes written) per launch (bytes models below)."""
        out = []
        for sig, grid, named in self.launches:
            read, write = TRAFFIC[sig.name](named)
            out.append((sig.name, grid, float(read), float(write)))
        return out

    def summary(self) -> dict:
        """Counts and device bytes: kernels (``launches``), ``elementwise`` CuPy passes and
        copies, ``uploads`` (with ``pageable_uploads``), ``memsets``, ``syncs``, ``bytes``
        (read + written by all of them, memsets included) and ``kernels`` by name."""
        by_name: dict = {}
        traffic = self.traffic()
        for name, _, r, w in traffic:
            c = by_name.setdefault(name, {"launches": 0, "bytes": 0.0})
            c["launches"] += 1
            c["bytes"] += r + w
        kernel_bytes = sum(r + w for _, _, r, w in traffic)
        copy_bytes = sum(r + w for _, r, w in self.copies)
        return {
            "launches": len(self.launches), "elementwise": len(self.copies),
            "uploads": len(self.uploads), "pageable_uploads": sum(1 for _, p in self.uploads if not p),
            "upload_bytes": int(sum(b for b, _ in self.uploads)),
            "memsets": len(self.memsets), "syncs": self.syncs,
            "bytes": kernel_bytes + copy_bytes + float(sum(self.memsets)),
            "kernels": by_name,
        }


def current() -> Recorder:
    rec = getattr(_local, "recorder", None)
    if rec is None:
        raise RuntimeError("the recording backend runs only inside gpuaug.executors.recording.session()")
    return rec


@contextlib.contextmanager
def session():
    """Record this thread's device operations into a fresh :class:`Recorder`."""
    previous = getattr(_local, "recorder", None)
    _local.recorder = rec = Recorder()
    try:
        yield rec
    finally:
        _local.recorder = previous


# ---------------------------------------------------------------- device array stand-in

class _Flags:
    c_contiguous = True
    writeable = True


class _Pointer:
    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr


class _Device:
    id = 0  # every stand-in "lives" on device 0, as CuPy's ``array.device.id``


class RecArray:
    """A C-contiguous device array without storage (``host``: its uploaded data, if any)."""

    __slots__ = ("shape", "dtype", "host", "data")
    flags = _Flags()
    device = _Device()

    def __init__(self, shape, dtype, host=None, ptr=None, memptr=None):
        self.shape = tuple(map(int, shape))
        self.dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        self.host = host
        if memptr is not None:  # a view of existing memory, as cupy.ndarray(..., memptr=)
            ptr = memptr.ptr
        self.data = _Pointer(ptr if ptr is not None else next(_addresses))

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    nbytes = property(lambda self: math.prod(self.shape) * self.dtype.itemsize)
    itemsize = property(lambda self: self.dtype.itemsize)

    def __len__(self):
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        return f"RecArray(shape={self.shape}, dtype={self.dtype})"

    def __getitem__(self, key):
        if isinstance(key, slice) and self.ndim >= 1:  # a contiguous view along the first axis
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise ValueError("the recording backend supports only contiguous slices")
            row = math.prod(self.shape[1:]) * self.itemsize
            host = None if self.host is None else self.host[start:stop]
            return RecArray((max(0, stop - start),) + self.shape[1:], self.dtype, host, self.data.ptr + start * row)
        if isinstance(key, (int, np.integer)) and self.ndim >= 1:  # one sample: a view
            i = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"index {int(key)} out of range for {self.shape[0]}")
            sub = self.shape[1:]
            step = math.prod(sub) * self.itemsize
            host = None if self.host is None else self.host[i]
            return RecArray(sub, self.dtype, host, self.data.ptr + i * step)
        if isinstance(key, RecArray):  # fancy indexing: one gather kernel
            out = RecArray(key.shape + self.shape[1:], self.dtype)
            current().copies.append(("gather", out.nbytes + key.nbytes, out.nbytes))
            return out
        raise TypeError(f"the recording backend does not support indexing with {type(key).__name__}")

    def view(self, dtype):
        dtype = np.dtype(dtype)
        shape = self.shape
        if dtype.itemsize != self.itemsize:
            if self.ndim != 1 or self.nbytes % dtype.itemsize:
                raise ValueError("view to a dtype of another width needs a 1-d array of a fitting size")
            shape = (self.nbytes // dtype.itemsize,)
        host = None if self.host is None else self.host.view(dtype)
        return RecArray(shape, dtype, host, self.data.ptr)

    def reshape(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        if -1 in shape:
            known = math.prod(s for s in shape if s != -1)
            shape = tuple(self.size // known if s == -1 else s for s in shape)
        if math.prod(shape) != self.size:
            raise ValueError(f"cannot reshape {self.shape} to {shape}")
        host = None if self.host is None else self.host.reshape(shape)
        return RecArray(shape, self.dtype, host, self.data.ptr)

    def copy(self):
        current().copies.append(("copy", self.nbytes, self.nbytes))
        return RecArray(self.shape, self.dtype, self.host)

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype == self.dtype and not copy:
            return self
        out = RecArray(self.shape, dtype)
        current().copies.append(("astype", self.nbytes, out.nbytes))
        return out

    def _elementwise(self, other, name):
        shape = np.broadcast_shapes(self.shape, getattr(other, "shape", ()))
        dtype = np.result_type(self.dtype, getattr(other, "dtype", np.float32))
        out = RecArray(shape, dtype)
        read = self.nbytes + (other.nbytes if isinstance(other, RecArray) else 0)
        current().copies.append((name, read, out.nbytes))
        return out

    def __truediv__(self, other):
        return self._elementwise(other, "divide")

    def __mul__(self, other):
        return self._elementwise(other, "multiply")

    __rmul__ = __mul__


def _record_memset(nbytes):
    current().memsets.append(int(nbytes))


class RecordingXP:
    """The slice of CuPy's module API the executors use, on :class:`RecArray`."""

    __name__ = "gpuaug.executors.recording"
    ndarray = RecArray
    float32, float64, uint8, uint32, uint64, int32 = np.float32, np.float64, np.uint8, np.uint32, np.uint64, np.int32

    @staticmethod
    def empty(shape, dtype=np.float64):
        return RecArray(shape if isinstance(shape, tuple) else (shape,), dtype)

    @staticmethod
    def empty_like(a, dtype=None):
        return RecArray(a.shape, dtype or a.dtype)

    @staticmethod
    def zeros(shape, dtype=np.float64):
        out = RecArray(shape if isinstance(shape, tuple) else (shape,), dtype)
        _record_memset(out.nbytes)
        return out

    @staticmethod
    def asarray(a, dtype=None):
        """Upload host data (pageable, as ``cupy.asarray`` of a numpy array does)."""
        if isinstance(a, RecArray):
            return a if dtype is None else a.astype(dtype, copy=False)
        host = np.ascontiguousarray(a, dtype=dtype)
        current().uploads.append((host.nbytes, False))
        return RecArray(host.shape, host.dtype, host)

    @staticmethod
    def upload_pinned(host: np.ndarray):
        """An async copy from pinned memory on the executor's stream."""
        current().uploads.append((host.nbytes, True))
        return RecArray(host.shape, host.dtype, host)

    @staticmethod
    def ascontiguousarray(a):
        return a

    @staticmethod
    def stack(arrays):
        arrays = list(arrays)
        out = RecArray((len(arrays),) + arrays[0].shape, arrays[0].dtype)
        current().copies.append(("stack", out.nbytes, out.nbytes))
        return out

    @staticmethod
    def synchronize():
        current().syncs += 1


xp = RecordingXP()


def device_images(n: int, height: int, width: int) -> RecArray:
    """A uint8 NHWC batch "on the device" (no storage)."""
    return RecArray((n, height, width, 3), np.uint8)


# ---------------------------------------------------------------- kernel bytes models

def _host(arg):
    if not isinstance(arg, RecArray) or arg.host is None:
        raise ValueError("a bytes model needs parameters uploaded from the host")
    return arg.host


def _histograms(a):
    ns = _host(a["samples"]).size
    return ns * 3 * a["n_pixels"], ns * (3 * 256 * 4 + 8)


def _build_luts(a):
    ns = _host(a["samples"]).size
    return ns * 3 * 256 * 4, ns * 3 * 256


def _apply(a):
    ns = _host(a["samples"]).size
    px = 3 * a["height"] * a["width"]
    return ns * px, ns * px


def _resample_pass(a):
    steps = _host(a["passes"]).reshape(-1, 4).astype(np.int64)
    in_h, in_w, axis, out_len = steps[:, 0], steps[:, 1], steps[:, 2], steps[:, 3]
    out_px = np.where(axis == 0, in_h * out_len, out_len * in_w)
    return 3 * int((in_h * in_w).sum()), 3 * int(out_px.sum())


def _weighted_mix(a):
    n = a["skip"].shape[0]
    fused_luts = int(np.count_nonzero(_host(a["luts"])))  # chains read through a LUT
    return n * a["n_elems"] * (1 + a["k"]) + fused_luts * 3 * 256, 4 * n * a["n_elems"]


def _pixmix_rounds(a):
    rounds = _host(a["rounds"]).astype(np.int64)
    flags = _host(a["flags"]).reshape(rounds.size, -1)
    active = np.arange(flags.shape[1]) < rounds[:, None]
    is_aug = (flags & 1).astype(bool)
    images = rounds.size + (active & is_aug).sum() + np.any(active & ~is_aug, axis=1).sum()
    fused_luts = int(np.count_nonzero(_host(a["luts"])))
    return int(images) * a["n_elems"] + fused_luts * 3 * 256, 4 * rounds.size * a["n_elems"]


def _ipmix_patch(a):
    box = _host(a["iparams"]).reshape(-1, 6).astype(np.int64)
    touched = 3 * int((box[:, 2] * box[:, 3]).sum())
    return 2 * touched, touched


def _gather_crops(a):
    px = 3 * _host(a["params"]).size // 4 * a["height"] * a["width"]
    return px, px


def _dynamic_mix(a):
    n = a["m1"].shape[0]
    fused_luts = int(np.count_nonzero(_host(a["luts"])))
    return 2 * n * a["n_elems"] + fused_luts * 3 * 256, 4 * n * a["n_elems"]


TRAFFIC = {
    "gpuaug_histograms": _histograms,
    "gpuaug_build_luts": _build_luts,
    "gpuaug_apply": _apply,
    "gpuaug_resample_pass": _resample_pass,
    "gpuaug_weighted_mix": _weighted_mix,
    "gpuaug_pixmix_rounds": _pixmix_rounds,
    "gpuaug_ipmix_patch": _ipmix_patch,
    "gpuaug_dynamic_mix": _dynamic_mix,
    "gpuaug_gather_crops": _gather_crops,
}


def record_launch(signature, grid, args) -> None:
    """Record one launch of ``signature`` with its (checked) arguments; its bytes are
    counted when the recorder is summarised."""
    if signature.name not in TRAFFIC:
        raise KeyError(f"the recording backend has no bytes model for kernel {signature.name!r}; add one to TRAFFIC")
    named = {p.name: (a if p.pointer else a.item()) for p, a in zip(signature.params, args)}
    current().launches.append((signature, grid, named))
