"""IPMix (Huang et al., NeurIPS 2023): image-level and P-level (patch/pixel mixing) chains.

For each of k chains: image-level (p = 1/2) or P-level, with n ~ U{0..t} steps (the
official code's count; a chain may stay clean).
* image-level: n ops from IPMIX_OPS (``all_ops``: + autocontrast with IPMix's cutoff and
  the four enhance ops) at ``severity``;
* P-level: n patch mixings, each: size s ~ U(patch_sizes) clamped to the image; mix op ~
  U{add, multiply, random pixels, random elements}; partner = the mixing picture or (with
  ``augment_partner``, p = 1/2) augment(x); a square s x s patch or (p = 1/2) a scar of
  U{2..s} x U{2..s} at a uniform position; add/multiply use PixMix's formulas with conic
  (a, b) from ``beta``; the random-mask ops keep the chain where u < thr, thr ~ U(0, 1),
  u uniform per pixel (one mask for all channels) or per element; the patch is written
  back as uint8 by truncation, trunc(clip(v, 0, 1) * 255), as the code's ToPILImage does.
out = (1 - m) x + m sum_i w_i chain_i, w ~ Dirichlet(1_k), m ~ Beta(1, 1).

Defaults are the ImageNet code's; CIFAR: beta=3, severity=3, patch_sizes=(4, 8, 16, 32),
augment_partner=False. Deviation: the code's patch write wraps values outside [0, 1]
modulo 256; we clip first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import catalogue
from ..executors import mixops
from ..executors.mixops import MIX_OPS, hash_uniform  # noqa: F401  (re-exported)
from .base import Method, check_range
from .chains import IDENTITY, MULTI_CHAIN_BACKENDS, resolve_ops, run_chain, run_chains, sample_ops
from .pixmix import sample_conic_coefficients

IPMIX_ALL_OPS = catalogue.IPMIX_OPS + ("autocontrast", "color", "contrast", "brightness", "sharpness")


@dataclass(frozen=True)
class IPMixPlan:
    weights: np.ndarray        # (N, k) float32 ~ Dirichlet(1)
    skip: np.ndarray           # (N,) float32 ~ Beta(1, 1)
    p_level: np.ndarray        # (N, k) bool
    count: np.ndarray          # (N, k) steps 0..t
    ops: np.ndarray            # (N, k, t) image-level op ids (identity where unused)
    values: np.ndarray         # (N, k, t)
    mix_op: np.ndarray         # (N, k, t) index into MIX_OPS
    partner_op: np.ndarray     # (N, k, t) augment(x) op id; identity: the mixing picture
    partner_value: np.ndarray  # (N, k, t)
    partner_is_picture: np.ndarray  # (N, k, t) bool
    box: np.ndarray            # (N, k, t, 4) top, left, height, width of the patch
    a: np.ndarray              # (N, k, t) float32 conic coefficients (add, multiply)
    b: np.ndarray              # (N, k, t)
    threshold: np.ndarray      # (N, k, t) float32 keep-probability of the random masks
    mask_seed: np.ndarray      # (N, k, t) uint32 seeds of the per-pixel uniforms

    def n_ops(self) -> np.ndarray:
        """Image-level ops plus patch mixings applied per image."""
        return self.count.sum(axis=1)


@dataclass(frozen=True)
class IPMix(Method):
    """IPMix with the ImageNet code's defaults (see the module docstring)."""

    k: int = 3
    t: int = 3
    beta: float = 4
    severity: float = 1
    patch_sizes: tuple = (4, 8, 16, 32, 64, 224)
    all_ops: bool = False
    augment_partner: bool = True
    op_list: tuple | str | None = None

    needs_mixing = True

    def __post_init__(self):
        check_range("k", self.k, low=1, high=64, integer=True)
        check_range("t", self.t, low=0, high=64, integer=True)
        check_range("beta", self.beta, low=0, low_open=True)
        catalogue.check_severity(self.severity)
        sizes = tuple(self.patch_sizes)
        if not sizes:
            raise ValueError("patch_sizes must not be empty")
        for s in sizes:
            check_range("patch_sizes", s, low=1, integer=True)
        object.__setattr__(self, "patch_sizes", tuple(int(s) for s in sizes))
        self._op_ids()

    def _op_ids(self):
        return resolve_ops(self.op_list, IPMIX_ALL_OPS if self.all_ops else catalogue.IPMIX_OPS)

    def plan(self, n, height, width, rng) -> IPMixPlan:
        k, t = self.k, self.t
        op_ids = self._op_ids()
        weights = rng.dirichlet([1.0] * k, size=n).astype(np.float32)
        skip = rng.beta(1, 1, size=n).astype(np.float32)
        p_level = rng.uniform(size=(n, k)) < 0.5
        count = rng.integers(0, t + 1, size=(n, k))
        step_used = np.arange(t) < count[..., None]
        image_step = step_used & ~p_level[..., None]
        patch_step = step_used & p_level[..., None]

        shape = (n, k, t)
        img_ops, img_values = sample_ops(rng, op_ids, shape, self.severity, height, width, "ipmix")
        img_ops[~image_step] = IDENTITY
        img_values[~image_step] = 0.0

        mix_op = rng.integers(0, len(MIX_OPS), size=shape)
        if self.augment_partner:
            is_picture = rng.uniform(size=shape) < 0.5
        else:
            is_picture = np.ones(shape, dtype=bool)
        partner_op, partner_value = sample_ops(rng, op_ids, shape, self.severity, height, width, "ipmix")
        unused = ~patch_step | is_picture
        partner_op[unused] = IDENTITY
        partner_value[unused] = 0.0

        sizes = np.minimum(np.asarray(self.patch_sizes)[rng.integers(0, len(self.patch_sizes), size=shape)],
                           min(height, width))
        left = rng.integers(0, width - sizes + 1)
        top = rng.integers(0, height - sizes + 1)
        square = rng.uniform(size=shape) < 0.5
        low = np.minimum(2, sizes)
        scar_w = rng.integers(low, sizes + 1)
        scar_h = rng.integers(low, sizes + 1)
        box = np.stack([top, left, np.where(square, sizes, scar_h), np.where(square, sizes, scar_w)], axis=-1)
        box[~patch_step] = 0  # an empty box: the step changes nothing

        a, b = sample_conic_coefficients(rng, shape, self.beta)
        threshold = rng.uniform(size=shape).astype(np.float32)
        mask_seed = rng.integers(0, 2 ** 32, size=shape, dtype=np.uint32)
        return IPMixPlan(weights, skip, p_level, count, img_ops, img_values, mix_op, partner_op,
                         partner_value, is_picture, box, a, b, threshold, mask_seed)

    def execute(self, plan: IPMixPlan, images, mixing, backend):
        if backend.name in MULTI_CHAIN_BACKENDS:
            chain_rows = _chains_patched_by_round(backend, images, mixing, plan, self.k, self.t)
            if chain_rows is not None:
                return mixops.weighted_mix_rows(backend, images, chain_rows, plan.weights, plan.skip)
        chains = self._chains_patched_one_by_one(plan, images, mixing, backend)
        return mixops.weighted_mix(backend, images, chains, plan.weights, plan.skip)

    def _chains_patched_one_by_one(self, plan: IPMixPlan, images, mixing, backend):
        image_chains = run_chains(backend, images, plan.ops, plan.values)
        partners = _partner_batches(backend, images, plan, self.k, self.t)
        chains = []
        for j in range(self.k):
            chain = image_chains[j]
            owned = chain is not images
            for r in range(self.t):
                if np.any(plan.box[:, j, r, 2] > 0):
                    augmented = partners(j, r)
                    chain = mixops.ipmix_patch(
                        backend, chain, mixing, augmented, plan.partner_is_picture[:, j, r], plan.box[:, j, r],
                        plan.mix_op[:, j, r], plan.a[:, j, r], plan.b[:, j, r], plan.threshold[:, j, r],
                        plan.mask_seed[:, j, r], inplace=owned)
                    owned = True
            chains.append(chain)
        return chains


def _chains_patched_by_round(backend, images, mixing, plan: IPMixPlan, k: int, t: int):
    """The k patched chains on a kernel backend, as a ``ChainRows`` of (N, k) addresses for
    the weighted mix: the image-level steps of all chains and every used partner op in
    one executor call (one step per chain step for all rows), then one patch launch per
    round r over all chains' rows (each row's partner by address). A chain without patch
    steps is only read: its last LUT op is fused into the mix's read and an op-less one
    reads the input (no copy). None when no row has an op (the chains would all be the
    input itself: the one-by-one path copies as needed)."""
    from ..executors import mix_kernels, staging
    from ..executors.cuda import ChainRows, apply_chains_xp

    n = images.shape[0]
    flat = lambda a: np.ascontiguousarray(np.swapaxes(a, 0, 1)).reshape((k * n,) + a.shape[2:])  # noqa: E731
    ids, values = flat(plan.ops).astype(np.int32), flat(plan.values).astype(np.float64)
    needed = np.ones(k * n, bool)
    patched = np.any(flat(plan.box)[..., 2] * flat(plan.box)[..., 3] > 0, axis=1)  # rows the patch rounds write
    read_only = ~patched
    used = [(j, r) for j in range(k) for r in range(t) if np.any(plan.box[:, j, r, 2] > 0)]
    if used:  # partner rows: their op first, identity after (single-op chains)
        js, rs = np.array(used).T
        p_ids = np.full((len(used) * n, ids.shape[1]), IDENTITY, np.int32)
        p_values = np.zeros(p_ids.shape)
        p_ids[:, 0] = plan.partner_op[:, js, rs].T.reshape(-1)
        p_values[:, 0] = plan.partner_value[:, js, rs].T.reshape(-1)
        read = (plan.box[:, js, rs, 2] * plan.box[:, js, rs, 3] > 0) & ~plan.partner_is_picture[:, js, rs]
        ids, values = np.concatenate([ids, p_ids]), np.concatenate([values, p_values])
        needed = np.concatenate([needed, read.T.reshape(-1)])
        read_only = np.concatenate([read_only, np.zeros(len(used) * n, bool)])  # partners: read by address
    chain_rows = apply_chains_xp(images, ids, values, backend.name, needed, defer_lut=read_only)
    out = chain_rows.out
    if out is None:
        return None
    rows = out[:k * n]
    partner_rows = {jr: out[(k + u) * n:(k + u + 1) * n] for u, jr in enumerate(used)}
    box, is_pic = flat(plan.box), flat(plan.partner_is_picture)
    active = box[..., 2] * box[..., 3] > 0
    if mixing is None and np.any(active & is_pic):
        raise ValueError("a patch mixes with the picture but picture is None")
    stride = np.uint64(rows[0].nbytes)
    sample = np.tile(np.arange(n, dtype=np.uint64), k) * stride
    picture_rows = np.uint64(staging.address(mixing)) + sample if mixing is not None else None
    mix_op, a, b = flat(plan.mix_op), flat(plan.a), flat(plan.b)
    threshold, mask_seed = flat(plan.threshold), flat(plan.mask_seed)
    for r in range(t):
        if not active[:, r].any():
            continue
        addresses = np.zeros(k * n, dtype=np.uint64)
        for j in range(k):
            if active[j * n:(j + 1) * n, r].any():
                addresses[j * n:(j + 1) * n] = np.uint64(staging.address(partner_rows[(j, r)]))
        addresses += sample
        if picture_rows is not None:
            addresses = np.where(is_pic[:, r], picture_rows, addresses)
        mix_kernels.patch_rows(backend, rows, addresses, box[:, r], mix_op[:, r], a[:, r], b[:, r], threshold[:, r],
                               mask_seed[:, r])
    by_image = lambda a: np.ascontiguousarray(a[:k * n].reshape(k, n).T)  # noqa: E731  (N, k)
    return ChainRows(by_image(chain_rows.rows), by_image(chain_rows.luts), chain_rows.keep, out)


def _partner_batches(backend, images, plan: IPMixPlan, k: int, t: int):
    """(j, r) -> the augmented partner of patch step r of chain j. Kernel backends run
    every used partner op in one executor call; others one at a time, when asked (a
    batch of partners at a time would hold k t batches in host memory)."""
    if backend.name not in MULTI_CHAIN_BACKENDS:
        return lambda j, r: run_chain(backend, images, plan.partner_op[:, j, r:r + 1],
                                      plan.partner_value[:, j, r:r + 1])
    used = [(j, r) for j in range(k) for r in range(t) if np.any(plan.box[:, j, r, 2] > 0)]
    if not used:
        return None
    js, rs = np.array(used).T
    read = (plan.box[:, js, rs, 2] * plan.box[:, js, rs, 3] > 0) & ~plan.partner_is_picture[:, js, rs]
    batches = run_chains(backend, images, plan.partner_op[:, js, rs, None], plan.partner_value[:, js, rs, None],
                         needed=read)
    table = dict(zip(used, batches))
    return lambda j, r: table[(j, r)]
