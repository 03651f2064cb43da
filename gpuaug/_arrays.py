"""Recognise, validate and convert the array kinds gpuaug accepts.

Images travel as dense NHWC uint8 batches. Accepted kinds: numpy arrays, torch tensors
(CPU or CUDA) and CuPy arrays. Device arrays are shared with CuPy through DLPack (no
copies); results go back in the caller's kind.
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
    """Give a device result back as the caller's kind (torch through DLPack, no copy)."""
    if kind.library == "torch":
        import torch

        return torch.from_dlpack(x)
    return x


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
    without a sync). A no-op for host arrays."""
    if not kind.on_cuda:
        yield
        return
    import cupy

    with cupy.cuda.Device(kind.device_index):
        if kind.library == "torch":
            import torch

            stream = torch.cuda.current_stream(kind.device_index)
            with cupy_stream(stream, kind.device_index):
                yield
        else:
            yield


def cupy_stream(stream, device_index: int):
    """A CuPy stream wrapping a foreign CUDA stream (e.g. ``torch.cuda.Stream``).

    CuPy 14 deprecates ``cupy.cuda.ExternalStream`` (a warning per call) in favour of
    ``cupy.cuda.Stream.from_external``, which takes any object with the CUDA stream
    protocol (``__cuda_stream__``, torch >= 2.6) and keeps it alive; older CuPy or
    torch fall back to ``ExternalStream(ptr, device_index)``.
    """
    import cupy

    from_external = getattr(cupy.cuda.Stream, "from_external", None)
    if from_external is not None and hasattr(stream, "__cuda_stream__"):
        return from_external(stream)
    return cupy.cuda.ExternalStream(int(stream.cuda_stream), device_index)
