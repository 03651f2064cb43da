"""Where a batch's mixing pictures come from: a uint8 pool of the images' size, or a
``gpuaug.mixing.MixingSet`` (random crops). The plan draws one picture per image."""

from __future__ import annotations

import numpy as np

from .. import _arrays


class PoolSource:
    """A dense uint8 NHWC pool of pictures with the images' height and width."""

    def __init__(self, pool, kind: _arrays.ArrayKind, height: int, width: int):
        try:
            pool_kind = _arrays.check_image_batch(pool, name="mixing")
        except (TypeError, ValueError) as err:
            raise type(err)(f"{err} (mixing must be a uint8 NHWC pool or a MixingSet)") from None
        if pool_kind.on_cuda != kind.on_cuda or pool_kind.device_index != kind.device_index:
            where = f"CUDA device {kind.device_index}" if kind.on_cuda else "the host"
            raise ValueError(f"mixing pictures must be on the same device as the images ({where})")
        if tuple(pool.shape[1:3]) != (height, width):
            raise ValueError(
                f"mixing pictures are {tuple(pool.shape[1:3])} but the images are {(height, width)}; "
                "resize the pool or use a MixingSet, which crops to the images' size"
            )
        if pool.shape[0] < 1:
            raise ValueError("mixing pool is empty")
        self.pool = pool
        self.on_cuda = kind.on_cuda

    def sample(self, n: int, rng: np.random.Generator) -> dict:
        return {"index": rng.integers(0, self.pool.shape[0], size=n)}

    def gather(self, plan: dict, backend):
        pool = _arrays.to_cupy(self.pool) if self.on_cuda else _arrays.to_numpy(self.pool)
        return pool[backend.asarray(plan["index"])]


class SetSource:
    """A MixingSet: a uniformly drawn picture and a random crop of the images' size."""

    def __init__(self, mixing_set, height: int, width: int, kind: _arrays.ArrayKind | None = None):
        owner = getattr(mixing_set, "device_index", None)
        if kind is not None and owner is not None:
            if not kind.on_cuda:
                raise ValueError(f"the mixing set is on {mixing_set.device} but the images are on the host; "
                                 "use a host set (device='cpu' or 'pinned') for host images")
            _arrays.check_same_device(f"the mixing set ({mixing_set.device})", owner, kind.device_index)
        self.set = mixing_set
        self.height, self.width = height, width

    def sample(self, n: int, rng: np.random.Generator) -> dict:
        return self.set.sample_plan(n, rng, self.height, self.width)

    def gather(self, plan: dict, backend):
        return self.set.gather(plan, backend.name)


def mixing_source(mixing, kind: _arrays.ArrayKind, height: int, width: int):
    """Wrap ``mixing`` (None, a uint8 pool, or a MixingSet) for sampling and gathering."""
    if mixing is None:
        return None
    if hasattr(mixing, "sample_plan") and hasattr(mixing, "gather"):
        return SetSource(mixing, height, width, kind)
    return PoolSource(mixing, kind, height, width)
