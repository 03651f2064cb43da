"""The GPU path's device, stream and memory rules, checked on the CPU with small fakes.

What needs a real device (and a second one) is in ``test_multi_gpu.py`` (``-m gpu``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpuaug
from gpuaug import _arrays
from gpuaug.tolerance import POW_F32_ULPS, mismatch, pow_atol


# -- item 1: label bounds without numpy's min(initial=) --------------------------------------

class _NoInitial(np.ndarray):
    """Labels whose min/max have CuPy 14's signature (no ``initial``)."""

    def min(self, axis=None, out=None, keepdims=False):
        return np.ndarray.min(self, axis, out, keepdims)

    def max(self, axis=None, out=None, keepdims=False):
        return np.ndarray.max(self, axis, out, keepdims)


@pytest.mark.parametrize("method", [gpuaug.Mixup(), gpuaug.CutMix()])
def test_label_mixing_checks_labels_without_min_initial(method):
    images = np.zeros((4, 8, 8, 3), np.uint8)
    labels = np.array([0, 1, 2, 1]).view(_NoInitial)
    _, targets = method(images, labels, 3, seed=0)
    assert targets.shape == (4, 3)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2"):
        method(images, np.array([0, 1, 3, 1]).view(_NoInitial), 3, seed=0)


# -- item 6: torch's stream wrapped without the deprecated ExternalStream ----------------------

class _ProtocolStream:
    """A torch stream as CuPy sees it: the CUDA stream protocol and ``cuda_stream``."""

    def __init__(self, handle):
        self.cuda_stream = handle

    def __cuda_stream__(self):
        return (0, self.cuda_stream)


def test_cupy_stream_uses_the_stream_protocol_without_a_warning():
    pytest.importorskip("cupy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ExternalStream's DeprecationWarning would fail here
        stream = _arrays.cupy_stream(_ProtocolStream(0x1234), 0)
    assert stream.ptr == 0x1234


def test_cupy_stream_falls_back_to_external_stream_for_older_torch():
    pytest.importorskip("cupy")

    class Old:
        cuda_stream = 0x5678

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        stream = _arrays.cupy_stream(Old(), 1)
    assert stream.ptr == 0x5678 and stream.device_id == 1


# -- item 7: the stated pow tolerance ---------------------------------------------------------

def test_tolerance_is_exact_for_methods_without_pow():
    want = np.linspace(0, 1, 1000, dtype=np.float32)
    got = want.copy()
    assert mismatch(got, want, "augmix") is None
    got[3] = np.nextafter(got[3], np.float32(2))
    assert pow_atol("augmix") == 0.0 and "must be exact" in mismatch(got, want, "augmix")


def test_tolerance_for_pow_methods():
    want = np.linspace(0, 1, 4000, dtype=np.float32)
    got = want.copy()
    got[10] += np.float32(POW_F32_ULPS * 2.0 ** -23)
    assert mismatch(got, want, "pixmix") is None
    got[10] = want[10] + np.float32(1e-5)  # far past a few ulps
    assert "allowed for pixmix" in mismatch(got, want, "pixmix")
    ip = want.copy()
    ip[7] += np.float32(1 / 255)  # one uint8 level inside the IPMix patch
    assert mismatch(ip, want, "ipmix") is None and mismatch(ip, want, "pixmix") is not None
    many = want + np.float32(2.0 ** -23)  # every element off: more than the allowed fraction
    assert mismatch(many, want, "pixmix") is not None


# -- item 2: a mixing set belongs to one device ------------------------------------------------

torch = pytest.importorskip("torch")


class _FakeCudaPictures:
    """Stands in for a torch CUDA uint8 (N, S, S, 3) tensor on device ``index``."""

    is_cuda = True
    dtype = "uint8"

    def __init__(self, index, n=3, side=8):
        self.device = torch.device("cuda", index)
        self.shape = (n, side, side, 3)


@pytest.fixture
def current_device(monkeypatch):
    """Set the fake current CUDA device: ``current_device(1)``."""
    def set_to(index):
        monkeypatch.setattr(_arrays, "current_cuda_device", lambda: index)
    return set_to


def test_bare_cuda_resolves_to_the_current_device(current_device, monkeypatch):
    from gpuaug import mixing

    current_device(1)
    assert _arrays.resolve_cuda_device("cuda") == 1
    assert _arrays.resolve_cuda_device("cuda:0") == 0
    with pytest.raises(ValueError, match="not a CUDA device"):
        _arrays.resolve_cuda_device("cpu")
    moved = []

    class Host:
        def to(self, device):
            moved.append(device)
            return self

    monkeypatch.setattr(torch, "from_numpy", lambda a: Host())
    mixing._place(np.zeros((1, 4, 4, 3), np.uint8), "cuda")
    assert moved == ["cuda:1"]  # not GPU 0, whatever the current device


def test_cuda_set_is_refused_on_another_device(current_device):
    from gpuaug.methods.mixing_source import mixing_source
    from gpuaug.mixing import MixingSet

    ms = MixingSet(_FakeCudaPictures(1))
    assert ms.device == "cuda:1" and ms.device_index == 1
    plan = ms.sample_plan(2, np.random.default_rng(0), 4, 4)
    current_device(0)
    with pytest.raises(ValueError, match=r"lives on cuda:1 but is used on cuda:0"):
        ms.gather(plan, "cuda")
    with pytest.raises(ValueError, match=r"lives on cuda:1 but is used on cuda:0"):
        mixing_source(ms, _arrays.ArrayKind("torch", True, 0), 4, 4)
    with pytest.raises(ValueError, match="images are on the host"):
        mixing_source(ms, _arrays.ArrayKind("numpy", False), 4, 4)
    assert mixing_source(ms, _arrays.ArrayKind("torch", True, 1), 4, 4).set is ms
    host = MixingSet(np.zeros((3, 8, 8, 3), np.uint8))
    assert host.device_index is None
    host.check_device(5)  # host sets may be copied to any device


def test_trainer_builds_the_mixing_set_on_the_ranks_device(monkeypatch):
    from types import SimpleNamespace

    from gpuaug.mixing import MixingSet
    from gpuaug.train import loop

    asked = []
    monkeypatch.setattr(MixingSet, "fractals", classmethod(lambda cls, *a, **k: asked.append(k["device"])))
    cfg = SimpleNamespace(image_size=32, loader_kind="dali", mixing=None, fractals=4, seed=0)
    loop._make_mixing(cfg, torch.device("cuda", 1))
    loop._make_mixing(SimpleNamespace(**{**vars(cfg), "loader_kind": "torch"}), torch.device("cuda", 1))
    assert asked == ["cuda:1", "cpu"]


# -- item 3: compiled kernels are keyed by, and bound to, one device ---------------------------

@pytest.fixture
def fake_cuda_compiler(monkeypatch):
    """NVRTC replaced by a recorder; the current device is 1 on this thread and 0 on any
    other (as in CUDA, where each new thread starts on device 0)."""
    import threading

    from gpuaug.executors import launch

    main = threading.current_thread()
    compiled = []

    def compile_fn(file_stem, name, device):
        compiled.append((file_stem, name, device))
        return lambda grid, block, args: None

    monkeypatch.setattr(launch, "_kernels", {})
    monkeypatch.setattr(launch, "_cuda_function", compile_fn)
    monkeypatch.setattr(launch, "_current_device", lambda: 1 if threading.current_thread() is main else 0)
    return compiled


def test_kernels_compile_in_worker_threads_for_the_callers_device(fake_cuda_compiler):
    from concurrent.futures import ThreadPoolExecutor

    from gpuaug.executors import cuda, launch

    cuda.load_kernels("cuda")  # compiles in worker threads (current device 0 there)
    assert sorted(fake_cuda_compiler) == sorted((f, k, 1) for f, k in cuda.KERNELS)
    on_1 = launch.get_kernel("apply", "gpuaug_apply", "cuda")
    assert on_1.device == 1 and len(fake_cuda_compiler) == len(cuda.KERNELS)  # cached
    with ThreadPoolExecutor(1) as pool:
        on_0 = pool.submit(launch.get_kernel, "apply", "gpuaug_apply", "cuda").result()
    assert on_0.device == 0 and on_0 is not on_1 and fake_cuda_compiler[-1] == ("apply", "gpuaug_apply", 0)
    assert launch.get_kernel("apply", "gpuaug_apply", "cuda", device=0) is on_0


def test_kernel_refuses_to_launch_on_another_device(fake_cuda_compiler):
    from concurrent.futures import ThreadPoolExecutor

    from gpuaug.executors import launch

    kernel = launch.get_kernel("histogram", "gpuaug_histograms", "cuda")  # device 1
    args = [None] * len(kernel.params)
    with ThreadPoolExecutor(1) as pool:  # current device 0 there
        with pytest.raises(RuntimeError, match=r"loaded on cuda:1 but cuda:0 is current"):
            pool.submit(kernel, 1, 32, args).result()


# -- item 4: CuPy allocations for torch callers come from torch ---------------------------------

def test_torch_allocator_serves_cupy_from_torch_tensors(monkeypatch):
    pytest.importorskip("cupy")
    made = []
    real_empty = torch.empty

    def empty(n, dtype, device):  # the caching allocator, on the CPU
        assert device == torch.device("cuda", 1)
        made.append(real_empty(n, dtype=dtype))
        return made[-1]

    monkeypatch.setattr(torch, "empty", empty)
    ptr = _arrays.torch_allocator(1)(64)
    assert ptr.ptr == made[0].data_ptr() and ptr.mem.size == 64
    assert isinstance(ptr.mem._owner, _arrays._TorchBlock) and ptr.mem._owner.tensor is made[0]


class _FakeCupyArray:
    """Just what _torch_view reads of a CuPy array backed by a torch block."""

    def __init__(self, block, offset, shape, strides, dtype):
        self.dtype, self.shape, self.strides = np.dtype(dtype), shape, strides
        self.size = int(np.prod(shape))

        class Data:
            pass

        self.data = Data()
        self.data.ptr = block.tensor.data_ptr() + offset

        class Mem:
            _owner = block

        self.data.mem = Mem()


def test_results_are_views_of_the_torch_block():
    base = torch.arange(64, dtype=torch.uint8)
    block = _arrays._TorchBlock(base)
    as_f32 = base.view(torch.float32)  # 16 floats
    x = _FakeCupyArray(block, 8, (2, 3), (12, 4), np.float32)  # rows of 3 floats from float 2
    view = _arrays._torch_view(x)
    assert view.dtype == torch.float32 and tuple(view.shape) == (2, 3)
    assert view.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()  # shared, torch-owned
    assert torch.equal(view, as_f32[2:8].reshape(2, 3))
    assert _arrays._torch_view(_FakeCupyArray(block, 2, (3,), (4,), np.float32)) is None  # misaligned
    assert _arrays._torch_view(_FakeCupyArray(_arrays._TorchBlock(base), 0, (0, 3), (12, 4), np.float32)).shape == (0, 3)


# -- item 5: a CUDA mixing set is converted to CuPy once, not per batch -------------------------

def test_cuda_set_converts_to_cupy_once(monkeypatch):
    import contextlib

    cupy = pytest.importorskip("cupy")
    from gpuaug.mixing import MixingSet

    calls = []
    monkeypatch.setattr(cupy, "from_dlpack", lambda t: calls.append(t) or np.zeros(t.shape, np.uint8))
    monkeypatch.setattr(cupy.cuda, "Device", lambda index: contextlib.nullcontext())
    ms = MixingSet(_FakeCudaPictures(1))
    first = ms.cupy_images()
    assert ms.cupy_images() is first and calls == [ms.images]
