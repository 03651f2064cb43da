"""Built-in sample pictures, drawn procedurally (no downloads): small outdoor scenes."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def scene(size: int = 224, seed: int = 0) -> np.ndarray:
    """An HWC uint8 RGB scene: sky gradient, sun, hills, a house, textured ground.

    The layout and colours vary with ``seed``; rich enough in edges, gradients and flat
    areas to show what each op does.
    """
    rng = np.random.default_rng(seed)
    s = size
    y = np.linspace(0, 1, s)[:, None]
    top = rng.uniform([60, 120, 200], [130, 180, 250])
    sky = (top + y[..., None] * rng.uniform([40, 20, -40], [100, 70, 0])) * np.ones((1, s, 1))
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    sx, sy, sr = rng.uniform(0.1, 0.85), rng.uniform(0.05, 0.25), rng.uniform(0.06, 0.11)
    d.ellipse([(sx - sr) * s, (sy - sr) * s, (sx + sr) * s, (sy + sr) * s],
              fill=tuple(int(v) for v in rng.uniform([230, 180, 40], [255, 240, 130])))
    h1, h2, h3 = rng.uniform(0.4, 0.65, size=3)
    d.polygon([(0, h1 * s), (0.35 * s, h2 * s - 0.1 * s), (0.65 * s, h3 * s), (s, h2 * s), (s, s), (0, s)],
              fill=tuple(int(v) for v in rng.uniform([40, 110, 30], [110, 170, 80])))
    hx, hw = rng.uniform(0.1, 0.55), rng.uniform(0.22, 0.35)
    wall = tuple(int(v) for v in rng.uniform([150, 40, 30], [230, 200, 90]))
    d.rectangle([hx * s, 0.52 * s, (hx + hw) * s, 0.8 * s], fill=wall)
    d.polygon([(hx * s - 0.04 * s, 0.52 * s), ((hx + hw / 2) * s, 0.36 * s), ((hx + hw) * s + 0.04 * s, 0.52 * s)],
              fill=(110, 50, 40))
    d.rectangle([(hx + hw * 0.55) * s, 0.64 * s, (hx + hw * 0.8) * s, 0.8 * s], fill=(60, 40, 30))
    d.rectangle([(hx + hw * 0.12) * s, 0.57 * s, (hx + hw * 0.35) * s, 0.65 * s], fill=(230, 240, 255))
    arr = np.asarray(img).astype(np.int16)
    ground = np.zeros_like(arr)
    ground[int(0.8 * s):] = rng.integers(-25, 25, size=(s - int(0.8 * s), s, 1))
    return np.clip(arr + ground, 0, 255).astype(np.uint8)


def batch(n: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """n different scenes (seeds seed .. seed + n - 1) as an NHWC uint8 batch."""
    return np.stack([scene(size, seed + i) for i in range(n)])
