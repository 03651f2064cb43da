"""Fractal plans: every random choice for a batch of fractal images, drawn on the host
(numpy), and the parameters both renderers share. See :mod:`gpuaug.fractals`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

IFS, ESCAPE = 0, 1
TRAP_POINT, TRAP_LINE, TRAP_CIRCLE = 0, 1, 2
MAX_MAPS = 4
WALKERS = 1024  # chaos-game walkers per IFS image
BURN_IN = 16  # steps each walker runs before it plots
POINTS_PER_PIXEL = 4  # IFS points plotted per output pixel (on average)
_BAILOUT = 4.0  # |z|^2 beyond which an orbit has escaped


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
