"""The cpu renderer: numpy, IFS vectorised over the walkers of 16 images, escape-time over
blocks of pixels whose finished orbits drop out; parts of a plan on threads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .plan import (_BAILOUT, ESCAPE, IFS, MAX_MAPS, TRAP_CIRCLE, TRAP_LINE, FractalPlan, _check_size,
                   _escape_params, ifs_schedule)

_CPU_CHUNK = 16  # IFS images rendered together by the cpu executor
_HITS_PER_FLUSH = 1 << 22  # IFS points held before they are added to the histogram


# ---------------------------------------------------------------- cpu executor

def _mix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x7FEB352D)
    h = h ^ (h >> np.uint32(15))
    h = h * np.uint32(0x846CA68B)
    return h ^ (h >> np.uint32(16))


def _uniform(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint32(8)).astype(np.float64) * (1.0 / 16777216.0)


def _mix_into(h: np.ndarray, tmp: np.ndarray) -> None:
    """:func:`_mix` in place (``tmp``: scratch of h's shape and dtype)."""
    for shift, mult in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        np.right_shift(h, np.uint32(shift), out=tmp)
        h ^= tmp
        h *= np.uint32(mult)
    np.right_shift(h, np.uint32(16), out=tmp)
    h ^= tmp


def _ifs_hist_cpu(plan: FractalPlan, size: int) -> np.ndarray:
    walkers, burn, steps = ifs_schedule(size)
    k = len(plan)
    wid = np.arange(walkers, dtype=np.uint32)
    hw = _mix(_mix(plan.seed.astype(np.uint32) ^ np.uint32(0x9E3779B9))[:, None] ^ wid[None, :])
    x = _uniform(_mix(hw ^ np.uint32(0xFFFFFFFF))) * 2.0 - 1.0
    y = _uniform(_mix(hw ^ np.uint32(0xFFFFFFFE))) * 2.0 - 1.0
    x0 = plan.ifs_frame[:, 0:1]
    y0 = plan.ifs_frame[:, 1:2]
    inv = float(size) / plan.ifs_frame[:, 2:3]
    # The kernel's `while (j < 3 && u >= cum[j]) ++j` as a sum of three tests (cum does
    # not decrease), then the map's coefficients from one flat table per coefficient.
    cum = [np.ascontiguousarray(plan.ifs_cum[:, i:i + 1]) for i in range(MAX_MAPS - 1)]
    coef = np.ascontiguousarray(plan.ifs_maps.reshape(k * MAX_MAPS, 6).T)
    first = (np.arange(k, dtype=np.intp) * MAX_MAPS)[:, None]
    base = (np.arange(k, dtype=np.intp) * (size * size) + (size - 1) * size)[:, None]
    # Work arrays are allocated once: allocating ~100 kB temporaries per numpy operation
    # makes malloc return and re-fault the pages, which costs more than the arithmetic.
    h, tmp = np.empty_like(hw), np.empty_like(hw)
    u, t, nx, ny, fx, fy = (np.empty(hw.shape) for _ in range(6))
    a = np.empty((6,) + hw.shape)
    j, ix, iy = (np.empty(hw.shape, np.intp) for _ in range(3))
    ge, ok = np.empty(hw.shape, bool), np.empty(hw.shape, bool)
    hist = np.zeros(k * size * size, np.int64)
    hits, pending = [], 0
    for s in range(burn + steps):
        np.bitwise_xor(hw, np.uint32(s), out=h)
        _mix_into(h, tmp)
        np.right_shift(h, np.uint32(8), out=tmp)
        np.multiply(tmp, 1.0 / 16777216.0, out=u)  # _uniform(h)
        np.copyto(j, first)
        for c in cum:
            np.greater_equal(u, c, out=ge)
            j += ge
        for row, out in zip(coef, a):
            row.take(j, out=out)
        np.multiply(a[0], x, out=nx)  # x' = (a x + b y) + e
        np.multiply(a[1], y, out=t)
        nx += t
        nx += a[4]
        np.multiply(a[2], x, out=ny)  # y' = (c x + d y) + f
        np.multiply(a[3], y, out=t)
        ny += t
        ny += a[5]
        x, nx, y, ny = nx, x, ny, y
        if s < burn:
            continue
        np.subtract(x, x0, out=fx)
        fx *= inv
        np.subtract(y, y0, out=fy)
        fy *= inv
        np.greater_equal(fx, 0.0, out=ok)
        for cond in (fx < size, fy >= 0.0, fy < size):
            ok &= cond
        # flat index of pixel (row, col) = (size - 1 - int(fy), int(fx)) of its image
        np.copyto(ix, fx, casting="unsafe")
        np.copyto(iy, fy, casting="unsafe")
        iy *= size
        ix -= iy
        ix += base
        hits.append(ix[ok])
        pending += hits[-1].size
        if pending >= _HITS_PER_FLUSH or s == burn + steps - 1:  # bounds the memory of large sizes
            hist += np.bincount(np.concatenate(hits), minlength=hist.size)
            hits, pending = [], 0
    return hist.reshape(k, size, size).astype(np.int32)


def _ifs_colour_cpu(plan: FractalPlan, hist: np.ndarray) -> np.ndarray:
    k = len(plan)
    hmax = np.maximum(hist.reshape(k, -1).max(1), 1)
    v = np.sqrt(np.sqrt(hist / hmax[:, None, None].astype(np.float64)))
    idx = np.minimum(1 + (v * 254.0).astype(np.int64), 255)
    out = plan.palette[np.arange(k)[:, None, None], idx]
    return np.where((hist == 0)[..., None], plan.background[:, None, None, :], out)


_ESCAPE_BLOCK = 16384  # pixels iterated together by the cpu executor


def _escape_orbits(f: np.ndarray, q: np.ndarray, x: np.ndarray, y: np.ndarray):
    """Escape counts and trap distances of the pixels starting at ``x + iy`` of one image.

    Escaped pixels are recorded when they escape and dropped from the work arrays once
    they are a quarter of them, so the work follows the orbit lengths rather than
    ``max_iter`` per pixel; per pixel the arithmetic is the kernel's, in its order.
    """
    cr, ci, p0, p1, p2 = (float(f[i]) for i in (0, 1, 7, 8, 9))
    power, max_iter, trap = (int(v) for v in q[:3])
    m = x.size
    n = np.full(m, max(max_iter, 0), np.int64)
    dmin = np.full(m, 1e300)
    if max_iter <= 0:
        return n, dmin
    # no allocation per step but on compaction (see _ifs_hist_cpu)
    x, y = x.copy(), y.copy()
    xx, yy, nx, ny, d, t = (np.empty(m) for _ in range(6))
    np.multiply(x, x, out=xx)
    np.multiply(y, y, out=yy)
    best = dmin.copy()
    pixel = np.arange(m)  # the pixel of each work-array slot
    alive = np.ones(m, bool)
    n_alive = m
    for it in range(1, max_iter + 1):
        if power == 3:
            np.multiply(yy, 3.0, out=t)  # x' = x (xx - 3 yy) + cr
            np.subtract(xx, t, out=t)
            np.multiply(x, t, out=nx)
            nx += cr
            np.multiply(xx, 3.0, out=t)  # y' = y (3 xx - yy) + ci
            t -= yy
            np.multiply(y, t, out=ny)
            ny += ci
        else:
            np.subtract(xx, yy, out=nx)  # x' = (xx - yy) + cr
            nx += cr
            np.multiply(x, 2.0, out=ny)  # y' = 2 x y + ci
            ny *= y
            ny += ci
        x, nx, y, ny = nx, x, ny, y
        if trap == TRAP_LINE:
            np.multiply(x, p0, out=d)  # |(p0 x + p1 y) + p2|
            np.multiply(y, p1, out=t)
            d += t
            d += p2
            np.abs(d, out=d)
        else:
            np.subtract(x, p0, out=d)  # sqrt(dx dx + dy dy), minus the radius for a circle
            d *= d
            np.subtract(y, p1, out=t)
            t *= t
            d += t
            np.sqrt(d, out=d)
            if trap == TRAP_CIRCLE:
                d -= p2
                np.abs(d, out=d)
        np.minimum(best, d, out=best)  # escaped slots' values are stale, never read again
        np.multiply(x, x, out=xx)
        np.multiply(y, y, out=yy)
        if it == max_iter:
            break
        np.add(xx, yy, out=t)
        gone = np.flatnonzero((t > _BAILOUT) & alive)
        if gone.size:
            n[pixel[gone]] = it
            dmin[pixel[gone]] = best[gone]
            alive[gone] = False
            n_alive -= gone.size
            if not n_alive:
                return n, dmin
            if n_alive * 4 <= alive.size * 3:
                pixel, best, x, y, xx, yy = (v[alive] for v in (pixel, best, x, y, xx, yy))
                nx, ny, d, t = (np.empty(n_alive) for _ in range(4))
                alive = np.ones(n_alive, bool)
    dmin[pixel[alive]] = best[alive]
    return n, dmin


def _escape_cpu(plan: FractalPlan, size: int) -> np.ndarray:
    f, q = _escape_params(plan)
    half = float(size) * 0.5
    coord = np.arange(size, dtype=np.float64) + 0.5 - half
    rows = max(1, _ESCAPE_BLOCK // size)
    out = np.empty((len(plan), size, size, 3), np.uint8)
    for i in range(len(plan)):
        pix = f[i, 4] / float(size)
        du = coord[None, :] * pix
        for r0 in range(0, size, rows):
            dv = coord[r0:r0 + rows, None] * pix
            x = (f[i, 2] + (f[i, 5] * du - f[i, 6] * dv)).ravel()
            y = (f[i, 3] + (f[i, 6] * du + f[i, 5] * dv)).ravel()
            n, dmin = _escape_orbits(f[i], q[i], x, y)
            w = f[i, 11]
            v = w / (1.0 + f[i, 10] * dmin) + (1.0 - w) * (n / max(int(q[i, 1]), 1))
            idx = np.clip((v * 255.0).astype(np.int64), 0, 255)
            out[i, r0:r0 + rows] = plan.palette[i][idx].reshape(-1, size, 3)
    return out


def _render_part(plan: FractalPlan, size: int) -> np.ndarray:
    if plan.kind[0] == IFS:
        return _ifs_colour_cpu(plan, _ifs_hist_cpu(plan, size))
    return _escape_cpu(plan, size)


def render_fractals_cpu(plan: FractalPlan, size: int, progress=None, workers: int | None = None) -> np.ndarray:
    """Render a plan on the CPU: uint8 NHWC numpy array (len(plan), size, size, 3).

    Parts of the plan render on ``workers`` threads (default: one per CPU, at most 8;
    numpy releases the GIL); ``progress(k)`` is called as each ``k`` images are done.
    The pixels do not depend on either.
    """
    size = _check_size(size)
    n = len(plan)
    out = np.empty((n, size, size, 3), np.uint8)
    parts = []
    for kind, chunk in ((IFS, _CPU_CHUNK), (ESCAPE, 1)):  # chunks bound the work arrays
        idx = np.nonzero(plan.kind == kind)[0]
        parts += [idx[s:s + chunk] for s in range(0, idx.size, chunk)]
    workers = min(8, os.cpu_count() or 1) if workers is None else max(1, int(workers))

    def run(part):
        with np.errstate(over="ignore", invalid="ignore"):  # escaped orbits left to diverge
            out[part] = _render_part(plan.take(part), size)
        return part.size

    if workers == 1 or len(parts) < 2:
        done = map(run, parts)
        for k in done:
            if progress is not None:
                progress(k)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="gpuaug-fractals") as pool:
            for k in pool.map(run, parts):
                if progress is not None:
                    progress(k)
    return out
