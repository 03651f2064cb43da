"""The methods' public API: shapes, kinds, determinism, JSD views, config and input errors."""

import numpy as np
import pytest
import torch

import gpuaug
from gpuaug.data import samples

SIZE = 32


@pytest.fixture(scope="module")
def images():
    return samples.batch(6, SIZE)


@pytest.fixture(scope="module")
def pool():
    return np.ascontiguousarray(samples.batch(3, SIZE, seed=50)[:, ::-1])


def all_methods():
    return [
        gpuaug.AugMix(), gpuaug.AugMix(depth=2, all_ops=True), gpuaug.PixMix(), gpuaug.PixMix(k=0),
        gpuaug.DynamicMixup(), gpuaug.DynamicMixup(downscale=True), gpuaug.NoisyMix(), gpuaug.Cutout(8),
    ] + ([gpuaug.IPMix()] if hasattr(gpuaug, "IPMix") else [])


def call(method, x, pool, **kw):
    return method(x, mixing=pool if method.needs_mixing else None, **kw)


@pytest.mark.parametrize("method", all_methods(), ids=lambda m: repr(m)[:40])
def test_output_is_float_nhwc_in_unit_range(method, images, pool):
    out = call(method, images, pool, seed=0)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.shape == images.shape
    assert out.min() >= 0 and out.max() <= 1
    assert np.abs(out - images / 255).max() > 0.01  # it did something


@pytest.mark.parametrize("method", all_methods(), ids=lambda m: repr(m)[:40])
def test_seeded_runs_repeat_and_seeds_differ(method, images, pool):
    a = call(method, images, pool, seed=7)
    b = call(method, images, pool, seed=7)
    c = call(method, images, pool, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(call(method, images, pool, seed=g1), call(method, images, pool, seed=g2))


def test_torch_cpu_in_torch_out(images, pool):
    out = gpuaug.PixMix()(torch.from_numpy(images), mixing=torch.from_numpy(pool), seed=1)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.device.type == "cpu"
    np.testing.assert_array_equal(out.numpy(), gpuaug.PixMix()(images, mixing=pool, seed=1))


def test_views_are_clean_and_two_independent_draws(images):
    clean, a1, a2 = gpuaug.AugMix().views(images, seed=0)
    np.testing.assert_array_equal(clean, images.astype(np.float32) / 255)
    assert a1.shape == a2.shape == images.shape
    assert not np.array_equal(a1, a2)


class RecordingSet:
    """A minimal MixingSet stand-in that records what the method asks of it."""

    def __init__(self, pool):
        self.pool, self.gathers = pool, []

    def sample_plan(self, n, rng, height, width):
        return {"index": rng.integers(0, len(self.pool), size=n)}

    def gather(self, plan, backend_name):
        self.gathers.append(plan["index"].copy())
        return self.pool[plan["index"]]


def test_views_share_the_mixing_picture(images, pool):
    """The two augmented views are planned independently but mixed with the same
    pictures: the mixing set is asked once per views() call."""
    recorder = RecordingSet(pool)
    clean, a1, a2 = gpuaug.PixMix().views(images, mixing=recorder, seed=3)
    assert len(recorder.gathers) == 1
    assert not np.array_equal(a1, a2)
    recorder.gathers.clear()
    gpuaug.PixMix()(images, mixing=recorder, seed=3)
    assert len(recorder.gathers) == 1


@pytest.mark.parametrize("make, field", [
    (lambda: gpuaug.AugMix(width=0), "width"),
    (lambda: gpuaug.AugMix(severity=0), "severity"),
    (lambda: gpuaug.AugMix(severity=11), "severity"),
    (lambda: gpuaug.AugMix(alpha=0), "alpha"),
    (lambda: gpuaug.AugMix(op_list="nonsense"), "op list"),
    (lambda: gpuaug.AugMix(op_list=("rotate", "blur")), "blur"),
    (lambda: gpuaug.PixMix(k=-1), "k"),
    (lambda: gpuaug.PixMix(beta=0), "beta"),
    (lambda: gpuaug.PixMix(beta=-2), "beta"),
    (lambda: gpuaug.DynamicMixup(k=3), "k"),
    (lambda: gpuaug.DynamicMixup(alpha=-1), "alpha"),
    (lambda: gpuaug.NoisyMix(sparse_level=2), "sparse_level"),
    (lambda: gpuaug.Cutout(0), "size"),
    (lambda: gpuaug.Mixup(alpha=0), "alpha"),
])
def test_invalid_configs_name_the_field(make, field):
    with pytest.raises((ValueError, TypeError), match=field):
        make()


def test_bad_inputs_are_refused(images, pool):
    m = gpuaug.AugMix()
    with pytest.raises(TypeError, match="uint8"):
        m(images.astype(np.float32))
    with pytest.raises(ValueError, match="NCHW"):
        m(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    with pytest.raises(ValueError, match="mixing"):
        gpuaug.PixMix()(images)
    with pytest.raises(ValueError, match="mixing"):
        m(images, mixing=pool)
    with pytest.raises(ValueError, match=r"\(16, 16\)"):
        gpuaug.PixMix()(images, mixing=samples.batch(2, 16))
    with pytest.raises(TypeError, match="mixing"):
        gpuaug.PixMix()(images, mixing=pool.astype(np.float32))
    with pytest.raises(ValueError, match="executor"):
        m(images, executor="cuda")
    with pytest.raises(ValueError, match="executor"):
        m(images, executor="tpu")
    with pytest.raises(TypeError, match="seed"):
        m(images, seed="abc")


def test_mixup_and_cutmix_targets(images):
    labels = np.array([0, 1, 2, 0, 1, 2])
    out, targets = gpuaug.Mixup(alpha=1.0)(images, labels, num_classes=3, seed=0)
    assert out.shape == images.shape and targets.shape == (6, 3)
    np.testing.assert_allclose(targets.sum(1), 1, atol=1e-6)
    out, targets = gpuaug.CutMix(alpha=1.0)(images, labels, num_classes=3, seed=0)
    assert targets.shape == (6, 3)
    with pytest.raises(ValueError, match="labels"):
        gpuaug.Mixup()(images, labels[:3], num_classes=3)
    with pytest.raises(ValueError, match="labels"):
        gpuaug.Mixup()(images, labels + 5, num_classes=3)


def test_cutmix_lambda_is_the_kept_area():
    images = np.zeros((2, 40, 40, 3), np.uint8)
    images[1] = 255
    labels = np.array([0, 1])
    method = gpuaug.CutMix(alpha=1.0)
    for seed in range(20):
        out, targets = method(images, labels, num_classes=2, seed=seed)
        plan = method.plan(2, 40, 40, np.random.default_rng(seed))
        top, bottom, left, right = plan.box
        area = (bottom - top) * (right - left) / 1600
        assert targets[0, 0] == pytest.approx(1 - area if plan.permutation[0] == 1 else 1, abs=1e-6)
        if plan.permutation[0] == 1:  # image 0 got a box of image 1's white pixels
            assert (out[0] == 1).all(-1).mean() == pytest.approx(area)


def test_cutout_zeroes_one_clipped_square():
    images = np.full((50, 20, 20, 3), 200, np.uint8)
    out = gpuaug.Cutout(size=8)(images, seed=0)
    zero = (out == 0).all(-1)
    for i in range(50):
        ys, xs = np.nonzero(zero[i])
        assert len(ys) > 0
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert h <= 8 and w <= 8 and len(ys) == h * w  # one axis-aligned rectangle
    assert (zero.sum((1, 2)) == 64).mean() > 0.3  # most squares lie fully inside
