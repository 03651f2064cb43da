"""The papers' algorithms as plain one-image PIL/numpy code: the CPU baseline for benchmarks
(picklable module-level functions, safe in DataLoader workers) and the statistical oracle
for the batched implementation.

Every function takes an explicit ``numpy.random.Generator`` (no global random state) and
returns float32 H x W x 3 images in [0, 1] (no normalisation). Each module's docstring
states its algorithm draw by draw and cites the paper section it comes from.

NoisyMix's data side is AugMix's (clean, aug1, aug2) views with a JSD loss:
``views(augmix, image, rng=rng)``.
"""

from __future__ import annotations

import numpy as np

from . import ops
from .augmix import augmix
from .baselines import cutmix, cutout, mixup
from .dynamic_mixup import dynamic_mix, dynamic_mixup
from .ipmix import ipmix
from .ops import (
    OPS_ALL, OPS_DYNAMIC_MIXUP, OPS_DYNAMIC_MIXUP_IMAGENET, OPS_IPMIX, OPS_IPMIX_ALL, OPS_STANDARD,
    apply_random_op, to_float,
)
from .pixmix import pixmix

__all__ = [
    "ops", "augmix", "pixmix", "ipmix", "dynamic_mixup", "dynamic_mix", "mixup", "cutmix", "cutout",
    "views", "apply_random_op", "OPS_STANDARD", "OPS_ALL", "OPS_IPMIX", "OPS_IPMIX_ALL",
    "OPS_DYNAMIC_MIXUP", "OPS_DYNAMIC_MIXUP_IMAGENET",
]


def views(fn, image, *args, rng: np.random.Generator, jsd_views: int = 2, **kw):
    """(clean, aug1, aug2) for JSD training: clean = image as float32 [0, 1]; aug1 and aug2
    are two calls of ``fn(image, *args, rng=rng, **kw)`` drawing one after the other from
    ``rng`` (independent randomness) but with the same ``args`` -- so PixMix/IPMix views
    share one mixing picture, as the IPMix/PixMix dataset wrappers do. ``jsd_views=1``:
    (clean, aug), Dynamic Mixup's single-sample JSD."""
    if jsd_views not in (1, 2):
        raise ValueError(f"jsd_views must be 1 or 2, got {jsd_views!r}")
    clean = to_float(ops.as_pil(image))
    return (clean, *(fn(image, *args, rng=rng, **kw) for _ in range(jsd_views)))
