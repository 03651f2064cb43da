"""Host-side per-sample parameters shared by both executors (so they cannot drift apart)."""

from __future__ import annotations

import functools
import math

import numpy as np

from ..catalogue import OP_IDS

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


@functools.lru_cache(maxsize=64)
def _whole_degree_table(width: int, height: int) -> np.ndarray:
    """_rotate_coefficients of every whole angle in -360..360 degrees, (721, 6)."""
    table = np.array([_rotate_coefficients(float(d), width, height) for d in range(-360, 361)])
    table.flags.writeable = False
    return table


_AFFINE_COLUMN = np.full(max(OP_IDS.values()) + 1, -1, dtype=np.int64)  # by op id: the coefficient it sets
_AFFINE_COLUMN[[_SHEAR_X, _SHEAR_Y, _TRANSLATE_X, _TRANSLATE_Y]] = [1, 3, 2, 5]


def affine_coefficients(ids: np.ndarray, values: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, 6) float64 output->input maps (a0..a5) for the affine ops; identity elsewhere.

    For output pixel centre (X, Y): sx = (a0*X + a1*Y) + a2, sy = (a3*X + a4*Y) + a5.
    """
    coeffs = np.empty((ids.shape[0], 6))
    coeffs[:] = _IDENTITY
    column = _AFFINE_COLUMN[ids]
    sel = np.flatnonzero(column >= 0)  # shear and translate: one coefficient each
    coeffs[sel, column[sel]] = values[sel]
    rot = np.flatnonzero(ids == _ROTATE)
    if rot.size:
        # The same doubles as Pillow's scalar code (Python's round(x, 15)), cached: planned
        # angles are whole degrees (a table look-up); others go per *distinct* angle.
        angles = values[rot]
        whole = np.trunc(angles)
        if np.array_equal(whole, angles) and np.abs(whole).max() <= 360:
            coeffs[rot] = _whole_degree_table(width, height)[whole.astype(np.int64) + 360]
        else:
            distinct, inverse = np.unique(angles, return_inverse=True)
            table = np.array([_rotate_coefficients(float(a), width, height) for a in distinct.tolist()])
            coeffs[rot] = table[inverse.reshape(-1)]
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
