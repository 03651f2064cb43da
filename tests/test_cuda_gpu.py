"""The cuda executor on a real GPU equals the cpu executor exactly (run with -m gpu)."""

import numpy as np
import pytest

from cuda_cases import all_cases, mismatch_report
from gpuaug import ops
from gpuaug.executors import cpu, cuda, launch

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch")
cupy = pytest.importorskip("cupy")


def _has_device() -> bool:
    try:
        return torch.cuda.is_available() and cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver / no device
        return False


if not _has_device():
    pytest.skip("needs a CUDA device", allow_module_level=True)

CASES = all_cases()


@pytest.fixture(scope="module", autouse=True)
def _built_kernels():
    cuda.load_kernels("cuda")  # compile up front: the stream test must not wait on NVRTC


@pytest.mark.parametrize("label,ids,values,images", CASES, ids=[c[0] for c in CASES])
def test_torch_cuda_equals_cpu(label, ids, values, images):
    x = torch.from_numpy(images).cuda()
    out = ops.apply_batch(x, ids, values)
    assert isinstance(out, torch.Tensor) and out.is_cuda and out.device == x.device
    assert out.dtype == torch.uint8 and tuple(out.shape) == images.shape
    got = out.cpu().numpy()
    want = cpu.apply_ops(images, ids, values)
    assert np.array_equal(got, want), f"{label}:\n{mismatch_report(got, want, ids, values)}"


@pytest.mark.parametrize("label,ids,values,images", CASES, ids=[c[0] for c in CASES])
def test_cupy_equals_cpu(label, ids, values, images):
    x = cupy.asarray(images)
    out = ops.apply_batch(x, [ops.OP_NAMES[i] for i in ids], values, executor="cuda")
    assert isinstance(out, cupy.ndarray) and out.device.id == x.device.id
    got = cupy.asnumpy(out)
    want = cpu.apply_ops(images, ids, values)
    assert np.array_equal(got, want), f"{label}:\n{mismatch_report(got, want, ids, values)}"


def test_multi_block_and_grid_stride_on_gpu():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (36, 224, 224, 3), dtype=np.uint8)
    ids = ops.op_ids(list(ops.OP_NAMES) * 2)
    values = ops.sample_values(ids, 10, rng, 224, 224, autocontrast_cutoff="ipmix")
    got = ops.apply_batch(torch.from_numpy(images).cuda(), ids, values).cpu().numpy()
    want = cpu.apply_ops(images, ids, values)
    assert np.array_equal(got, want), mismatch_report(got, want, ids, values)


def test_runs_on_torch_current_stream():
    # The input is written on a side stream after a long sleep. If the kernels ran on
    # any other stream they would read the buffer before it is filled.
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (18, 64, 48, 3), dtype=np.uint8)
    ids = ops.op_ids(ops.OP_NAMES)
    values = ops.sample_values(ids, 7, rng, 64, 48)
    source = torch.from_numpy(images).cuda()
    x = torch.zeros_like(source)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(2_000_000_000)  # about a second of GPU clock cycles
        x.copy_(source)
        out = ops.apply_batch(x, ids, values)
        done = torch.cuda.Event()
        done.record(side)
    assert not done.query(), "the work should still be queued behind the sleep"
    side.synchronize()
    got = out.cpu().numpy()
    assert np.array_equal(got, cpu.apply_ops(images, ids, values))


def test_cupy_input_uses_cupy_current_stream():
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (18, 20, 30, 3), dtype=np.uint8)
    ids = ops.op_ids(ops.OP_NAMES)
    values = ops.sample_values(ids, 3, rng, 20, 30)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        out = ops.apply_batch(cupy.asarray(images), ids, values)
    stream.synchronize()
    assert np.array_equal(cupy.asnumpy(out), cpu.apply_ops(images, ids, values))


@pytest.mark.skipif(not _has_device() or torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_device():
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (18, 16, 16, 3), dtype=np.uint8)
    ids = ops.op_ids(ops.OP_NAMES)
    values = ops.sample_values(ids, 5, rng, 16, 16)
    x = torch.from_numpy(images).to("cuda:1")
    out = ops.apply_batch(x, ids, values)
    assert out.device == x.device
    assert np.array_equal(out.cpu().numpy(), cpu.apply_ops(images, ids, values))


def test_cuda_kernel_argument_checks():
    k = launch.get_kernel("resize", "gpuaug_resample_pass", "cuda")
    src = cupy.zeros((1, 2, 2, 3), cupy.uint8)
    table = cupy.zeros(4, cupy.int32)
    with pytest.raises(TypeError, match="cupy.ndarray"):
        k(1, 32, (np.zeros((1, 2, 2, 3), np.uint8), src, cupy.zeros(1, cupy.int32), table, 12, 1, 1,
                  cupy.zeros(1, cupy.uint64)))
    with pytest.raises(TypeError, match="needs dtype int32"):
        k(1, 32, (src, src.copy(), cupy.zeros(1, cupy.int64), table, 12, 1, 1, cupy.zeros(1, cupy.uint64)))


def test_emulated_and_cuda_agree_on_raw_kernel():
    # The launch layer's two backends run the same kernel to the same bytes.
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (3, 9, 11, 3), dtype=np.uint8)
    passes = cuda.downscale_plan(np.array([[4, 5], [9, 3], [2, 11]], np.int32), 9, 11)
    step = np.ascontiguousarray(passes[0]).ravel()  # the first pass of each sample's shrink
    samples = np.arange(3, dtype=np.int32)
    host_out = np.zeros_like(images)
    launch.get_kernel("resize", "gpuaug_resample_pass", "emulated")(
        (2, 3), 64, (images, host_out, samples, step, 9 * 11 * 3, 1, 1, np.zeros(3, np.uint64)))
    dev_out = cupy.zeros(images.shape, cupy.uint8)
    launch.get_kernel("resize", "gpuaug_resample_pass", "cuda")(
        (2, 3), 64, (cupy.asarray(images), dev_out, cupy.asarray(samples), cupy.asarray(step),
                     9 * 11 * 3, 1, 1, cupy.zeros(3, cupy.uint64)))
    assert np.array_equal(cupy.asnumpy(dev_out), host_out)
