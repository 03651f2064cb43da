"""AugMix (Hendrycks et al., 2020): mix `width` op chains, then skip-connect to the input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import catalogue
from ..executors import mixops
from ..executors.cuda import ChainRows
from .base import Method, check_range
from .chains import MULTI_CHAIN_BACKENDS, resolve_ops, run_chains, run_chains_for_reader, sample_chains


@dataclass(frozen=True)
class AugMixPlan:
    ops: np.ndarray      # (N, width, D) op ids, identity-padded
    values: np.ndarray   # (N, width, D) op parameters
    weights: np.ndarray  # (N, width) float32 ~ Dirichlet(alpha)
    skip: np.ndarray     # (N,) float32 m ~ Beta(alpha, alpha)


@dataclass(frozen=True)
class AugMix(Method):
    """out = (1 - m) x + m sum_i w_i chain_i(x); w ~ Dirichlet(alpha 1_width),
    m ~ Beta(alpha, alpha), chain depth ``depth`` or U{1, 2, 3} when depth <= 0, ops drawn
    uniformly from AUGMIX_OPS (ALL_OPS with ``all_ops``), levels ~ U(0.1, severity).
    ``op_list`` overrides the op list (a named list or op names)."""

    width: int = 3
    depth: int = -1
    severity: float = 3
    alpha: float = 1.0
    all_ops: bool = False
    op_list: tuple | str | None = None

    def __post_init__(self):
        check_range("width", self.width, low=1, integer=True)
        check_range("depth", self.depth, high=16, integer=True)
        catalogue.check_severity(self.severity)
        check_range("alpha", self.alpha, low=0, low_open=True)
        resolve_ops(self.op_list, catalogue.ALL_OPS if self.all_ops else catalogue.AUGMIX_OPS)

    def _op_ids(self):
        return resolve_ops(self.op_list, catalogue.ALL_OPS if self.all_ops else catalogue.AUGMIX_OPS)

    def plan(self, n, height, width, rng) -> AugMixPlan:
        weights = rng.dirichlet([self.alpha] * self.width, size=n).astype(np.float32)
        skip = rng.beta(self.alpha, self.alpha, size=n).astype(np.float32)
        ids, values, _ = sample_chains(rng, self._op_ids(), (n, self.width), self.depth,
                                       self.severity, height, width)
        return AugMixPlan(ids, values, weights, skip)

    def execute_all(self, plans, images, mixing, backend):
        """All plans' chains in one run (JSD views: 2 x width chains per step)."""
        if len(plans) < 2 or backend.name not in MULTI_CHAIN_BACKENDS:
            return super().execute_all(plans, images, mixing, backend)
        return self._mix_on_kernels(plans, images, backend)

    def execute(self, plan: AugMixPlan, images, mixing, backend):
        if backend.name in MULTI_CHAIN_BACKENDS:
            return self._mix_on_kernels([plan], images, backend)[0]
        chains = run_chains(backend, images, plan.ops, plan.values)
        return mixops.weighted_mix(backend, images, chains, plan.weights, plan.skip)

    def _mix_on_kernels(self, plans, images, backend):
        """The plans' chains in one executor run, each chain's last LUT op fused into the
        weighted mix's read (no uint8 write and read of it)."""
        cr = run_chains_for_reader(backend, images, np.concatenate([p.ops for p in plans], axis=1),
                                   np.concatenate([p.values for p in plans], axis=1))
        w = self.width
        return [mixops.weighted_mix_rows(backend, images, ChainRows(cr.rows[:, i * w:(i + 1) * w],
                                                                   cr.luts[:, i * w:(i + 1) * w], cr.keep),
                                         p.weights, p.skip)
                for i, p in enumerate(plans)]
