"""The classic baselines: Mixup and CutMix (label-mixing, one lambda per batch, as in their
papers) and Cutout (label-preserving, one square per image)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _arrays
from .base import Method, select_backend, as_generator, check_range, to_float


@dataclass(frozen=True)
class MixPlan:
    lam: float               # the image weight (CutMix: adjusted to the box area)
    permutation: np.ndarray  # (N,) partner of each image
    box: tuple = (0, 0, 0, 0)  # CutMix: (top, bottom, left, right), half-open


class _LabelMixing:
    """Shared call path of Mixup and CutMix: (images, labels) -> (float images, soft targets)."""

    def __call__(self, images, labels, num_classes: int, seed=None, executor: str = "auto"):
        """Mix an NHWC uint8 batch and its integer labels; returns float32 NHWC in [0, 1]
        and float32 (N, num_classes) targets, on the images' device and kind."""
        kind = _arrays.check_image_batch(images)
        backend = select_backend(executor, kind)
        n, height, width = (int(s) for s in images.shape[:3])
        check_range("num_classes", num_classes, low=1, integer=True)
        label_kind = _arrays.kind_of(labels, "labels")
        if label_kind.on_cuda != kind.on_cuda:
            raise ValueError("labels must be on the same device as the images")
        if tuple(labels.shape) != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        plan = self.plan(n, height, width, as_generator(seed))
        with _arrays.cuda_scope(kind):
            xp = backend.xp
            x = _arrays.to_cupy(images) if backend.on_device else _arrays.to_numpy(images)
            y = _arrays.to_cupy(labels) if backend.on_device else _arrays.to_numpy(labels)
            if y.dtype.kind not in "iu":
                raise TypeError(f"labels must be integers, got dtype {y.dtype}")
            if y.size:  # CuPy's min/max take no initial=; one transfer for both bounds
                low, high = (int(v) for v in xp.stack([y.min(), y.max()]).tolist())
                if low < 0 or high >= num_classes:
                    raise ValueError(f"labels must be in 0..{num_classes - 1}")
            onehot = xp.eye(num_classes, dtype=xp.float32)[y]
            perm = backend.asarray(plan.permutation)
            lam = xp.float32(plan.lam)
            targets = lam * onehot + (1 - lam) * onehot[perm]
            out = self.execute(plan, x, None, backend)
            return Method._give_back(out, kind, backend), Method._give_back(targets, kind, backend)


@dataclass(frozen=True)
class Mixup(_LabelMixing):
    """x' = lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha) once per batch."""

    alpha: float = 1.0

    def __post_init__(self):
        check_range("alpha", self.alpha, low=0, low_open=True)

    def plan(self, n, height, width, rng) -> MixPlan:
        return MixPlan(float(np.float32(rng.beta(self.alpha, self.alpha))), rng.permutation(n))

    def execute(self, plan: MixPlan, images, mixing, backend):
        xf = to_float(backend, images)
        lam = backend.xp.float32(plan.lam)
        return lam * xf + (1 - lam) * xf[backend.asarray(plan.permutation)]


@dataclass(frozen=True)
class CutMix(_LabelMixing):
    """Paste a box of x[perm] into x: lam ~ Beta(alpha, alpha), box side sqrt(1 - lam) of
    each image side, centre uniform, clipped at the border; lam becomes 1 - box area."""

    alpha: float = 1.0

    def __post_init__(self):
        check_range("alpha", self.alpha, low=0, low_open=True)

    def plan(self, n, height, width, rng) -> MixPlan:
        lam = rng.beta(self.alpha, self.alpha)
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        area = (bottom - top) * (right - left)
        lam = float(np.float32(1.0 - area / (height * width)))
        return MixPlan(lam, rng.permutation(n), (int(top), int(bottom), int(left), int(right)))

    def execute(self, plan: MixPlan, images, mixing, backend):
        out = to_float(backend, images)
        top, bottom, left, right = plan.box
        partner = out[backend.asarray(plan.permutation)]
        out[:, top:bottom, left:right] = partner[:, top:bottom, left:right]
        return out


@dataclass(frozen=True)
class CutoutPlan:
    centre_y: np.ndarray  # (N,)
    centre_x: np.ndarray  # (N,)


@dataclass(frozen=True)
class Cutout(Method):
    """Zero one size x size square per image; centre uniform over the image, the square
    clipped at the border (DeVries & Taylor, 2017; CIFAR: size 16). Label-preserving."""

    size: int = 16

    def __post_init__(self):
        check_range("size", self.size, low=1, integer=True)

    def plan(self, n, height, width, rng) -> CutoutPlan:
        return CutoutPlan(rng.integers(0, height, size=n), rng.integers(0, width, size=n))

    def execute(self, plan: CutoutPlan, images, mixing, backend):
        xp = backend.xp
        n, height, width = images.shape[:3]
        half = self.size // 2
        ys = backend.asarray(np.arange(height)).reshape(1, -1, 1, 1)
        xs = backend.asarray(np.arange(width)).reshape(1, 1, -1, 1)
        cy = backend.asarray(plan.centre_y.reshape(-1, 1, 1, 1))
        cx = backend.asarray(plan.centre_x.reshape(-1, 1, 1, 1))
        inside = (ys >= cy - half) & (ys < cy - half + self.size) & (xs >= cx - half) & (xs < cx - half + self.size)
        return xp.where(inside, xp.float32(0), to_float(backend, images))
