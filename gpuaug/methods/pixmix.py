"""PixMix (Hendrycks et al., 2022): mix the image with augmented copies of itself and with
structurally complex pictures (fractals, feature visualisations) for 0..k rounds.

Start: augment(x) or x (p = 1/2). Each of r ~ U{0..k} rounds: partner = augment(x) or the
mixing picture (p = 1/2); op = additive or multiplicative (p = 1/2) with conic
coefficients: (a, b) = (Beta(beta, 1), Beta(1, beta)) or (1 + Beta(1, beta), -Beta(1, beta))
(p = 1/2); clip to [0, 1] after every round. ``augment`` is one op from ALL_OPS (AUGMIX_OPS
without ``all_ops``) at ``severity``.

additive:       ((a (2u - 1) + b (2v - 1)) + 1) / 2
multiplicative: (2u)^a * max(2v, 1e-37)^b / 2

The powers are evaluated in float64 and rounded to float32 so that numpy and CUDA agree
(float32 pow differs by an ulp between libm and CUDA). The rounds run fused
(``executors.mixops.pixmix_rounds``: one kernel on the device).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import catalogue
from ..executors import mixops
from .base import Method, check_range
from .chains import IDENTITY, MULTI_CHAIN_BACKENDS, resolve_ops, run_chains, run_chains_for_reader, sample_ops


@dataclass(frozen=True)
class PixMixPlan:
    start_op: np.ndarray       # (N,) op id of the starting augment (identity: start from x)
    start_value: np.ndarray    # (N,)
    rounds: np.ndarray         # (N,) number of mixing rounds, 0..k
    partner_op: np.ndarray     # (N, k) op id of the partner augment (identity: unused)
    partner_value: np.ndarray  # (N, k)
    partner_is_aug: np.ndarray  # (N, k) bool: augment(x) (True) or the mixing picture
    multiplicative: np.ndarray  # (N, k) bool
    a: np.ndarray              # (N, k) float32
    b: np.ndarray              # (N, k) float32


def sample_conic_coefficients(rng, shape, beta):
    """PixMix's (a, b): (Beta(beta,1), Beta(1,beta)) or (1 + Beta(1,beta), -Beta(1,beta)).

    Drawn by inverse CDF: X = U^(1/beta) ~ Beta(beta, 1) and 1 - X ~ Beta(1, beta), two
    uniforms per element for the branch it takes (numpy's Beta sampler, four draws per
    element for both branches, cost more than the rest of a PixMix plan)."""
    first = rng.uniform(size=shape) < 0.5
    x = rng.uniform(size=(2,) + tuple(np.atleast_1d(shape))) ** (1.0 / beta)  # two independent Beta(beta, 1)
    a = np.where(first, x[0], 2.0 - x[0])  # 1 + Beta(1, beta) = 2 - X
    b = np.where(first, 1.0 - x[1], x[1] - 1.0)  # -Beta(1, beta) = X - 1
    return a.astype(np.float32), b.astype(np.float32)


@dataclass(frozen=True)
class PixMix(Method):
    """PixMix with the paper's defaults (CIFAR: k=4, beta=3; ImageNet: k=4, beta=4)."""

    k: int = 4
    beta: float = 3
    severity: float = 3
    all_ops: bool = True
    op_list: tuple | str | None = None

    needs_mixing = True

    def __post_init__(self):
        check_range("k", self.k, low=0, high=64, integer=True)
        check_range("beta", self.beta, low=0, low_open=True)
        catalogue.check_severity(self.severity)
        self._op_ids()

    def _op_ids(self):
        return resolve_ops(self.op_list, catalogue.ALL_OPS if self.all_ops else catalogue.AUGMIX_OPS)

    def plan(self, n, height, width, rng) -> PixMixPlan:
        op_ids = self._op_ids()
        start_op, start_value = sample_ops(rng, op_ids, (n,), self.severity, height, width)
        start_aug = rng.uniform(size=n) < 0.5
        start_op[~start_aug] = IDENTITY
        start_value[~start_aug] = 0.0
        rounds = rng.integers(0, self.k + 1, size=n)
        shape = (n, self.k)
        partner_op, partner_value = sample_ops(rng, op_ids, shape, self.severity, height, width)
        partner_is_aug = rng.uniform(size=shape) < 0.5
        active = np.arange(self.k) < rounds[:, None]
        unused = ~(partner_is_aug & active)
        partner_op[unused] = IDENTITY
        partner_value[unused] = 0.0
        multiplicative = rng.uniform(size=shape) < 0.5
        a, b = sample_conic_coefficients(rng, shape, self.beta)
        return PixMixPlan(start_op, start_value, rounds, partner_op, partner_value,
                          partner_is_aug, multiplicative, a, b)

    def execute(self, plan: PixMixPlan, images, mixing, backend):
        last = int(plan.rounds.max(initial=0))
        # the start op and the partners of rounds some image runs: one chain table
        ids = np.concatenate([plan.start_op[:, None], plan.partner_op[:, :last]], axis=1)[..., None]
        values = np.concatenate([plan.start_value[:, None], plan.partner_value[:, :last]], axis=1)[..., None]
        if backend.name in MULTI_CHAIN_BACKENDS:  # each chain's LUT op fused into the mix's read
            return mixops.pixmix_rounds_rows(backend, images, run_chains_for_reader(backend, images, ids, values),
                                             mixing, plan.partner_is_aug, plan.rounds, plan.multiplicative,
                                             plan.a, plan.b)
        read = plan.partner_is_aug[:, :last] & (np.arange(last) < plan.rounds[:, None])  # what the mix reads
        start, *augmented = run_chains(backend, images, ids, values,
                                       needed=np.concatenate([np.ones((len(ids), 1), bool), read], axis=1))
        augmented += [None] * (self.k - last)
        return mixops.pixmix_rounds(backend, start, mixing, augmented, plan.partner_is_aug, plan.rounds,
                                    plan.multiplicative, plan.a, plan.b)
