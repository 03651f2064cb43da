"""Procedural fractals for users without a mixing set: plan (numpy), then render.

Two kinds, both coloured through a random per-image cosine palette
``a + b * cos(2 pi (c t + d))`` tabulated on the host as a 256-entry LUT:

* **IFS** (iterated function systems): 2-4 random contractive affine maps run as a chaos
  game. Each image uses ``WALKERS`` independent walkers; walker ``w`` at step ``s`` picks
  its map from a counter-based hash of (image seed, w, s), so the CUDA kernel reproduces
  the points exactly. Points after ``BURN_IN`` steps are counted in a density histogram,
  shown as ``palette[1 + int(254 * (count / max) ** (1/4))]`` on a dark background.
* **Escape-time** (Julia sets of z^2 + c or z^3 + c): c is drawn near the boundary of
  the Mandelbrot/Multibrot set (where Julia sets are intricate); pixels are coloured by
  an orbit trap (point, line or circle) mixed with the escape count.

Executors: :func:`render_fractals_cpu` (numpy: IFS vectorised over the walkers of 16
images, escape-time over blocks of pixels whose finished orbits drop out; on threads) and
:func:`render_fractals_xp` (the kernels in ``kernels/fractals.cu`` on CuPy arrays, or on
numpy arrays through the CPU kernel emulator). Both evaluate the same float64 arithmetic
in the same order, with no transcendental function except ``sqrt`` (correctly rounded in
IEEE and CUDA), and kernels compile with ``--fmad=false``: the results are identical.
The trigonometry (palette, map rotations, view rotation) happens in the plan sampler.
:func:`fractal_images` renders on the CPU once and caches the pixels on disk.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ._progress import Progress

IFS, ESCAPE = 0, 1
TRAP_POINT, TRAP_LINE, TRAP_CIRCLE = 0, 1, 2
MAX_MAPS = 4
WALKERS = 1024  # chaos-game walkers per IFS image
BURN_IN = 16  # steps each walker runs before it plots
POINTS_PER_PIXEL = 4  # IFS points plotted per output pixel (on average)
_BAILOUT = 4.0  # |z|^2 beyond which an orbit has escaped
_THREADS = 256
_CPU_CHUNK = 16  # IFS images rendered together by the cpu executor
_HITS_PER_FLUSH = 1 << 22  # IFS points held before they are added to the histogram


@dataclass(frozen=True)
class FractalPlan:
    """Every random choice for ``len(plan)`` fractal images (struct of numpy arrays).

    Fields of the other kind are zero for an image (e.g. ``esc_c`` of an IFS image).
    """

    kind: np.ndarray  # (n,) int32: IFS or ESCAPE
    seed: np.ndarray  # (n,) uint32: chaos-game hash seed
    palette: np.ndarray  # (n, 256, 3) uint8 colour LUT
    background: np.ndarray  # (n, 3) uint8: IFS empty pixels
    ifs_n_maps: np.ndarray  # (n,) int32 in 2..4
    ifs_maps: np.ndarray  # (n, 4, 6) float64 a, b, c, d, e, f (unused maps zero)
    ifs_cum: np.ndarray  # (n, 4) float64 cumulative probabilities, 2.0 past the last map
    ifs_frame: np.ndarray  # (n, 3) float64 x0, y0, span of the view window
    esc_c: np.ndarray  # (n, 2) float64 Julia constant (re, im)
    esc_power: np.ndarray  # (n,) int32: 2 or 3
    esc_center: np.ndarray  # (n, 2) float64 view centre
    esc_span: np.ndarray  # (n,) float64 view width
    esc_rot: np.ndarray  # (n, 2) float64 cos, sin of the view rotation
    esc_max_iter: np.ndarray  # (n,) int32
    trap_kind: np.ndarray  # (n,) int32: TRAP_POINT, TRAP_LINE or TRAP_CIRCLE
    trap: np.ndarray  # (n, 3) float64: point (px, py, 0), line (a, b, c), circle (px, py, r)
    trap_scale: np.ndarray  # (n,) float64: colour falloff 1 / (1 + scale * distance)
    trap_weight: np.ndarray  # (n,) float64: weight of the trap term vs the escape count

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def take(self, idx) -> "FractalPlan":
        """The plan of the images ``idx`` (an index array or a slice)."""
        return FractalPlan(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


# ---------------------------------------------------------------- plan

def _cosine_palettes(n: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(0.35, 0.65, (n, 1, 3))
    b = rng.uniform(0.25, 0.5, (n, 1, 3))
    c = np.where(rng.uniform(size=(n, 1, 1)) < 0.5, rng.uniform(0.5, 2.0, (n, 1, 1)),
                 rng.uniform(0.5, 2.0, (n, 1, 3)))
    d = rng.uniform(0.0, 1.0, (n, 1, 3))
    t = (np.arange(256) / 255.0)[None, :, None]
    rgb = a + b * np.cos(2 * np.pi * (c * t + d))
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def _rotation(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _random_maps(n: int, rng: np.random.Generator):
    """n sets of MAX_MAPS contractive maps (singular values < 1) and their map counts."""
    n_maps = rng.integers(2, MAX_MAPS + 1, n).astype(np.int32)
    shape = (n, MAX_MAPS)
    s1 = rng.uniform(0.3, 0.85, shape)
    s2 = s1 * rng.uniform(0.2, 1.0, shape) * np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    lin = _rotation(rng.uniform(0, 2 * np.pi, shape)) @ (
        np.zeros(shape + (2, 2)) + np.stack([s1, s2], -1)[..., None] * np.eye(2)
    ) @ _rotation(rng.uniform(0, 2 * np.pi, shape))
    shift = rng.uniform(-1.0, 1.0, shape + (2,))
    maps = np.concatenate([lin.reshape(shape + (4,)), shift], -1)
    used = np.arange(MAX_MAPS)[None, :] < n_maps[:, None]
    maps[~used] = 0.0
    weight = np.where(used, np.abs(s1 * s2) + 0.02, 0.0)  # probability ~ |det| (+ a floor)
    cum = np.cumsum(weight / weight.sum(1, keepdims=True), axis=1)
    last = np.arange(MAX_MAPS)[None, :] >= (n_maps[:, None] - 1)
    cum[last] = 2.0  # the last used map takes every u in [cum[-2], 1)
    return n_maps, maps, cum


def _preview_points(maps, cum, rng, walkers=128, burn=16, steps=32):
    """Host chaos game (plain rng, not the hash) to frame each attractor: (n, P, 2)."""
    n = maps.shape[0]
    x = rng.uniform(-1, 1, (n, walkers))
    y = rng.uniform(-1, 1, (n, walkers))
    pts = []
    rows = np.arange(n)[:, None]
    for s in range(burn + steps):
        u = rng.uniform(size=(n, walkers))
        j = np.minimum((u[..., None] >= cum[:, None, :]).sum(-1), MAX_MAPS - 1)
        a = maps[rows, j]
        x, y = a[..., 0] * x + a[..., 1] * y + a[..., 4], a[..., 2] * x + a[..., 3] * y + a[..., 5]
        if s >= burn:
            pts.append(np.stack([x, y], -1))
    return np.concatenate(pts, axis=1)


def _frame_and_coverage(pts: np.ndarray, grid: int = 24):
    """Square windows around the central 98% of each point cloud, and how much of a
    grid x grid raster the points cover (degenerate attractors cover little)."""
    lo = np.percentile(pts, 1, axis=1)
    hi = np.percentile(pts, 99, axis=1)
    span = np.maximum((hi - lo).max(1) * 1.15, 1e-6)
    centre = (lo + hi) / 2
    x0y0 = centre - span[:, None] / 2
    cell = np.floor((pts - x0y0[:, None, :]) / span[:, None, None] * grid).astype(np.int64)
    inside = ((cell >= 0) & (cell < grid)).all(-1)
    flat = np.where(inside, cell[..., 0] * grid + cell[..., 1], grid * grid)
    cover = np.array([np.unique(f[f < grid * grid]).size for f in flat]) / (grid * grid)
    return np.concatenate([x0y0, span[:, None]], 1), cover


def _sample_ifs(n: int, rng: np.random.Generator, min_cover: float = 0.12, tries: int = 30):
    n_maps, maps, cum = _random_maps(n, rng)
    frame = np.zeros((n, 3))
    todo = np.arange(n)
    for attempt in range(tries):
        f, cover = _frame_and_coverage(_preview_points(maps[todo], cum[todo], rng))
        frame[todo] = f
        bad = (cover < min_cover) | ~np.isfinite(f).all(1)
        todo = todo[bad]
        if todo.size == 0 or attempt == tries - 1:
            break
        n_maps[todo], maps[todo], cum[todo] = _random_maps(todo.size, rng)
    return n_maps, maps, cum, frame


def _escape_count(c: np.ndarray, power: np.ndarray, iters: int = 256) -> np.ndarray:
    """Iterations until z -> z^p + c (z0 = 0) escapes; ``iters`` if it never does."""
    z = np.zeros_like(c)
    n = np.full(c.shape, iters)
    alive = np.ones(c.shape, bool)
    for k in range(iters):
        z = np.where(alive, np.where(power == 3, z**3, z**2) + c, z)
        out = alive & (np.abs(z) > 2)
        n[out] = k + 1
        alive &= ~out
    return n


def _sample_escape(n: int, rng: np.random.Generator):
    power = np.where(rng.uniform(size=n) < 0.7, 2, 3).astype(np.int32)
    c = np.zeros(n, complex)
    todo = np.arange(n)
    while todo.size:  # rejection: c just outside the set's boundary (escapes late)
        r = np.where(power[todo] == 3, 1.3, 1.6) * np.sqrt(rng.uniform(size=todo.size))
        cand = r * np.exp(2j * np.pi * rng.uniform(size=todo.size))
        cnt = _escape_count(cand, power[todo])
        ok = (cnt >= 12) & (cnt < 256)
        c[todo[ok]] = cand[ok]
        todo = todo[~ok]
    span = np.exp(rng.uniform(np.log(0.8), np.log(3.5), n))
    centre = 0.5 * np.sqrt(rng.uniform(size=n))[:, None] * _unit(rng.uniform(0, 2 * np.pi, n))
    trap_kind = rng.integers(0, 3, n).astype(np.int32)
    trap = np.zeros((n, 3))
    point = rng.uniform(-0.8, 0.8, (n, 2))
    line = _unit(rng.uniform(0, 2 * np.pi, n))
    trap[:, :2] = np.where((trap_kind == TRAP_LINE)[:, None], line, point)
    trap[:, 2] = np.where(trap_kind == TRAP_LINE, rng.uniform(-0.5, 0.5, n),
                          np.where(trap_kind == TRAP_CIRCLE, rng.uniform(0.2, 1.0, n), 0.0))
    return dict(
        esc_c=np.stack([c.real, c.imag], 1), esc_power=power, esc_center=centre,
        esc_span=span, esc_rot=_unit(rng.uniform(0, 2 * np.pi, n)),
        esc_max_iter=rng.choice(np.array([64, 96, 128], np.int32), n),
        trap_kind=trap_kind, trap=trap,
        trap_scale=np.exp(rng.uniform(np.log(2.0), np.log(20.0), n)),
        trap_weight=rng.uniform(0.3, 0.9, n),
    )


def _unit(theta: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(theta), np.sin(theta)], -1)


def _check_count(count) -> None:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")


def sample_fractal_plan(count: int, rng: np.random.Generator, p_ifs: float = 0.5) -> FractalPlan:
    """Draw ``count`` fractals: IFS with probability ``p_ifs``, else escape-time.

    Distributions: IFS: 2-4 maps A = R(t1) diag(s1, +-s2) R(t2) + (e, f) with
    s1 ~ U(0.3, 0.85), s2 ~ s1 U(0.2, 1), angles ~ U(0, 2 pi), (e, f) ~ U(-1, 1)^2,
    probabilities ~ |det A| + 0.02; attractors covering under 12% of a 24 x 24 raster of
    their own square frame are redrawn. Escape-time: power 2 (p = 0.7) or 3; c uniform in
    a disk of radius 1.6 (1.3 for cubes) accepted when its critical orbit escapes after
    12..255 steps; view width log-uniform in [0.8, 3.5], centre within 0.5 of 0, random
    rotation; max_iter in {64, 96, 128}; trap point ~ U(-0.8, 0.8)^2, line through a
    random direction with offset ~ U(-0.5, 0.5), or circle of radius ~ U(0.2, 1);
    trap scale log-uniform in [2, 20], trap weight ~ U(0.3, 0.9). Palettes: cosine with
    a ~ U(0.35, 0.65)^3, b ~ U(0.25, 0.5)^3, c ~ U(0.5, 2) (shared or per channel),
    d ~ U(0, 1)^3; IFS backgrounds ~ U{0..39}^3.
    """
    _check_count(count)
    if not 0.0 <= p_ifs <= 1.0:
        raise ValueError(f"p_ifs must be in [0, 1], got {p_ifs}")
    n = int(count)
    kind = np.where(rng.uniform(size=n) < p_ifs, IFS, ESCAPE).astype(np.int32)
    seed = rng.integers(0, 2**32, n, dtype=np.uint32)
    palette = _cosine_palettes(n, rng)
    background = rng.integers(0, 40, (n, 3)).astype(np.uint8)
    ifs = np.nonzero(kind == IFS)[0]
    esc = np.nonzero(kind == ESCAPE)[0]
    out = dict(
        ifs_n_maps=np.zeros(n, np.int32), ifs_maps=np.zeros((n, MAX_MAPS, 6)),
        ifs_cum=np.zeros((n, MAX_MAPS)), ifs_frame=np.zeros((n, 3)),
        esc_c=np.zeros((n, 2)), esc_power=np.zeros(n, np.int32), esc_center=np.zeros((n, 2)),
        esc_span=np.zeros(n), esc_rot=np.zeros((n, 2)), esc_max_iter=np.zeros(n, np.int32),
        trap_kind=np.zeros(n, np.int32), trap=np.zeros((n, 3)), trap_scale=np.zeros(n),
        trap_weight=np.zeros(n),
    )
    if ifs.size:
        (out["ifs_n_maps"][ifs], out["ifs_maps"][ifs], out["ifs_cum"][ifs],
         out["ifs_frame"][ifs]) = _sample_ifs(ifs.size, rng)
    if esc.size:
        for name, value in _sample_escape(esc.size, rng).items():
            out[name][esc] = value
    return FractalPlan(kind=kind, seed=seed, palette=palette, background=background, **out)


# ---------------------------------------------------------------- shared by both executors

def ifs_schedule(size: int) -> tuple[int, int, int]:
    """(walkers, burn-in steps, plotted steps) for an IFS image of side ``size``."""
    steps = max(4, -(-POINTS_PER_PIXEL * size * size // WALKERS))
    return WALKERS, BURN_IN, steps


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= 8192:
        raise ValueError(f"size must be an integer in 1..8192, got {size!r}")
    return int(size)


def _escape_params(plan: FractalPlan) -> tuple[np.ndarray, np.ndarray]:
    """Per-image escape-time parameters packed as the kernel reads them."""
    f = np.concatenate([
        plan.esc_c, plan.esc_center, plan.esc_span[:, None], plan.esc_rot, plan.trap,
        plan.trap_scale[:, None], plan.trap_weight[:, None],
    ], axis=1)
    i = np.stack([plan.esc_power, plan.esc_max_iter, plan.trap_kind,
                  np.zeros(len(plan), np.int32)], axis=1)
    return np.ascontiguousarray(f, np.float64), np.ascontiguousarray(i, np.int32)


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


# ---------------------------------------------------------------- kernel executor

def render_fractals_xp(plan: FractalPlan, size: int, backend: str = "cuda"):
    """Render a plan with the kernels of ``kernels/fractals.cu``.

    ``backend``: "cuda" (returns a CuPy array on the current device) or "emulated" (the
    CPU kernel emulator; returns numpy). Same pixels as :func:`render_fractals_cpu`.
    """
    from .executors.launch import get_kernel

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


# ---------------------------------------------------------------- cached host rendering

# Part of the cache key: bump it whenever the plan sampler or the renderers change pixels.
GENERATOR_VERSION = 1


def default_cache_dir() -> Path:
    """``fractals/`` in the gpuaug cache (:mod:`gpuaug.data.cachedir`; default ``~/.cache/gpuaug``)."""
    from .data.cachedir import cache_root

    return cache_root() / "fractals"


def cache_file(count: int, size: int, seed: int, cache_dir=None) -> Path:
    """The cache file of ``count`` fractals of side ``size`` from ``seed``."""
    root = default_cache_dir() if cache_dir is None else Path(cache_dir)
    return root / f"fractals-v{GENERATOR_VERSION}-n{count}-{size}px-seed{seed}.npy"


def _load_cached(path: Path, count: int, size: int):
    if not path.is_file():
        return None
    try:
        imgs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        warnings.warn(f"fractal cache {str(path)!r} is unreadable ({e}); rendering again", stacklevel=3)
        return None
    if imgs.shape != (count, size, size, 3) or imgs.dtype != np.uint8:
        warnings.warn(f"fractal cache {str(path)!r} holds {imgs.dtype} {imgs.shape}, not "
                      f"uint8 {(count, size, size, 3)}; rendering again", stacklevel=3)
        return None
    return imgs


def _save_atomic(path: Path, imgs: np.ndarray) -> None:
    """Write ``imgs`` to ``path`` through a temporary file renamed into place, so an
    interrupted run never leaves a truncated cache; a failure to write only warns."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name + ".", suffix=".tmp",
                                         delete=False) as fh:
            tmp = Path(fh.name)
            np.save(fh, imgs, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write the fractal cache {str(path)!r}: {e}", stacklevel=3)
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def fractal_images(count: int, size: int = 256, seed: int = 0, cache=None,
                   progress: bool | None = None) -> np.ndarray:
    """``count`` fractals of side ``size`` from ``seed``: uint8 NHWC numpy array, rendered
    on the CPU once and then loaded from an on-disk cache.

    ``cache``: None (default) for :func:`default_cache_dir` (set ``GPUAUG_CACHE_DIR`` to move
    it), a folder, or False to render without reading or writing a cache. Files are keyed
    by count, size, seed and :data:`GENERATOR_VERSION` (``count * size**2 * 3`` bytes each).
    ``progress``: a bar on stderr; None shows it once rendering has taken a second,
    True at once, False never.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _check_count(count)
    size = _check_size(size)
    path = None if cache is False else cache_file(int(count), size, int(seed), cache)
    if path is not None:
        imgs = _load_cached(path, int(count), size)
        if imgs is not None:
            return imgs
    plan = sample_fractal_plan(int(count), np.random.default_rng(seed))
    where = f", caching in {path}" if path is not None else ""
    delay = {None: 1.0, True: 0.0, False: float("inf")}[progress]
    with Progress(count, f"rendering {count} fractals of {size}x{size} on the CPU{where}", delay=delay) as bar:
        imgs = render_fractals_cpu(plan, size, progress=bar.update)
    if path is not None:
        _save_atomic(path, imgs)
    return imgs


def write_fractal_pngs(out_dir, count: int, size: int = 256, seed: int = 0,
                       executor: str = "auto", batch: int = 64) -> list[Path]:
    """Render ``count`` fractals from ``seed`` and write them as ``fractal_00000.png`` ...

    Returns the written paths. Rendering goes in batches of ``batch`` images (a progress
    bar on stderr when it takes over a second); the pixels do not depend on the batching
    or the executor.
    """
    from PIL import Image

    size = _check_size(size)
    plan = sample_fractal_plan(count, np.random.default_rng(seed))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with Progress(len(plan), f"writing {len(plan)} fractals to {out}") as bar:
        for start in range(0, len(plan), batch):
            imgs = render_fractals(plan.take(slice(start, start + batch)), size, executor)
            if not isinstance(imgs, np.ndarray):
                imgs = imgs.get()
            for i, img in enumerate(imgs):
                path = out / f"fractal_{start + i:05d}.png"
                Image.fromarray(img).save(path)
                paths.append(path)
            bar.update(len(imgs))
    return paths
