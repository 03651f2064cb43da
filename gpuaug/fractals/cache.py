"""Fractals rendered on the CPU once and kept on disk (:func:`fractal_images`), and written
as PNG files (:func:`write_fractal_pngs`)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .._progress import Progress
from . import cpu
from .device import render_fractals
from .plan import _check_count, _check_size, sample_fractal_plan

# ---------------------------------------------------------------- cached host rendering

# Part of the cache key: bump it whenever the plan sampler or the renderers change pixels.
GENERATOR_VERSION = 1


def default_cache_dir() -> Path:
    """``fractals/`` in the gpuaug cache (:mod:`gpuaug.data.cachedir`; default ``~/.cache/gpuaug``)."""
    from ..data.cachedir import cache_root

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
        imgs = cpu.render_fractals_cpu(plan, size, progress=bar.update)
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
