"""downscale (ours, not a PIL op): down by r with bilinear, back up to the input size.

Reference: torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
antialias=False) computed in float64. Our resize rounds half up from float64, so each
step may differ from a rounded torch result by at most 1 (and only where the exact value
sits on a .5 boundary); against torch's unrounded float64 result we are within 0.5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gpuaug import ops
from gpuaug.executors.cpu import resize_bilinear
from gpuaug.executors.params import downscale_size
from imagegen import constant, few_level, high_contrast, image_set, natural

SIZES = [(32, 32), (224, 224), (37, 61), (61, 37), (1, 1), (2, 2), (5, 3)]
FACTORS = [1.0, 1.1, 1.5, 2.0, 2.5, 3.0, 3.7, 4.0, 7.0, 64.0]


def torch_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Unrounded float64 bilinear resize of an HWC uint8 image by torch."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(torch.float64)
    y = F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=False)
    return y[0].permute(1, 2, 0).numpy()


def assert_close_to_torch(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert ours.dtype == np.uint8 and ours.shape == ref.shape, f"{what}: {ours.dtype} {ours.shape} vs {ref.shape}"
    rounded = np.floor(ref + 0.5)
    diff = np.abs(ours.astype(np.float64) - rounded)
    if diff.max() > 1:
        y, x, c = np.argwhere(diff > 1)[0]
        raise AssertionError(f"{what}: differs from torch by {diff.max():g} at (y={y}, x={x}, c={c}): "
                             f"ours {ours[y, x, c]}, torch {ref[y, x, c]:.6f}")
    err = np.abs(ours.astype(np.float64) - ref)
    assert err.max() <= 0.5 + 1e-6, f"{what}: not a rounding of torch's value (max error {err.max()})"
    off = diff > 0
    ties = np.abs(ref - np.floor(ref) - 0.5) <= 1e-6
    assert not (off & ~ties).any(), f"{what}: off by 1 where torch's value is not a .5 tie"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_downscale_matches_torch_interpolate(size):
    h, w = size
    for label, img in image_set(h, w, seed=2, per_kind=1):
        for r in FACTORS:
            sh, sw = downscale_size(r, h, w)
            small = resize_bilinear(img, sh, sw)
            assert_close_to_torch(small, torch_resize(img, sh, sw), f"down {label} {h}x{w} r={r} -> {sh}x{sw}")
            back = resize_bilinear(small, h, w)
            assert_close_to_torch(back, torch_resize(small, h, w), f"up {label} {sh}x{sw} -> {h}x{w}")
            # the op is exactly those two steps with the intermediate size rule
            out = ops.apply("downscale", img, r)
            assert out.shape == img.shape and out.dtype == np.uint8
            assert np.array_equal(out, back), f"apply('downscale', {r}) on {label} {h}x{w} != down+up"


def test_downscale_batch_equals_single_and_mixes_with_other_ops():
    h, w = 37, 61
    rng = np.random.default_rng(0)
    imgs = [natural(h, w, s) for s in range(6)] + [high_contrast(h, w, 1), few_level(h, w, 2)]
    names = ["downscale", "rotate", "downscale", "identity", "downscale", "invert", "downscale", "downscale"]
    values = np.where(np.array(names) == "downscale", rng.uniform(1, 5, size=len(names)), 7.0)
    out = ops.apply_batch(np.stack(imgs), names, values, executor="cpu")
    for i, (name, img, v) in enumerate(zip(names, imgs, values)):
        assert np.array_equal(out[i], ops.apply(name, img, v)), f"batch item {i} ({name}, {v})"


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
