"""The cpu executor equals Pillow exactly (0 differing values) for every PIL op.

Each op is compared against Pillow itself (not torchvision: see OPS.md) on natural-like
and degenerate images at 32x32, 224x224, non-square 37x61 / 61x37 and tiny 1x1 / 2x2
sizes, over parameters drawn with ``sample_values`` for severities 1..10 (both
autocontrast cutoff modes) and over boundary values. Both entry points are checked:
``apply`` (one image) and ``apply_batch`` (many images, and batches mixing all ops).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from gpuaug import ops
from imagegen import ALL_KINDS, image_set, make

PARITY_OPS = tuple(n for n in ops.OP_NAMES if n not in ("identity", "downscale"))
SMALL_SIZES = [(32, 32), (37, 61), (61, 37), (1, 1), (2, 2)]
LARGE_SIZE = (224, 224)
BATCH_CHUNK = 32  # keeps the float64 temporaries of 224x224 affine batches small

_BILINEAR = Image.Resampling.BILINEAR
_AFFINE = Image.Transform.AFFINE


# ---------------------------------------------------------------- Pillow reference

def _posterize(im: Image.Image, bits: int) -> Image.Image:
    if bits == 0:
        # Pillow 13 refuses bits=0; older Pillow (what the papers' code ran) used the same
        # mask formula for every bits value, which for 0 maps everything to black.
        mask = ~(2 ** 8 - 1)
        return im.point([i & mask for i in range(256)] * 3)
    return ImageOps.posterize(im, bits)


def _affine(im: Image.Image, coeffs) -> Image.Image:
    return im.transform(im.size, _AFFINE, coeffs, resample=_BILINEAR)


_PIL = {
    "autocontrast": lambda im, v: ImageOps.autocontrast(im, cutoff=v),
    "equalize": lambda im, v: ImageOps.equalize(im),
    "posterize": lambda im, v: _posterize(im, int(v)),
    "solarize": lambda im, v: ImageOps.solarize(im, threshold=int(v)),
    "rotate": lambda im, v: im.rotate(v, resample=_BILINEAR),
    "shear_x": lambda im, v: _affine(im, (1, v, 0, 0, 1, 0)),
    "shear_y": lambda im, v: _affine(im, (1, 0, 0, v, 1, 0)),
    "translate_x": lambda im, v: _affine(im, (1, 0, v, 0, 1, 0)),
    "translate_y": lambda im, v: _affine(im, (1, 0, 0, 0, 1, v)),
    "color": lambda im, v: ImageEnhance.Color(im).enhance(v),
    "contrast": lambda im, v: ImageEnhance.Contrast(im).enhance(v),
    "brightness": lambda im, v: ImageEnhance.Brightness(im).enhance(v),
    "sharpness": lambda im, v: ImageEnhance.Sharpness(im).enhance(v),
    "mirror": lambda im, v: ImageOps.mirror(im),
    "flip": lambda im, v: ImageOps.flip(im),
    "invert": lambda im, v: ImageOps.invert(im),
    "identity": lambda im, v: im.copy(),
}


def test_reference_covers_every_op():
    assert set(_PIL) | {"downscale"} == set(ops.OP_NAMES)


def pil_apply(name: str, image: np.ndarray, value: float) -> np.ndarray:
    """Pillow's result for op ``name`` with parameter ``value`` on an HWC uint8 image."""
    im = Image.fromarray(image)
    assert im.mode == "RGB"
    out = _PIL[name](im, float(value))
    assert out.mode == "RGB" and out.size == im.size
    return np.asarray(out)


def assert_exact(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Exact equality; on failure name the case, the mismatch count and the first one."""
    assert isinstance(got, np.ndarray), f"{what}: expected a numpy array, got {type(got).__name__}"
    assert got.dtype == np.uint8, f"{what}: dtype {got.dtype}, expected uint8"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, Pillow gives {want.shape}"
    diff = got != want
    if diff.any():
        first = tuple(int(i) for i in np.argwhere(diff)[0])
        loc = ", ".join(f"{k}={i}" for k, i in zip("yxc", first[-3:]))
        if len(first) == 4:
            loc = f"image {first[0]}, " + loc
        delta = np.abs(got.astype(np.int16) - want.astype(np.int16))
        raise AssertionError(
            f"{what}: {int(diff.sum())} of {diff.size} values differ from Pillow "
            f"(max |diff| {int(delta.max())}); first at ({loc}): got {int(got[first])}, "
            f"Pillow {int(want[first])}"
        )


# ---------------------------------------------------------------- parameters

def sampled_values(name: str, h: int, w: int, per_severity: int, seed: int) -> list[float]:
    """Parameters drawn as the papers' code does, for every severity 1..10."""
    if not ops.OPS[name].uses_value:
        return [0.0]
    rng = np.random.default_rng([seed, ops.OP_IDS[name], h, w])
    ids = np.full(per_severity, ops.OP_IDS[name], dtype=np.int32)
    modes = ("none", "ipmix") if name == "autocontrast" else ("none",)
    out = []
    for severity in range(1, 11):
        for mode in modes:
            out.extend(ops.sample_values(ids, severity, rng, h, w, autocontrast_cutoff=mode).tolist())
    return out


def boundary_values(name: str, h: int, w: int) -> list[float]:
    """Edges of each parameter's range and special cases of each op."""
    if name == "autocontrast":
        return [0.0, 0.5, 1.0, 2.5, 9.9, 10.0, 25.0, 33.3, 49.0, 49.9]
    if name == "posterize":
        return [float(b) for b in range(9)]
    if name == "solarize":
        return [0.0, 1.0, 64.0, 128.0, 200.0, 255.0, 256.0]
    if name == "rotate":
        return [0.0, 90.0, 180.0, -30.0, 30.0, -90.0, 270.0, 45.0, 0.5, -179.5, 360.0, -360.0]
    if name in ("shear_x", "shear_y"):
        return [0.0, 0.3, -0.3, 0.03, -0.03, 0.15, 1.0, -2.5]
    if name in ("translate_x", "translate_y"):
        s = w if name == "translate_x" else h
        return [0.0, s / 3, -s / 3, float(int(s / 3)), -float(int(s / 3)), 1.0, -1.0, 0.5,
                -2.25, float(s), -float(s), float(s - 1), float(s + 3)]
    if name in ("color", "contrast", "brightness", "sharpness"):
        return [0.0, 1.0, 1.9, 0.1, 0.5, 0.999, 1.001, 1.27, 2.5, 10.0]
    return [0.0]  # parameterless: the value is ignored


def _check_batches(name_list, images, values, labels, refs, what):
    """apply_batch over chunks of the (image, op, value) list equals the Pillow refs."""
    for start in range(0, len(images), BATCH_CHUNK):
        sl = slice(start, start + BATCH_CHUNK)
        batch = np.ascontiguousarray(np.stack(images[sl]))
        out = ops.apply_batch(batch, name_list[sl], np.asarray(values[sl], dtype=np.float64),
                              executor="cpu")
        assert isinstance(out, np.ndarray) and out.shape == batch.shape
        for j, k in enumerate(range(start, min(start + BATCH_CHUNK, len(images)))):
            assert_exact(out[j], refs[k], f"apply_batch {what}: {name_list[k]}({float(values[k])!r}) on {labels[k]}")


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("size", SMALL_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", PARITY_OPS)
def test_op_matches_pil_small(name, size):
    """apply() and apply_batch() equal Pillow for all image kinds and many parameters."""
    h, w = size
    per_kind = 2 if size == (32, 32) else 1
    values = sampled_values(name, h, w, per_severity=2, seed=1) + boundary_values(name, h, w)
    names, imgs, vals, labels, refs = [], [], [], [], []
    for label, img in image_set(h, w, seed=0, per_kind=per_kind):
        for v in values:
            want = pil_apply(name, img, v)
            got = ops.apply(name, img, v)
            assert_exact(got, want, f"apply {name}({v!r}) on {label} {h}x{w}")
            names.append(name)
            imgs.append(img)
            vals.append(v)
            labels.append(f"{label} {h}x{w}")
            refs.append(want)
    _check_batches(names, imgs, vals, labels, refs, f"{h}x{w}")


@pytest.mark.parametrize("name", PARITY_OPS)
def test_op_matches_pil_224(name):
    """224x224: fewer parameters (one per severity plus the boundary values)."""
    h, w = LARGE_SIZE
    values = sampled_values(name, h, w, per_severity=1, seed=2) + boundary_values(name, h, w)
    names, imgs, vals, labels, refs = [], [], [], [], []
    images = image_set(h, w, seed=5, per_kind=1)
    for i, v in enumerate(values):
        # every value on a natural image and one other image (cycling through the kinds)
        for label, img in (images[0], images[1 + i % (len(images) - 1)]):
            names.append(name)
            imgs.append(img)
            vals.append(v)
            labels.append(f"{label} {h}x{w}")
            refs.append(pil_apply(name, img, v))
    # also every image kind once with a mid-severity parameter
    drawn = sampled_values(name, h, w, per_severity=1, seed=4)
    mid = drawn[len(drawn) // 2]
    for label, img in images:
        names.append(name)
        imgs.append(img)
        vals.append(mid)
        labels.append(f"{label} {h}x{w}")
        refs.append(pil_apply(name, img, mid))
    _check_batches(names, imgs, vals, labels, refs, f"{h}x{w}")
    for k in range(0, len(imgs), max(1, len(imgs) // 4)):  # a few through apply() too
        assert_exact(ops.apply(name, imgs[k], vals[k]), refs[k], f"apply {name}({vals[k]!r}) on {labels[k]}")


@pytest.mark.parametrize("size", SMALL_SIZES + [LARGE_SIZE], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("mode", ["none", "ipmix"])
def test_mixed_batch_matches_pil(size, mode):
    """One apply_batch call mixing every op (and identity), severities and image kinds."""
    h, w = size
    rng = np.random.default_rng([7, h, w, mode == "ipmix"])
    pool = image_set(h, w, seed=11, per_kind=1)
    all_ops = PARITY_OPS + ("identity",)
    n = 40 if size == LARGE_SIZE else 3 * len(all_ops)
    # every op at least twice, then random ops; shuffled so families interleave
    names = list(all_ops) * 2
    names += [all_ops[i] for i in rng.integers(len(all_ops), size=max(0, n - len(names)))]
    names = [names[i] for i in rng.permutation(len(names))]
    ids = ops.op_ids(names)
    values = np.empty(len(names))
    for i in range(len(names)):
        severity = int(rng.integers(1, 11))
        values[i] = ops.sample_values(ids[i:i + 1], severity, rng, h, w, autocontrast_cutoff=mode)[0]
    picks = rng.integers(len(pool), size=len(names))
    labels = [f"{pool[p][0]} {h}x{w}" for p in picks]
    imgs = [pool[p][1] for p in picks]
    refs = [pil_apply(nm, img, v) for nm, img, v in zip(names, imgs, values)]
    batch = np.ascontiguousarray(np.stack(imgs))
    before = batch.copy()
    out = ops.apply_batch(batch, names, values, executor="cpu")
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert np.array_equal(batch, before), "apply_batch modified its input"
    for i in range(len(names)):
        assert_exact(out[i], refs[i], f"mixed batch item {i}: {names[i]}({float(values[i])!r}) on {labels[i]}")
    # op ids instead of names give the same result; 'auto' picks the cpu executor for host arrays
    out_ids = ops.apply_batch(batch, ids, values)
    assert_exact(out_ids, out, "mixed batch given op ids and executor='auto'")


def test_rotate_zero_and_full_turns_are_exact_copies():
    img = image_set(37, 61, seed=3, per_kind=1)[0][1]
    for deg in (0.0, 360.0, -360.0):
        assert_exact(ops.apply("rotate", img, deg), img, f"rotate({deg})")


def test_parameterless_ops_ignore_value():
    img = image_set(32, 32, seed=4, per_kind=1)[0][1]
    for name in ("equalize", "mirror", "flip", "invert"):
        want = pil_apply(name, img, 0.0)
        for v in (0.0, -5.0, 1e9, math.pi):
            assert_exact(ops.apply(name, img, v), want, f"{name}({v!r})")


@pytest.mark.parametrize("name", ["autocontrast", "equalize", "rotate", "shear_x", "shear_y",
                                  "translate_x", "translate_y", "contrast", "color", "sharpness"])
def test_random_sweep(name):
    """Many random images, sizes and real-valued parameters per op (one batch per size)."""
    rng = np.random.default_rng([13, ops.OP_IDS[name]])
    lo, hi = {
        "autocontrast": (0.0, 49.99), "rotate": (-180.0, 180.0), "shear_x": (-1.0, 1.0),
        "shear_y": (-1.0, 1.0), "translate_x": (-30.0, 30.0), "translate_y": (-30.0, 30.0),
    }.get(name, (0.0, 3.0))
    for _ in range(6):
        h, w = (int(x) for x in rng.integers(1, 48, size=2))
        kinds = [ALL_KINDS[k] for k in rng.integers(len(ALL_KINDS), size=24)]
        imgs = [make(k, h, w, int(rng.integers(1000))) for k in kinds]
        values = rng.uniform(lo, hi, size=len(imgs))
        if name in ("rotate", "translate_x", "translate_y"):
            values[::2] = np.round(values[::2])  # the papers' integer parameters, too
        refs = [pil_apply(name, img, v) for img, v in zip(imgs, values)]
        labels = [f"{k} {h}x{w}" for k in kinds]
        _check_batches([name] * len(imgs), imgs, values.tolist(), labels, refs, f"sweep {h}x{w}")
