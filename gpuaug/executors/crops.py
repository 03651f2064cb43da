"""Launch ``kernels/crop.cu``: a mixing set's planned crops in one kernel on the device.

What ``MixingSet.gather`` does for a set already on the GPU: the per-sample (picture,
top, left, flip) go up in one packed upload (:mod:`.staging`) and one launch writes the
crops, zero border included -- instead of three index uploads and an advanced-indexing
gather (plus a masked store for the border). The plan is range-checked by the caller.
"""

from __future__ import annotations

import numpy as np

from . import staging
from .launch import array_module as _xp, get_kernel

BLOCK = 256
_MAX_BLOCKS_PER_SAMPLE = 64


def gather_crops(backend: str, images, index, top, left, flip, height: int, width: int, pad: int):
    """(n, height, width, 3) uint8 crops of ``images`` (count, side, side, 3) on ``backend``
    ("cuda", "emulated" or "recording"); ``flip`` None or bool (n,)."""
    xp = _xp(backend)
    n = index.shape[0]
    out = xp.empty((n, height, width, 3), dtype=np.uint8)
    if n == 0:
        return out
    params = np.empty((n, 4), dtype=np.int32)
    params[:, 0], params[:, 1], params[:, 2] = index, top, left
    params[:, 3] = 0 if flip is None else np.asarray(flip, dtype=bool)
    dev = staging.upload(xp, {"params": params})
    blocks = max(1, min(_MAX_BLOCKS_PER_SAMPLE, -(-height * width // BLOCK)))
    get_kernel("crop", "gpuaug_gather_crops", backend)(
        (blocks, n), BLOCK, (images, out, dev["params"], images.shape[1], pad, height, width))
    return out


# ---------------------------------------------------------------- recording backend

def recorded_gather(plan: dict, set_shape: tuple):
    """What ``MixingSet.gather(plan, "cuda")`` does for a set of ``set_shape`` already on
    the device, on the recording backend: one packed upload and one crop kernel."""
    from .recording import RecArray

    index, top, left = (np.asarray(plan[k], dtype=np.int64) for k in ("index", "top", "left"))
    return gather_crops("recording", RecArray(tuple(set_shape), np.uint8), index, top, left, plan.get("flip"),
                        int(plan["height"]), int(plan["width"]), int(plan.get("pad", 0)))


class DeviceMixingSet:
    """A mixing set "on the device": ``sample_plan`` as the wrapped set's, ``gather``
    recorded by :func:`recorded_gather` (what a CUDA MixingSet costs the host)."""

    def __init__(self, mixing_set):
        self.set = mixing_set

    def __len__(self):
        return len(self.set)

    def sample_plan(self, n, rng, out_h=None, out_w=None):
        return self.set.sample_plan(n, rng, out_h, out_w)

    def gather(self, plan, backend=None):
        return recorded_gather(plan, self.set.images.shape)
