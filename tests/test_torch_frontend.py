"""gpuaug.torch: Augment and MixBatch as nn.Modules on uint8 NCHW / NHWC torch batches."""

import numpy as np
import pytest
import torch

import gpuaug
import gpuaug.torch as gt
from gpuaug.tolerance import mismatch
from gpuaug.data import samples

SIZE = 24


@pytest.fixture(scope="module")
def nhwc():
    return torch.from_numpy(samples.batch(4, SIZE))


@pytest.fixture(scope="module")
def nchw(nhwc):
    return nhwc.permute(0, 3, 1, 2).contiguous()  # what a torchvision DataLoader collates


@pytest.fixture(scope="module")
def pool():
    return torch.from_numpy(np.ascontiguousarray(samples.batch(3, SIZE, seed=50)[:, ::-1]))


def as_nhwc(out):
    return out.permute(0, 2, 3, 1)


# -- layouts and equality with the method --------------------------------------------------

def test_nhwc_in_nhwc_out_equals_method(nhwc):
    out = gt.Augment(gpuaug.AugMix(), seed=3)(nhwc)
    assert out.shape == nhwc.shape and out.dtype == torch.float32 and out.is_contiguous()
    assert torch.equal(out, gpuaug.AugMix()(nhwc, seed=3))


@pytest.mark.parametrize("memory", ["contiguous", "channels_last"])
def test_nchw_in_nchw_channels_last_out(nhwc, nchw, memory):
    x = nchw if memory == "contiguous" else nchw.to(memory_format=torch.channels_last)
    out = gt.Augment(gpuaug.AugMix(), seed=3)(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(as_nhwc(out), gpuaug.AugMix()(nhwc, seed=3))


def test_nchw_output_is_a_view_of_the_nhwc_result(nchw):
    out = gt.Augment(gpuaug.Cutout(8), seed=0)(nchw)
    assert out.permute(0, 2, 3, 1).is_contiguous()  # the NHWC buffer itself, no copy made


def test_non_contiguous_inputs(nhwc):
    wide = torch.cat([nhwc, nhwc], dim=2)[:, :, ::2]  # strided NHWC view
    assert not wide.is_contiguous()
    ref = gpuaug.Cutout(8)(wide.contiguous(), seed=1)
    assert torch.equal(gt.Augment(gpuaug.Cutout(8), seed=1)(wide), ref)
    nchw_view = wide.permute(0, 3, 1, 2)  # channels_last NCHW view of a strided tensor
    assert torch.equal(as_nhwc(gt.Augment(gpuaug.Cutout(8), seed=1)(nchw_view)), ref)


def test_explicit_layout_resolves_ambiguity():
    x = torch.from_numpy(samples.batch(2, 3))  # (2, 3, 3, 3): NCHW or NHWC?
    with pytest.raises(ValueError, match="layout='NCHW' or layout='NHWC'"):
        gt.Augment(gpuaug.Cutout(1), seed=0)(x)
    out = gt.Augment(gpuaug.Cutout(1), seed=0, layout="NHWC")(x)
    assert torch.equal(out, gpuaug.Cutout(1)(x, seed=0))
    out = gt.Augment(gpuaug.Cutout(1), seed=0, layout="NCHW")(x)
    assert torch.equal(as_nhwc(out), gpuaug.Cutout(1)(x.permute(0, 2, 3, 1).contiguous(), seed=0))


def test_method_by_name_and_mixing(nhwc, pool):
    out = gt.Augment("pixmix", mixing=pool, seed=2)(nhwc)
    assert torch.equal(out, gpuaug.PixMix()(nhwc, mixing=pool, seed=2))


# -- randomness ----------------------------------------------------------------------------

def test_generator_advances_per_call_and_seed_repeats(nhwc):
    aug = gt.Augment(gpuaug.AugMix(), seed=5)
    first, second = aug(nhwc), aug(nhwc)
    assert not torch.equal(first, second)
    g = np.random.default_rng(5)
    assert torch.equal(first, gpuaug.AugMix()(nhwc, seed=g))
    assert torch.equal(second, gpuaug.AugMix()(nhwc, seed=g))
    again = gt.Augment(gpuaug.AugMix(), seed=5)
    assert torch.equal(again(nhwc), first) and torch.equal(again(nhwc), second)
    assert torch.equal(aug.reseed(5)(nhwc), first)
    assert not torch.equal(gt.Augment(gpuaug.AugMix(), seed=6)(nhwc), first)


def test_generator_seed_is_used_as_is(nhwc):
    out = gt.Augment(gpuaug.AugMix(), seed=np.random.default_rng(9))(nhwc)
    assert torch.equal(out, gpuaug.AugMix()(nhwc, seed=9))


def test_distributed_rank_offsets_the_seed(nhwc, monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: 3)
    aug = gt.Augment(gpuaug.AugMix(), seed=10)
    out = aug(nhwc)
    assert aug.rank == 3
    assert torch.equal(out, gpuaug.AugMix()(nhwc, seed=13))


def test_distributed_single_process_gloo(nhwc, tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        aug = gt.Augment(gpuaug.AugMix(), seed=4)
        assert torch.equal(aug(nhwc), gpuaug.AugMix()(nhwc, seed=4)) and aug.rank == 0
    finally:
        torch.distributed.destroy_process_group()


# -- views, normalisation, dtype, train / eval ---------------------------------------------

def test_views_triple(nhwc, nchw):
    clean, a1, a2 = gt.Augment(gpuaug.AugMix(), seed=1, views=True)(nchw)
    ref = gpuaug.AugMix().views(nhwc, seed=1)
    for got, want in zip((clean, a1, a2), ref):
        assert got.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(as_nhwc(got), want)
    assert torch.equal(as_nhwc(clean), nhwc.float() / 255)


def test_normalize_with_mean_and_std(nhwc, nchw):
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    out = gt.Augment(gpuaug.AugMix(), seed=1, normalize=True, mean=mean, std=std)(nchw)
    ref = (gpuaug.AugMix()(nhwc, seed=1) - torch.tensor(mean)) / torch.tensor(std)
    torch.testing.assert_close(as_nhwc(out), ref, rtol=1e-6, atol=1e-6)
    imagenet = gt.Augment(None, normalize=True)(nhwc)
    torch.testing.assert_close(imagenet, (nhwc / 255 - torch.tensor(gt.IMAGENET_MEAN)) / torch.tensor(gt.IMAGENET_STD))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtype(nhwc, nchw, dtype):
    out = gt.Augment(gpuaug.AugMix(), seed=1, normalize=True, dtype=dtype)(nchw)
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)
    ref = gt.Augment(gpuaug.AugMix(), seed=1, normalize=True)(nchw)
    assert torch.equal(out, ref.to(dtype))


def test_eval_mode_gives_the_clean_batch_and_keeps_the_generator(nhwc, nchw):
    aug = gt.Augment(gpuaug.AugMix(), seed=2, views=True, normalize=True).eval()
    out = aug(nchw)
    assert isinstance(out, torch.Tensor) and out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(as_nhwc(out), gt.Augment(None, normalize=True)(nhwc))
    aug.train()
    want = gt.Augment(gpuaug.AugMix(), seed=2, views=True, normalize=True)(nhwc)
    assert torch.equal(aug(nhwc)[1], want[1])


def test_no_parameters_no_state(nhwc):
    aug = gt.Augment(gpuaug.AugMix(), seed=0)
    assert list(aug.parameters()) == [] and list(aug.buffers()) == [] and aug.state_dict() == {}
    assert "AugMix" in repr(aug)
    seq = torch.nn.Sequential(aug, torch.nn.Conv2d(3, 4, 3))
    assert seq(nhwc.permute(0, 3, 1, 2)).shape == (4, 4, SIZE - 2, SIZE - 2)


# -- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("x, error, match", [
    (torch.zeros(2, 3, 8, 8), TypeError, "uint8.*PILToTensor"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.int32), TypeError, "uint8"),
    (torch.zeros(1, 2, 3, 8, 8, dtype=torch.uint8), ValueError, "4-d batch"),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), ValueError, "unsqueeze"),
    (torch.zeros(2, 4, 8, 8, dtype=torch.uint8), ValueError, "3 \\(RGB\\) channels"),
    (torch.zeros(2, 3, 8, 3, dtype=torch.uint8), ValueError, "layout="),
    (torch.zeros(0, 8, 8, 3, dtype=torch.uint8), ValueError, "at least one image"),
    (np.zeros((2, 8, 8, 3), np.uint8), TypeError, "torch.Tensor"),
])
def test_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        gt.Augment(gpuaug.AugMix(), seed=0)(x)


def test_wrong_layout_for_shape():
    with pytest.raises(ValueError, match="layout NHWC"):
        gt.Augment(gpuaug.AugMix(), layout="NHWC")(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(method=gpuaug.Mixup()), TypeError, "MixBatch"),
    (dict(method="cutmix"), TypeError, "MixBatch"),
    (dict(method=object()), TypeError, "gpuaug method"),
    (dict(method="nope"), ValueError, "unknown method"),
    (dict(method=gpuaug.PixMix()), ValueError, "needs mixing"),
    (dict(method=gpuaug.AugMix(), mixing=np.zeros((1, 8, 8, 3), np.uint8)), ValueError, "no mixing"),
    (dict(method=None, views=True), ValueError, "method=None"),
    (dict(method=gpuaug.AugMix(), layout="CHW"), ValueError, "layout"),
    (dict(method=gpuaug.AugMix(), dtype=torch.uint8), TypeError, "floating"),
    (dict(method=gpuaug.AugMix(), std=(1, 0, 1)), ValueError, "std"),
    (dict(method=gpuaug.AugMix(), mean=(1, 2)), ValueError, "mean"),
    (dict(method=gpuaug.AugMix(), seed=1.5), TypeError, "seed"),
])
def test_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        gt.Augment(**kwargs)


# -- label mixing --------------------------------------------------------------------------

@pytest.mark.parametrize("method", [gpuaug.Mixup(), gpuaug.CutMix(alpha=0.5)], ids=repr)
def test_mixbatch_equals_method(method, nhwc, nchw):
    labels = torch.tensor([0, 3, 1, 3])
    mix = gt.MixBatch(method, num_classes=5, seed=7)
    images, targets = mix(nchw, labels)
    ref_images, ref_targets = method(nhwc, labels, 5, seed=7)
    assert images.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(as_nhwc(images), ref_images) and torch.equal(targets, ref_targets)
    assert targets.shape == (4, 5) and torch.allclose(targets.sum(1), torch.ones(4))
    images2, _ = mix(nchw, [0, 3, 1, 3])  # the generator advanced; labels as a list
    assert not torch.equal(images2, images)


def test_mixbatch_eval_and_errors(nhwc):
    mix = gt.MixBatch("mixup", num_classes=4, normalize=True).eval()
    images, targets = mix(nhwc, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(targets, torch.eye(4)) and torch.equal(images, gt.Augment(None, normalize=True)(nhwc))
    with pytest.raises(ValueError, match="Squeeze"):
        mix(nhwc, torch.zeros(4, 1, dtype=torch.int64))
    with pytest.raises(TypeError, match="integer"):
        mix(nhwc, torch.zeros(4))
    with pytest.raises(ValueError, match="0..3"):
        mix(nhwc, torch.tensor([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="0..3"):
        mix.train()(nhwc, torch.tensor([0, 1, 2, 4]))
    with pytest.raises(TypeError, match="Augment"):
        gt.MixBatch(gpuaug.AugMix(), 10)
    with pytest.raises(ValueError, match="num_classes"):
        gt.MixBatch(gpuaug.Mixup(), 0)


# -- CUDA ----------------------------------------------------------------------------------

def _cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device("cuda")


@pytest.mark.gpu
def test_cuda_nchw_equals_cpu(nhwc, nchw):
    dev = _cuda()
    aug_gpu = gt.Augment(gpuaug.AugMix(), seed=1, normalize=True)
    aug_cpu = gt.Augment(gpuaug.AugMix(), seed=1, normalize=True)
    for _ in range(2):
        out = aug_gpu(nchw.to(dev))
        assert out.device.type == "cuda" and out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out.cpu(), aug_cpu(nchw), rtol=0, atol=1e-6)


@pytest.mark.gpu
def test_cuda_views_pixmix_and_mixbatch(nhwc, nchw, pool):
    dev = _cuda()
    triple = gt.Augment(gpuaug.PixMix(), mixing=pool.to(dev), seed=2, views=True, dtype=torch.bfloat16)(nchw.to(dev))
    ref = gt.Augment(gpuaug.PixMix(), mixing=pool, seed=2, views=True, dtype=torch.bfloat16)(nchw)
    for i, (got, want) in enumerate(zip(triple, ref)):
        assert got.device.type == "cuda" and got.dtype == torch.bfloat16
        if i == 0:  # the clean view: exact
            assert torch.equal(got.cpu(), want)
        else:  # PixMix's multiplicative mixing takes a float64 pow: gpuaug.tolerance's bound
            diff = mismatch(got.cpu().float().numpy(), want.float().numpy(), "pixmix", "bfloat16")
            assert diff is None, diff
    images, targets = gt.MixBatch("cutmix", 5, seed=3)(nchw.to(dev), torch.tensor([0, 1, 2, 3]))  # CPU labels
    ref_images, ref_targets = gt.MixBatch("cutmix", 5, seed=3)(nchw, torch.tensor([0, 1, 2, 3]))
    assert images.device.type == "cuda" and targets.device.type == "cuda"
    assert torch.equal(images.cpu(), ref_images) and torch.equal(targets.cpu(), ref_targets)


# -- FFCV glue without FFCV ----------------------------------------------------------------

def test_ffcv_glue_says_how_to_install_when_ffcv_is_missing(monkeypatch):
    import sys

    import gpuaug.ffcv as gf

    monkeypatch.setitem(sys.modules, "ffcv", None)  # makes `import ffcv` raise ImportError
    assert not gf.available()
    with pytest.raises(ImportError, match=r"libopencv-dev libturbojpeg0-dev pkg-config.*pip install -e '\.\[ffcv\]'"):
        gf.train_pipeline(gpuaug.AugMix(), "cpu")
    with pytest.raises(ImportError, match="pip install"):
        gf.label_pipeline("cpu")
