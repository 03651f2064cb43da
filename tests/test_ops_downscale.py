"""downscale (ours, not a PIL op): Pillow's BILINEAR resize down by r and back up.

The op is ``img.resize((w2, h2), BILINEAR).resize((W, H), BILINEAR)`` with
(h2, w2) = params.downscale_size(r, H, W), and must equal Pillow bit for bit: Pillow
antialiases when shrinking (the triangle filter is stretched by the scale), works in
22-bit fixed point, rounds to 8 bits between its two separable passes and, since Pillow
13, runs the vertical pass first when the height shrinks by more than twice the width.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from gpuaug import ops
from gpuaug.executors.cpu import resize_pil_bilinear
from gpuaug.executors.params import downscale_size, pil_bilinear_coefficients, pil_vertical_first
from gpuaug.reference import ops as reference_ops
from imagegen import constant, few_level, high_contrast, image_set, natural

SIZES = [(32, 32), (37, 61), (61, 37), (1, 1), (2, 5), (3, 1), (5, 2), (1, 7), (100, 9), (9, 100)]
FACTORS = [1.0, 1.03, 1.1, 1.5, 2.0, 2.5, 3.0, 3.7, 4.0, 7.0, 64.0]


def pil_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((out_w, out_h), Image.Resampling.BILINEAR))


def pil_downscale(img: np.ndarray, r: float) -> np.ndarray:
    h, w = img.shape[:2]
    sh, sw = downscale_size(r, h, w)
    return pil_resize(pil_resize(img, sh, sw), h, w)


def assert_same(ours: np.ndarray, want: np.ndarray, what: str) -> None:
    assert ours.dtype == np.uint8 and ours.shape == want.shape, f"{what}: {ours.dtype} {ours.shape} vs {want.shape}"
    if not np.array_equal(ours, want):
        diff = np.abs(ours.astype(np.int64) - want)
        y, x, c = np.argwhere(diff > 0)[0]
        raise AssertionError(f"{what}: {int((diff > 0).sum())} values differ (max {diff.max()}), first at "
                             f"(y={y}, x={x}, c={c}): ours {ours[y, x, c]}, Pillow {want[y, x, c]}")


def _severity_factors(n: int, seed: int) -> list[float]:
    ids = np.full(n, ops.OP_IDS["downscale"], dtype=np.int32)
    rng = np.random.default_rng(seed)
    return [float(v) for s in (1, 3, 10) for v in ops.sample_values(ids, s, rng, 32, 32)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_downscale_equals_pillow_two_resizes(size):
    h, w = size
    for label, img in image_set(h, w, seed=2, per_kind=1):
        for r in FACTORS + _severity_factors(3, seed=h * 1000 + w):
            sh, sw = downscale_size(r, h, w)
            small = resize_pil_bilinear(img, sh, sw)
            assert_same(small, pil_resize(img, sh, sw), f"down {label} {h}x{w} r={r} -> {sh}x{sw}")
            back = resize_pil_bilinear(small, h, w)
            assert_same(back, pil_resize(small, h, w), f"up {label} {sh}x{sw} -> {h}x{w}")
            out = ops.apply("downscale", img, r)
            assert_same(out, back, f"apply('downscale', {r}) on {label} {h}x{w}")


def test_downscale_equals_pillow_224():
    for label, img in image_set(224, 224, seed=4, per_kind=1, kinds=("natural", "two_level", "few_level")):
        for r in (1.03, 1.5, 2.0, 2.9, 3.7, 4.0, 64.0):
            assert_same(ops.apply("downscale", img, r), pil_downscale(img, r), f"{label} 224x224 r={r}")


def test_resize_equals_pillow_every_size_pair():
    # Every (in, out) pair of small sizes on both axes: windows at the borders, odd and even
    # scales, one-axis resizes and both pass orders (vertical first for tall shrinks).
    rng = np.random.default_rng(7)
    lengths = (1, 2, 3, 4, 5, 7, 8, 13, 20)
    for ih, iw in itertools.product(lengths, repeat=2):
        img = rng.integers(0, 256, (ih, iw, 3), dtype=np.uint8)
        for oh, ow in itertools.product(lengths, repeat=2):
            assert_same(resize_pil_bilinear(img, oh, ow), pil_resize(img, oh, ow), f"{ih}x{iw} -> {oh}x{ow}")


def test_resize_batch_equals_single_images():
    rng = np.random.default_rng(8)
    batch = rng.integers(0, 256, (3, 23, 17, 3), dtype=np.uint8)
    for oh, ow in ((5, 4), (40, 9), (23, 30), (2, 17)):
        got = resize_pil_bilinear(batch, oh, ow)
        for i in range(3):
            assert_same(got[i], pil_resize(batch[i], oh, ow), f"batch[{i}] -> {oh}x{ow}")


def test_pass_order_rule():
    # both axes change; vertical first only when the height shrinks by more than twice the width
    assert pil_vertical_first(10, 10, 3, 9) and not pil_vertical_first(10, 10, 3, 6)
    assert pil_vertical_first(4, 2, 1, 1) and not pil_vertical_first(4, 4, 1, 2)
    assert pil_vertical_first(2, 2, 1, 4)  # width grows
    assert not pil_vertical_first(2, 2, 3, 6) and not pil_vertical_first(2, 8, 3, 1)  # height grows


def test_coefficients_are_normalised_fixed_point():
    for n_in, n_out in ((1, 1), (7, 7), (224, 4), (4, 224), (61, 37), (37, 61), (200, 3), (3, 1)):
        xmin, xsize, kk = pil_bilinear_coefficients(n_in, n_out)
        assert xmin.dtype == xsize.dtype == kk.dtype == np.int32 and kk.shape[0] == n_out
        assert (xmin >= 0).all() and (xsize >= 1).all() and (xmin + xsize <= n_in).all()
        cols = np.arange(kk.shape[1])
        assert (kk[cols[None, :] >= xsize[:, None]] == 0).all()
        assert (np.abs(kk.sum(axis=1) - (1 << 22)) <= kk.shape[1]).all()
        assert not kk.flags.writeable
    xmin, xsize, kk = pil_bilinear_coefficients(9, 9)  # same size: the identity
    assert (xmin == np.arange(9)).all() and (kk[:, 0] == 1 << 22).all() and (kk[:, 1:] == 0).all()


def test_reference_downscale_agrees():
    for h, w in ((32, 32), (37, 61), (61, 37), (2, 5), (1, 1)):
        for label, img in image_set(h, w, seed=5, per_kind=1, kinds=("natural", "few_level", "constant")):
            for r in (1.0, 1.03, 1.5, 2.0, 3.7, 64.0):
                ref = np.asarray(reference_ops.apply_op(Image.fromarray(img), "downscale", r))
                assert_same(ops.apply("downscale", img, r), ref, f"reference {label} {h}x{w} r={r}")


def test_downscale_batch_equals_single_and_mixes_with_other_ops():
    h, w = 37, 61
    rng = np.random.default_rng(0)
    imgs = [natural(h, w, s) for s in range(6)] + [high_contrast(h, w, 1), few_level(h, w, 2)]
    names = ["downscale", "rotate", "downscale", "identity", "downscale", "invert", "downscale", "downscale"]
    values = np.where(np.array(names) == "downscale", rng.uniform(1, 5, size=len(names)), 7.0)
    values[6] = values[4]  # two samples sharing an intermediate size
    out = ops.apply_batch(np.stack(imgs), names, values, executor="cpu")
    for i, (name, img, v) in enumerate(zip(names, imgs, values)):
        assert np.array_equal(out[i], ops.apply(name, img, v)), f"batch item {i} ({name}, {v})"
        if name == "downscale":
            assert_same(out[i], pil_downscale(img, v), f"batch item {i} vs Pillow")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_factor_one_is_identity(size):
    h, w = size
    for label, img in image_set(h, w, seed=3, per_kind=1):
        assert downscale_size(1.0, h, w) == (h, w)
        assert np.array_equal(ops.apply("downscale", img, 1.0), img), f"downscale(1) changed {label} {h}x{w}"


@pytest.mark.parametrize("r", [1.0, 1.3, 2.0, 3.9, 10.0, 64.0])
def test_constant_image_stays_constant(r):
    for seed in range(5):
        for h, w in [(32, 32), (37, 61), (1, 1), (2, 2)]:
            img = constant(h, w, seed)
            assert np.array_equal(ops.apply("downscale", img, r), img), f"constant {img[0, 0]} r={r} {h}x{w}"


@pytest.mark.parametrize("r,h,w,expected", [
    (1.0, 32, 32, (32, 32)),
    (2.0, 224, 224, (112, 112)),
    (2.0, 5, 7, (3, 4)),        # 2.5 and 3.5 round half up (not to even)
    (3.0, 32, 32, (11, 11)),    # 10.67
    (1.5, 37, 61, (25, 41)),    # 24.67, 40.67
    (4.0, 61, 37, (15, 9)),     # 15.25, 9.25
    (64.0, 32, 32, (1, 1)),     # 0.5 -> 1
    (64.0, 1, 1, (1, 1)),       # never below 1
    (64.0, 2, 200, (1, 3)),
    (2.9, 224, 224, (77, 77)),  # 77.24
])
def test_intermediate_size_rule(r, h, w, expected):
    assert downscale_size(r, h, w) == expected
    # and the rule is round(h / r), round(w / r) half up, at least 1
    assert downscale_size(r, h, w) == (max(1, int(np.floor(h / r + 0.5))), max(1, int(np.floor(w / r + 0.5))))


def test_sampled_factors_in_range():
    ids = np.full(2000, ops.OP_IDS["downscale"], dtype=np.int32)
    for severity in (1, 3, 10):
        v = ops.sample_values(ids, severity, np.random.default_rng(severity), 224, 224)
        assert v.min() >= 1 + 0.1 * 3 / 10 and v.max() <= 1 + severity * 3 / 10


@pytest.mark.parametrize("bad", [0.5, 0.0, -2.0, 65.0, float("nan"), float("inf")])
def test_out_of_range_factor_rejected(bad):
    img = natural(8, 8)
    with pytest.raises(ValueError, match="downscale"):
        ops.apply("downscale", img, bad)
