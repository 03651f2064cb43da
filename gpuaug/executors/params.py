"""Host-side per-sample parameters shared by both executors (so they cannot drift apart)."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..ops import OP_IDS

_ROTATE, _SHEAR_X, _SHEAR_Y = OP_IDS["rotate"], OP_IDS["shear_x"], OP_IDS["shear_y"]
_TRANSLATE_X, _TRANSLATE_Y = OP_IDS["translate_x"], OP_IDS["translate_y"]
_IDENTITY = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


@functools.lru_cache(maxsize=8192)
def _rotate_coefficients(degrees: float, width: int, height: int) -> tuple[float, ...]:
    # Pillow's Image.rotate: inverse map about the centre, cos/sin rounded to 15 decimals.
    angle = -math.radians(degrees % 360.0)
    a0 = round(math.cos(angle), 15)
    a1 = round(math.sin(angle), 15)
    a3 = round(-math.sin(angle), 15)
    a4 = round(math.cos(angle), 15)
    cx, cy = width / 2.0, height / 2.0
    a2 = (a0 * -cx + a1 * -cy) + cx
    a5 = (a3 * -cx + a4 * -cy) + cy
    return (a0, a1, a2, a3, a4, a5)


def affine_coefficients(ids: np.ndarray, values: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 6) float64 output->input maps (a0..a5) for the affine ops; identity elsewhere.

    For output pixel centre (X, Y): sx = (a0*X + a1*Y) + a2, sy = (a3*X + a4*Y) + a5.
    """
    coeffs = np.empty((ids.shape[0], 6))
    coeffs[:] = _IDENTITY
    rot = ids == _ROTATE
    if rot.any():
        # Python's round(x, 15) per *distinct* angle (planned angles are whole degrees),
        # cached: no per-sample Python, and the same doubles as Pillow's scalar code.
        angles, inverse = np.unique(values[rot], return_inverse=True)
        table = np.array([_rotate_coefficients(float(a), width, height) for a in angles.tolist()])
        coeffs[rot] = table[inverse.reshape(-1)]
    sel = ids == _SHEAR_X
    coeffs[sel, 1] = values[sel]
    sel = ids == _SHEAR_Y
    coeffs[sel, 3] = values[sel]
    sel = ids == _TRANSLATE_X
    coeffs[sel, 2] = values[sel]
    sel = ids == _TRANSLATE_Y
    coeffs[sel, 5] = values[sel]
    return coeffs


def downscale_size(factor: float, height: int, width: int) -> tuple[int, int]:
    """Intermediate (height, width) of downscale: round half up, at least 1."""
    return max(1, int(math.floor(height / factor + 0.5))), max(1, int(math.floor(width / factor + 0.5)))


# ---------------------------------------------------------------- Pillow's BILINEAR resize

PIL_PRECISION_BITS = 32 - 8 - 2  # fixed-point fraction bits of Pillow's 8-bit resample


@functools.lru_cache(maxsize=4096)
def pil_bilinear_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's fixed-point BILINEAR filter taps for resizing one axis from in_size to out_size.

    Returns read-only ``(xmin int32[out], xsize int32[out], kk int32[out, kmax])``: output
    index ``i`` is ``clip8((1 << 21) + sum(src[xmin[i] + k] * kk[i, k] for k < xsize[i]))``
    with ``clip8(v) = clamp(v >> 22, 0, 255)``; ``kk[i, k] = 0`` for ``k >= xsize[i]``.

    The triangle filter is stretched by the scale when shrinking (antialiasing), its taps
    normalised to sum 1 in float64 and rounded to 22 fractional bits, all in the order of
    Pillow's libImaging/Resample.c so the doubles (and so the integers) are the same.
    """
    in_size, out_size = int(in_size), int(out_size)
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1, got {in_size} -> {out_size}")
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ss = 1.0 / filterscale
    center = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    # C's (int) truncates toward zero; clamping to 0 afterwards makes that equal to floor.
    xmin = np.maximum(np.trunc(center - support + 0.5), 0.0).astype(np.int64)
    xmax = np.minimum(np.trunc(center + support + 0.5), float(in_size)).astype(np.int64)
    xsize = xmax - xmin
    kmax = max(1, int(xsize.max()))
    weights = np.zeros((out_size, kmax), dtype=np.float64)
    total = np.zeros(out_size, dtype=np.float64)
    for k in range(kmax):  # sequential sum, as the C loop adds them
        t = np.abs(((k + xmin).astype(np.float64) - center + 0.5) * ss)
        w = np.where((k < xsize) & (t < 1.0), 1.0 - t, 0.0)
        weights[:, k] = w
        total = total + w
    nonzero = total != 0.0
    weights[nonzero] /= total[nonzero, None]
    one = float(1 << PIL_PRECISION_BITS)
    kk = np.where(weights < 0, np.trunc(-0.5 + weights * one), np.trunc(0.5 + weights * one))
    out = (xmin.astype(np.int32), xsize.astype(np.int32), kk.astype(np.int32))
    for a in out:
        a.flags.writeable = False
    return out


def pil_vertical_first(in_h: int, in_w: int, out_h: int, out_w: int) -> bool:
    """Whether Pillow (>= 13) runs the vertical pass before the horizontal one.

    Only matters when both axes change: vertical first when the height shrinks by more
    than twice what the width shrinks by (always when the width grows).
    """
    return out_h < in_h and (in_h - out_h) > 2 * (in_w - out_w)
