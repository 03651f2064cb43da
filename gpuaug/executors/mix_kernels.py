"""Launch the fused mixing kernels of ``kernels/mix.cu`` (backends "cuda" and "emulated").

Called through :mod:`.mixops`, which validates the arguments. Per-sample parameters (and
pointer tables) go up in one packed upload per call (:mod:`.staging`); every kernel runs on a grid
(blocks_per_sample, N) with blockIdx.y the sample. ``traffic`` states, per operation,
the bytes each kernel reads and writes (used by the benchmark's bytes model).
"""

from __future__ import annotations

import numpy as np

from . import staging
from .launch import get_kernel

BLOCK = 256
_ELEMS_PER_THREAD = 4
_MAX_BLOCKS_PER_SAMPLE = 64


def _xp(backend):
    return backend.xp


def _blocks(n_elems: int) -> int:
    return max(1, min(_MAX_BLOCKS_PER_SAMPLE, -(-n_elems // (BLOCK * _ELEMS_PER_THREAD))))


def _pointers(xp, arrays) -> np.ndarray:
    """A host uint64 table of the arrays' data pointers (uploaded with the parameters)."""
    return np.asarray([staging.address(a) for a in arrays] or [0], dtype=np.uint64)


def _kernel(name, backend):
    return get_kernel("mix", name, backend.name)


def weighted_mix(backend, images, chains, weights, skip):
    n, h, w, _ = images.shape
    rows = np.empty((n, len(chains)), dtype=np.uint64)
    for j, c in enumerate(chains):
        rows[:, j] = staging.address(c) + np.arange(n, dtype=np.uint64) * np.uint64(h * w * 3)
    return weighted_mix_rows(backend, images, rows, np.zeros_like(rows), weights, skip)


def weighted_mix_rows(backend, images, rows, luts, weights, skip):
    """weighted_mix with chain j of sample i at device address ``rows[i, j]`` (uint64
    (N, k)), read through the (3, 256) uint8 LUT at ``luts[i, j]`` where non-zero (a
    chain's last step fused into the mix: see ``cuda.apply_chains_xp(defer_lut=True)``)."""
    xp = _xp(backend)
    n, h, w, _ = images.shape
    out = xp.empty(images.shape, dtype=np.float32)
    if n == 0:
        return out
    k = rows.shape[1]
    dev = staging.upload(xp, {"weights": weights, "skip": skip, "rows": rows, "luts": luts})
    n_elems = h * w * 3
    _kernel("gpuaug_weighted_mix", backend)(
        (_blocks(n_elems), n), BLOCK,
        (images, dev["rows"], dev["luts"], k, dev["weights"], dev["skip"], n_elems, out))
    return out


def pixmix_rounds(backend, start, picture, augmented, partner_is_aug, rounds, multiplicative, a, b):
    n, h, w, _ = start.shape
    sample = np.arange(n, dtype=np.uint64) * np.uint64(h * w * 3)
    rows = np.stack([staging.address(x) + sample for x in [start, *augmented]], axis=1)
    return pixmix_rounds_rows(backend, start, rows, np.zeros_like(rows), picture, partner_is_aug, rounds,
                              multiplicative, a, b)


def pixmix_rounds_rows(backend, like, rows, luts, picture, partner_is_aug, rounds, multiplicative, a, b):
    """pixmix_rounds with the start image of sample i at device address ``rows[i, 0]`` and
    round j's augmented partner at ``rows[i, j + 1]`` (uint64 (N, k + 1)), each read through
    the LUT at ``luts[i, .]`` where non-zero; ``like``: an (N, H, W, 3) batch of that shape."""
    xp = _xp(backend)
    n, h, w, _ = like.shape
    out = xp.empty(like.shape, dtype=np.float32)
    if n == 0:
        return out
    given = partner_is_aug.shape[1]
    k = max(1, given)
    flags = np.zeros((n, k), dtype=np.int32)
    flags[:, :given] = partner_is_aug.astype(np.int32) | (multiplicative.astype(np.int32) << 1)
    ab = np.zeros((2, n, k), dtype=np.float32)  # a, b padded to k columns
    ab[0, :, :given], ab[1, :, :given] = a, b
    table = np.zeros((2, n, k + 1), dtype=np.uint64)  # rows, luts padded to k + 1 slots
    table[0, :, :rows.shape[1]], table[1, :, :rows.shape[1]] = rows, luts
    dev = staging.upload(xp, {"rounds": rounds.astype(np.int32), "flags": flags, "a": ab[0], "b": ab[1],
                              "rows": table[0], "luts": table[1]})
    pic = picture if picture is not None else like  # never read: no active round uses it
    n_elems = h * w * 3
    _kernel("gpuaug_pixmix_rounds", backend)(
        (_blocks(n_elems), n), BLOCK,
        (dev["rows"], dev["luts"], pic, dev["rounds"], dev["flags"], dev["a"], dev["b"], k, n_elems, out))
    return out


def ipmix_patch(backend, chain, picture, augmented, partner_is_picture, box, op, a, b, threshold, seed):
    """In place on ``chain`` (mixops copies it first unless asked not to)."""
    n, h, w, _ = chain.shape
    stride = np.uint64(h * w * 3)
    rows = np.arange(n, dtype=np.uint64) * stride
    partners = np.uint64(staging.address(augmented)) + rows
    if picture is not None:
        partners = np.where(partner_is_picture, np.uint64(staging.address(picture)) + rows, partners)
    return patch_rows(backend, chain, partners, box, op, a, b, threshold, seed)


def patch_rows(backend, chain, partners, box, op, a, b, threshold, seed):
    """IPMix patch steps on the rows of ``chain`` (M, H, W, 3) in place, one launch: row
    v mixes, inside ``box[v]``, with the image at address ``partners[v]`` (uint64 host
    array; unused where the box is empty). Parameters as mixops.ipmix_patch, already
    checked by the caller."""
    xp = _xp(backend)
    n, h, w, _ = chain.shape
    area = box[:, 2] * box[:, 3]
    if n == 0 or int(area.max(initial=0)) == 0:
        return chain
    iparams = np.zeros((n, 6), dtype=np.int32)
    iparams[:, :4] = box
    iparams[:, 4] = op
    dev = staging.upload(xp, {"iparams": iparams, "seed": np.asarray(seed, np.uint32),
                              "f": np.stack([a, b, threshold], axis=1).astype(np.float32),
                              "partners": np.asarray(partners, np.uint64)})
    _kernel("gpuaug_ipmix_patch", backend)(
        (_blocks(int(area.max()) * 3), n), BLOCK,
        (chain, dev["partners"], dev["iparams"], dev["f"], dev["seed"], h, w))
    return chain


def dynamic_mix(backend, x1, x2, m1, m2):
    n, h, w, _ = x1.shape
    sample = np.arange(n, dtype=np.uint64) * np.uint64(h * w * 3)
    rows = np.stack([staging.address(x1) + sample, staging.address(x2) + sample], axis=1)
    return dynamic_mix_rows(backend, x1, rows, np.zeros_like(rows), m1, m2)


def dynamic_mix_rows(backend, like, rows, luts, m1, m2):
    """dynamic_mix with x1, x2 of sample i at device addresses ``rows[i]`` (uint64 (N, 2)),
    each read through the LUT at ``luts[i, j]`` where non-zero; ``like``: an (N, H, W, 3)
    batch of the images' shape."""
    xp = _xp(backend)
    n, h, w, _ = like.shape
    out = xp.empty(like.shape, dtype=np.float32)
    if n == 0:
        return out
    n_elems = h * w * 3
    dev = staging.upload(xp, {"m1": m1.astype(np.float32), "m2": m2.astype(np.float32), "rows": rows, "luts": luts})
    _kernel("gpuaug_dynamic_mix", backend)((_blocks(n_elems), n), BLOCK,
                                           (dev["rows"], dev["luts"], dev["m1"], dev["m2"], n_elems, out))
    return out


# ---------------------------------------------------------------- bytes touched

def traffic(name: str, args: dict, height: int, width: int) -> dict:
    """Bytes the kernel of ``name`` reads and writes at image size (height, width) for
    mixops ``args`` (as passed to the kernel path), plus the chain copy of a non-inplace
    ipmix_patch: {"read", "write", "copy", "launches"}. Each input element a kernel uses
    is read once, each output element written once; ``uploads``: packed parameter copies."""
    px = 3.0 * height * width  # elements of one image
    if name == "weighted_mix":
        n = args["skip"].shape[0]
        k = len(args["chains"])
        return {"read": n * px * (1 + k), "write": n * px * 4, "copy": 0.0, "launches": 1, "uploads": 2}
    if name == "pixmix_rounds":
        rounds, is_aug = args["rounds"], args["partner_is_aug"]
        active = np.arange(is_aug.shape[1]) < rounds[:, None]
        images_read = rounds.size + (active & is_aug).sum() + np.any(active & ~is_aug, axis=1).sum()
        return {"read": float(images_read) * px, "write": rounds.size * px * 4, "copy": 0.0, "launches": 1,
                "uploads": 3}
    if name == "ipmix_patch":
        box = args["box"]
        n = box.shape[0]
        touched = float((box[:, 2] * box[:, 3]).sum()) * 3
        copy = 0.0 if args.get("inplace") else 2 * n * px
        return {"read": 2 * touched, "write": touched, "copy": copy,
                "launches": int(touched > 0) + int(copy > 0), "uploads": 2 * int(touched > 0)}
    if name == "dynamic_mix":
        n = args["m1"].shape[0]
        return {"read": 2 * n * px, "write": 4 * n * px, "copy": 0.0, "launches": 1, "uploads": 1}
    raise KeyError(name)
