"""The methods' float mixing as fused operations, dispatched on the backend.

* ``cpu``: the numpy twin below, written against ``backend.xp`` (float32, one rounding per
  operation, the methods' historical operation order);
* ``cuda`` / ``emulated``: one kernel of ``kernels/mix.cu`` per call
  (:mod:`.mix_kernels`), bit-identical to the twin (the float64 powers of the
  multiplicative mix may differ by an ulp between libraries before the float32 rounding);
* any other backend with a ``fused`` hook (the benchmark's tracer) gets
  ``fused(name, args)``.

Images and partners are uint8 NHWC batches of one shape; per-sample parameters are host
numpy arrays (plan data).
"""

from __future__ import annotations

import numpy as np

MIX_OPS = ("add", "multiply", "random_pixels", "random_elems")
KERNEL_BACKENDS = ("cuda", "emulated", "recording")


# ---------------------------------------------------------------- shared float math

def unit(xp, x):
    """uint8 -> float32 in [0, 1]: x / 255."""
    return x.astype(xp.float32) / xp.float32(255)


def per_sample(xp, values):
    """Host per-sample values as float32 (N, 1, 1, 1) on ``xp``."""
    return xp.asarray(np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1))


def mix_additive(xp, u, v, a, b):
    """PixMix additive: ((a (2u - 1) + b (2v - 1)) + 1) / 2."""
    one, two = xp.float32(1), xp.float32(2)
    return (a * (two * u - one) + b * (two * v - one) + one) / two


def mix_multiplicative(xp, u, v, a, b):
    """PixMix multiplicative: (2u)^a * max(2v, 1e-37)^b / 2, powers in float64."""
    two = xp.float32(2)
    base_u = (two * u).astype(xp.float64)
    base_v = xp.maximum(two * v, xp.float32(1e-37)).astype(xp.float64)
    prod = xp.power(base_u, a.astype(xp.float64)) * xp.power(base_v, b.astype(xp.float64))
    return prod.astype(xp.float32) / two


def hash_uniform(xp, seed, index):
    """Counter-based uniforms in [0, 1): a 32-bit integer hash of (seed, index), same bits
    on numpy, CuPy and kernels/mix.cu. ``seed`` and ``index``: broadcastable uint32."""
    h = seed ^ (index * xp.uint32(0x9E3779B9))
    for mult in (0x7FEB352D, 0x846CA68B):
        h = h ^ (h >> xp.uint32(16))
        h = h * xp.uint32(mult)
    h = h ^ (h >> xp.uint32(15))
    return (h >> xp.uint32(8)).astype(xp.float32) * xp.float32(2.0 ** -24)


# ---------------------------------------------------------------- numpy twin

def _weighted_mix_xp(xp, images, chains, weights, skip):
    mix = xp.zeros(images.shape, dtype=xp.float32)
    for j, chain in enumerate(chains):
        mix += per_sample(xp, weights[:, j]) * unit(xp, chain)
    m = per_sample(xp, skip)
    return (1 - m) * unit(xp, images) + m * mix


def _pixmix_rounds_xp(xp, start, picture, augmented, partner_is_aug, rounds, multiplicative, a, b):
    mixed = unit(xp, start)
    pic = unit(xp, picture) if picture is not None else None
    for j in range(int(rounds.max(initial=0))):
        partner = unit(xp, augmented[j])
        if pic is not None:
            partner = xp.where(per_sample(xp, partner_is_aug[:, j]).astype(bool), partner, pic)
        aj, bj = per_sample(xp, a[:, j]), per_sample(xp, b[:, j])
        is_mult = per_sample(xp, multiplicative[:, j]).astype(bool)
        result = xp.where(is_mult, mix_multiplicative(xp, mixed, partner, aj, bj),
                          mix_additive(xp, mixed, partner, aj, bj))
        active = per_sample(xp, j < rounds).astype(bool)
        mixed = xp.where(active, xp.clip(result, 0, 1), mixed)
    return mixed


def _box_window(box, height, width):
    """Gather indices of every sample's box over the largest box: (n, y, x, inside)."""
    n = box.shape[0]
    bh, bw = int(box[:, 2].max()), int(box[:, 3].max())
    dy, dx = np.arange(bh).reshape(1, -1, 1), np.arange(bw).reshape(1, 1, -1)
    inside = (dy < box[:, 2, None, None]) & (dx < box[:, 3, None, None])
    ys = np.broadcast_to(np.minimum(box[:, 0, None, None] + dy, height - 1), (n, bh, bw))
    xs = np.broadcast_to(np.minimum(box[:, 1, None, None] + dx, width - 1), (n, bh, bw))
    ns = np.broadcast_to(np.arange(n).reshape(-1, 1, 1), (n, bh, bw))
    return ns, ys, xs, inside


def _ipmix_patch_xp(xp, chain, picture, augmented, partner_is_picture, box, op, a, b, threshold, seed):
    out = chain
    if int((box[:, 2] * box[:, 3]).max(initial=0)) == 0:
        return out
    height, width = chain.shape[1:3]
    ns, ys, xs, inside = _box_window(box, height, width)
    idx = tuple(xp.asarray(i) for i in (ns, ys, xs))
    x1 = unit(xp, chain[idx])
    x2 = unit(xp, augmented[idx])
    if picture is not None:
        x2 = xp.where(per_sample(xp, partner_is_picture).astype(bool), unit(xp, picture[idx]), x2)
    fa, fb, thr = per_sample(xp, a), per_sample(xp, b), per_sample(xp, threshold)
    pixel = xp.asarray((ys * width + xs).astype(np.uint32)[..., None])
    cs = xp.asarray(np.arange(3, dtype=np.uint32).reshape(1, 1, 1, 3))
    seeds = xp.asarray(np.asarray(seed, dtype=np.uint32).reshape(-1, 1, 1, 1))
    mixed = x1
    for code, name in enumerate(MIX_OPS):
        if not np.any(op == code):
            continue
        if name == "add":
            result = mix_additive(xp, x1, x2, fa, fb)
        elif name == "multiply":
            result = mix_multiplicative(xp, x1, x2, fa, fb)
        else:
            index = pixel if name == "random_pixels" else pixel * xp.uint32(3) + cs
            result = xp.where(hash_uniform(xp, seeds, index) < thr, x1, x2)
        mixed = xp.where(per_sample(xp, op == code).astype(bool), result, mixed)
    patch = (xp.clip(mixed, 0, 1) * xp.float32(255)).astype(xp.uint8)
    keep = xp.asarray(inside)
    out[idx[0][keep], idx[1][keep], idx[2][keep]] = patch[keep]
    return out


def _dynamic_mix_xp(xp, x1, x2, m1, m2):
    u, v = unit(xp, x1), unit(xp, x2)
    a = per_sample(xp, m1)
    b = per_sample(xp, m2)
    return xp.clip(a * u + b * v + a * b * (u - v), 0, 1)


# ---------------------------------------------------------------- checks

def _check_batch(xp, name, x, shape=None):
    if not isinstance(x, xp.ndarray):
        raise TypeError(f"{name} must be a {getattr(xp, '__name__', 'backend')} array, got {type(x).__name__}")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
        raise ValueError(f"{name} must be uint8 NHWC (N, H, W, 3), got {x.dtype} {x.shape}")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return x


def _host(name, values, shape, dtype):
    arr = np.asarray(values)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _dispatch(backend, name, args, twin):
    if backend.name == "cpu":
        return twin(backend.xp, **args)
    if backend.name in KERNEL_BACKENDS:
        from . import mix_kernels

        return getattr(mix_kernels, name)(backend, **args)
    hook = getattr(backend, "fused", None)
    if hook is None:
        raise ValueError(f"backend {backend.name!r} has no fused mixing kernels")
    return hook(name, args)


def _xp_for_checks(backend):
    return backend.xp if backend.name in ("cpu", *KERNEL_BACKENDS) else None


# ---------------------------------------------------------------- public operations

def weighted_mix(backend, images, chains, weights, skip):
    """AugMix's mix: (1 - m) x/255 + m sum_j w_j chain_j/255 (mix accumulated from 0 in
    chain order). ``chains``: k uint8 batches; ``weights`` (N, k), ``skip`` (N,) float32."""
    xp = _xp_for_checks(backend)
    n = images.shape[0]
    chains = list(chains)
    if xp is not None:
        _check_batch(xp, "images", images)
        for j, c in enumerate(chains):
            _check_batch(xp, f"chains[{j}]", c, images.shape)
    args = {"images": images, "chains": chains,
            "weights": _host("weights", weights, (n, len(chains)), np.float32),
            "skip": _host("skip", skip, (n,), np.float32)}
    return _dispatch(backend, "weighted_mix", args, _weighted_mix_xp)


def weighted_mix_rows(backend, images, chain_rows, weights, skip):
    """weighted_mix on a kernel backend with the chains as a ``cuda.ChainRows`` of
    (N, k) device addresses (and fused last-step LUTs), as
    ``chains.run_chains_for_reader`` returns them."""
    if backend.name not in KERNEL_BACKENDS:
        raise ValueError(f"weighted_mix_rows needs a kernel backend {KERNEL_BACKENDS}, got {backend.name!r}")
    _check_batch(backend.xp, "images", images)
    n = images.shape[0]
    k = chain_rows.rows.shape[1] if np.ndim(chain_rows.rows) == 2 else 0
    rows = _host("rows", chain_rows.rows, (n, k), np.uint64)
    luts = _host("luts", chain_rows.luts, (n, k), np.uint64)
    from . import mix_kernels

    return mix_kernels.weighted_mix_rows(backend, images, rows, luts, _host("weights", weights, (n, k), np.float32),
                                         _host("skip", skip, (n,), np.float32))


def dynamic_mix_rows(backend, images, chain_rows, m1, m2=None):
    """dynamic_mix on a kernel backend with x1, x2 as a ``cuda.ChainRows`` of (N, 2)
    device addresses (and fused last-step LUTs); ``images``: the batch they come from."""
    if backend.name not in KERNEL_BACKENDS:
        raise ValueError(f"dynamic_mix_rows needs a kernel backend {KERNEL_BACKENDS}, got {backend.name!r}")
    _check_batch(backend.xp, "images", images)
    n = images.shape[0]
    rows = _host("rows", chain_rows.rows, (n, 2), np.uint64)
    luts = _host("luts", chain_rows.luts, (n, 2), np.uint64)
    m1 = _host("m1", m1, (n,), np.float32)
    m2 = np.float32(1) - m1 if m2 is None else _host("m2", m2, (n,), np.float32)
    from . import mix_kernels

    return mix_kernels.dynamic_mix_rows(backend, images, rows, luts, m1, m2)


def pixmix_rounds(backend, start, picture, augmented, partner_is_aug, rounds, multiplicative, a, b):
    """All PixMix rounds: mixed = start/255; round j < rounds[n] mixes with augmented[j]
    (``partner_is_aug``) or the picture, additive or ``multiplicative``, then clips to
    [0, 1]. ``augmented``: k uint8 batches (or None for rounds no sample runs);
    ``picture`` may be None when no active round uses it. Returns float32 NHWC."""
    xp = _xp_for_checks(backend)
    n = start.shape[0]
    k = len(augmented)
    args = _pixmix_args(xp, start, picture, partner_is_aug, rounds, multiplicative, a, b, k)
    augmented = [augmented[j] if augmented[j] is not None else start for j in range(k)]
    if xp is not None:
        for j in range(int(args["rounds"].max(initial=0))):
            _check_batch(xp, f"augmented[{j}]", augmented[j], start.shape)
    return _dispatch(backend, "pixmix_rounds", dict(args, start=start, augmented=augmented), _pixmix_rounds_xp)


def pixmix_rounds_rows(backend, images, chain_rows, picture, partner_is_aug, rounds, multiplicative, a, b):
    """pixmix_rounds on a kernel backend with the start image and the k partners as a
    ``cuda.ChainRows`` of (N, k + 1) device addresses (slot 0 the start image, slot j + 1
    round j's partner; fused last-step LUTs), as ``chains.run_chains_for_reader`` returns
    them for chains of ``images``; slots of rounds no sample runs may be missing."""
    if backend.name not in KERNEL_BACKENDS:
        raise ValueError(f"pixmix_rounds_rows needs a kernel backend {KERNEL_BACKENDS}, got {backend.name!r}")
    k = np.shape(partner_is_aug)[1] if np.ndim(partner_is_aug) == 2 else -1
    args = _pixmix_args(backend.xp, images, picture, partner_is_aug, rounds, multiplicative, a, b, k)
    n = images.shape[0]
    slots = np.shape(chain_rows.rows)[1] if np.ndim(chain_rows.rows) == 2 else 0
    if not 1 + int(args["rounds"].max(initial=0)) <= slots <= k + 1:
        raise ValueError(f"chain rows must have 1 + (the most rounds run) .. {k + 1} slots per image, got {slots}")
    rows = _host("rows", chain_rows.rows, (n, slots), np.uint64)
    luts = _host("luts", chain_rows.luts, (n, slots), np.uint64)
    from . import mix_kernels

    return mix_kernels.pixmix_rounds_rows(backend, images, rows, luts, picture, args["partner_is_aug"],
                                          args["rounds"], args["multiplicative"], args["a"], args["b"])


def _pixmix_args(xp, start, picture, partner_is_aug, rounds, multiplicative, a, b, k):
    """The checked per-sample arguments of the PixMix rounds (and the start / picture batches)."""
    n = start.shape[0]
    rounds = _host("rounds", rounds, (n,), np.int64)
    if rounds.size and (rounds.min() < 0 or rounds.max() > k):
        raise ValueError(f"rounds must be in 0..{k}")
    is_aug = _host("partner_is_aug", partner_is_aug, (n, k), bool)
    active = np.arange(k) < rounds[:, None]
    if picture is None and np.any(active & ~is_aug):
        raise ValueError("a round mixes with the picture but picture is None")
    if xp is not None:
        _check_batch(xp, "start", start)
        if picture is not None:
            _check_batch(xp, "picture", picture, start.shape)
    return {"picture": picture, "partner_is_aug": is_aug, "rounds": rounds,
            "multiplicative": _host("multiplicative", multiplicative, (n, k), bool),
            "a": _host("a", a, (n, k), np.float32), "b": _host("b", b, (n, k), np.float32)}


def ipmix_patch(backend, chain, picture, augmented, partner_is_picture, box, op, a, b, threshold,
                seed, inplace=False):
    """One IPMix patch step: inside each sample's ``box`` (top, left, h, w) the chain
    becomes trunc(clip(mix(chain, partner), 0, 1) * 255), partner = the picture where
    ``partner_is_picture`` else ``augmented``; ``op`` indexes MIX_OPS (add, multiply:
    PixMix's formulas with ``a``, ``b``; random pixels / elements: keep the chain where
    hash_uniform(``seed``, index) < ``threshold``). Pixels outside the box are unchanged.
    Returns a new uint8 batch, or ``chain`` itself updated with ``inplace=True``."""
    xp = _xp_for_checks(backend)
    n, height, width = chain.shape[:3]
    box = _host("box", box, (n, 4), np.int64)
    outside = np.any(box[:, 0] + box[:, 2] > height) or np.any(box[:, 1] + box[:, 3] > width)
    if n and (box.min() < 0 or (outside and xp is not None)):  # a tracer's stand-in is smaller
        raise ValueError("every box must lie inside the image (top, left, h, w >= 0)")
    is_pic = _host("partner_is_picture", partner_is_picture, (n,), bool)
    active = box[:, 2] * box[:, 3] > 0
    if picture is None and np.any(is_pic & active):
        raise ValueError("a patch mixes with the picture but picture is None")
    op = _host("op", op, (n,), np.int64)
    if n and (op.min() < 0 or op.max() >= len(MIX_OPS)):
        raise ValueError(f"op must index {MIX_OPS}")
    if xp is not None:
        _check_batch(xp, "chain", chain)
        _check_batch(xp, "augmented", augmented, chain.shape)
        if picture is not None:
            _check_batch(xp, "picture", picture, chain.shape)
        if not inplace:
            chain = chain.copy()
    args = {"chain": chain, "picture": picture, "augmented": augmented, "partner_is_picture": is_pic,
            "box": box, "op": op, "a": _host("a", a, (n,), np.float32), "b": _host("b", b, (n,), np.float32),
            "threshold": _host("threshold", threshold, (n,), np.float32),
            "seed": _host("seed", seed, (n,), np.uint32)}
    if xp is None:
        args["inplace"] = inplace
    return _dispatch(backend, "ipmix_patch", args, _ipmix_patch_xp)


def to_unit(backend, images):
    """uint8 -> float32 x/255 (torchvision's ToTensor). On the kernel backends one pass of
    ``gpuaug_weighted_mix`` with no chains and m = 0: (1 - 0) x/255 + 0 * 0, the same bits
    as the two element-wise passes x.astype(float32) / 255 it replaces."""
    if backend.name not in KERNEL_BACKENDS:
        return images.astype(backend.xp.float32) / backend.xp.float32(255)
    n = images.shape[0]
    return weighted_mix(backend, images, [], np.zeros((n, 0), np.float32), np.zeros(n, np.float32))


def dynamic_mix(backend, x1, x2, m1, m2=None):
    """Dynamic Mixup: clip(m1 x1 + m2 x2 + m1 m2 (x1 - x2), 0, 1) on x/255; ``m1``, ``m2``
    (N,) float32, m2 = 1 - m1 (float32) when None."""
    xp = _xp_for_checks(backend)
    if xp is not None:
        _check_batch(xp, "x1", x1)
        _check_batch(xp, "x2", x2, x1.shape)
    m1 = _host("m1", m1, (x1.shape[0],), np.float32)
    m2 = np.float32(1) - m1 if m2 is None else _host("m2", m2, (x1.shape[0],), np.float32)
    args = {"x1": x1, "x2": x2, "m1": m1, "m2": m2}
    return _dispatch(backend, "dynamic_mix", args, _dynamic_mix_xp)
