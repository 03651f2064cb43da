"""Fast sanity tests of gpuaug.reference (the papers' one-image PIL/numpy algorithms)."""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest
from PIL import Image

from gpuaug import reference as R
from gpuaug.reference import ops as O


def _image(h: int, w: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(h + w - 2, 1)], -1) * 255
    arr = np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


IMG32 = _image(32, 32, 0)
PIC32 = _image(32, 32, 1)
IMG64 = _image(48, 64, 2)  # non-square: W = 64, H = 48
PIC64 = _image(48, 64, 3)


class _ForcedBeta:
    """An rng stand-in: a real Generator whose ``beta`` returns a fixed value."""

    def __init__(self, seed: int, value: float):
        self._g = np.random.default_rng(seed)
        self._value = value

    def beta(self, a, b, size=None):
        return self._value

    def __getattr__(self, name):
        return getattr(self._g, name)


METHODS = [
    (R.augmix, ()),
    (R.pixmix, (PIC64,)),
    (R.ipmix, (PIC64,)),
    (R.dynamic_mixup, ()),
]


# ---------------------------------------------------------------- ops

def test_op_lists():
    assert O.OPS_STANDARD == ("autocontrast", "equalize", "posterize", "rotate", "solarize",
                              "shear_x", "shear_y", "translate_x", "translate_y")
    assert O.OPS_ALL == O.OPS_STANDARD + ("color", "contrast", "brightness", "sharpness")
    assert "autocontrast" not in O.OPS_IPMIX and {"mirror", "invert"} <= set(O.OPS_IPMIX)
    assert len(O.OPS_IPMIX) == 10 and len(O.OPS_IPMIX_ALL) == 15
    assert len(O.OPS_DYNAMIC_MIXUP) == 11 and O.OPS_DYNAMIC_MIXUP_IMAGENET[-1] == "downscale"


@pytest.mark.parametrize("name", O.OP_NAMES)
def test_each_op_keeps_size_and_mode(name):
    rng = np.random.default_rng(0)
    out = getattr(O, name)(IMG64, 10, rng)
    assert out.mode == "RGB" and out.size == IMG64.size


def test_param_ranges():
    rng = np.random.default_rng(1)
    size = IMG64.size
    for _ in range(300):
        s = float(rng.uniform(1, 10))
        assert 0 <= O.sample_param("posterize", s, rng, size) <= 4
        assert 0 < O.sample_param("solarize", s, rng, size) <= 256
        assert abs(O.sample_param("rotate", s, rng, size)) <= int(s * 3)
        assert abs(O.sample_param("shear_x", s, rng, size)) <= s * 0.03 + 1e-12
        assert abs(O.sample_param("translate_x", s, rng, size)) <= int(s * (64 / 3) / 10)
        assert abs(O.sample_param("translate_y", s, rng, size)) <= int(s * (48 / 3) / 10)
        assert 0.1 <= O.sample_param("color", s, rng, size) <= s * 0.18 + 0.1 + 1e-12
        assert 0 <= O.sample_param("autocontrast_ipmix", s, rng, size) <= 9.9 + 1e-12
        assert 1 <= O.sample_param("downscale", s, rng, size) <= 1 + s * 0.3 + 1e-12
    assert O.sample_param("equalize", 3, rng, size) is None
    signs = [np.sign(O.sample_param("rotate", 10, rng, size)) for _ in range(2000)]
    assert 0.45 < np.mean(np.array(signs) > 0) / np.mean(np.array(signs) != 0) < 0.55


def test_posterize_zero_bits_is_black_and_identity_params():
    assert not np.asarray(O.apply_op(IMG32, "posterize", 0)).any()
    assert np.array_equal(np.asarray(O.apply_op(IMG32, "solarize", 256)), np.asarray(IMG32))
    assert np.array_equal(np.asarray(O.apply_op(IMG32, "rotate", 0)), np.asarray(IMG32))
    assert np.array_equal(np.asarray(O.apply_op(IMG32, "downscale", 1.0)), np.asarray(IMG32))
    t = np.asarray(O.apply_op(IMG64, "translate_x", 5))
    assert np.array_equal(t[:, :-5], np.asarray(IMG64)[:, 5:]) and not t[:, -5:].any()


def test_validation():
    rng = np.random.default_rng(0)
    for bad in (0, 0.5, 11):
        with pytest.raises(ValueError):
            O.rotate(IMG32, bad, rng)
        with pytest.raises(ValueError):
            R.augmix(IMG32, rng, severity=bad)
    with pytest.raises(TypeError):
        O.sample_param("rotate", "3", rng, (32, 32))
    with pytest.raises(ValueError):
        O.apply_random_op(IMG32, ("rotate", "nope"), 3, rng)
    with pytest.raises(ValueError):
        O.apply_random_op(IMG32, (), 3, rng)
    with pytest.raises(ValueError):
        R.augmix(IMG32.convert("L"), rng)
    with pytest.raises(ValueError):
        R.augmix(IMG32, rng, width=0)
    with pytest.raises(ValueError):
        R.augmix(IMG32, rng, alpha=0)
    with pytest.raises(ValueError):
        R.pixmix(IMG32, PIC64, rng)  # size mismatch
    with pytest.raises(ValueError):
        R.pixmix(IMG32, PIC32, rng, k=-1)
    with pytest.raises(ValueError):
        R.ipmix(IMG32, PIC32, rng, patch_sizes=())
    with pytest.raises(ValueError):
        R.ipmix(IMG32, PIC32, rng, k=0)
    with pytest.raises(ValueError):
        R.dynamic_mixup(IMG32, rng, k=3)


# ---------------------------------------------------------------- all methods

@pytest.mark.parametrize("fn,args", METHODS, ids=[m[0].__name__ for m in METHODS])
def test_output_range_dtype_shape_and_determinism(fn, args):
    for seed in range(8):
        a = fn(IMG64, *args, rng=np.random.default_rng(seed))
        b = fn(IMG64, *args, rng=np.random.default_rng(seed))
        assert a.dtype == np.float32 and a.shape == (48, 64, 3)
        assert a.min() >= 0 and a.max() <= 1
        assert np.array_equal(a, b)
    c = fn(IMG64, *args, rng=np.random.default_rng(100))
    d = fn(IMG64, *args, rng=np.random.default_rng(101))
    assert not np.array_equal(c, d)


@pytest.mark.parametrize("fn,args", METHODS, ids=[m[0].__name__ for m in METHODS])
def test_numpy_input_matches_pil_input(fn, args):
    a = fn(IMG64, *args, rng=np.random.default_rng(3))
    b = fn(np.asarray(IMG64), *args, rng=np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_picklable():
    for f in (R.augmix, R.pixmix, R.ipmix, R.dynamic_mixup, R.cutmix, R.views, O.rotate):
        assert pickle.loads(pickle.dumps(f)) is f
    p = pickle.loads(pickle.dumps(functools.partial(R.ipmix, k=2, all_ops=True)))
    assert p.keywords == {"k": 2, "all_ops": True}


# ---------------------------------------------------------------- AugMix

def test_augmix_m_zero_is_identity():
    out = R.augmix(IMG32, _ForcedBeta(0, 0.0))
    assert np.array_equal(out, np.asarray(IMG32, np.float32) / np.float32(255))


def test_augmix_formula_and_info():
    for seed in range(10):
        out, info = R.augmix(IMG32, np.random.default_rng(seed), return_info=True)
        x = np.asarray(IMG32, np.float32) / 255
        m, ws = info["m"], info["ws"]
        expect = (1 - m) * x + m * sum(w * c for w, c in zip(ws, info["chains"]))
        np.testing.assert_allclose(out, expect, atol=1e-5)
        assert len(ws) == 3 and abs(ws.sum() - 1) < 1e-5
        assert all(1 <= d <= 3 for d in info["depths"]) and 3 <= info["n_ops"] <= 9
        assert all(name in O.OPS_STANDARD for chain in info["ops"] for name, _ in chain)
    _, info = R.augmix(IMG32, np.random.default_rng(0), depth=2, width=4, all_ops=True, return_info=True)
    assert info["depths"] == [2, 2, 2, 2] and info["n_ops"] == 8


# ---------------------------------------------------------------- PixMix

def test_pixmix_rounds_cover_0_to_k():
    seen = set()
    for seed in range(150):
        _, info = R.pixmix(IMG32, PIC32, np.random.default_rng(seed), k=4, return_info=True)
        assert 0 <= info["rounds"] <= 4
        assert len(info["mix_ops"]) == len(info["partners"]) == len(info["ab"]) == info["rounds"]
        for a, b in info["ab"]:
            assert (0 < a <= 1 and 0 <= b <= 1) or (1 <= a <= 2 and -1 <= b <= 0)
        seen.add(info["rounds"])
    assert seen == {0, 1, 2, 3, 4}


def test_pixmix_zero_rounds_unaugmented_is_identity():
    x = np.asarray(IMG32, np.float32) / np.float32(255)
    hits = 0
    for seed in range(60):
        out, info = R.pixmix(IMG32, PIC32, np.random.default_rng(seed), k=0, return_info=True)
        assert info["rounds"] == 0
        if not info["start_augmented"]:
            hits += 1
            assert np.array_equal(out, x)
    assert hits > 10


def test_pixmix_mixing_formulas():
    from gpuaug.reference.pixmix import mix_add, mix_multiply
    x1 = np.array([0.0, 0.25, 0.5, 1.0], np.float32)
    x2 = np.array([1.0, 0.5, 0.0, 0.25], np.float32)
    np.testing.assert_allclose(mix_add(x1, x2, 0.5, 0.5), (x1 + x2) / 2, atol=1e-7)
    np.testing.assert_allclose(mix_add(x1, x2, 1.5, -0.5), ((1.5 * (2 * x1 - 1) - 0.5 * (2 * x2 - 1)) + 1) / 2)
    # multiplicative with a + b = 1 is the geometric mean of 2x1 and 2x2, halved
    np.testing.assert_allclose(mix_multiply(x1, x2, 0.5, 0.5), np.sqrt(x1 * x2), atol=1e-7)
    assert mix_multiply(x1, x2, 1.0, -0.5)[2] > 1  # partner 0 -> clamp 1e-37, huge -> clipped later


# ---------------------------------------------------------------- IPMix

def test_ipmix_patches_clamped_on_32px():
    sizes_seen, whole = set(), 0
    for seed in range(80):
        _, info = R.ipmix(IMG32, PIC32, np.random.default_rng(seed), return_info=True)
        assert info["kinds"] and len(info["ws"]) == 3
        for kind, n, recs in zip(info["kinds"], info["counts"], info["chains"]):
            assert 0 <= n <= 3 and len(recs) == n
            if kind != "p":
                assert all(name in O.OPS_IPMIX for name, _ in recs)
                continue
            for r in recs:
                left, top, pw, ph = r["box"]
                s = r["patch_size"]
                assert s in (4, 8, 16, 32)  # 64 and 224 are clamped to 32
                assert 0 <= left and left + pw <= 32 and 0 <= top and top + ph <= 32
                if r["square"]:
                    assert pw == ph == s
                else:
                    assert 2 <= pw <= s and 2 <= ph <= s
                sizes_seen.add(s)
                whole += r["square"] and s == 32
                assert r["op"] in ("add", "multiply", "random_pixels", "random_elems")
    assert sizes_seen == {4, 8, 16, 32} and whole > 0


def test_ipmix_t0_and_m0_are_identity():
    x = np.asarray(IMG32, np.float32) / np.float32(255)
    out = R.ipmix(IMG32, PIC32, np.random.default_rng(0), t=0)
    np.testing.assert_allclose(out, x, atol=1e-6)
    out = R.ipmix(IMG32, PIC32, _ForcedBeta(0, 0.0))
    assert np.array_equal(out, x)


def test_ipmix_patch_mix_only_touches_the_box():
    from gpuaug.reference.ipmix import patch_mix
    a, b = np.asarray(IMG64), np.asarray(PIC64)
    for op in ("add", "multiply", "random_pixels", "random_elems"):
        for seed in range(10):
            out, rec = patch_mix(a, b, 16, op, 4, np.random.default_rng(seed))
            left, top, pw, ph = rec["box"]
            mask = np.zeros(a.shape[:2], bool)
            mask[top:top + ph, left:left + pw] = True
            assert np.array_equal(out[~mask], a[~mask])
            if op.startswith("random"):  # each value comes from one of the two images
                inside = out[mask]
                assert np.all((inside == a[mask]) | (inside == b[mask]))


def test_ipmix_no_augment_partner_uses_mixing_picture():
    for seed in range(20):
        _, info = R.ipmix(IMG32, PIC32, np.random.default_rng(seed), augment_partner=False, return_info=True)
        for kind, recs in zip(info["kinds"], info["chains"]):
            if kind == "p":
                assert all(r["partner"][0] == "mixing" for r in recs)


# ---------------------------------------------------------------- Dynamic Mixup

def test_dynamic_mix_hand_computed():
    # m1 = 0.3, m2 = 0.7: 0.3*0.8 + 0.7*0.2 + 0.21*(0.8 - 0.2) = 0.24 + 0.14 + 0.126
    assert R.dynamic_mix(0.8, 0.2, 0.3) == pytest.approx(0.506)
    assert R.dynamic_mix(0.0, 1.0, 0.5) == pytest.approx(0.25)  # m2**2
    assert R.dynamic_mix(1.0, 0.0, 0.5) == pytest.approx(0.75)  # m1*(1 + m2)


def test_dynamic_mixup_formula_and_chains():
    for seed in range(10):
        out, info = R.dynamic_mixup(IMG32, np.random.default_rng(seed), return_info=True)
        m1 = info["m1"]
        assert info["m2"] == pytest.approx(1 - m1)
        np.testing.assert_allclose(out, R.dynamic_mix(info["x1"], info["x2"], np.float32(m1)), atol=1e-6)
        assert all(len(c) in (1, 2) for c in info["chains"])
        assert all(name in O.OPS_DYNAMIC_MIXUP for c in info["chains"] for name, _ in c)
    _, info = R.dynamic_mixup(IMG64, np.random.default_rng(0), ops=("downscale",), return_info=True)
    assert all(name == "downscale" for c in info["chains"] for name, _ in c)


# ---------------------------------------------------------------- baselines

def test_cutmix_lambda_is_box_area():
    rng = np.random.default_rng(0)
    n, h, w = 6, 20, 28
    x = np.stack([np.full((h, w, 3), i, np.float32) for i in range(n)])
    y = np.eye(n, dtype=np.float32)
    for _ in range(30):
        out, lab, info = R.cutmix(x, y, rng, return_info=True)
        y0, y1, x0, x1 = info["box"]
        assert info["lam"] == pytest.approx(1 - (y1 - y0) * (x1 - x0) / (h * w))
        perm = info["perm"]
        for i in range(n):
            from_partner = np.mean(out[i, ..., 0] == perm[i]) if perm[i] != i else 1 - info["lam"]
            assert from_partner == pytest.approx(1 - info["lam"])
        np.testing.assert_allclose(lab.sum(1), 1, atol=1e-6)
        np.testing.assert_allclose(lab, info["lam"] * y + (1 - info["lam"]) * y[perm], atol=1e-6)


def test_mixup():
    rng = np.random.default_rng(0)
    x = rng.random((5, 8, 8, 3)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)
    out, lab, info = R.mixup(x, y, rng, return_info=True)
    lam, perm = info["lam"], info["perm"]
    np.testing.assert_allclose(out, lam * x + (1 - lam) * x[perm], atol=1e-6)
    np.testing.assert_allclose(lab, lam * y + (1 - lam) * y[perm], atol=1e-6)


def test_cutout_square_clipped():
    rng = np.random.default_rng(0)
    img = np.ones((32, 32, 3), np.float32)
    clipped = 0
    for _ in range(200):
        out, info = R.cutout(img, rng, size=16, return_info=True)
        y0, y1, x0, x1 = info["box"]
        zeros = (out[..., 0] == 0)
        assert zeros.sum() == (y1 - y0) * (x1 - x0) <= 256
        assert zeros[y0:y1, x0:x1].all()
        clipped += zeros.sum() < 256
    assert clipped > 0


# ---------------------------------------------------------------- views

def test_views_share_mixing_picture_but_not_randomness():
    rng = np.random.default_rng(0)
    clean, a1, a2 = R.views(R.ipmix, IMG32, PIC32, rng=rng, k=3)
    assert np.array_equal(clean, np.asarray(IMG32, np.float32) / np.float32(255))
    assert not np.array_equal(a1, a2)
    clean, a1, a2 = R.views(R.augmix, IMG32, rng=np.random.default_rng(1))
    assert a1.shape == a2.shape == clean.shape
