"""Deterministic test images (H x W x 3 uint8) for the op tests.

Two families:

* natural-like images: smooth gradients in random directions, low-frequency blobs,
  hard-edged shapes (rectangles, discs, a stripe band) and pixel noise, so every op sees
  edges, texture and a wide spread of histogram bins;
* degenerate images: constant, one flat channel, two-level, few-level (3-6 values per
  channel), and a narrow-range (low-contrast) natural image -- the cases where
  histogram ops take their identity paths or hit rounding corners.

Every generator takes (h, w, seed) and works for any h, w >= 1 (1x1 included). The same
arguments always give the same image (numpy's PCG64 with a fixed seed).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "natural", "low_contrast", "high_contrast", "constant", "flat_channel", "two_level",
    "few_level", "NATURAL_KINDS", "DEGENERATE_KINDS", "ALL_KINDS", "make", "image_set",
]


def _rng(seed: int, tag: str) -> np.random.Generator:
    # Independent streams per generator kind for the same seed.
    return np.random.default_rng([seed, sum(map(ord, tag)) * 7919 + len(tag)])


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y = (np.arange(h, dtype=np.float64) + 0.5) / h
    x = (np.arange(w, dtype=np.float64) + 0.5) / w
    return np.meshgrid(y, x, indexing="ij")


def _to_uint8(f: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(np.rint(f), 0, 255).astype(np.uint8))


def _natural_float(h: int, w: int, rng: np.random.Generator, noise: float = 6.0) -> np.ndarray:
    """Float image in roughly [0, 255]: gradients + blobs + shapes + noise."""
    yy, xx = _grid(h, w)
    img = np.empty((h, w, 3), dtype=np.float64)
    for c in range(3):
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        lo, hi = np.sort(rng.uniform(0, 255, size=2))
        img[..., c] = lo + (hi - lo) * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    # low-frequency blobs (sums of a few sinusoids)
    for _ in range(3):
        fy, fx = rng.uniform(0.5, 3.0, size=2)
        phase = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(10, 40, size=3)
        wave = np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
        img += wave[..., None] * amp
    # hard-edged shapes
    for _ in range(int(rng.integers(2, 6))):
        colour = rng.uniform(0, 255, size=3)
        if rng.uniform() < 0.5:
            y0, y1 = np.sort(rng.uniform(0, 1, size=2))
            x0, x1 = np.sort(rng.uniform(0, 1, size=2))
            mask = (yy >= y0) & (yy <= y1) & (xx >= x0) & (xx <= x1)
        else:
            cy, cx = rng.uniform(0, 1, size=2)
            r = rng.uniform(0.05, 0.35)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img[mask] = 0.35 * img[mask] + 0.65 * colour
    # a thin stripe band (high frequency)
    period = int(rng.integers(2, 5))
    band = (np.arange(w)[None, :] // max(1, period // 2) % 2 == 0) & (np.abs(yy - rng.uniform()) < 0.08)
    img[band] = 255.0 - img[band]
    img += rng.normal(0.0, noise, size=img.shape)
    return img


def natural(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Natural-like image spanning (most of) the full 0..255 range."""
    return _to_uint8(_natural_float(h, w, _rng(seed, "natural")))


def low_contrast(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Natural-like image squeezed into a narrow band (e.g. 70..150): autocontrast stretches it."""
    rng = _rng(seed, "low_contrast")
    f = _natural_float(h, w, rng, noise=3.0)
    lo = rng.uniform(20, 120)
    width = rng.uniform(20, 90)
    f = lo + width * (f - f.min()) / max(np.ptp(f), 1e-9)
    return _to_uint8(f)


def high_contrast(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Natural-like image with many saturated 0 and 255 values (heavy histogram ends)."""
    rng = _rng(seed, "high_contrast")
    f = _natural_float(h, w, rng, noise=10.0)
    f = (f - 128.0) * rng.uniform(1.8, 3.0) + 128.0
    return _to_uint8(f)


def constant(h: int, w: int, seed: int = 0) -> np.ndarray:
    """One colour everywhere (seed 0: black, 1: white, else a random colour)."""
    if seed == 0:
        colour = np.zeros(3)
    elif seed == 1:
        colour = np.full(3, 255)
    else:
        colour = _rng(seed, "constant").integers(0, 256, size=3)
    return np.broadcast_to(colour.astype(np.uint8), (h, w, 3)).copy()


def flat_channel(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Natural-like image with one channel constant."""
    rng = _rng(seed, "flat_channel")
    img = _to_uint8(_natural_float(h, w, rng))
    img[..., int(rng.integers(0, 3))] = int(rng.integers(0, 256))
    return img


def two_level(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Exactly two colours: a shape/checker pattern."""
    rng = _rng(seed, "two_level")
    a, b = rng.integers(0, 256, size=(2, 3))
    yy, xx = _grid(h, w)
    cy, cx = rng.uniform(0.2, 0.8, size=2)
    mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(0.05, 0.15)) ^ (
        (np.arange(h)[:, None] // 3 + np.arange(w)[None, :] // 4) % 5 == 0)
    if h * w >= 2:  # make sure both colours occur
        mask.flat[0], mask.flat[-1] = True, False
    return np.ascontiguousarray(np.where(mask[..., None], a, b).astype(np.uint8))


def few_level(h: int, w: int, seed: int = 0) -> np.ndarray:
    """3-6 distinct values per channel: a quantised natural image."""
    rng = _rng(seed, "few_level")
    f = _natural_float(h, w, rng)
    out = np.empty((h, w, 3), dtype=np.uint8)
    for c in range(3):
        k = int(rng.integers(3, 7))
        levels = np.sort(rng.choice(256, size=k, replace=False))
        edges = np.quantile(f[..., c], np.linspace(0, 1, k + 1)[1:-1]) if h * w > 1 else []
        out[..., c] = levels[np.searchsorted(edges, f[..., c])]
    return out


NATURAL_KINDS = ("natural", "low_contrast", "high_contrast")
DEGENERATE_KINDS = ("constant", "flat_channel", "two_level", "few_level")
ALL_KINDS = NATURAL_KINDS + DEGENERATE_KINDS

_GENERATORS = {
    "natural": natural, "low_contrast": low_contrast, "high_contrast": high_contrast,
    "constant": constant, "flat_channel": flat_channel, "two_level": two_level,
    "few_level": few_level,
}


def make(kind: str, h: int, w: int, seed: int = 0) -> np.ndarray:
    """An image of the named kind (one of ALL_KINDS)."""
    return _GENERATORS[kind](h, w, seed)


def image_set(h: int, w: int, seed: int = 0, per_kind: int = 1, kinds=ALL_KINDS):
    """[(label, image)] covering every kind; constants always include black and white."""
    out = []
    for kind in kinds:
        seeds = [seed + i for i in range(per_kind)]
        if kind == "constant":
            seeds = sorted({0, 1, *[s + 2 for s in seeds]})
        for s in seeds:
            out.append((f"{kind}[{s}]", make(kind, h, w, s)))
    return out
