"""Baselines the papers compare against: Mixup, CutMix (batch level) and Cutout (one image).

* Mixup (Zhang et al., ICLR 2018, Sec. 2 and its reference code): one lam ~ Beta(alpha, alpha)
  per batch, a random permutation pi; x' = lam*x + (1 - lam)*x[pi], y' likewise.
* CutMix (Yun et al., ICCV 2019, Sec. 3.1 and its reference code): one lam ~ Beta(alpha,
  alpha) per batch (alpha = 1: U(0, 1)), permutation pi; box side ratio sqrt(1 - lam):
  cut_w = int(W*sqrt(1-lam)), cut_h = int(H*sqrt(1-lam)); centre cx ~ U{0..W-1},
  cy ~ U{0..H-1}; box = [cx - cut_w//2, cx + cut_w//2) x [cy - cut_h//2, cy + cut_h//2)
  clipped to the image; the box is pasted from x[pi]; lam is then reset to
  1 - box_area / (W*H) and labels mix with that lam.
* Cutout (DeVries & Taylor 2017, Sec. 3 and its reference code): one square of side
  ``size``, centre (cy, cx) uniform over all pixels, clipped at the border (so holes at the
  edge are smaller), filled with 0. The reference code cuts the *normalised* tensor, so its
  0 is the dataset mean colour: pass ``fill=mean`` to get that on [0, 1] images.

Draw order: mixup: lam, then the permutation; cutmix: lam, permutation, cx, cy;
cutout: cy, cx. Images are NHWC (N, H, W, C) float arrays; labels (N, classes) one-hot or
soft.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mixup", "cutmix", "cutout", "cutmix_box"]


def _check_batch(images, labels):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4:
        raise ValueError(f"images must be N x H x W x C, got shape {images.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be float, got {images.dtype}")
    if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be N x classes with N = {images.shape[0]}, got {labels.shape}")
    return images, labels.astype(images.dtype, copy=False)


def mixup(images_float, labels_onehot, rng: np.random.Generator, alpha: float = 1.0,
          return_info: bool = False):
    """Mixup of a batch -> (images, labels) [+ info {"lam", "perm"}]."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    x, y = _check_batch(images_float, labels_onehot)
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(x.shape[0])
    lam_t = x.dtype.type(lam)
    out_x = lam_t * x + (1 - lam_t) * x[perm]
    out_y = lam_t * y + (1 - lam_t) * y[perm]
    if return_info:
        return out_x, out_y, {"lam": lam, "perm": perm}
    return out_x, out_y


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator):
    """CutMix's box (y0, y1, x0, x1), half-open, for mixing ratio ``lam``; draws cx then cy."""
    cut_rat = np.sqrt(1.0 - lam)
    cut_w = int(width * cut_rat)
    cut_h = int(height * cut_rat)
    cx = int(rng.integers(width))
    cy = int(rng.integers(height))
    x0 = int(np.clip(cx - cut_w // 2, 0, width))
    x1 = int(np.clip(cx + cut_w // 2, 0, width))
    y0 = int(np.clip(cy - cut_h // 2, 0, height))
    y1 = int(np.clip(cy + cut_h // 2, 0, height))
    return y0, y1, x0, x1


def cutmix(images_float, labels_onehot, rng: np.random.Generator, alpha: float = 1.0,
           return_info: bool = False):
    """CutMix of a batch -> (images, labels) [+ info {"lam" (area-adjusted), "lam_sampled",
    "box" (y0, y1, x0, x1), "perm"}]."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    x, y = _check_batch(images_float, labels_onehot)
    n, h, w = x.shape[:3]
    lam_sampled = float(rng.beta(alpha, alpha))
    perm = rng.permutation(n)
    y0, y1, x0, x1 = cutmix_box(h, w, lam_sampled, rng)
    out_x = x.copy()
    out_x[:, y0:y1, x0:x1] = x[perm, y0:y1, x0:x1]
    lam = 1.0 - ((y1 - y0) * (x1 - x0)) / float(h * w)
    lam_t = x.dtype.type(lam)
    out_y = lam_t * y + (1 - lam_t) * y[perm]
    if return_info:
        return out_x, out_y, {"lam": lam, "lam_sampled": lam_sampled, "box": (y0, y1, x0, x1), "perm": perm}
    return out_x, out_y


def cutout(image_float, rng: np.random.Generator, size: int = 16, fill=0.0, return_info: bool = False):
    """Cutout of one H x W x C float image: one size x size square, centre uniform over the
    pixels, clipped at the border, set to ``fill``. Returns a new array [+ info {"box"}]."""
    img = np.asarray(image_float)
    if img.ndim != 3:
        raise ValueError(f"image must be H x W x C, got shape {img.shape}")
    if int(size) != size or size < 0:
        raise ValueError(f"size must be an integer >= 0, got {size}")
    h, w = img.shape[:2]
    cy = int(rng.integers(h))
    cx = int(rng.integers(w))
    y0, y1 = int(np.clip(cy - size // 2, 0, h)), int(np.clip(cy + size // 2, 0, h))
    x0, x1 = int(np.clip(cx - size // 2, 0, w)), int(np.clip(cx + size // 2, 0, w))
    out = img.copy()
    out[y0:y1, x0:x1] = fill
    if return_info:
        return out, {"box": (y0, y1, x0, x1), "centre": (cy, cx)}
    return out
