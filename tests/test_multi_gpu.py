"""Devices, streams and memory on real GPUs (run with -m gpu; the cuda:1 tests need two).

The device logic itself is tested on the CPU with fakes in ``test_gpu_correctness.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch")
cupy = pytest.importorskip("cupy")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)

import gpuaug  # noqa: E402
from gpuaug import ops  # noqa: E402
from gpuaug.data import samples  # noqa: E402
from gpuaug.executors import launch  # noqa: E402
from gpuaug.mixing import MixingSet  # noqa: E402
from gpuaug.tolerance import mismatch  # noqa: E402

two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")


def _batch(n=4, size=32, seed=0):
    return samples.batch(n, size) if seed == 0 else np.random.default_rng(seed).integers(
        0, 256, (n, size, size, 3), dtype=np.uint8)


def test_no_deprecation_warning_and_torch_owned_outputs():
    x = torch.from_numpy(_batch()).cuda()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # ExternalStream would warn here
        out = gpuaug.AugMix()(x, seed=0)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    del out
    assert torch.cuda.memory_allocated() < before  # the output was torch's memory
    again = gpuaug.AugMix()(x, seed=0)
    again.record_stream(torch.cuda.Stream())  # works on a torch-owned block


def test_mixup_and_cutmix_on_cuda_equal_cpu():
    images = _batch(6)
    labels = np.array([0, 1, 2, 3, 4, 0])
    for method in (gpuaug.Mixup(), gpuaug.CutMix()):
        got_x, got_y = method(torch.from_numpy(images).cuda(), torch.from_numpy(labels).cuda(), 5, seed=1)
        want_x, want_y = method(images, labels, 5, seed=1)
        np.testing.assert_array_equal(got_x.cpu().numpy(), want_x)
        np.testing.assert_array_equal(got_y.cpu().numpy(), want_y)


def test_side_stream_output_survives_the_next_batch():
    # Produced on a side stream, consumed on the default stream after a long sleep; the
    # next batch on the side stream must not reuse the first output's block meanwhile.
    x = torch.from_numpy(_batch(8, 64, seed=3)).cuda()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        first = gpuaug.AugMix()(x, seed=0)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda._sleep(500_000_000)
    copy = first.clone()  # queued behind the sleep on the default stream
    del first  # freed now; its block must wait for the clone (recorded on the default stream)
    with torch.cuda.stream(side):
        gpuaug.AugMix()(x, seed=1)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(copy.cpu().numpy(), gpuaug.AugMix()(x.cpu().numpy(), seed=0))


def test_label_mixing_in_the_trainer_does_not_sync():
    from gpuaug.train.loop import _apply_label_mixing

    x = torch.rand(8, 3, 16, 16, device="cuda")
    labels = torch.arange(8, device="cuda") % 3
    _apply_label_mixing(gpuaug.Mixup(), x, labels, 3, np.random.default_rng(0))  # warm-up
    torch.cuda.set_sync_debug_mode("error")
    try:
        _apply_label_mixing(gpuaug.CutMix(), x, labels, 3, np.random.default_rng(1))
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_noisy_feature_mixup_does_not_sync():
    from gpuaug.train.noisymix import NoisyFeatureMixup

    nfm = NoisyFeatureMixup(torch.nn.Identity())
    h = torch.rand(3 * 8, 4, 5, 5, device="cuda")
    labels = torch.arange(8, device="cuda") % 3
    draw = nfm.draw(8, 3, np.random.default_rng(0))
    nfm.apply(h, draw), nfm.targets(labels, 3, draw)  # warm-up
    torch.cuda.set_sync_debug_mode("error")
    try:
        draw = nfm.draw(8, 3, np.random.default_rng(1))
        nfm.apply(h, draw)
        nfm.targets(labels, 3, draw)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@two_gpus
def test_bare_cuda_means_the_current_device():
    pictures = _batch(3, 16)
    with torch.cuda.device(1):
        ms = MixingSet.from_array(pictures, device="cuda")
        fr = MixingSet.fractals(2, size=16, device="cuda")
    assert ms.device == "cuda:1" and fr.device == "cuda:1"


@two_gpus
def test_everything_on_cuda_1_equals_cpu():
    images = _batch(4, 32, seed=5)
    pictures = _batch(3, 40, seed=6)
    ms = MixingSet.from_array(pictures, device="cuda:1")
    x = torch.from_numpy(images).to("cuda:1")
    for method in (gpuaug.AugMix(), gpuaug.IPMix(), gpuaug.PixMix()):
        mixing = ms if method.needs_mixing else None
        got = method(x, mixing=mixing, seed=2)
        assert got.device == torch.device("cuda", 1)
        host = MixingSet.from_array(pictures) if method.needs_mixing else None
        want = method(images, mixing=host, seed=2)
        name = type(method).__name__.lower()
        assert mismatch(got.cpu().numpy(), want, name) is None, mismatch(got.cpu().numpy(), want, name)
    ids = ops.op_ids(ops.OP_NAMES)
    values = ops.sample_values(ids, 5, np.random.default_rng(0), 32, 32)
    out = ops.apply_batch(torch.from_numpy(images[:1].repeat(len(ids), 0)).to("cuda:1"), ids, values)
    assert out.device == torch.device("cuda", 1)
    assert any(k[3] == 1 for k in launch._kernels)  # compiled for device 1


@two_gpus
def test_a_set_on_one_device_is_refused_on_another():
    ms = MixingSet.from_array(_batch(3, 40), device="cuda:0")
    x = torch.from_numpy(_batch(4, 32)).to("cuda:1")
    with pytest.raises(ValueError, match=r"lives on cuda:0 but is used on cuda:1"):
        gpuaug.PixMix()(x, mixing=ms, seed=0)
    kernel = launch.get_kernel("histogram", "gpuaug_histograms", "cuda", device=0)
    with cupy.cuda.Device(1), pytest.raises(RuntimeError, match="loaded on cuda:0"):
        kernel(1, 32, [None] * len(kernel.params))
