"""Preview grids: input images and several augmented draws of a method side by side."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .gallery import grid
from .methods import CutMix, Mixup


def to_host(batch) -> np.ndarray:
    """A numpy copy of a numpy, torch or CuPy array."""
    if hasattr(batch, "get"):
        return batch.get()
    if hasattr(batch, "detach"):
        return batch.detach().cpu().numpy()
    return np.asarray(batch)


def to_uint8(batch) -> np.ndarray:
    """float [0, 1] NHWC (numpy, torch or CuPy) -> uint8 numpy for display."""
    return np.clip(np.rint(to_host(batch) * 255), 0, 255).astype(np.uint8)


def augment_draws(method, images, mixing=None, draws: int = 4, seed: int = 0, executor: str = "auto"):
    """``draws`` augmented versions of each image: a list of uint8 NHWC numpy batches."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        if isinstance(method, (Mixup, CutMix)):
            labels = np.arange(len(images)) if isinstance(images, np.ndarray) else _arange_like(images)
            batch, _ = method(images, labels, num_classes=len(images), seed=rng, executor=executor)
        else:
            batch = method(images, mixing=mixing if method.needs_mixing else None, seed=rng, executor=executor)
        out.append(to_uint8(batch))
    return out


def _arange_like(images):
    import torch

    return torch.arange(len(images), device=images.device)


def method_preview(method, images, mixing=None, draws: int = 4, seed: int = 0,
                   executor: str = "auto", title: str | None = None) -> Image.Image:
    """A grid: one row per input image, the input then ``draws`` augmented versions."""
    shown = to_host(images)
    results = augment_draws(method, images, mixing, draws, seed, executor)
    tiles = [[shown[i]] + [r[i] for r in results] for i in range(len(shown))]
    name = title or type(method).__name__
    return grid(tiles, [f"{name} #{i}" for i in range(len(shown))],
                ["input"] + [f"draw {d + 1}" for d in range(draws)])
