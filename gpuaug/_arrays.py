"""Recognise, validate and convert the array kinds gpuaug accepts.

Images travel as dense NHWC uint8 batches. Accepted kinds: numpy arrays, torch tensors
(CPU or CUDA) and CuPy arrays. Device arrays are shared with CuPy through DLPack (no
copies); results go back in the caller's kind.

Memory handed to torch is torch's own. Inside :func:`cuda_scope` for a torch caller,
every CuPy allocation (outputs and temporaries) is served by torch's caching allocator
on the caller's stream, and :func:`from_cupy` returns the result as a view of that torch
tensor rather than a DLPack import. We chose this over copying into torch-allocated
outputs (a copy per result) and over outputs from CuPy's pool, because CuPy's pool
hands a freed block straight to the next allocation on its stream with no
``record_stream`` (a consumer on another stream, as in FFCV's loader thread, could read
memory the next batch overwrites) and hides its high-water mark from torch. Now torch's
usual rules hold: a block is reused only in its stream's order, ``record_stream`` works
on our outputs, ``torch.cuda.max_memory_allocated`` counts them, and a result made on a
side stream is also recorded on the device's default stream, where training consumes it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArrayKind:
    """Where an array lives and how to give a result back in the same kind."""

    library: str  # "numpy", "torch" or "cupy"
    on_cuda: bool
    device_index: int | None = None


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "is_cuda")


def _is_cupy(x) -> bool:
    return type(x).__module__.startswith("cupy")


def kind_of(x, name: str = "images") -> ArrayKind:
    """Return the ArrayKind of ``x``; TypeError for anything that is not an array we take."""
    if isinstance(x, np.ndarray):
        return ArrayKind("numpy", False)
    if _is_torch(x):
        if x.is_cuda:
            return ArrayKind("torch", True, x.device.index)
        if x.device.type != "cpu":
            raise TypeError(f"{name}: torch tensors on device {x.device} are not supported (use CPU or CUDA)")
        return ArrayKind("torch", False)
    if _is_cupy(x):
        return ArrayKind("cupy", True, x.device.id)
    raise TypeError(
        f"{name} must be a numpy array, a torch tensor or a CuPy array, got {type(x).__name__}"
    )


def _dtype_name(x) -> str:
    return str(x.dtype).replace("torch.", "")


def _is_contiguous(x, kind: ArrayKind) -> bool:
    if kind.library == "torch":
        return x.is_contiguous()
    return bool(x.flags.c_contiguous)


def check_image_batch(images, name: str = "images") -> ArrayKind:
    """Validate a dense NHWC uint8 RGB batch and return its kind.

    Raises TypeError for a wrong type or dtype and ValueError for a wrong layout, shape or
    memory order, each naming the argument and saying how to fix it.
    """
    kind = kind_of(images, name)
    dtype = _dtype_name(images)
    if dtype != "uint8":
        hint = ""
        if "float" in dtype:
            hint = " (float images: scale to [0, 255], round and convert to uint8 first)"
        raise TypeError(f"{name} must have dtype uint8, got {dtype}{hint}")
    shape = tuple(images.shape)
    if len(shape) != 4:
        raise ValueError(f"{name} must be a 4-d NHWC batch (N, H, W, 3), got shape {shape}")
    if shape[3] != 3:
        if shape[1] == 3:
            raise ValueError(
                f"{name} looks like NCHW (shape {shape}); gpuaug expects NHWC (N, H, W, 3): "
                "permute to (0, 2, 3, 1) first"
            )
        raise ValueError(f"{name} must have 3 (RGB) channels last, got shape {shape}")
    if shape[1] < 1 or shape[2] < 1:
        raise ValueError(f"{name} must have height and width >= 1, got shape {shape}")
    if not _is_contiguous(images, kind):
        raise ValueError(
            f"{name} must be C-contiguous NHWC memory; call .contiguous() (torch) or "
            "numpy.ascontiguousarray first"
        )
    return kind


def to_numpy(x) -> np.ndarray:
    """A host array as numpy without copying (torch CPU tensors share memory)."""
    if isinstance(x, np.ndarray):
        return x
    return x.numpy()


def from_numpy(x: np.ndarray, kind: ArrayKind):
    """Give a host result back as the caller's kind (torch CPU tensors share memory)."""
    if kind.library == "torch":
        import torch

        return torch.from_numpy(x)
    return x


def to_cupy(x):
    """A device array as a CuPy array sharing its memory (DLPack for torch)."""
    if _is_cupy(x):
        return x
    import cupy

    return cupy.from_dlpack(x)


def from_cupy(x, kind: ArrayKind):
    """Give a device result back as the caller's kind, without a copy: for torch, a view of
    the torch tensor that backs ``x`` (see the module notes), else a DLPack import."""
    if kind.library == "torch":
        import torch

        out = _torch_view(x)
        if out is None:
            return torch.from_dlpack(x)
        stream = torch.cuda.current_stream(out.device)
        if stream != torch.cuda.default_stream(out.device):
            out.record_stream(torch.cuda.default_stream(out.device))
        return out
    return x


class _TorchBlock:
    """Owner of a CuPy allocation served by torch: the backing uint8 torch tensor."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor


def torch_allocator(device_index: int):
    """A CuPy allocator (``cupy.cuda.using_allocator``) drawing from torch's caching
    allocator on ``device_index`` and torch's current stream."""
    import cupy
    import torch

    device = torch.device("cuda", device_index)

    def allocate(size: int):
        tensor = torch.empty(max(int(size), 1), dtype=torch.uint8, device=device)
        mem = cupy.cuda.UnownedMemory(tensor.data_ptr(), int(size), _TorchBlock(tensor), device_index)
        return cupy.cuda.MemoryPointer(mem, 0)

    return allocate


def _torch_view(x):
    """``x`` (a CuPy array) as a torch tensor sharing the torch block behind it, or None
    when ``x`` is not backed by :func:`torch_allocator` (or has an unusual layout)."""
    import torch

    owner = getattr(getattr(x.data, "mem", None), "_owner", None)
    if not isinstance(owner, _TorchBlock):
        return None
    base = owner.tensor
    itemsize = x.dtype.itemsize
    dtype = torch.from_numpy(np.empty(0, dtype=x.dtype)).dtype
    if x.size == 0:
        return torch.empty(x.shape, dtype=dtype, device=base.device)
    offset = x.data.ptr - base.data_ptr()
    if offset % itemsize or any(s < 0 or s % itemsize for s in x.strides):
        return None
    strides = [s // itemsize for s in x.strides]
    span = 1 + sum((n - 1) * s for n, s in zip(x.shape, strides))
    flat = base[offset:offset + span * itemsize].view(dtype)
    return torch.as_strided(flat, x.shape, strides)


def host_vector(values, n: int, name: str, dtype) -> np.ndarray:
    """Per-sample parameters as a 1-d host array of length n.

    Plans are host-side: device tensors are refused rather than synchronised silently.
    """
    if _is_torch(values):
        if values.is_cuda:
            raise TypeError(f"{name} must be on the host (a list, numpy array or CPU tensor), got a CUDA tensor")
        values = values.numpy()
    elif _is_cupy(values):
        raise TypeError(f"{name} must be on the host (a list, numpy array or CPU tensor), got a CuPy array")
    arr = np.asarray(values)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have one entry per image ({n}), got a scalar")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have one entry per image: expected length {n}, got shape {arr.shape}")
    try:
        return arr.astype(dtype, copy=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}") from err


@contextlib.contextmanager
def cuda_scope(kind: ArrayKind):
    """For CUDA arrays: make CuPy work on the array's device and, for torch tensors, on
    torch's current stream there (so our kernels are ordered with the caller's work,
    without a sync) with torch's caching allocator (see the module notes). A no-op for
    host arrays."""
    if not kind.on_cuda:
        yield
        return
    import cupy

    with cupy.cuda.Device(kind.device_index):
        if kind.library == "torch":
            import torch

            stream = torch.cuda.current_stream(kind.device_index)
            with cupy_stream(stream, kind.device_index), \
                    cupy.cuda.using_allocator(torch_allocator(kind.device_index)):
                yield
        else:
            yield


def cupy_stream(stream, device_index: int):
    """A CuPy stream wrapping a foreign CUDA stream (e.g. ``torch.cuda.Stream``).

    CuPy 14 deprecates ``cupy.cuda.ExternalStream`` (a warning per call) in favour of
    ``cupy.cuda.Stream.from_external``, which takes any object with the CUDA stream
    protocol (``__cuda_stream__``, as recent torch streams have) and keeps it alive; older CuPy or
    torch fall back to ``ExternalStream(ptr, device_index)``.
    """
    import cupy

    from_external = getattr(cupy.cuda.Stream, "from_external", None)
    if from_external is not None and hasattr(stream, "__cuda_stream__"):
        return from_external(stream)
    return cupy.cuda.ExternalStream(int(stream.cuda_stream), device_index)


def current_cuda_device() -> int:
    """The calling thread's current CUDA device (CuPy's view; torch's ``set_device`` sets
    the same runtime state). Each thread has its own: a new thread starts on device 0."""
    import cupy

    return int(cupy.cuda.runtime.getDevice())


def resolve_cuda_device(device) -> int:
    """The device index ``device`` names: ``"cuda"`` (or a torch device without an index)
    is the *current* device, as torch resolves it, never device 0 by default."""
    import torch

    dev = torch.device(device)
    if dev.type != "cuda":
        raise ValueError(f"not a CUDA device: {device!r}")
    return current_cuda_device() if dev.index is None else int(dev.index)


def check_same_device(what: str, owner_index: int, index: int | None = None) -> None:
    """Refuse to use ``what`` (which lives on CUDA device ``owner_index``) on another device
    (``index``, default: the current one) -- a clear error instead of an invalid handle
    or a cross-device pointer."""
    here = current_cuda_device() if index is None else int(index)
    if here != owner_index:
        raise ValueError(f"{what} lives on cuda:{owner_index} but is used on cuda:{here}; "
                         f"build one per device (e.g. device='cuda:{here}', one per rank)")


def torch_to_device(array: np.ndarray, device):
    """A host numpy array as a torch tensor on ``device``. On CUDA the copy goes from
    pinned memory with ``non_blocking``: queued on the current stream, no host sync (a
    plain ``torch.as_tensor(array, device="cuda")`` waits for the copy)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    device = torch.device(device)
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)
