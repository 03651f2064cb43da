"""On a real GPU: the multi-chain executor call and the packed pinned upload (run with -m gpu)."""

import numpy as np
import pytest

from gpuaug import ops
from gpuaug.executors import cpu, cuda, staging

pytestmark = pytest.mark.gpu

cupy = pytest.importorskip("cupy")


def _has_device() -> bool:
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver / no device
        return False


if not _has_device():
    pytest.skip("needs a CUDA device", allow_module_level=True)


def test_several_chains_in_one_call_equal_the_cpu_executor():
    # histogram, LUT, blend, affine and downscale samples; ids for 3 chains of 6 images
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, (6, 20, 17, 3), dtype=np.uint8)
    ids = ops.op_ids(ops.ALL_OPS + ("downscale", "mirror", "flip", "invert"))[rng.integers(0, 17, 18)]
    ids = ids.astype(np.int32)
    values = ops.sample_values(ids, 3, rng, 20, 17)
    got = cupy.asnumpy(cuda.apply_ops_xp(cupy.asarray(images), ids, values, "cuda"))
    want = cpu.apply_ops(np.concatenate([images] * 3), ids, values)
    assert np.array_equal(got, want)


def test_pinned_upload_is_ordered_on_the_stream_and_never_overwritten():
    # a busy stream (a ~0.5 s sleep kernel queued first) keeps all 48 copies of one size
    # class pending, more than staging keeps idle: no pending buffer may be reused
    torch = pytest.importorskip("torch")
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream, torch.cuda.stream(torch.cuda.ExternalStream(stream.ptr)):
        torch.cuda._sleep(10**9)
        views = [staging.upload(cupy, {"a": np.full(1000, i, np.int32), "b": np.arange(3.0) + i})
                 for i in range(48)]
        stream.synchronize()
    for i, v in enumerate(views):
        assert int(v["a"].min()) == int(v["a"].max()) == i
        assert np.array_equal(cupy.asnumpy(v["b"]), np.arange(3.0) + i)


def test_methods_on_cuda_equal_the_cpu_executor_with_chains_batched():
    # multi-chain steps with identity rows skipped, IPMix patch rounds over all chains,
    # PixMix rows the mix never reads, the one-pass clean view
    import gpuaug
    from gpuaug.executors.backend import get_backend

    rng = np.random.default_rng(2)
    n, size = 6, 24
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    pictures = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    methods = (gpuaug.AugMix(), gpuaug.PixMix(), gpuaug.IPMix(patch_sizes=(4, 8, 24)),
               gpuaug.DynamicMixup(downscale=True))
    for m in methods:
        plan = m.plan(n, size, size, np.random.default_rng(0))
        pics = pictures if m.needs_mixing else None
        got = m.execute(plan, cupy.asarray(images), cupy.asarray(pics) if pics is not None else None,
                        get_backend("cuda"))
        want = m.execute(plan, images, pics, get_backend("cpu"))
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=0, atol=1e-6)
    m = gpuaug.NoisyMix()  # JSD views: both plans' chains in one run
    plans = [m.plan(n, size, size, np.random.default_rng(s)) for s in (1, 2)]
    got = m.execute_all(plans, cupy.asarray(images), None, get_backend("cuda"))
    for plan, out in zip(plans, got):
        assert np.array_equal(cupy.asnumpy(out), m.execute(plan, images, None, get_backend("cpu")))


@pytest.mark.parametrize("transform", [None, "pad_crop_flip"])
def test_cuda_mixing_set_crops_equal_the_host_set(transform):
    # MixingSet.gather on a CUDA set runs kernels/crop.cu
    torch = pytest.importorskip("torch")
    from gpuaug.mixing import MixingSet

    rng = np.random.default_rng(3)
    pictures = rng.integers(0, 256, (5, 14, 14, 3), dtype=np.uint8)
    host = MixingSet.from_array(pictures, transform=transform)
    dev = MixingSet.from_array(torch.from_numpy(pictures).cuda(), transform=transform)
    for _ in range(3):
        plan = host.sample_plan(9, rng, 10, 10)
        assert np.array_equal(cupy.asnumpy(dev.gather(plan, "cuda")), host.gather(plan, "emulated"))


@pytest.mark.parametrize("name", ["AugMix", "DynamicMixup", "PixMix", "IPMix"])
def test_last_lut_step_fused_into_the_mix_equals_cpu(name):
    # kernels/mix.cu gpuaug_weighted_mix / gpuaug_dynamic_mix / gpuaug_pixmix_rounds
    # reading chains through their last step's LUT
    import gpuaug
    from gpuaug.executors.backend import get_backend

    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (6, 24, 20, 3), dtype=np.uint8)
    method = getattr(gpuaug, name)(op_list=("posterize", "solarize", "equalize", "autocontrast", "rotate"))
    pictures = rng.integers(0, 256, images.shape, dtype=np.uint8) if method.needs_mixing else None
    plan = method.plan(6, 24, 20, np.random.default_rng(1))
    got = cupy.asnumpy(method.execute(plan, cupy.asarray(images), None if pictures is None else cupy.asarray(pictures),
                                      get_backend("cuda")))
    want = method.execute(plan, images, pictures, get_backend("cpu"))
    if name in ("PixMix", "IPMix"):  # float64 pow: an ulp between libms (gpuaug.tolerance)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    else:
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
