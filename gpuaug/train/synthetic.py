"""The built-in labelled data set: procedurally drawn shapes, written as real JPEG files.

Six classes (circle, square, triangle, cross, stripes, ring) drawn at random size,
position, rotation and colour on a noisy gradient background, so that a small network
must learn shape rather than colour. Generation is deterministic in (seed, counts, size):
the same arguments give the same files. The set is written once, in ImageFolder layout,

    <cache>/shapes-v1-<classes>c-<train>-<val>-<size>px-seed<seed>/{train,val}/<class>/<n>.jpg

into a temporary folder renamed into place when complete, and reused afterwards.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "cross", "stripes", "ring")
# The default run's set: 6 x 200 training and 6 x 50 validation pictures of 48 x 48.
TRAIN_PER_CLASS, VAL_PER_CLASS, SIZE = 200, 50, 48


def default_cache() -> Path:
    from ..data.cachedir import cache_root

    return cache_root()


def _colour(rng, avoid=None):
    while True:
        c = rng.integers(0, 256, size=3)
        if avoid is None or np.abs(c.astype(int) - np.asarray(avoid, int)).sum() > 220:
            return tuple(int(v) for v in c)


def _polygon(cx, cy, r, sides, angle):
    return [(cx + r * math.cos(angle + 2 * math.pi * i / sides), cy + r * math.sin(angle + 2 * math.pi * i / sides))
            for i in range(sides)]


def draw(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One HWC uint8 picture of class ``label``."""
    s = size
    bg0, bg1 = np.array(_colour(rng), float), np.array(_colour(rng), float)
    t = np.linspace(0, 1, s)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * t[None, :] + np.sin(direction) * t[:, None])
    ramp = (ramp - ramp.min()) / max(1e-6, np.ptp(ramp))
    bg = bg0 + ramp[..., None] * (bg1 - bg0) + rng.normal(0, 12, size=(s, s, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    fg = _colour(rng, avoid=(bg0 + bg1) / 2)
    r = rng.uniform(0.18, 0.36) * s
    cx, cy = rng.uniform(r, s - r), rng.uniform(r, s - r)
    angle = rng.uniform(0, 2 * np.pi)
    name = CLASSES[label]
    if name == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif name == "square":
        d.polygon(_polygon(cx, cy, r * 1.1, 4, angle), fill=fg)
    elif name == "triangle":
        d.polygon(_polygon(cx, cy, r * 1.2, 3, angle), fill=fg)
    elif name == "cross":
        w = r * rng.uniform(0.25, 0.4)
        for a in (angle, angle + math.pi / 2):
            dx, dy, nx, ny = math.cos(a) * r, math.sin(a) * r, -math.sin(a) * w, math.cos(a) * w
            d.polygon([(cx - dx - nx, cy - dy - ny), (cx + dx - nx, cy + dy - ny),
                       (cx + dx + nx, cy + dy + ny), (cx - dx + nx, cy - dy + ny)], fill=fg)
    elif name == "stripes":
        period = rng.uniform(0.12, 0.22) * s
        yy, xx = np.mgrid[0:s, 0:s]
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) / period
        mask = (np.mod(phase, 1.0) < 0.5) & (np.hypot(xx - cx, yy - cy) < r * 1.3)
        arr = np.asarray(img).copy()
        arr[mask] = fg
        img = Image.fromarray(arr)
    elif name == "ring":
        w = r * rng.uniform(0.25, 0.4)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=max(2, int(w)))
    return np.asarray(img)


def build(root: Path | str | None = None, train_per_class: int = 300, val_per_class: int = 60,
          size: int = 64, seed: int = 0, classes: int = len(CLASSES), quality: int = 90,
          log=print) -> Path:
    """Write (once) and return the data set folder (with ``train/`` and ``val/``)."""
    if not 2 <= classes <= len(CLASSES):
        raise ValueError(f"classes must be in 2..{len(CLASSES)}, got {classes}")
    root = Path(root) if root is not None else default_cache()
    folder = root / f"shapes-v1-{classes}c-{train_per_class}-{val_per_class}-{size}px-seed{seed}"
    if (folder / "DONE").exists():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    log(f"generating the built-in shapes data set ({classes} classes, "
        f"{classes * (train_per_class + val_per_class)} JPEGs of {size}x{size}) in {folder}")
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=root))
    try:
        for split, count, salt in (("train", train_per_class, 1), ("val", val_per_class, 2)):
            for label in range(classes):
                out = tmp / split / CLASSES[label]
                out.mkdir(parents=True)
                rng = np.random.default_rng([seed, salt, label])
                for i in range(count):
                    Image.fromarray(draw(label, size, rng)).save(out / f"{i:05d}.jpg", quality=quality)
        (tmp / "DONE").write_text("complete\n")
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished first
            if not (folder / "DONE").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
