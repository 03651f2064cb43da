"""Dynamic Mixup: two op chains of one or two ops, mixed non-linearly.

out = m1 x1 + m2 x2 + m1 m2 (x1 - x2), m1 ~ Beta(alpha, alpha), m2 = 1 - m1. The
coefficients of x1 (m1 (1 + m2)) and x2 (m2^2) are >= 0 and sum to 1, so the result
stays in [0, 1]; it is clipped only against float rounding. With ``independent_m2`` m2
is a second Beta(alpha, alpha) draw: the coefficients sum to m1 + m2 in [0, 2] and the
clip to [0, 1] is part of the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import catalogue
from ..executors import mixops
from .base import Method, check_range
from .chains import MULTI_CHAIN_BACKENDS, resolve_ops, run_chains, run_chains_for_reader, sample_chains


@dataclass(frozen=True)
class DynamicMixupPlan:
    ops: np.ndarray     # (N, 2, 2) op ids (second step identity for one-op chains)
    values: np.ndarray  # (N, 2, 2)
    m1: np.ndarray      # (N,) float32 ~ Beta(alpha, alpha)
    m2: np.ndarray      # (N,) float32: 1 - m1, or ~ Beta(alpha, alpha) with independent_m2


@dataclass(frozen=True)
class DynamicMixup(Method):
    """Each of the k = 2 chains is one op or a composition of two (p = 1/2 each), ops
    drawn uniformly from DYNMIX_OPS (flips, rotate, translate, shear, autocontrast,
    equalize, solarize, posterize); add ``downscale=True`` for the ImageNet setting,
    which adds the resolution-loss op.

    The paper draws "these weights" m1, m2 from Beta(alpha, alpha) (Sec. 3 "Mixing") but
    its pseudocode samples one m (line 10): by default m2 = 1 - m1 (the design note's
    reading); ``independent_m2=True`` draws m2 ~ Beta(alpha, alpha) independently.

    ``jsd_views``: augmented views ``views()`` returns after the clean image -- 2 for the
    paper's JSD over (clean, dynmix1, dynmix2), 1 for its "JSD with single sample"
    ablation: JSD over (clean, dynmix). On CIFAR-10-C with a WRN the single-sample variant
    errs 9.7% (Table 5), the full method 8.9% (Table 1)."""

    k: int = 2
    alpha: float = 1.0
    severity: float = 3
    downscale: bool = False
    op_list: tuple | str | None = None
    independent_m2: bool = False
    jsd_views: int = 2

    def __post_init__(self):
        if self.k != 2:
            raise ValueError(f"k must be 2: Dynamic Mixup's interpolation mixes exactly two chains, got {self.k}")
        check_range("alpha", self.alpha, low=0, low_open=True)
        if not isinstance(self.independent_m2, (bool, np.bool_)):
            raise TypeError(f"independent_m2 must be a bool, got {self.independent_m2!r}")
        if isinstance(self.jsd_views, bool) or self.jsd_views not in (1, 2):
            raise ValueError(f"jsd_views must be 1 (single-sample JSD) or 2 (clean + two views), "
                             f"got {self.jsd_views!r}")
        catalogue.check_severity(self.severity)
        self._op_ids()

    def _op_ids(self):
        default = catalogue.DYNMIX_OPS + (("downscale",) if self.downscale else ())
        return resolve_ops(self.op_list, default)

    def plan(self, n, height, width, rng) -> DynamicMixupPlan:
        ids, values, _ = sample_chains(rng, self._op_ids(), (n, 2), depth=-1, severity=self.severity,
                                       height=height, width=width, min_depth=1, max_depth=2)
        m1 = rng.beta(self.alpha, self.alpha, size=n).astype(np.float32)
        if self.independent_m2:
            m2 = rng.beta(self.alpha, self.alpha, size=n).astype(np.float32)
        else:
            m2 = np.float32(1) - m1
        return DynamicMixupPlan(ids, values, m1, m2)

    def execute(self, plan: DynamicMixupPlan, images, mixing, backend):
        if backend.name in MULTI_CHAIN_BACKENDS:  # each chain's last LUT op fused into the mix
            return mixops.dynamic_mix_rows(backend, images, run_chains_for_reader(backend, images, plan.ops,
                                                                                  plan.values), plan.m1, plan.m2)
        x1, x2 = run_chains(backend, images, plan.ops, plan.values)
        return mixops.dynamic_mix(backend, x1, x2, plan.m1, plan.m2)
