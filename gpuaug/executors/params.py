"""Host-side per-sample parameters shared by both executors (so they cannot drift apart)."""

from __future__ import annotations

import math

import numpy as np

from ..ops import OP_IDS

_ROTATE, _SHEAR_X, _SHEAR_Y = OP_IDS["rotate"], OP_IDS["shear_x"], OP_IDS["shear_y"]
_TRANSLATE_X, _TRANSLATE_Y = OP_IDS["translate_x"], OP_IDS["translate_y"]


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
    coeffs = np.tile(np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]), (ids.shape[0], 1))
    for i in np.nonzero(ids == _ROTATE)[0]:
        coeffs[i] = _rotate_coefficients(float(values[i]), width, height)
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
