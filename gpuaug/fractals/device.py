"""The kernel renderer (``kernels/fractals.cu`` on CuPy arrays, or on numpy arrays through
the CPU kernel emulator), and :func:`render_fractals`, which picks a renderer."""

from __future__ import annotations

import numpy as np

from .cpu import render_fractals_cpu
from .plan import ESCAPE, IFS, FractalPlan, _check_size, _escape_params, ifs_schedule

_THREADS = 256


# ---------------------------------------------------------------- kernel executor

def render_fractals_xp(plan: FractalPlan, size: int, backend: str = "cuda"):
    """Render a plan with the kernels of ``kernels/fractals.cu``.

    ``backend``: "cuda" (returns a CuPy array on the current device) or "emulated" (the
    CPU kernel emulator; returns numpy). Same pixels as :func:`render_fractals_cpu`.
    """
    from ..executors.launch import get_kernel

    size = _check_size(size)
    if backend == "cuda":
        import cupy as xp
    elif backend == "emulated":
        xp = np
    else:
        raise ValueError(f"backend must be 'cuda' or 'emulated', got {backend!r}")
    n = len(plan)
    out = xp.zeros((n, size, size, 3), dtype=xp.uint8)
    if n == 0:
        return out
    put = lambda a, dt: xp.asarray(np.ascontiguousarray(a, dt))  # noqa: E731
    palette = put(plan.palette, np.uint8)
    i32 = np.int32
    plane = size * size

    ifs = np.nonzero(plan.kind == IFS)[0].astype(i32)
    if ifs.size:
        walkers, burn, steps = ifs_schedule(size)
        hist = xp.zeros((ifs.size, size, size), dtype=xp.int32)
        slots = put(ifs, i32)
        get_kernel("fractals", "ifs_accumulate", backend)(
            (-(-ifs.size * walkers // _THREADS),), (_THREADS,),
            (slots, i32(ifs.size), put(plan.seed, np.uint32), put(plan.ifs_maps, np.float64),
             put(plan.ifs_cum, np.float64), put(plan.ifs_frame, np.float64), i32(size),
             i32(walkers), i32(burn), i32(steps), hist))
        hmax = xp.ascontiguousarray(xp.maximum(hist.reshape(ifs.size, -1).max(axis=1), 1).astype(xp.int32))
        get_kernel("fractals", "ifs_colour", backend)(
            (-(-ifs.size * plane // _THREADS),), (_THREADS,),
            (slots, i32(ifs.size), i32(size), hist, hmax, palette,
             put(plan.background, np.uint8), out))

    esc = np.nonzero(plan.kind == ESCAPE)[0].astype(i32)
    if esc.size:
        f, q = _escape_params(plan)
        get_kernel("fractals", "escape_time", backend)(
            (-(-esc.size * plane // _THREADS),), (_THREADS,),
            (put(esc, i32), i32(esc.size), i32(size), put(f, np.float64), put(q, i32),
             palette, out))
    return out


def cuda_available() -> bool:
    """Whether CuPy can see a CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device
        return False


def render_fractals(plan: FractalPlan, size: int, executor: str = "auto"):
    """Render with the "cpu" executor (numpy result) or "cuda" (CuPy result); "auto"
    picks cuda when a device is visible."""
    if executor not in ("auto", "cpu", "cuda"):
        raise ValueError(f"executor must be 'auto', 'cpu' or 'cuda', got {executor!r}")
    if executor == "auto":
        executor = "cuda" if cuda_available() else "cpu"
    if executor == "cpu":
        return render_fractals_cpu(plan, size)
    return render_fractals_xp(plan, size, "cuda")
