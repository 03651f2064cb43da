"""What every method shares: input checks, backend choice, plan -> execute, JSD views.

A method samples a *plan* (numpy arrays: every random choice for the batch) and executes
it on a backend (``cpu``: numpy; ``cuda``: CuPy + CUDA kernels; ``emulated``: the CUDA
kernels on the CPU emulator, for tests). The same plan gives the same pixels on every
backend.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from .. import _arrays
from ..executors.backend import Backend, get_backend
from .mixing_source import mixing_source

EXECUTORS = ("auto", "cpu", "cuda", "emulated")


def as_generator(seed) -> np.random.Generator:
    """None (fresh entropy), an int seed, or a numpy Generator (used as is)."""
    if seed is None or isinstance(seed, (int, np.integer, np.random.Generator)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {type(seed).__name__}")


def to_float(backend: Backend, x):
    """uint8 -> float32 in [0, 1] (x / 255, as torchvision's ToTensor)."""
    from ..executors import mixops

    return mixops.to_unit(backend, x)


def per_sample(backend: Backend, values: np.ndarray):
    """A per-sample float32 coefficient shaped (N, 1, 1, 1) for broadcasting over NHWC."""
    return backend.asarray(np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1))


def check_range(name: str, value, low=None, high=None, integer=False, low_open=False):
    """ValueError naming the config field when ``value`` is not in range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")


def select_backend(executor: str, kind: _arrays.ArrayKind) -> Backend:
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if executor == "auto":
        executor = "cuda" if kind.on_cuda else "cpu"
    if kind.on_cuda != (executor == "cuda"):
        where = "on a CUDA device" if kind.on_cuda else "on the host"
        raise ValueError(f"executor={executor!r} does not run on images {where}; use executor='auto'")
    return get_backend(executor)


class Method:
    """Base class: subclasses define ``plan`` and ``execute`` (and ``needs_mixing``)."""

    needs_mixing = False
    #: augmented views ``views()`` returns after the clean one (2: AugMix's JSD triple).
    jsd_views = 2

    # -- to implement --------------------------------------------------------------
    def plan(self, n: int, height: int, width: int, rng: np.random.Generator):
        raise NotImplementedError

    def execute(self, plan, images, mixing, backend: Backend):
        """Apply ``plan`` to uint8 ``images`` (and gathered uint8 ``mixing`` pictures or
        None) on ``backend``; return float32 NHWC in [0, 1]."""
        raise NotImplementedError

    def execute_all(self, plans, images, mixing, backend: Backend) -> list:
        """``execute`` for several plans of one batch (JSD views); a method may run them
        together."""
        return [self.execute(plan, images, mixing, backend) for plan in plans]

    # -- public API ------------------------------------------------------------------
    def __call__(self, images, mixing=None, seed=None, executor: str = "auto"):
        """Augment an NHWC uint8 batch; float32 NHWC in [0, 1] of the same kind and device."""
        return self._run(images, mixing, seed, executor, views=False)[0]

    def views(self, images, mixing=None, seed=None, executor: str = "auto"):
        """(clean, aug1, ..., aug_k) for JSD training, k = ``jsd_views`` (2 unless the method
        says otherwise): independent plans, the same mixing pictures."""
        return tuple(self._run(images, mixing, seed, executor, views=True))

    def config(self) -> dict:
        """The method's settings as a plain dict (for logs and recipes)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # -- machinery -------------------------------------------------------------------
    def _run(self, images, mixing, seed, executor, views):
        kind = _arrays.check_image_batch(images)
        backend = select_backend(executor, kind)
        rng = as_generator(seed)
        n, height, width = (int(s) for s in images.shape[:3])
        source = mixing_source(mixing, kind, height, width) if self.needs_mixing else None
        if source is None and self.needs_mixing:
            raise ValueError(
                f"{type(self).__name__} needs mixing pictures: pass mixing= a uint8 NHWC pool of "
                "the images' size or a gpuaug.mixing.MixingSet (e.g. MixingSet.fractals(...))"
            )
        if mixing is not None and not self.needs_mixing:
            raise ValueError(f"{type(self).__name__} takes no mixing pictures (mixing must be None)")
        with _arrays.cuda_scope(kind):
            x = _arrays.to_cupy(images) if backend.on_device else _arrays.to_numpy(images)
            pictures = None
            if source is not None:
                pictures = source.gather(source.sample(n, rng), backend)
            outs = self.execute_all([self.plan(n, height, width, rng) for _ in range(self.jsd_views if views else 1)],
                                    x, pictures, backend)
            if views:
                outs.insert(0, to_float(backend, x))
            return [self._give_back(o, kind, backend) for o in outs]

    @staticmethod
    def _give_back(out, kind, backend):
        if backend.on_device:
            return _arrays.from_cupy(out, kind)
        return _arrays.from_numpy(np.ascontiguousarray(out), kind)
