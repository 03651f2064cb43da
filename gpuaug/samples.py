"""Built-in sample pictures, drawn procedurally (no downloads): a small outdoor scene."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def scene(size: int = 224, seed: int = 0) -> np.ndarray:
    """An HWC uint8 RGB scene (sky gradient, sun, hills, house, textured ground).

    Rich enough in edges, gradients and flat areas to show what each op does.
    """
    rng = np.random.default_rng(seed)
    s = size
    y = np.linspace(0, 1, s)[:, None]
    sky = np.stack([90 + 80 * y, 150 + 60 * y, 235 - 20 * y], axis=-1) * np.ones((1, s, 1))
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse([0.70 * s, 0.08 * s, 0.88 * s, 0.26 * s], fill=(255, 220, 90))
    d.polygon([(0, 0.62 * s), (0.3 * s, 0.42 * s), (0.6 * s, 0.6 * s), (s, 0.45 * s), (s, s), (0, s)],
              fill=(70, 140, 60))
    d.rectangle([0.18 * s, 0.52 * s, 0.46 * s, 0.78 * s], fill=(200, 60, 50))
    d.polygon([(0.14 * s, 0.52 * s), (0.32 * s, 0.36 * s), (0.50 * s, 0.52 * s)], fill=(110, 50, 40))
    d.rectangle([0.28 * s, 0.64 * s, 0.36 * s, 0.78 * s], fill=(60, 40, 30))
    d.rectangle([0.21 * s, 0.56 * s, 0.26 * s, 0.62 * s], fill=(230, 240, 255))
    arr = np.asarray(img).astype(np.int16)
    ground = np.zeros_like(arr)
    ground[int(0.8 * s):] = rng.integers(-25, 25, size=(s - int(0.8 * s), s, 1))
    return np.clip(arr + ground, 0, 255).astype(np.uint8)


def batch(n: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """n scenes with different noise seeds, as an NHWC uint8 batch."""
    return np.stack([scene(size, seed + i) for i in range(n)])
