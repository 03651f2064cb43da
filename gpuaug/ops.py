"""Image-level ops for users: the catalogue (:mod:`gpuaug.catalogue`) and the batched apply.

``apply_batch`` / ``apply`` run a batch on the CPU executor or the CUDA one; this module sits
above both executors and the catalogue (the executors import the catalogue, never this).
"""

from __future__ import annotations

import numpy as np

from . import _arrays
from .catalogue import (  # noqa: F401  (re-exported: the public op catalogue)
    OpSpec,
    OPS,
    OP_NAMES,
    OP_IDS,
    OP_FAMILIES,
    AUGMIX_OPS,
    ALL_OPS,
    IPMIX_OPS,
    DYNMIX_OPS,
    OP_LISTS,
    op_ids,
    resolve_op_list,
    check_severity,
    sample_values,
    values_at_levels,
    check_values,
)

EXECUTORS = ("auto", "cpu", "cuda")


# ---------------------------------------------------------------- apply

def _select_executor(executor: str, kind: _arrays.ArrayKind) -> str:
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if executor == "auto":
        return "cuda" if kind.on_cuda else "cpu"
    if executor == "cpu" and kind.on_cuda:
        raise ValueError("executor='cpu' needs host images; these are on a CUDA device (use 'cuda' or 'auto')")
    if executor == "cuda" and not kind.on_cuda:
        raise ValueError("executor='cuda' needs images on a CUDA device; these are on the host (use 'cpu' or 'auto')")
    return executor


def apply_batch(images, names, values, executor: str = "auto"):
    """Apply op ``names[i]`` with parameter ``values[i]`` to image ``i`` of an NHWC uint8 batch.

    ``images``: numpy array, torch tensor (CPU or CUDA) or CuPy array, C-contiguous,
    shape (N, H, W, 3), dtype uint8. ``names``: N op names or ids; ``values``: N numbers
    (ignored by parameterless ops). Returns a new batch of the same kind and device.
    """
    kind = _arrays.check_image_batch(images)
    n = int(images.shape[0])
    if isinstance(names, str):
        raise TypeError("names must be a sequence of op names, one per image (got a single string)")
    ids = op_ids(_arrays.host_vector(names, n, "names", object))
    vals = _arrays.host_vector(values, n, "values", np.float64)
    check_values(ids, vals)
    which = _select_executor(executor, kind)
    if which == "cpu":
        from .executors import cpu

        out = cpu.apply_ops(_arrays.to_numpy(images), ids, vals)
        return _arrays.from_numpy(out, kind)
    from .executors import cuda

    return cuda.apply_ops_device(images, ids, vals, kind)


def apply(name: str, image, value=0.0) -> np.ndarray:
    """Apply one op to one HWC uint8 RGB image on the CPU; returns a new numpy array."""
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise ValueError(f"image must be H x W x 3 uint8, got shape {arr.shape}")
    if not isinstance(image, np.ndarray):
        arr = np.ascontiguousarray(arr)
    return apply_batch(arr[None], [name], [value], executor="cpu")[0]
