"""Every method gives the same pixels for the same plan on every backend.

* cpu vs emulated: the CUDA kernels (run by the CPU emulator) inside the full method code
  path, bit for bit.
* cpu vs cuda (``-m gpu``): the real device. Methods that take float powers (PixMix's and
  IPMix's multiplicative mixing) compute them in float64 on both sides; libm and CUDA may
  still differ by an ulp there before the float32 rounding, so those are held to the
  bound stated in ``gpuaug.tolerance``.
"""

import numpy as np
import pytest

import gpuaug
from gpuaug.data import samples
from gpuaug.executors.backend import get_backend
from gpuaug.tolerance import mismatch

SIZE = 24


def methods():
    return {
        "augmix": gpuaug.AugMix(all_ops=True),
        "pixmix": gpuaug.PixMix(),
        "ipmix": gpuaug.IPMix(all_ops=True, patch_sizes=(4, 8, 16, 32)),
        "dynamic-mixup": gpuaug.DynamicMixup(downscale=True, severity=6),
        "dynamic-mixup-independent-m2": gpuaug.DynamicMixup(independent_m2=True),
        "noisymix": gpuaug.NoisyMix(),
        "cutout": gpuaug.Cutout(8),
    }


def run(method, backend_name, images, pictures, seed):
    backend = get_backend(backend_name)
    plan = method.plan(len(images), SIZE, SIZE, np.random.default_rng(seed))
    x = backend.asarray(images)
    pics = backend.asarray(pictures) if method.needs_mixing else None
    out = method.execute(plan, x, pics, backend)
    return out if isinstance(out, np.ndarray) else out.get()


@pytest.fixture(scope="module")
def batch():
    images = samples.batch(6, SIZE, seed=3)
    pictures = np.ascontiguousarray(samples.batch(6, SIZE, seed=40)[:, :, ::-1])
    return images, pictures


@pytest.mark.parametrize("name", sorted(methods()))
def test_emulated_cuda_kernels_equal_cpu(name, batch):
    method = methods()[name]
    images, pictures = batch
    want = run(method, "cpu", images, pictures, seed=11)
    got = run(method, "emulated", images, pictures, seed=11)
    np.testing.assert_array_equal(got, want)


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(methods()))
def test_cuda_equals_cpu(name, batch):
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception:
        pytest.skip("needs a CUDA device")
    method = methods()[name]
    images, pictures = batch
    images = np.concatenate([images] * 8)
    pictures = np.concatenate([pictures] * 8)
    want = run(method, "cpu", images, pictures, seed=12)
    got = run(method, "cuda", images, pictures, seed=12)
    problem = mismatch(got, want, name)  # exact, except gpuaug.tolerance's pow bound
    assert problem is None, problem


@pytest.mark.gpu
def test_torch_cuda_batch_through_public_api(batch):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    images, pictures = batch
    x = torch.from_numpy(images).cuda()
    pool = torch.from_numpy(pictures).cuda()
    for method in methods().values():
        out = method(x, mixing=pool if method.needs_mixing else None, seed=0)
        assert out.is_cuda and out.dtype == torch.float32 and tuple(out.shape) == images.shape
        clean, a1, a2 = method.views(x, mixing=pool if method.needs_mixing else None, seed=0)
        assert clean.is_cuda and a1.is_cuda and a2.is_cuda
        torch.testing.assert_close(clean, x.float() / 255)
