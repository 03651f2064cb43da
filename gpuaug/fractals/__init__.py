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

Modules: :mod:`.plan` (the plan sampler), :mod:`.cpu` (numpy renderer), :mod:`.device`
(kernel renderer and the executor choice), :mod:`.cache` (the on-disk cache, PNG files).
"""

from .cache import GENERATOR_VERSION, cache_file, default_cache_dir, fractal_images, write_fractal_pngs
from .cpu import render_fractals_cpu
from .device import cuda_available, render_fractals, render_fractals_xp
from .plan import (BURN_IN, ESCAPE, IFS, MAX_MAPS, POINTS_PER_PIXEL, TRAP_CIRCLE, TRAP_LINE, TRAP_POINT, WALKERS,
                   FractalPlan, ifs_schedule, sample_fractal_plan)

__all__ = ["GENERATOR_VERSION", "cache_file", "default_cache_dir", "fractal_images", "write_fractal_pngs",
           "render_fractals_cpu", "cuda_available", "render_fractals", "render_fractals_xp", "BURN_IN", "ESCAPE",
           "IFS", "MAX_MAPS", "POINTS_PER_PIXEL", "TRAP_CIRCLE", "TRAP_LINE", "TRAP_POINT", "WALKERS",
           "FractalPlan", "ifs_schedule", "sample_fractal_plan"]
