"""The image-level op catalogue: names, ids, parameters, severity sampling.

The bottom of the stack: the executors read the op ids and families from here; the
batched apply users call (``gpuaug.ops.apply_batch``) sits above the executors in
:mod:`gpuaug.ops`.

Every op maps one uint8 RGB image to another exactly as Pillow does (see OPS.md in the
design notes); ``downscale`` is ours (PIL has no such op in the papers' code), made of two
Pillow ``Image.resize(size, BILINEAR)`` calls: to (round(W/r), round(H/r)) and back.

Each op takes one explicit parameter (``values[i]`` for image ``i``):

==============  =======================  ==========================================
op              parameter                from severity s (level l ~ U(0.1, s))
==============  =======================  ==========================================
identity        ignored                  --
autocontrast    cutoff percent [0, 50)   0 (AugMix/PixMix) or 10 - l (IPMix)
equalize        ignored                  --
posterize       bits 0..8                4 - int(l*4/10)
solarize        threshold 0..256         256 - int(l*256/10)
rotate          degrees                  +-int(l*30/10)
shear_x/_y      factor                   +-l*0.3/10
translate_x/_y  pixels                   +-int(l*(S/3)/10), S = width / height
color, contrast, brightness, sharpness
                factor [0, 10]           l*1.8/10 + 0.1
mirror, flip, invert
                ignored                  --
downscale       factor r in [1, 64]      1 + l*3/10 (ours: Pillow's BILINEAR resize
                                         down by r and back up)
==============  =======================  ==========================================
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np



@dataclass(frozen=True)
class OpSpec:
    """One op: its id in plans, its executor family and the range of its parameter."""

    name: str
    op_id: int
    family: str  # lut | blend | affine | flip | resample
    low: float = -math.inf
    high: float = math.inf
    integer: bool = False
    high_exclusive: bool = False
    uses_value: bool = True


_SPECS = [
    OpSpec("identity", 0, "lut", uses_value=False),
    OpSpec("autocontrast", 1, "lut", 0.0, 50.0, high_exclusive=True),
    OpSpec("equalize", 2, "lut", uses_value=False),
    OpSpec("posterize", 3, "lut", 0, 8, integer=True),
    OpSpec("solarize", 4, "lut", 0, 256, integer=True),
    OpSpec("rotate", 5, "affine", -360.0, 360.0),
    OpSpec("shear_x", 6, "affine", -10.0, 10.0),
    OpSpec("shear_y", 7, "affine", -10.0, 10.0),
    OpSpec("translate_x", 8, "affine", -1e6, 1e6),
    OpSpec("translate_y", 9, "affine", -1e6, 1e6),
    OpSpec("color", 10, "blend", 0.0, 10.0),
    OpSpec("contrast", 11, "blend", 0.0, 10.0),
    OpSpec("brightness", 12, "blend", 0.0, 10.0),
    OpSpec("sharpness", 13, "blend", 0.0, 10.0),
    OpSpec("mirror", 14, "flip", uses_value=False),
    OpSpec("flip", 15, "flip", uses_value=False),
    OpSpec("invert", 16, "lut", uses_value=False),
    OpSpec("downscale", 17, "resample", 1.0, 64.0),
]

OPS: dict[str, OpSpec] = {s.name: s for s in _SPECS}
OP_NAMES: tuple[str, ...] = tuple(s.name for s in _SPECS)
OP_IDS: dict[str, int] = {s.name: s.op_id for s in _SPECS}
assert [s.op_id for s in _SPECS] == list(range(len(_SPECS))), "op ids must be 0..N-1 in order"
OP_FAMILIES = np.array([s.family for s in _SPECS])  # indexed by op id

# Named op lists of the papers' code.
AUGMIX_OPS: tuple[str, ...] = (
    "autocontrast", "equalize", "posterize", "rotate", "solarize",
    "shear_x", "shear_y", "translate_x", "translate_y",
)
ALL_OPS: tuple[str, ...] = AUGMIX_OPS + ("color", "contrast", "brightness", "sharpness")
IPMIX_OPS: tuple[str, ...] = tuple(o for o in AUGMIX_OPS if o != "autocontrast") + ("mirror", "invert")
DYNMIX_OPS: tuple[str, ...] = (
    "mirror", "flip", "rotate", "translate_x", "translate_y", "shear_x", "shear_y",
    "autocontrast", "equalize", "solarize", "posterize",
)
OP_LISTS: dict[str, tuple[str, ...]] = {
    "augmix": AUGMIX_OPS, "all": ALL_OPS, "ipmix": IPMIX_OPS, "dynmix": DYNMIX_OPS,
}



def op_ids(names) -> np.ndarray:
    """Op names (or ids) -> int32 id array; ValueError naming any unknown op."""
    out = []
    for n in names:
        if isinstance(n, (int, np.integer)):
            if not 0 <= int(n) < len(OP_NAMES):
                raise ValueError(f"unknown op id {int(n)} (valid: 0..{len(OP_NAMES) - 1})")
            out.append(int(n))
        elif isinstance(n, str) and n in OP_IDS:
            out.append(OP_IDS[n])
        else:
            raise ValueError(f"unknown op {n!r}; known ops: {', '.join(OP_NAMES)}")
    return np.asarray(out, dtype=np.int32)


def resolve_op_list(ops) -> tuple[str, ...]:
    """A named list ('augmix', 'all', 'ipmix', 'dynmix') or a sequence of op names."""
    if isinstance(ops, str):
        if ops not in OP_LISTS:
            raise ValueError(f"unknown op list {ops!r}; known lists: {', '.join(OP_LISTS)}")
        return OP_LISTS[ops]
    names = tuple(ops)
    if not names:
        raise ValueError("op list must not be empty")
    op_ids(names)  # validates
    return names


# ---------------------------------------------------------------- severity -> parameter

def _int_param(level: np.ndarray, maxval) -> np.ndarray:
    # int(level * maxval / 10), multiply first as the papers' code does
    return np.trunc(level * maxval / 10)


def _float_param(level: np.ndarray, maxval) -> np.ndarray:
    return level * maxval / 10


def check_severity(severity) -> float:
    if isinstance(severity, bool) or not isinstance(severity, (int, float, np.integer, np.floating)):
        raise TypeError(f"severity must be a number in 1..10, got {severity!r}")
    if not 1 <= severity <= 10:
        raise ValueError(f"severity must be in 1..10, got {severity}")
    return float(severity)


def sample_values(ids, severity, rng: np.random.Generator, height: int, width: int,
                  autocontrast_cutoff: str = "none") -> np.ndarray:
    """Draw each op's parameter as the papers' code does: level ~ U(0.1, severity).

    ``autocontrast_cutoff`` is "none" (AugMix, PixMix: cutoff 0) or "ipmix" (cutoff
    10 - level, as IPMix's code uses). Signed ops flip their sign with probability 1/2.
    Returns float64 values, one per id.
    """
    severity = check_severity(severity)
    ids = np.asarray(ids, dtype=np.int32)
    n = ids.shape[0]
    level = rng.uniform(0.1, severity, size=n)
    sign = np.where(rng.uniform(size=n) > 0.5, -1.0, 1.0)
    return values_at_levels(ids, level, sign, height, width, autocontrast_cutoff)


def values_at_levels(ids, level, sign, height: int, width: int,
                     autocontrast_cutoff: str = "none") -> np.ndarray:
    """The deterministic level -> parameter map of the papers' code (see the module table)."""
    if autocontrast_cutoff not in ("none", "ipmix"):
        raise ValueError(f"autocontrast_cutoff must be 'none' or 'ipmix', got {autocontrast_cutoff!r}")
    ids = np.asarray(ids, dtype=np.int32)
    level = np.broadcast_to(np.asarray(level, dtype=np.float64), ids.shape)
    sign = np.broadcast_to(np.asarray(sign, dtype=np.float64), ids.shape)
    maxval, is_int, signed, offset, mult = _level_tables(height, width, autocontrast_cutoff)
    scaled = level * maxval[ids] / 10  # multiply first, as the papers' code does
    scaled = np.where(is_int[ids], np.trunc(scaled), scaled)
    return np.where(signed[ids], sign * scaled, offset[ids] + mult[ids] * scaled)


@functools.lru_cache(maxsize=64)
def _level_tables(height: int, width: int, autocontrast_cutoff: str) -> tuple:
    """Per op id: (maxval, int param?, signed?, offset, multiplier) of the level map
    value = sign * p (signed) or offset + multiplier * p, with p = [trunc](level maxval / 10);
    ops without a parameter map to 0."""
    n = len(_SPECS)
    maxval, is_int = np.zeros(n), np.zeros(n, bool)
    signed, offset, mult = np.zeros(n, bool), np.zeros(n), np.zeros(n)

    def put(name, m, integer=False, sgn=False, off=0.0, mul=1.0):
        i = OP_IDS[name]
        maxval[i], is_int[i], signed[i], offset[i], mult[i] = m, integer, sgn, off, mul

    if autocontrast_cutoff == "ipmix":
        put("autocontrast", 10, off=10.0, mul=-1.0)
    put("posterize", 4, integer=True, off=4.0, mul=-1.0)
    put("solarize", 256, integer=True, off=256.0, mul=-1.0)
    put("rotate", 30, integer=True, sgn=True)
    put("shear_x", 0.3, sgn=True)
    put("shear_y", 0.3, sgn=True)
    put("translate_x", width / 3, integer=True, sgn=True)
    put("translate_y", height / 3, integer=True, sgn=True)
    for name in ("color", "contrast", "brightness", "sharpness"):
        put(name, 1.8, off=0.1)
    put("downscale", 3, off=1.0)
    tables = (maxval, is_int, signed, offset, mult)
    for a in tables:
        a.flags.writeable = False
    return tables


def check_values(ids: np.ndarray, values: np.ndarray) -> None:
    """ValueError naming the first op whose parameter is outside its range."""
    for spec in _SPECS:
        if not spec.uses_value:
            continue
        sel = ids == spec.op_id
        if not sel.any():
            continue
        vals = values[sel]
        bad = ~np.isfinite(vals) | (vals < spec.low)
        bad |= (vals >= spec.high) if spec.high_exclusive else (vals > spec.high)
        if spec.integer:
            bad |= vals != np.trunc(vals)
        if bad.any():
            first = int(np.nonzero(sel)[0][np.argmax(bad)])
            kind = "an integer" if spec.integer else "a number"
            upper = ")" if spec.high_exclusive else "]"
            raise ValueError(
                f"values[{first}] = {float(values[first])!r} is out of range for op {spec.name!r}: "
                f"expected {kind} in [{spec.low:g}, {spec.high:g}{upper}"
            )
