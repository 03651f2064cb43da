"""How many bytes a method's kernels must move for a batch: counted from its plan by
running the method's own ``execute`` on a tracing backend (see bench/README.md), or --
:func:`record`, what the roofline suite uses -- from the cuda executor's own launches on
the ``recording`` backend (exact, and never out of step with the executor).

The tracing backend mirrors what the ``cuda`` backend launches:

* Image-level op steps (``backend.apply_ops``; ``run_chain`` already skips steps that are
  identity for the whole batch) are the CUDA executor's kernel families, launched only
  when some sample uses them (mirrors ``gpuaug.executors.cuda.apply_ops_xp``):
  histogram (reads the uint8 images of samples with autocontrast/equalize/contrast),
  LUT build (tables only), apply (reads + writes every non-downscale sample, identity
  samples are copied), resize (downscale samples: full -> small -> full, two launches).
* The float mixing (``gpuaug.executors.mixops``: weighted_mix, pixmix_rounds, ipmix_patch,
  dynamic_mix) is one fused kernel of ``kernels/mix.cu`` per call; its bytes are what the
  kernel touches (``mix_kernels.traffic``: one read of each uint8 input element it uses,
  one write of its output; ipmix_patch only the box's elements, plus a full copy of the
  chain when it cannot work in place).
* Anything else the method does on ``backend.xp`` is CuPy element-wise work: each
  ufunc / ``where`` / ``clip`` / ``astype`` / ``zeros`` is one kernel that reads each
  array operand once and writes its result once (CuPy does not fuse these calls).
* Mixing pictures: one gather kernel (read the crops, write them densely).
* Small host->device uploads of plan data are counted apart (``h2d_bytes``).

To make tracing cheap and exact, the plan is sampled at the real size (H, W) with the
timed run's seed, but executed on arrays of a small odd spatial size (11 x 13): element-wise
passes and op kernels touch every pixel of every operand, so each 4-d operand's bytes are
scaled by (H / 11 if its height is 11) x (W / 13 if its width is 13). Per-sample
coefficients (N, 1, 1, 1) are not scaled. Pixel values never change which passes run
(plans are sampled on the host before execution), so the trace sees exactly the passes
the timed run launched.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

TRACE_H, TRACE_W = 11, 13


class _Tracer:
    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self.sy, self.sx = height / TRACE_H, width / TRACE_W
        self.bytes = Counter()      # device bytes by category
        self.launches = Counter()   # kernel launches by category
        self.large = 0              # element-wise launches over a full image batch
        self.h2d = 0
        self.ops = Counter()        # element-wise launches by function name

    def nbytes(self, a) -> float:
        if not isinstance(a, np.ndarray):
            return 0.0
        b = float(a.nbytes)
        if a.ndim == 4:
            if a.shape[1] == TRACE_H:
                b *= self.sy
            if a.shape[2] == TRACE_W:
                b *= self.sx
        return b

    def elementwise(self, name, operands, results):
        read = sum(self.nbytes(a) for a in operands)
        write = sum(self.nbytes(r) for r in results)
        self.bytes["elementwise_read"] += read
        self.bytes["elementwise_write"] += write
        self.launches["elementwise"] += 1
        self.ops[name] += 1
        if any(isinstance(r, np.ndarray) and r.ndim == 4 and r.shape[1:3] == (TRACE_H, TRACE_W)
               and r.shape[0] > 1 for r in results):
            self.large += 1


_current: list[_Tracer] = []


def _raw(x):
    if isinstance(x, Traced):
        return x.view(np.ndarray)
    if isinstance(x, tuple):
        return tuple(_raw(v) for v in x)
    if isinstance(x, list):
        return [_raw(v) for v in x]
    return x


def _wrap(x):
    if isinstance(x, np.ndarray) and not isinstance(x, Traced):
        return x.view(Traced)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    return x


def _arrays(x):
    if isinstance(x, np.ndarray):
        return [x]
    if isinstance(x, (tuple, list)):
        return [a for v in x for a in _arrays(v)]
    return []


class Traced(np.ndarray):
    """A numpy array that records every element-wise kernel CuPy would launch on it."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raw_in = _raw(inputs)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _raw(out)
        result = getattr(ufunc, method)(*raw_in, **kwargs)
        if _current:
            written = _arrays(kwargs["out"]) if out is not None else _arrays(result)
            _current[-1].elementwise(ufunc.__name__, _arrays(raw_in), written)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        raw_args, raw_kwargs = _raw(args), {k: _raw(v) for k, v in kwargs.items()}
        result = func(*raw_args, **raw_kwargs)
        if _current and isinstance(result, np.ndarray):
            name = func.__name__
            if name in ("empty_like", "empty"):
                pass
            elif name in ("zeros_like", "ones_like", "full_like"):
                _current[-1].elementwise(name, [], [result])
            else:
                _current[-1].elementwise(name, _arrays(raw_args) + _arrays(list(raw_kwargs.values())), [result])
        return _wrap(result)

    def astype(self, dtype, *args, **kwargs):
        raw = self.view(np.ndarray)
        result = raw.astype(dtype, *args, **kwargs)
        if _current and result is not raw:
            _current[-1].elementwise("astype", [raw], [result])
        return _wrap(result)

    def __getitem__(self, index):
        result = np.ndarray.__getitem__(self.view(np.ndarray), _raw(index))
        if _current and isinstance(result, np.ndarray) and not np.shares_memory(result, self.view(np.ndarray)):
            _current[-1].elementwise("getitem", [result] + _arrays(_raw(index)), [result])
        return _wrap(result)


class _TracedXP:
    """numpy as the tracing backend's ``xp``: array creation is counted and returns Traced."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def zeros(shape, dtype=float, **kw):
        result = np.zeros(shape, dtype=dtype, **kw)
        if _current:
            _current[-1].elementwise("zeros", [], [result])
        return _wrap(result)

    @staticmethod
    def empty(shape, dtype=float, **kw):
        return _wrap(np.empty(shape, dtype=dtype, **kw))

    @staticmethod
    def asarray(a, dtype=None):
        if isinstance(a, Traced):
            return a if dtype is None else a.astype(dtype)
        result = np.asarray(a, dtype=dtype)
        if _current:
            _current[-1].h2d += result.nbytes
        return _wrap(np.array(result))


def _op_kernels(tracer: _Tracer, images, ids: np.ndarray, values: np.ndarray):
    """Count the cuda executor's launches for one apply_ops call and return a stand-in
    result (a copy: pixel values do not matter to the trace)."""
    from gpuaug.executors.cuda import _DOWNSCALE, _FAMILY, _HIST_OPS, downscale_sizes

    raw = _raw(images)
    n, h, w, _ = raw.shape
    per_image = 3.0 * h * w * tracer.sy * tracer.sx  # bytes of one uint8 image at the real size
    full_h, full_w = h * tracer.sy, w * tracer.sx
    hist = np.isin(ids, _HIST_OPS)
    lut = _FAMILY[ids] == "lut"
    down = ids == _DOWNSCALE
    apply = ~down
    b, launches = tracer.bytes, tracer.launches
    tracer.h2d += 4 * (3 * n + int(hist.sum() + lut.sum() + apply.sum() + down.sum()) + 8 * n) + 8 * (n + 6 * n)
    launches["upload"] += 2
    if hist.any():
        launches["memset"] += 2
        b["op_memset"] += n * (3 * 256 * 4 + 8)
        launches["op_histogram"] += 1
        b["op_read"] += hist.sum() * per_image
        b["op_write"] += n * 3 * 256 * 4  # atomics into the histograms
    if lut.any():
        launches["op_lut"] += 1
        b["op_write"] += lut.sum() * 3 * 256
    if apply.any():
        launches["op_apply"] += 1
        b["op_read"] += apply.sum() * per_image
        b["op_write"] += apply.sum() * per_image
    if down.any():
        small = downscale_sizes(np.where(down, values, 1.0), int(round(full_h)), int(round(full_w)))[down]
        small_bytes = float((small[:, 0].astype(np.float64) * small[:, 1] * 3).sum())
        launches["op_resize"] += 2
        b["op_read"] += down.sum() * per_image + small_bytes
        b["op_write"] += small_bytes + down.sum() * per_image
    return _wrap(np.array(raw))


def _fused_kernel(tracer: _Tracer, name: str, args: dict):
    """Count one fused mixing kernel (and an ipmix_patch chain copy) and return a stand-in
    result of the right kind (pixel values do not matter to the trace)."""
    from gpuaug.executors.mix_kernels import traffic

    t = traffic(name, args, tracer.height, tracer.width)
    b = tracer.bytes
    b["fused_read"] += t["read"]
    b["fused_write"] += t["write"]
    if t["copy"]:
        b["fused_copy"] += t["copy"]
        tracer.launches["copy"] += 1
    tracer.launches["fused"] += t["launches"] - int(t["copy"] > 0)
    host = [v for v in args.values() if isinstance(v, np.ndarray) and not isinstance(v, Traced)]
    tables = [v for v in args.values() if isinstance(v, list)]  # pointer tables
    tracer.h2d += sum(v.nbytes for v in host) + sum(8 * len(t) for t in tables)
    tracer.launches["upload"] += t["uploads"]
    if name == "ipmix_patch":
        return _wrap(np.array(_raw(args["chain"])))
    first = next(v for v in args.values() if isinstance(v, np.ndarray) and v.ndim == 4)
    return _wrap(np.zeros(first.shape, np.float32))


def trace(method, n: int, height: int, width: int, seed: int, views: bool = False, mixing_set=None) -> dict:
    """Bytes and launches of one call ``method(images, mixing=mixing_set, seed=seed)`` (or
    ``method.views(...)``) on an (n, height, width, 3) uint8 batch, as the cuda backend
    runs it. Returns the counts and the compulsory (fully fused) minimum."""
    from gpuaug.executors.backend import Backend
    from gpuaug.methods.base import as_generator, to_float

    tracer = _Tracer(height, width)
    backend = Backend("trace", _TracedXP(), lambda x, ids, v: _op_kernels(tracer, x, ids, v),
                      fused=lambda name, args: _fused_kernel(tracer, name, args))
    rng = as_generator(seed)
    image_bytes = 3.0 * n * height * width
    _current.append(tracer)
    try:
        images = _wrap(np.zeros((n, TRACE_H, TRACE_W, 3), np.uint8))
        pictures = None
        if method.needs_mixing:
            if mixing_set is None:
                raise ValueError(f"{type(method).__name__} needs the mixing set of the timed run")
            mixing_set.sample_plan(n, rng, height, width)  # the same draws as the timed call
            tracer.launches["gather"] += 1
            tracer.bytes["gather_read"] += image_bytes
            tracer.bytes["gather_write"] += image_bytes
            tracer.h2d += 8 * n * (1 + height + width)
            pictures = _wrap(np.zeros((n, TRACE_H, TRACE_W, 3), np.uint8))
        n_out = 2 if views else 1
        for _ in range(n_out):
            method.execute(method.plan(n, height, width, rng), images, pictures, backend)
        if views:
            to_float(backend, images)  # the clean view
    finally:
        _current.pop()
    b = tracer.bytes
    op_bytes = b["op_read"] + b["op_write"] + b["op_memset"]
    ew_bytes = b["elementwise_read"] + b["elementwise_write"]
    gather = b["gather_read"] + b["gather_write"]
    fused = b["fused_read"] + b["fused_write"] + b["fused_copy"]
    outputs = n_out + (1 if views else 0)
    compulsory = image_bytes + (image_bytes if method.needs_mixing else 0) + outputs * image_bytes * 4
    total = op_bytes + ew_bytes + gather + fused
    return {
        "n": n, "height": height, "width": width, "seed": seed, "views": views,
        "bytes_total": total, "bytes_per_image": total / n,
        "bytes_op_kernels": op_bytes, "bytes_elementwise": ew_bytes, "bytes_gather": gather,
        "bytes_fused": fused, "bytes_fused_copy": b["fused_copy"],
        "compulsory_bytes_per_image": compulsory / n,
        "passes_per_image_equiv": total / image_bytes,  # in units of one uint8 read of the batch
        "launches": dict(tracer.launches), "elementwise_launches_full_batch": tracer.large,
        "elementwise_by_function": dict(tracer.ops), "h2d_bytes": tracer.h2d,
    }


# ---------------------------------------------------------------- recorded (the executor itself)

_OP_KERNELS = ("gpuaug_histograms", "gpuaug_build_luts", "gpuaug_apply", "gpuaug_resample_pass")
_GATHER_KERNEL = "gpuaug_gather_crops"  # the mixing crops (MixingSet.gather on the device)


def record(method, n: int, height: int, width: int, seed: int, views: bool = False, mixing_set=None) -> dict:
    """The same figures as :func:`trace`, counted from what the cuda executor itself
    launches: the batch runs on the ``recording`` backend at the real size (kernels
    recorded with their exact bytes, never run), with the timed run's seed."""
    from gpuaug.executors import crops, recording
    from gpuaug.executors.backend import get_backend
    from gpuaug.methods.base import as_generator, to_float
    from gpuaug.methods.mixing_source import SetSource

    backend = get_backend("recording")
    rng = as_generator(seed)
    images = recording.device_images(n, height, width)
    n_out = 2 if views else 1
    with recording.session() as rec:
        pictures = None
        if method.needs_mixing:
            if mixing_set is None:
                raise ValueError(f"{type(method).__name__} needs the mixing set of the timed run")
            source = SetSource(crops.DeviceMixingSet(mixing_set), height, width)
            pictures = source.gather(source.sample(n, rng), backend)
        method.execute_all([method.plan(n, height, width, rng) for _ in range(n_out)], images, pictures, backend)
        if views:
            to_float(backend, images)
    kernels = rec.traffic()
    op = sum(r + w for name, _, r, w in kernels if name in _OP_KERNELS) + float(sum(rec.memsets))
    fused = sum(r + w for name, _, r, w in kernels if name not in _OP_KERNELS + (_GATHER_KERNEL,))
    gather = (sum(r + w for what, r, w in rec.copies if what == "gather")
              + sum(r + w for name, _, r, w in kernels if name == _GATHER_KERNEL))
    copies = sum(r + w for what, r, w in rec.copies if what == "copy")
    elementwise = sum(r + w for what, r, w in rec.copies if what not in ("gather", "copy"))
    image_bytes = 3.0 * n * height * width
    outputs = n_out + (1 if views else 0)
    compulsory = image_bytes * (2 if method.needs_mixing else 1) + outputs * image_bytes * 4
    total = op + fused + gather + copies + elementwise
    launches = Counter(name for name, _, _, _ in kernels)
    launches.update(what for what, _, _ in rec.copies)
    launches["upload"] = len(rec.uploads)
    launches["memset"] = len(rec.memsets)
    return {
        "n": n, "height": height, "width": width, "seed": seed, "views": views,
        "bytes_total": total, "bytes_per_image": total / n,
        "bytes_op_kernels": op, "bytes_elementwise": elementwise, "bytes_gather": gather,
        "bytes_fused": fused + copies, "bytes_fused_copy": copies,
        "compulsory_bytes_per_image": compulsory / n,
        "passes_per_image_equiv": total / image_bytes,
        "launches": dict(launches),
        "elementwise_launches_full_batch": sum(1 for what, _, _ in rec.copies if what not in ("gather",)),
        "elementwise_by_function": dict(Counter(what for what, _, _ in rec.copies)),
        "h2d_bytes": sum(b for b, _ in rec.uploads),
    }
