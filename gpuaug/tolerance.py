"""How closely the cuda executor must match the cpu executor, per method and dtype.

Every path is bit-exact except the one float64 ``pow`` in PixMix's and IPMix's
multiplicative mixing (``kernels/mix.cu`` ``mix_mul``, ``np.power`` on the host): CUDA's
``pow`` is within 2 ulp (double) and glibc's within 1, so the two may differ by an ulp
of the double, which survives the float32 rounding now and then. The stated bounds:

* PixMix (float32 in [0, 1]): ``POW_F32_ULPS`` ulps of 1.0 (2**-23 each) absolute -- the
  flipped ulp can be carried through later rounds and the final clip, never grown past
  a few ulps of 1.0;
* IPMix: the mixed value is truncated to uint8 inside the patch, so a flipped ulp may
  move a pixel by one level: 1/255 (plus the float32 slack above);
* bfloat16 outputs: one bfloat16 ulp of a value in [0, 1] (2**-8) on top;
* and in every case at most ``POW_MAX_FRACTION`` of the elements (at least one) may
  differ at all.

Every other method (and every other dtype path) must be exact.
"""

from __future__ import annotations

import numpy as np

POW_METHODS = frozenset({"pixmix", "ipmix"})
POW_F32_ULPS = 8
POW_MAX_FRACTION = 1e-3
_ULP1_F32 = 2.0 ** -23
_ULP_BF16_UNIT = 2.0 ** -8


def pow_atol(method: str, dtype: str = "float32") -> float:
    """Absolute tolerance for ``method``'s output in ``dtype`` (0.0: must be exact)."""
    if method not in POW_METHODS:
        return 0.0
    atol = POW_F32_ULPS * _ULP1_F32
    if method == "ipmix":
        atol += 1 / 255
    if dtype == "bfloat16":
        atol += _ULP_BF16_UNIT
    elif dtype == "float16":
        atol += 2.0 ** -11
    return atol


def mismatch(got, want, method: str, dtype: str = "float32") -> str | None:
    """None when ``got`` matches ``want`` within the stated bound, else what differs.

    ``got`` and ``want`` are host arrays (numpy, or anything ``np.asarray`` takes; cast
    bfloat16 to float32 first).
    """
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    g, w = got.astype(np.float64), want.astype(np.float64)
    differ = g != w
    if not differ.any():
        return None
    atol = pow_atol(method, dtype)
    worst = float(np.max(np.abs(g - w)))
    fraction = float(differ.mean())
    if atol == 0.0:
        return f"{int(differ.sum())} of {differ.size} elements differ (max {worst:.3g}); {method} must be exact"
    if worst > atol or differ.sum() > max(1, POW_MAX_FRACTION * differ.size):
        return (f"{int(differ.sum())} of {differ.size} elements differ (max {worst:.3g}, fraction "
                f"{fraction:.2g}); allowed for {method} {dtype}: max {atol:.3g}, fraction {POW_MAX_FRACTION:g}")
    return None
