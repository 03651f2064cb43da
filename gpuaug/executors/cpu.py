"""The cpu executor for image-level ops: vectorised numpy, exactly Pillow's pixels.

Samples are grouped by op family (LUT, blend, affine, flip, resample) and each family is
computed for its whole group at once; per-sample Python is limited to small parameter
set-up (histograms, downscale's per-sample intermediate size; downscale runs once per
distinct intermediate size).
"""

from __future__ import annotations

import numpy as np

from ..catalogue import OP_FAMILIES, OP_IDS
from .params import (PIL_PRECISION_BITS, affine_coefficients, downscale_size, pil_bilinear_coefficients,
                     pil_vertical_first)

_ID = OP_IDS


def apply_ops(images: np.ndarray, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Apply op ``ids[i]`` with ``values[i]`` to ``images[i]`` (validated NHWC uint8)."""
    out = np.empty_like(images)
    families = OP_FAMILIES[ids]
    identity = ids == _ID["identity"]  # a plain copy, no LUT pass
    out[identity] = images[identity]
    for family, run in _FAMILY_RUNNERS.items():
        idx = np.nonzero((families == family) & ~identity)[0]
        if idx.size:
            out[idx] = run(images[idx], ids[idx], values[idx])
    return out


# ---------------------------------------------------------------- LUT ops

def histograms(images: np.ndarray) -> np.ndarray:
    """(n, 3, 256) int64 per-sample per-channel histograms."""
    n = images.shape[0]
    hist = np.empty((n, 3, 256), dtype=np.int64)
    offsets = np.array([0, 256, 512], dtype=np.intp)
    for i in range(n):
        hist[i] = np.bincount((images[i].reshape(-1, 3) + offsets).ravel(), minlength=768).reshape(3, 256)
    return hist


def autocontrast_luts(hist: np.ndarray, cutoff: np.ndarray) -> np.ndarray:
    """Pillow's ImageOps.autocontrast LUTs for (n, 3, 256) histograms and n cutoffs (%)."""
    n_pixels = hist.sum(axis=-1, keepdims=True)  # (n, 3, 1)
    cut = np.floor(n_pixels * cutoff[:, None, None] / 100)  # int(float(N * c) // 100)
    # Removing `cut` samples from the low end empties every bin whose cumulative count is
    # <= cut; likewise from the high end (the two never meet for cutoff < 50).
    cum = np.cumsum(hist, axis=-1)
    rcum = np.cumsum(hist[..., ::-1], axis=-1)[..., ::-1]
    keep_lo = cum > cut
    keep_hi = rcum > cut
    lo = np.where(keep_lo.any(-1), np.argmax(keep_lo, axis=-1), 255)
    hi = np.where(keep_hi.any(-1), 255 - np.argmax(keep_hi[..., ::-1], axis=-1), 0)
    span = np.maximum(hi - lo, 1).astype(np.float64)
    scale = 255.0 / span
    offset = -lo * scale
    ramp = np.arange(256, dtype=np.float64)
    lut = np.trunc(ramp * scale[..., None] + offset[..., None])
    lut = np.clip(lut, 0, 255)
    identity = np.broadcast_to(ramp, lut.shape)
    return np.where((hi <= lo)[..., None], identity, lut).astype(np.uint8)


def equalize_luts(hist: np.ndarray) -> np.ndarray:
    """Pillow's ImageOps.equalize LUTs for (n, 3, 256) histograms."""
    n_pixels = hist.sum(axis=-1)
    nonempty = hist > 0
    last = 255 - np.argmax(nonempty[..., ::-1], axis=-1)
    step = (n_pixels - np.take_along_axis(hist, last[..., None], axis=-1)[..., 0]) // 255
    safe_step = np.maximum(step, 1)[..., None]
    before = np.cumsum(hist, axis=-1) - hist  # sum of h[j] for j < i
    lut = np.minimum(255, (safe_step // 2 + before) // safe_step)
    ramp = np.broadcast_to(np.arange(256), lut.shape)
    identity = (nonempty.sum(-1) <= 1) | (step == 0)
    return np.where(identity[..., None], ramp, lut).astype(np.uint8)


def point_luts(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(n, 3, 256) LUTs of the parameter-only LUT ops (identity, posterize, solarize, invert)."""
    ramp = np.arange(256, dtype=np.int64)
    n = ids.shape[0]
    lut = np.tile(ramp, (n, 1))
    sel = ids == _ID["posterize"]
    if sel.any():
        bits = values[sel].astype(np.int64)
        mask = (0xFF << (8 - bits)) & 0xFF
        lut[sel] = ramp[None, :] & mask[:, None]
    sel = ids == _ID["solarize"]
    if sel.any():
        thr = values[sel].astype(np.int64)[:, None]
        lut[sel] = np.where(ramp[None, :] < thr, ramp[None, :], 255 - ramp[None, :])
    sel = ids == _ID["invert"]
    lut[sel] = 255 - ramp
    return np.repeat(lut[:, None, :], 3, axis=1).astype(np.uint8)


def apply_luts(images: np.ndarray, luts: np.ndarray) -> np.ndarray:
    """out[i, y, x, c] = luts[i, c, images[i, y, x, c]] (np.take per sample and channel:
    several times faster than one broadcast fancy index over the batch)."""
    out = np.empty_like(images)
    for i in range(images.shape[0]):
        for c in range(3):
            out[i, ..., c] = np.take(luts[i, c], images[i, ..., c])
    return out


def _run_lut(images, ids, values):
    luts = point_luts(ids, values)
    needs_hist = (ids == _ID["autocontrast"]) | (ids == _ID["equalize"])
    if needs_hist.any():
        hist = histograms(images[needs_hist])
        sub_ids = ids[needs_hist]
        sub = np.empty((hist.shape[0], 3, 256), dtype=np.uint8)
        ac = sub_ids == _ID["autocontrast"]
        if ac.any():
            sub[ac] = autocontrast_luts(hist[ac], values[needs_hist][ac])
        if (~ac).any():
            sub[~ac] = equalize_luts(hist[~ac])
        luts[needs_hist] = sub
    return apply_luts(images, luts)


# ---------------------------------------------------------------- blend ops (ImageEnhance)

def grayscale(images: np.ndarray) -> np.ndarray:
    """Pillow's RGB -> L: (19595 R + 38470 G + 7471 B + 32768) >> 16, shape (n, H, W)."""
    rgb = images.astype(np.int32)
    return (19595 * rgb[..., 0] + 38470 * rgb[..., 1] + 7471 * rgb[..., 2] + 32768) >> 16


def smooth(images: np.ndarray) -> np.ndarray:
    """Pillow's ImageFilter.SMOOTH (3x3, centre 5, sum 13); border pixels unchanged."""
    out = images.copy()
    h, w = images.shape[1:3]
    if h < 3 or w < 3:
        return out
    x = images.astype(np.int32)
    s = 4 * x[:, 1:-1, 1:-1]  # 5 * centre + 8 neighbours = 4 * centre + 3x3 box
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            s = s + x[:, dy:h - 2 + dy, dx:w - 2 + dx]
    out[:, 1:-1, 1:-1] = (2 * s + 13) // 26
    return out


def blend(degenerate: np.ndarray, images: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Pillow's Image.blend(degenerate, image, f) in float32, truncating; clips when f is outside [0, 1]."""
    a = factor.astype(np.float32)[:, None, None, None]
    d = degenerate.astype(np.float32)
    t = d + a * (images.astype(np.float32) - d)  # two float32 roundings, as in Pillow
    return np.clip(np.trunc(t), 0, 255).astype(np.uint8)


def _run_blend(images, ids, values):
    degenerate = np.empty_like(images)
    for name in ("color", "contrast", "brightness", "sharpness"):
        sel = ids == _ID[name]
        if not sel.any():
            continue
        imgs = images[sel]
        if name == "color":
            degenerate[sel] = grayscale(imgs)[..., None].astype(np.uint8)
        elif name == "contrast":
            lum = grayscale(imgs).reshape(imgs.shape[0], -1).astype(np.int64)
            n_pix = lum.shape[1]
            mean = (2 * lum.sum(axis=1) + n_pix) // (2 * n_pix)  # int(mean + 0.5)
            degenerate[sel] = mean.astype(np.uint8)[:, None, None, None]
        elif name == "brightness":
            degenerate[sel] = 0
        else:
            degenerate[sel] = smooth(imgs)
    return blend(degenerate, images, values)


# ---------------------------------------------------------------- affine ops (bilinear)

def affine_warp(images: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Pillow's Image.transform(AFFINE, BILINEAR) with per-sample (n, 6) output->input maps.

    Interpolation steps whose fractions are all zero (integer translations, the
    untouched axis of a shear) are skipped: a + (b - a) * 0 == a exactly.
    """
    n, h, w, _ = images.shape
    X = np.arange(w, dtype=np.float64) + 0.5
    Y = np.arange(h, dtype=np.float64) + 0.5
    c = [coeffs[:, k][:, None, None] for k in range(6)]
    sx = (c[0] * X[None, None, :] + c[1] * Y[None, :, None]) + c[2]
    sy = (c[3] * X[None, None, :] + c[4] * Y[None, :, None]) + c[5]
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    u = sx - 0.5
    v = sy - 0.5
    x0 = np.floor(u)
    y0 = np.floor(v)
    fx = (u - x0)[..., None]
    fy = (v - y0)[..., None]
    # Gather from the flat (n*h*w, 3) image by one linear index per pixel.
    first = (np.arange(n) * (h * w))[:, None, None]
    row0 = first + np.clip(y0, 0, h - 1).astype(np.intp) * w
    col0 = np.clip(x0, 0, w - 1).astype(np.intp)
    col1 = np.clip(x0 + 1, 0, w - 1).astype(np.intp)
    flat = images.reshape(-1, 3)

    def along_x(row):
        left = flat[row + col0].astype(np.float64)
        if not fx.any():
            return left
        return left + (flat[row + col1].astype(np.float64) - left) * fx

    val = along_x(row0)
    if fy.any():
        row1 = first + np.clip(y0 + 1, 0, h - 1).astype(np.intp) * w
        val = val + (along_x(row1) - val) * fy
    return np.where(inside[..., None], np.trunc(val), 0).astype(np.uint8)


def _run_affine(images, ids, values):
    h, w = images.shape[1:3]
    return affine_warp(images, affine_coefficients(ids, values, h, w))


# ---------------------------------------------------------------- flips

def _run_flip(images, ids, values):
    out = images.copy()
    sel = ids == _ID["mirror"]
    out[sel] = images[sel][:, :, ::-1]
    sel = ids == _ID["flip"]
    out[sel] = images[sel][:, ::-1]
    return out


# ---------------------------------------------------------------- downscale

def _resample_axis(images: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    """One Pillow BILINEAR pass along ``axis`` (1: vertical, 2: horizontal) of an NHWC
    uint8 batch in int64 fixed point (``params.pil_bilinear_coefficients``); uint8 out."""
    xmin, xsize, kk = pil_bilinear_coefficients(images.shape[axis], out_size)
    last = images.shape[axis] - 1
    shape = [1, 1, 1, 1]
    shape[axis] = out_size
    acc = np.int64(1 << (PIL_PRECISION_BITS - 1))
    for k in range(kk.shape[1]):
        idx = np.minimum(xmin + k, last)  # padded taps (k >= xsize) have weight 0
        taps = np.take(images, idx, axis=axis).astype(np.int64)
        acc = acc + taps * kk[:, k].astype(np.int64).reshape(shape)
    return np.clip(acc >> PIL_PRECISION_BITS, 0, 255).astype(np.uint8)


def resize_pil_bilinear(images: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Pillow's ``Image.resize((out_w, out_h), BILINEAR)`` of an HWC image or an NHWC batch
    (uint8), bit for bit: antialiased when shrinking, separable fixed-point passes rounded
    to 8 bits in between, in Pillow's pass order (``params.pil_vertical_first``); an axis
    whose size does not change gets no pass."""
    single = images.ndim == 3
    batch = images[None] if single else images
    in_h, in_w = batch.shape[1:3]
    if in_h == out_h and in_w == out_w:
        out = batch.copy()
    elif in_h == out_h:
        out = _resample_axis(batch, 2, out_w)
    elif in_w == out_w:
        out = _resample_axis(batch, 1, out_h)
    elif pil_vertical_first(in_h, in_w, out_h, out_w):
        out = _resample_axis(_resample_axis(batch, 1, out_h), 2, out_w)
    else:
        out = _resample_axis(_resample_axis(batch, 2, out_w), 1, out_h)
    return out[0] if single else out


def _run_resample(images, ids, values):
    # Samples with the same intermediate size share their coefficients: one group each.
    h, w = images.shape[1:3]
    out = np.empty_like(images)
    small = np.array([downscale_size(float(v), h, w) for v in values], dtype=np.int64).reshape(-1, 2)
    for size in np.unique(small, axis=0):
        idx = np.nonzero((small == size).all(axis=1))[0]
        down = resize_pil_bilinear(images[idx], int(size[0]), int(size[1]))
        out[idx] = resize_pil_bilinear(down, h, w)
    return out


_FAMILY_RUNNERS = {
    "lut": _run_lut,
    "blend": _run_blend,
    "affine": _run_affine,
    "flip": _run_flip,
    "resample": _run_resample,
}
