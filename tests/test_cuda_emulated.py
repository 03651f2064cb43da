"""The cuda executor's kernels, executed on the CPU by the emulated backend, equal the
cpu executor exactly; plus the launch layer's argument checks."""

import numpy as np
import pytest
from PIL import Image

from cuda_cases import all_cases, mismatch_report
from gpuaug import ops
from gpuaug.executors import cpu, cuda, emulator, launch, params
from imagegen import image_set

CASES = all_cases()


@pytest.fixture(scope="module", autouse=True)
def _built_kernels():
    cuda.load_kernels("emulated")  # the four g++ builds run concurrently


@pytest.mark.parametrize("label,ids,values,images", CASES, ids=[c[0] for c in CASES])
def test_emulated_equals_cpu(label, ids, values, images):
    ops.check_values(ids, values)
    got = cuda.apply_ops_xp(images, ids, values, "emulated")
    want = cpu.apply_ops(images, ids, values)
    assert got.shape == want.shape and got.dtype == np.uint8
    assert np.array_equal(got, want), f"{label}:\n{mismatch_report(got, want, ids, values)}"


def test_multi_block_and_grid_stride(monkeypatch):
    # Several blocks per sample (histogram merge) and threads looping over pixels.
    monkeypatch.setattr(cuda, "_MAX_BLOCKS_PER_SAMPLE", 3)
    from cuda_cases import edge_case

    ids, values, images = edge_case(72, 64)
    got = cuda.apply_ops_xp(images, ids, values, "emulated")
    want = cpu.apply_ops(images, ids, values)
    assert np.array_equal(got, want), mismatch_report(got, want, ids, values)


def test_single_family_batches_and_empty_batch():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, 9, 7, 3), dtype=np.uint8)
    for name in ("equalize", "contrast", "rotate", "downscale", "mirror"):
        ids = ops.op_ids([name] * 4)
        values = ops.sample_values(ids, 5, rng, 9, 7)
        got = cuda.apply_ops_xp(images, ids, values, "emulated")
        assert np.array_equal(got, cpu.apply_ops(images, ids, values)), name
    empty = np.zeros((0, 9, 7, 3), dtype=np.uint8)
    out = cuda.apply_ops_xp(empty, np.zeros(0, np.int32), np.zeros(0), "emulated")
    assert out.shape == empty.shape


def test_input_is_not_modified():
    ids, values, images = all_cases()[0][1:]
    before = images.copy()
    cuda.apply_ops_xp(images, ids, values, "emulated")
    assert np.array_equal(images, before)


@pytest.mark.parametrize("size", [(32, 32), (37, 61), (61, 37), (100, 9), (9, 100), (1, 1), (2, 5), (3, 1)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_downscale_equals_cpu_and_pillow(size):
    # Both pass orders (tall images shrink vertically first), one-axis and identity passes,
    # shared and distinct intermediate sizes in one batch.
    h, w = size
    factors = np.array([1.0, 1.03, 1.5, 2.0, 3.7, 4.0, 64.0, 1.5, 2.6, 9.0])
    ids = np.full(factors.size, ops.OP_IDS["downscale"], dtype=np.int32)
    images = _stack_images(h, w, factors.size)
    got = cuda.apply_ops_xp(images, ids, factors, "emulated")
    want = cpu.apply_ops(images, ids, factors)
    assert np.array_equal(got, want), mismatch_report(got, want, ids, factors)
    for img, r, ours in zip(images, factors, got):
        sh, sw = params.downscale_size(float(r), h, w)
        pil = Image.fromarray(img).resize((sw, sh), Image.Resampling.BILINEAR).resize((w, h), Image.Resampling.BILINEAR)
        assert np.array_equal(ours, np.asarray(pil)), f"r={r} {h}x{w}"


def _stack_images(h, w, n):
    pool = [img for _, img in image_set(h, w, seed=9)]
    return np.ascontiguousarray(np.stack([pool[i % len(pool)] for i in range(n)]))


def test_downscale_plan_passes():
    small = np.array([[3, 4], [3, 4], [1, 1], [10, 2], [2, 8]], dtype=np.int32)
    passes = cuda.downscale_plan(small, 10, 8)
    assert passes.shape == (4, 5, 4) and passes.dtype == np.int32
    for j, (sh, sw) in enumerate(small.tolist()):
        want = []
        for in_h, in_w, out_h, out_w in ((10, 8, sh, sw), (sh, sw, 10, 8)):
            if params.pil_vertical_first(in_h, in_w, out_h, out_w):
                want += [(in_h, in_w, 1, out_h), (out_h, in_w, 0, out_w)]
            else:
                want += [(in_h, in_w, 0, out_w), (in_h, out_w, 1, out_h)]
        assert [tuple(p) for p in passes[:, j].tolist()] == want
    # 10x8 -> 10x2: the height keeps its size, the vertical pass is the identity
    assert passes[1, 3].tolist() == [10, 2, 1, 10]


def test_kernel_taps_equal_pillow_coefficients_at_every_scale():
    # resize.cu computes params.pil_bilinear_coefficients' taps itself: downscale by
    # factors up to 64 (the op's range) on odd sizes equals the cpu executor
    rng = np.random.default_rng(12)
    for h, w in ((1, 1), (2, 5), (17, 23), (64, 40), (130, 9)):
        factors = np.array([1.0, 1.01, 1.37, 2.0, 2.5, 3.99, 7.3, 17.0, 64.0])
        images = rng.integers(0, 256, (len(factors), h, w, 3), dtype=np.uint8)
        ids = np.full(len(factors), ops.OP_IDS["downscale"], np.int32)
        got = cuda.apply_ops_xp(images, ids, factors, "emulated")
        assert np.array_equal(got, cpu.apply_ops(images, ids, factors)), (h, w)


def test_downscale_sizes_match_params():
    factors = np.array([1.0, 1.3, 1.5, 2.0, 2.5, 3.99, 7.0, 64.0])
    for h, w in ((1, 1), (2, 5), (17, 23), (224, 224), (375, 500)):
        got = cuda.downscale_sizes(factors, h, w)
        want = [params.downscale_size(float(f), h, w) for f in factors]
        assert [tuple(r) for r in got.tolist()] == want


def test_apply_ops_xp_rejects_bad_inputs():
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    ids, values = np.zeros(2, np.int32), np.zeros(2)
    with pytest.raises(TypeError, match="uint8"):
        cuda.apply_ops_xp(images.astype(np.float32), ids, values, "emulated")
    with pytest.raises(ValueError, match="NHWC"):
        cuda.apply_ops_xp(images[..., :2], ids, values, "emulated")
    with pytest.raises(ValueError, match="contiguous"):
        cuda.apply_ops_xp(images[:, ::-1], ids, values, "emulated")
    with pytest.raises(ValueError, match="ids"):
        cuda.apply_ops_xp(images, ids[:1], values, "emulated")
    with pytest.raises(ValueError, match="values"):
        cuda.apply_ops_xp(images, ids, values.astype(np.float32), "emulated")
    with pytest.raises(ValueError, match="op ids"):
        cuda.apply_ops_xp(images, np.array([0, 99], np.int32), values, "emulated")
    with pytest.raises(ValueError, match="backend"):
        cuda.apply_ops_xp(images, ids, values, "opencl")


# ---------------------------------------------------------------- launch layer

def _resize_args(n=1):
    src = np.zeros((n, 2, 2, 3), np.uint8)
    passes = cuda.downscale_plan(np.ones((n, 2), np.int32), 2, 2)
    return [src, np.zeros_like(src), np.arange(n, dtype=np.int32), np.ascontiguousarray(passes[0]).ravel(),
            12, 1, 1, np.zeros(n, np.uint64)]


def test_kernel_call_checks_arguments():
    k = launch.get_kernel("resize", "gpuaug_resample_pass", "emulated")
    assert [p.name for p in k.params] == ["src", "dst", "samples", "passes", "sample_stride",
                                          "src_by_sample", "dst_by_sample", "src_ptrs"]
    args = _resize_args()
    k((1, 1), 32, args)
    with pytest.raises(TypeError, match="takes 8 arguments"):
        k(1, 32, args[:4])
    bad = list(args); bad[2] = bad[2].astype(np.int64)
    with pytest.raises(TypeError, match="needs dtype int32"):
        k(1, 32, bad)
    bad = list(args); bad[4] = 1.5
    with pytest.raises(TypeError, match="must be an integer"):
        k(1, 32, bad)
    bad = list(args); bad[4] = 2**70
    with pytest.raises(ValueError, match="out of range"):
        k(1, 32, bad)
    bad = list(args); bad[1] = np.zeros((1, 2, 4, 3), np.uint8)[:, :, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        k(1, 32, bad)
    bad = list(args); bad[1] = bad[1].copy(); bad[1].flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        k(1, 32, bad)
    bad = list(args); bad[0] = [1, 2, 3]
    with pytest.raises(TypeError, match="numpy.ndarray"):
        k(1, 32, bad)
    with pytest.raises(ValueError, match="block"):
        k(1, 2048, args)
    with pytest.raises(ValueError, match="grid"):
        k(0, 32, args)


def test_get_kernel_errors():
    with pytest.raises(ValueError, match="backend"):
        launch.get_kernel("apply", "gpuaug_apply", "metal")
    with pytest.raises(FileNotFoundError):
        launch.get_kernel("no_such_file", "k", "emulated")
    with pytest.raises(KeyError, match="gpuaug_apply"):
        launch.get_kernel("apply", "not_a_kernel", "emulated")


def test_parse_kernels_and_bad_types():
    src = '''
    // extern "C" __global__ void commented_out(int a)
    extern "C" __global__ void __launch_bounds__(256) k1(const float* __restrict__ x,
        unsigned long long n, double s) {}
    extern "C" __global__ void k2() {}
    '''
    sigs = launch.parse_kernels(src)
    assert set(sigs) == {"k1", "k2"}
    p = sigs["k1"].params
    assert [(q.name, str(q.dtype), q.pointer, q.const) for q in p] == [
        ("x", "float32", True, True), ("n", "uint64", False, False), ("s", "float64", False, False)]
    assert sigs["k2"].params == ()
    with pytest.raises(launch.KernelSignatureError, match="unsupported type"):
        launch.parse_kernels('extern "C" __global__ void k(size_t n) {}')


def test_emulated_compile_error_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUAUG_CACHE_DIR", str(tmp_path))
    src = 'extern "C" __global__ void broken(int* a) { a[0] = nope; }\n'
    with pytest.raises(launch.KernelCompileError, match="nope"):
        emulator._emulated_library("broken", src, list(launch.parse_kernels(src).values()))


def test_emulated_syncthreads_and_shared_memory(tmp_path, monkeypatch):
    # A block-wide reduction through __shared__ memory and __syncthreads, 3 blocks.
    monkeypatch.setenv("GPUAUG_CACHE_DIR", str(tmp_path))
    src = '''
    extern "C" __global__ void block_sum(const int* x, int* out) {
        __shared__ int buf[64];
        buf[threadIdx.x] = x[blockIdx.x * blockDim.x + threadIdx.x];
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s /= 2) {
            if ((int)threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
            __syncthreads();
        }
        if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
        atomicAdd(&out[3], 1);
    }
    '''
    sigs = launch.parse_kernels(src)
    kernel = emulator._emulated_kernel("block_sum", src, sigs, sigs["block_sum"])
    x = np.arange(3 * 64, dtype=np.int32)
    out = np.zeros(4, np.int32)
    kernel(3, 64, (x, out))
    assert out.tolist() == [int(x[i * 64:(i + 1) * 64].sum()) for i in range(3)] + [192]
