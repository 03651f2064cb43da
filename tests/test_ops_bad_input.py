"""Bad input fails early and clearly; the accepted array kinds round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpuaug import ops
from imagegen import natural


def batch(n=3, h=16, w=20, seed=0):
    return np.ascontiguousarray(np.stack([natural(h, w, seed + i) for i in range(n)]))


def names_for(n, name="rotate"):
    return [name] * n


# ---------------------------------------------------------------- dtype and type

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint16, np.int32, np.bool_])
def test_wrong_numpy_dtype(dtype):
    x = batch().astype(dtype)
    with pytest.raises(TypeError, match="dtype"):
        ops.apply_batch(x, names_for(3), [5.0] * 3)


def test_float_hint_and_single_image():
    x = batch().astype(np.float32) / 255
    with pytest.raises(TypeError, match=r"dtype uint8, got float32.*float images"):
        ops.apply_batch(x, names_for(3), [5.0] * 3)
    with pytest.raises(TypeError, match="dtype"):
        ops.apply("rotate", x[0], 5.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.int8])
def test_wrong_torch_dtype(dtype):
    x = torch.from_numpy(batch()).to(dtype)
    with pytest.raises(TypeError, match="dtype"):
        ops.apply_batch(x, names_for(3), [5.0] * 3)


@pytest.mark.parametrize("obj", [batch().tolist(), tuple(batch().tolist()), "images", None, 3])
def test_non_array_input(obj):
    with pytest.raises(TypeError, match="numpy array"):
        ops.apply_batch(obj, names_for(3), [5.0] * 3)


def test_list_to_apply_is_a_type_error():
    with pytest.raises(TypeError):
        ops.apply("rotate", natural(8, 8).tolist(), 5.0)  # a nested list of Python ints is not uint8


def test_torch_non_cpu_non_cuda_device():
    x = torch.empty((2, 8, 8, 3), dtype=torch.uint8, device="meta")
    with pytest.raises(TypeError, match="meta"):
        ops.apply_batch(x, names_for(2), [1.0, 2.0])


# ---------------------------------------------------------------- layout

def test_nchw_numpy_and_torch():
    x = np.ascontiguousarray(batch().transpose(0, 3, 1, 2))  # (N, 3, H, W)
    with pytest.raises(ValueError, match="NCHW"):
        ops.apply_batch(x, names_for(3), [5.0] * 3)
    with pytest.raises(ValueError, match="NCHW"):
        ops.apply_batch(torch.from_numpy(x), names_for(3), [5.0] * 3)


@pytest.mark.parametrize("shape", [(16, 20, 3), (16, 20), (1, 1, 16, 20, 3), (48,)])
def test_wrong_rank_to_apply_batch(shape):
    x = np.zeros(shape, dtype=np.uint8)
    with pytest.raises(ValueError, match="4-d NHWC"):
        ops.apply_batch(x, names_for(1), [5.0])


@pytest.mark.parametrize("shape", [(16, 20), (1, 16, 20, 3), (16,)])
def test_wrong_rank_to_apply(shape):
    with pytest.raises(ValueError, match="H x W x 3"):
        ops.apply("rotate", np.zeros(shape, dtype=np.uint8), 5.0)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_wrong_channel_count(channels):
    x = np.zeros((2, 16, 20, channels), dtype=np.uint8)
    with pytest.raises(ValueError, match="3 .RGB. channels"):
        ops.apply_batch(x, names_for(2), [5.0] * 2)
    with pytest.raises(ValueError, match="3 .RGB. channels"):
        ops.apply_batch(torch.from_numpy(x), names_for(2), [5.0] * 2)
    with pytest.raises(ValueError, match="3 .RGB. channels"):
        ops.apply("rotate", x[0], 5.0)


@pytest.mark.parametrize("shape", [(2, 0, 20, 3), (2, 16, 0, 3)])
def test_zero_height_or_width(shape):
    with pytest.raises(ValueError, match="height and width"):
        ops.apply_batch(np.zeros(shape, dtype=np.uint8), names_for(2), [5.0] * 2)


def _numpy_views():
    b = batch(n=4)
    big = np.zeros((4, 16, 40, 3), dtype=np.uint8)
    return {
        "every other image": b[::2],
        "column slice": big[:, :, :20],
        "reversed columns": b[:, :, ::-1],
        "fortran order": np.asfortranarray(b),
        "nchw permuted": np.ascontiguousarray(b.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1),
        "broadcast": np.broadcast_to(b[:1], b.shape),
    }


@pytest.mark.parametrize("view", list(_numpy_views()))
def test_non_contiguous_numpy(view):
    x = _numpy_views()[view]
    assert not x.flags.c_contiguous
    with pytest.raises(ValueError, match="contiguous"):
        ops.apply_batch(x, names_for(x.shape[0]), [5.0] * x.shape[0])


def test_non_contiguous_single_image_to_apply():
    img = natural(16, 20)
    with pytest.raises(ValueError, match="contiguous"):
        ops.apply("rotate", img[:, ::-1], 5.0)
    with pytest.raises(ValueError, match="contiguous"):
        ops.apply("rotate", img[:, 2:10], 5.0)


def _torch_views():
    t = torch.from_numpy(batch(n=4))
    big = torch.zeros((4, 16, 40, 3), dtype=torch.uint8)
    return {
        "every other image": t[::2],
        "column slice": big[:, :, :20],
        "nchw permuted": t.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1),
        "transposed hw": t.transpose(1, 2),
        "expanded": t[:1].expand(4, -1, -1, -1),
    }


@pytest.mark.parametrize("view", list(_torch_views()))
def test_non_contiguous_torch(view):
    x = _torch_views()[view]
    assert not x.is_contiguous()
    with pytest.raises(ValueError, match="contiguous"):
        ops.apply_batch(x, names_for(x.shape[0]), [5.0] * x.shape[0])


def test_contiguous_views_are_fine():
    b = batch(n=4)
    ro = b.copy()
    ro.setflags(write=False)
    for x in (b[1:3], ro, torch.from_numpy(b)[1:3]):
        n = x.shape[0]
        out = ops.apply_batch(x, names_for(n, "invert"), [0.0] * n)
        assert np.array_equal(np.asarray(out), 255 - np.asarray(x))


# ---------------------------------------------------------------- names and values

@pytest.mark.parametrize("bad", ["rotat", "Rotate", "", "autocontrast ", "downsample"])
def test_unknown_op_name(bad):
    with pytest.raises(ValueError, match=f"unknown op {bad!r}"):
        ops.apply_batch(batch(), ["rotate", bad, "invert"], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=f"unknown op {bad!r}"):
        ops.apply(bad, natural(8, 8), 1.0)


@pytest.mark.parametrize("bad", [18, -1, 1000])
def test_unknown_op_id(bad):
    with pytest.raises(ValueError, match=f"unknown op id {bad}"):
        ops.apply_batch(batch(), [1, bad, 2], [1.0, 1.0, 1.0])


@pytest.mark.parametrize("name,value", [
    ("posterize", 9), ("posterize", 2.5), ("posterize", -1),
    ("solarize", 300), ("solarize", 257), ("solarize", -1), ("solarize", 128.5),
    ("autocontrast", 50), ("autocontrast", 75.0), ("autocontrast", -0.1),
    ("color", -1.0), ("contrast", -1.0), ("brightness", -1.0), ("sharpness", -1.0),
    ("color", 10.5), ("rotate", 361.0), ("rotate", -400.0), ("shear_x", 11.0), ("shear_y", -11.0),
    ("translate_x", 2e6), ("translate_y", -2e6), ("downscale", 0.5), ("downscale", 100.0),
])
def test_out_of_range_value_names_op_and_index(name, value):
    names = ["invert", "rotate", name, "flip"]
    values = [0.0, 5.0, value, 0.0]
    with pytest.raises(ValueError, match=rf"values\[2\] = .*op '{name}'"):
        ops.apply_batch(batch(n=4), names, values)
    with pytest.raises(ValueError, match=rf"values\[0\] = .*op '{name}'"):
        ops.apply(name, natural(8, 8), value)


VALUE_OPS = [n for n in ops.OP_NAMES if ops.OPS[n].uses_value]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", VALUE_OPS)
def test_non_finite_values(name, bad):
    with pytest.raises(ValueError, match=rf"values\[1\] = .*op '{name}'"):
        ops.apply_batch(batch(n=2), ["invert", name], [0.0, bad])


def test_first_bad_index_is_reported():
    names = ["rotate", "rotate", "posterize", "rotate"]
    with pytest.raises(ValueError, match=r"values\[1\]"):
        ops.apply_batch(batch(n=4), names, [0.0, 500.0, 3, 600.0])


def test_boundary_values_accepted():
    cases = [("posterize", 0), ("posterize", 8), ("solarize", 0), ("solarize", 256),
             ("autocontrast", 0), ("autocontrast", 49.999), ("color", 0), ("color", 10),
             ("rotate", -360), ("rotate", 360), ("downscale", 1), ("downscale", 64)]
    names, values = zip(*cases)
    out = ops.apply_batch(batch(n=len(cases)), list(names), list(values))
    assert out.shape[0] == len(cases)


@pytest.mark.parametrize("n_names,n_values", [(3, 2), (2, 3), (3, 4), (4, 3)])
def test_length_mismatch(n_names, n_values):
    x = batch(n=3)
    with pytest.raises(ValueError, match="one entry per image"):
        ops.apply_batch(x, ["rotate"] * n_names, [1.0] * n_values)


def test_two_dimensional_values():
    with pytest.raises(ValueError, match="one entry per image"):
        ops.apply_batch(batch(n=3), ["rotate"] * 3, np.ones((3, 1)))


@pytest.mark.parametrize("scalar", [5.0, 5, np.float64(5.0), np.array(5.0), torch.tensor(5.0)])
def test_scalar_values(scalar):
    with pytest.raises(ValueError, match="scalar"):
        ops.apply_batch(batch(n=3), ["rotate"] * 3, scalar)


def test_single_string_names():
    with pytest.raises(TypeError, match="single string"):
        ops.apply_batch(batch(n=3), "rotate", [1.0] * 3)


@pytest.mark.parametrize("values", [["a", "b", "c"], [1.0, object(), 2.0]])
def test_non_numeric_values(values):
    with pytest.raises(TypeError, match="numeric"):
        ops.apply_batch(batch(n=3), ["rotate"] * 3, values)


def test_none_value_for_a_value_op_is_rejected():
    # numpy turns None into NaN in a float array: refused as a non-finite parameter
    with pytest.raises((TypeError, ValueError), match=r"values\[0\]|numeric"):
        ops.apply_batch(batch(n=3), ["rotate"] * 3, [None, 1.0, 2.0])


def test_values_and_names_as_arrays_and_tensors():
    x = batch(n=3)
    want = ops.apply_batch(x, ["rotate", "solarize", "invert"], [10.0, 100.0, 0.0])
    ids = ops.op_ids(["rotate", "solarize", "invert"])
    got = ops.apply_batch(x, torch.from_numpy(ids.astype(np.int64)), torch.tensor([10.0, 100.0, 0.0]))
    assert np.array_equal(got, want)
    got = ops.apply_batch(x, np.array(["rotate", "solarize", "invert"]), np.array([10, 100, 0], dtype=np.int32))
    assert np.array_equal(got, want)


# ---------------------------------------------------------------- executors

def test_cuda_executor_on_host_arrays():
    with pytest.raises(ValueError, match="CUDA device"):
        ops.apply_batch(batch(), names_for(3), [1.0] * 3, executor="cuda")
    with pytest.raises(ValueError, match="CUDA device"):
        ops.apply_batch(torch.from_numpy(batch()), names_for(3), [1.0] * 3, executor="cuda")


@pytest.mark.parametrize("bad", ["gpu", "CPU", "", None])
def test_unknown_executor(bad):
    with pytest.raises(ValueError, match="executor"):
        ops.apply_batch(batch(), names_for(3), [1.0] * 3, executor=bad)


# ---------------------------------------------------------------- kinds round-trip

def test_torch_cpu_in_torch_cpu_out():
    x = batch(n=6, h=21, w=17)
    names = ["rotate", "equalize", "color", "translate_y", "mirror", "downscale"]
    values = [-12.0, 0.0, 1.4, 3.0, 0.0, 2.5]
    want = ops.apply_batch(x, names, values)
    t = torch.from_numpy(x.copy())
    got = ops.apply_batch(t, names, values)
    assert isinstance(got, torch.Tensor) and got.device.type == "cpu" and got.dtype == torch.uint8
    assert tuple(got.shape) == x.shape
    assert np.array_equal(got.numpy(), want)
    assert np.array_equal(t.numpy(), x), "input tensor was modified"
    assert got.data_ptr() != t.data_ptr()
    for executor in ("auto", "cpu"):
        assert torch.equal(ops.apply_batch(t, names, values, executor=executor), got)


def test_numpy_in_numpy_out_and_input_untouched():
    x = batch(n=3)
    before = x.copy()
    out = ops.apply_batch(x, ["invert", "flip", "posterize"], [0, 0, 2])
    assert type(out) is np.ndarray and out.dtype == np.uint8 and out.shape == x.shape
    assert np.array_equal(x, before)
    assert not np.shares_memory(out, x)


def test_apply_on_torch_image_returns_numpy():
    img = natural(12, 9)
    got = ops.apply("rotate", torch.from_numpy(img.copy()), 20.0)
    assert isinstance(got, np.ndarray)
    assert np.array_equal(got, ops.apply("rotate", img, 20.0))


@pytest.mark.parametrize("make", [
    lambda: np.zeros((0, 16, 20, 3), dtype=np.uint8),
    lambda: torch.zeros((0, 16, 20, 3), dtype=torch.uint8),
])
def test_empty_batch(make):
    x = make()
    for names, values in (([], []), (np.array([], dtype=np.int32), np.array([])), ((), ())):
        out = ops.apply_batch(x, names, values)
        assert type(out) is type(x) and tuple(out.shape) == (0, 16, 20, 3)
    with pytest.raises(ValueError, match="one entry per image"):
        ops.apply_batch(x, ["rotate"], [1.0])
