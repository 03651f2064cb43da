"""The cuda executor for image-level ops: batched kernels from ``kernels/*.cu``.

One launch per kernel family and batch, families no sample uses are skipped:

1. ``histogram.cu``  channel histograms (autocontrast, equalize) and grey sums (contrast)
2. ``lut.cu``        per (sample, channel) LUTs of the point ops
3. ``apply.cu``      every op but downscale, per pixel, switching on the sample's op id
4. ``resize.cu``     downscale: Pillow's BILINEAR resize down and back up, one launch per
                     separable pass (four), the fixed-point taps computed in the kernel

The host only prepares small per-sample parameter arrays (numpy, no per-sample Python:
Python runs per distinct rotate angle and per distinct downscale size, both cached) and
sends them in one packed upload per step (:mod:`.staging`: pinned and asynchronous on
CUDA). Every kernel reads each sample from its own source address, so
:func:`apply_chains_xp` runs the chains of a batch together, one step for all of them,
skipping rows at steps where they have no op. The same code runs on CuPy arrays (backend
"cuda"), numpy arrays (backend "emulated": the kernels executed on the CPU, for tests
without a GPU) or recording stand-ins (backend "recording": host cost only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _arrays
from ..catalogue import OP_FAMILIES, OP_IDS
from . import staging
from .launch import array_module as _xp, get_kernel
from .params import affine_coefficients

BLOCK = 256
_MAX_BLOCKS_PER_SAMPLE = 64
_ID = OP_IDS
_FAMILY = OP_FAMILIES
_HIST_OPS = np.array([_ID["autocontrast"], _ID["equalize"], _ID["contrast"]], dtype=np.int32)
_NEEDS_HIST = np.isin(np.arange(len(_FAMILY)), _HIST_OPS)  # by op id
_IS_LUT = _FAMILY == "lut"
_DOWNSCALE = _ID["downscale"]


KERNELS = (
    ("histogram", "gpuaug_histograms"),
    ("lut", "gpuaug_build_luts"),
    ("apply", "gpuaug_apply"),
    ("resize", "gpuaug_resample_pass"),
)


def load_kernels(backend: str, device: int | None = None) -> None:
    """Compile and load every kernel of this executor now (files build concurrently), for
    backend "cuda" on ``device`` (default: the caller's current device; the worker
    threads are told it, since each thread starts on device 0)."""
    from concurrent.futures import ThreadPoolExecutor

    from .launch import _current_device

    _xp(backend)  # validates the backend name
    if backend == "cuda" and device is None:
        device = _current_device()
    with ThreadPoolExecutor(len(KERNELS)) as pool:
        list(pool.map(lambda fk: get_kernel(fk[0], fk[1], backend, device), KERNELS))


def _blocks(n_pixels: int, pixels_per_thread: int) -> int:
    return max(1, min(_MAX_BLOCKS_PER_SAMPLE, -(-n_pixels // (BLOCK * pixels_per_thread))))


def downscale_sizes(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """(n, 2) intermediate (height, width) per factor; vectorised params.downscale_size."""
    small_h = np.maximum(1, np.floor(height / values + 0.5)).astype(np.int32)
    small_w = np.maximum(1, np.floor(width / values + 0.5)).astype(np.int32)
    return np.stack([small_h, small_w], axis=1)


def downscale_plan(small: np.ndarray, height: int, width: int) -> np.ndarray:
    """Launch parameters of downscale for samples with intermediate sizes ``small`` (n, 2):
    int32 (4, n, 4), per pass and sample (in_h, in_w, axis, out_len) for ``resize.cu``
    (axis 0 horizontal, 1 vertical): two passes per Pillow resize, down to ``small`` and
    back, in Pillow's order; an axis that keeps its size gets an identity pass (exact).
    All vectorised; the kernel computes the filter taps itself."""
    small = np.asarray(small, dtype=np.int64).reshape(-1, 2)
    sh, sw = small[:, 0], small[:, 1]
    h, w = np.full_like(sh, height), np.full_like(sw, width)
    passes = np.empty((4, small.shape[0], 4), dtype=np.int32)
    for first, (in_h, in_w, out_h, out_w) in ((0, (h, w, sh, sw)), (2, (sh, sw, h, w))):
        vertical = _vertical_first(in_h, in_w, out_h, out_w)
        # vertical first: (in_h, in_w) -> (out_h, in_w) -> (out_h, out_w); else via (in_h, out_w)
        passes[first] = np.stack([in_h, in_w, np.where(vertical, 1, 0), np.where(vertical, out_h, out_w)], axis=1)
        passes[first + 1] = np.stack([np.where(vertical, out_h, in_h), np.where(vertical, in_w, out_w),
                                      np.where(vertical, 0, 1), np.where(vertical, out_w, out_h)], axis=1)
    return passes


def _vertical_first(in_h, in_w, out_h, out_w):
    """params.pil_vertical_first, vectorised."""
    return (out_h < in_h) & ((in_h - out_h) > 2 * (in_w - out_w))


def _check_inputs(xp, images, ids, values):
    if not isinstance(images, xp.ndarray):
        raise TypeError(f"images must be a {xp.__name__} array for this backend, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"images must have dtype uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError(f"images must be an NHWC batch (N, H, W, 3) with H, W >= 1, got shape {images.shape}")
    if not images.flags.c_contiguous:
        raise ValueError("images must be C-contiguous")
    n_src = images.shape[0]
    n = ids.shape[0] if isinstance(ids, np.ndarray) and ids.ndim == 1 else n_src
    if (n_src == 0 and n) or (n_src and n % n_src):
        raise ValueError(f"ids must have one entry per image or per image and chain (a multiple of "
                         f"{n_src}), got {n}")
    for name, arr, dtype in (("ids", ids, np.int32), ("values", values, np.float64)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a host numpy array, got {type(arr).__name__}")
        if arr.dtype != dtype or arr.shape != (n,):
            raise ValueError(f"{name} must be {np.dtype(dtype)} of shape ({n},), got {arr.dtype} {arr.shape}")
    if n and (ids.min() < 0 or ids.max() >= len(_FAMILY)):
        raise ValueError(f"ids must be op ids in 0..{len(_FAMILY) - 1}")


def apply_ops_xp(images, ids: np.ndarray, values: np.ndarray, backend: str):
    """Apply op ``ids[i]`` with ``values[i]`` to ``images[i]``; a new array of the same kind.

    ``images``: C-contiguous (N, H, W, 3) uint8, a CuPy array for backend "cuda" (on the
    current device and stream) or a numpy array for "emulated". ``ids`` (int32) and
    ``values`` (float64) are host arrays of length N, already range-checked
    (``ops.check_values``) -- or of length m N: several chains of the batch in one call,
    output sample v made from ``images[v % N]`` (result (m N, H, W, 3)). Chains of
    several steps: :func:`apply_chains_xp`.
    """
    xp = _xp(backend)
    _check_inputs(xp, images, ids, values)
    n, (_, h, w, _) = ids.shape[0], images.shape
    out = xp.empty((n, h, w, 3), dtype=np.uint8)
    if n:
        _step(xp, backend, images, None, np.zeros(n, bool), ids, values, out, np.ones(n, bool))
    return out


@dataclass
class ChainRows:
    """Chains left for their reader (``apply_chains_xp(defer_lut=...)``): row v's pixels
    are at device address ``rows[v]`` (uint64), read through the (3, 256) uint8 LUT at
    ``luts[v]`` where that is non-zero. ``out``: the (M, H, W, 3) array of the rows that
    were written (None when no row has an op); ``keep``: the device arrays the addresses
    point into (hold them until the reading kernel is launched)."""

    rows: np.ndarray
    luts: np.ndarray
    keep: tuple
    out: object = None


def apply_chains_xp(images, ids: np.ndarray, values: np.ndarray, backend: str, needed=None,
                    defer_lut=False):
    """Run M chain tables (``ids``, ``values`` of shape (M, D), row v a chain of
    ``images[v % N]``) and return the (M, H, W, 3) results, or ``images`` itself when no
    row has an op.

    One executor step per chain step for all rows, and no pass over a row at a step where
    it has no op: each row's identity steps are moved to the front (identity commutes, so
    the chain is the same), a row reads the input batch until its first op and its own
    previous result after that, and rows without any op are copied at the last step --
    unless ``needed`` (bool (M,)) says the caller never reads them (left undefined).

    ``defer_lut`` (True, or bool (M,): the rows the caller only reads, through
    :class:`ChainRows`) returns a :class:`ChainRows` instead: such a row whose last op is
    a LUT op is not written (its LUT is built; the reader applies it), and such a row
    without ops points at its input image (no copy). The other rows are written to
    ``ChainRows.out`` as usual.
    """
    xp = _xp(backend)
    m, depth = ids.shape
    has_op = ids != _ID["identity"]
    reader = defer_lut is not False and defer_lut is not None
    if m == 0 or not has_op.any():
        if reader:
            return _input_rows(images, m)
        return images
    _check_inputs(xp, images, ids[:, 0], values[:, 0])
    ids, values, has_op = _identity_first(ids, values, has_op)
    steps = np.flatnonzero(has_op.any(axis=0))
    _, h, w, _ = images.shape
    copy_opless = np.ones(m, bool) if needed is None else np.asarray(needed, bool).reshape(m)
    deferrable = np.zeros(m, bool)
    if reader:
        deferrable = np.broadcast_to(np.asarray(defer_lut, bool), (m,))
        copy_opless = copy_opless & ~deferrable
    started = np.zeros(m, bool)
    prev = None
    for s in steps.tolist():
        last = s == steps[-1]
        process = has_op[:, s] | (last & ~started & copy_opless)  # the last step copies op-less rows
        step_ids = np.ascontiguousarray(ids[:, s])
        defer = (process & _IS_LUT[step_ids] & deferrable) if (reader and last) else None
        out = xp.empty((m, h, w, 3), dtype=np.uint8)
        src, luts = _step(xp, backend, images, prev, started, step_ids,
                          np.ascontiguousarray(values[:, s]), out, process, defer)
        if defer is not None:
            rows = _input_rows(images, m).rows
            rows = np.where(started | process, np.uint64(staging.address(out))
                            + np.arange(m, dtype=np.uint64) * np.uint64(h * w * 3), rows)
            rows = np.where(defer, src, rows)  # a deferred row: the step's input, through its LUT
            lut_rows = np.zeros(m, np.uint64)
            if defer.any():
                lut_rows[defer] = np.uint64(staging.address(luts)) + np.flatnonzero(defer).astype(np.uint64) * 768
            return ChainRows(rows, lut_rows, (images, prev, out, luts), out)
        started |= has_op[:, s]
        prev = out
    return prev


def _input_rows(images, m: int) -> ChainRows:
    n_src, h, w, _ = images.shape
    v = np.arange(m, dtype=np.uint64) % np.uint64(max(n_src, 1))
    rows = np.uint64(staging.address(images)) + v * np.uint64(h * w * 3)
    return ChainRows(rows, np.zeros(m, np.uint64), (images,))


def _identity_first(ids, values, has_op):
    """Each row's identity steps moved to the front, its ops after them in order (a
    stable partition, by one scatter: cheaper than a row-wise argsort)."""
    m, depth = ids.shape
    ops_before = np.empty((m, depth), np.int64)  # column by column: numpy's cumsum along short rows is slow
    ops_before[:, 0] = 0
    for c in range(1, depth):
        np.add(ops_before[:, c - 1], has_op[:, c - 1], out=ops_before[:, c])
    n_ops = ops_before[:, -1:] + has_op[:, -1:]
    dest = np.where(has_op, depth - n_ops + ops_before, np.arange(depth) - ops_before)
    flat = (dest + np.arange(m)[:, None] * depth).ravel()
    out = []
    for a in (ids, values, has_op):
        b = np.empty_like(a)
        b.reshape(-1)[flat] = a.reshape(-1)
        out.append(b)
    return out


def _step(xp, backend, images, prev, started, ids, values, out, process, defer=None):
    """Apply op ``ids[v]`` to row v for every v in ``process`` (a mask), reading
    ``prev[v]`` where ``started[v]`` else ``images[v % N]``, writing ``out[v]`` -- except
    rows in ``defer`` (LUT ops): their LUT is built but not applied. Returns the host
    source addresses (uint64 per row) and the (n, 3, 256) LUT array (or None)."""
    n_src, h, w, _ = images.shape
    n = ids.shape[0]
    n_pixels = h * w
    stride = n_pixels * 3
    rows = np.arange(n, dtype=np.uint64)
    src = np.uint64(staging.address(images)) + (rows % np.uint64(n_src)) * np.uint64(stride)
    if prev is not None:
        src = np.where(started, np.uint64(staging.address(prev)) + rows * np.uint64(stride), src)

    # Which samples each family works on (host numpy, all vectorised).
    hist_samples = np.flatnonzero(process & _NEEDS_HIST[ids]).astype(np.int32)
    lut_samples = np.flatnonzero(process & _IS_LUT[ids]).astype(np.int32)
    down = process & (ids == _DOWNSCALE)
    applied = process & ~down if defer is None else process & ~down & ~defer
    apply_samples = np.flatnonzero(applied).astype(np.int32)
    down_samples = np.flatnonzero(down).astype(np.int32)
    hist_slot = np.full(n, -1, dtype=np.int32)  # row -> its compact histogram slot
    hist_slot[hist_samples] = np.arange(hist_samples.size, dtype=np.int32)
    parts = {"ids": ids, "hist": hist_samples, "hist_slot": hist_slot, "lut": lut_samples, "apply": apply_samples,
             "values": values, "src": src,
             # per listed apply sample (row j: apply_samples[j]), not per row
             "coeffs": affine_coefficients(ids[apply_samples], values[apply_samples], h, w)}
    if down_samples.size:
        passes = downscale_plan(downscale_sizes(values[down_samples], h, w), h, w)
        parts.update(down=down_samples, passes=passes.ravel())
    dev = staging.upload(xp, parts)  # one (pinned, async) upload for the whole step

    hist = lum_sum = luts = placeholder = None
    if hist_samples.size:
        # one memset: lum_sum then the histograms (3 x 256 uint32) of the listed samples only
        nh = hist_samples.size
        counts = xp.zeros(nh + nh * 3 * 128, dtype=np.uint64)
        lum_sum = counts[:nh]
        hist = counts[nh:].view(np.uint32)
        get_kernel("histogram", "gpuaug_histograms", backend)(
            (_blocks(n_pixels, 16), hist_samples.size), BLOCK,
            (dev["src"], dev["ids"], dev["hist"], n_pixels, hist, lum_sum))
    if hist is None or not lut_samples.size:
        placeholder = xp.empty(8, dtype=np.uint64)  # never read: no sample needs it
    if hist is None:
        lum_sum = placeholder
        hist = placeholder.view(np.uint32)

    if lut_samples.size:
        luts = xp.empty((n, 3, 256), dtype=np.uint8)
        get_kernel("lut", "gpuaug_build_luts", backend)(
            (3, lut_samples.size), BLOCK,
            (dev["ids"], dev["values"], dev["lut"], hist, dev["hist_slot"], n_pixels, luts))
    else:
        luts = placeholder.view(np.uint8)
    built_luts = luts if lut_samples.size else None

    if apply_samples.size:
        get_kernel("apply", "gpuaug_apply", backend)(
            (_blocks(n_pixels, 4), apply_samples.size), BLOCK,
            (dev["src"], out, dev["apply"], dev["ids"], dev["values"], dev["coeffs"], luts, lum_sum,
             dev["hist_slot"], h, w))

    if down_samples.size:
        # source -> a -> b (small) -> a -> out; every intermediate fits in h x w.
        resample = get_kernel("resize", "gpuaug_resample_pass", backend)
        nd = down_samples.size
        buf_a = xp.empty((nd, h, w, 3), dtype=np.uint8)
        buf_b = xp.empty((nd, h, w, 3), dtype=np.uint8)
        grid = (_blocks(n_pixels, 4), nd)
        passes = [dev["passes"][k * nd * 4:(k + 1) * nd * 4] for k in range(4)]  # contiguous views
        # first pass: each row reads its own source (images[v % N] or prev[v])
        resample(grid, BLOCK, (images, buf_a, dev["down"], passes[0], stride, 2, 0, dev["src"]))
        for k, (src_arr, dst, dst_by_sample) in enumerate(((buf_a, buf_b, 0), (buf_b, buf_a, 0), (buf_a, out, 1)), 1):
            resample(grid, BLOCK, (src_arr, dst, dev["down"], passes[k], stride, 0, dst_by_sample, dev["src"]))
    return src, built_luts


def apply_ops_device(images, ids: np.ndarray, values: np.ndarray, kind: _arrays.ArrayKind):
    """apply_ops_xp on CUDA images (torch tensor or CuPy array), result in the same kind.

    Runs on the input's device; for torch tensors on torch's current stream of that
    device (for CuPy arrays on CuPy's current stream). Image data is shared through
    DLPack, never copied to the host.
    """
    with _arrays.cuda_scope(kind):
        return _arrays.from_cupy(apply_ops_xp(_arrays.to_cupy(images), ids, values, "cuda"), kind)
