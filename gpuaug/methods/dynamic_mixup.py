"""Dynamic Mixup: two op chains of one or two ops, mixed non-linearly.

out = m1 x1 + m2 x2 + m1 m2 (x1 - x2), m1 ~ Beta(alpha, alpha), m2 = 1 - m1. The
coefficients of x1 (m1 (1 + m2)) and x2 (m2^2) are >= 0 and sum to 1, so the result
stays in [0, 1]; it is clipped only against float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..executors import mixops
from .base import Method, check_range
from .chains import resolve_ops, run_chains, sample_chains


@dataclass(frozen=True)
class DynamicMixupPlan:
    ops: np.ndarray     # (N, 2, 2) op ids (second step identity for one-op chains)
    values: np.ndarray  # (N, 2, 2)
    m1: np.ndarray      # (N,) float32 ~ Beta(alpha, alpha)


@dataclass(frozen=True)
class DynamicMixup(Method):
    """Each of the k = 2 chains is one op or a composition of two (p = 1/2 each), ops
    drawn uniformly from DYNMIX_OPS (flips, rotate, translate, shear, autocontrast,
    equalize, solarize, posterize); add ``downscale=True`` for the ImageNet setting,
    which adds the resolution-loss op. The paper draws m1 and m2 from Beta(alpha, alpha);
    we follow the design note's m2 = 1 - m1 (the paper's formula is stated for one m)."""

    k: int = 2
    alpha: float = 1.0
    severity: float = 3
    downscale: bool = False
    op_list: tuple | str | None = None

    def __post_init__(self):
        if self.k != 2:
            raise ValueError(f"k must be 2: Dynamic Mixup's interpolation mixes exactly two chains, got {self.k}")
        check_range("alpha", self.alpha, low=0, low_open=True)
        ops.check_severity(self.severity)
        self._op_ids()

    def _op_ids(self):
        default = ops.DYNMIX_OPS + (("downscale",) if self.downscale else ())
        return resolve_ops(self.op_list, default)

    def plan(self, n, height, width, rng) -> DynamicMixupPlan:
        ids, values, _ = sample_chains(rng, self._op_ids(), (n, 2), depth=-1, severity=self.severity,
                                       height=height, width=width, min_depth=1, max_depth=2)
        m1 = rng.beta(self.alpha, self.alpha, size=n).astype(np.float32)
        return DynamicMixupPlan(ids, values, m1)

    def execute(self, plan: DynamicMixupPlan, images, mixing, backend):
        x1, x2 = run_chains(backend, images, plan.ops, plan.values)
        return mixops.dynamic_mix(backend, x1, x2, plan.m1)
