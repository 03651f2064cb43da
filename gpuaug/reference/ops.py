"""Image-level ops of the papers' code, on one PIL image, with severity sampling.

This is the *reference* (CPU baseline and statistical oracle); it calls Pillow for every
pixel operation, exactly as the official AugMix / PixMix / IPMix code does, and shares no
code with ``gpuaug.ops`` or the executors on purpose.

Severity sampling (AugMix code, used unchanged by PixMix, IPMix and Dynamic Mixup):
level l ~ U(0.1, severity); int_param(l, m) = int(l*m/10); float_param(l, m) = l*m/10;
signed ops draw the level first, then flip the sign with probability 1/2.

==================  ======================================  =============================
op                  parameter                               Pillow call
==================  ======================================  =============================
autocontrast        cutoff 0                                ImageOps.autocontrast(img, 0)
autocontrast_ipmix  cutoff 10 - float_param(l, 10)          ImageOps.autocontrast(img, c)
equalize            --                                      ImageOps.equalize
posterize           bits 4 - int_param(l, 4) (0 -> black)   ImageOps.posterize
solarize            threshold 256 - int_param(l, 256)       ImageOps.solarize
rotate              +-int_param(l, 30) degrees              img.rotate(d, BILINEAR)
shear_x / shear_y   +-float_param(l, 0.3)                   img.transform(AFFINE, BILINEAR)
translate_x / _y    +-int_param(l, W/3) / +-int_param(l, H/3) img.transform(AFFINE, BILINEAR)
color, contrast,    float_param(l, 1.8) + 0.1               ImageEnhance.*.enhance
brightness, sharpness
mirror, flip,       --                                      ImageOps.mirror / flip / invert
invert
downscale           r = 1 + float_param(l, 3)               resize to (round(W/r), round(H/r))
                                                            and back, both Image.BILINEAR
==================  ======================================  =============================

Op lists:

* ``OPS_STANDARD`` / ``OPS_ALL``: AugMix's ``augmentations`` / ``augmentations_all``
  (AugMix paper Sec. 3 and Appendix; PixMix Sec. 2.2 "standard augmentation" uses the same
  lists).
* ``OPS_IPMIX`` / ``OPS_IPMIX_ALL``: IPMix Sec. 4.1 "Image-level" only says "operations
  from PIL ... disjoint from ImageNet-C"; the lists are the official IPMix code's
  ``augmentations`` (standard minus autocontrast, plus mirror and invert) and
  ``augmentations_all`` (which *does* contain autocontrast, with cutoff 10 - l, plus the four
  enhance ops). Default (``all_ops=False`` in both the CIFAR and ImageNet code) has no
  autocontrast.
* ``OPS_DYNAMIC_MIXUP``: Dynamic Mixup Appendix B / Sec. 3 "11 types of operations: flip
  (horizontal/vertical), rotate, translate (X/Y), shear (X/Y), auto contrast, equalize,
  solarize, and posterize"; ``OPS_DYNAMIC_MIXUP_IMAGENET`` adds "an extra downscale
  operation while processing ImageNet data" (the paper gives no parameter; ours above).

Deviations: translate uses the image's own width/height (the papers' code uses a global
IMAGE_SIZE and forces a square output); posterize with 0 bits returns black (Pillow >= 13
raises; older Pillow returned black); the downscale op is ours.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

__all__ = [
    "int_param", "float_param", "sample_level", "sample_param", "apply_op", "apply_random_op",
    "augment", "as_pil", "to_float", "quantize", "check_severity", "check_ops", "OP_NAMES",
    "OPS_STANDARD", "OPS_ALL", "OPS_IPMIX", "OPS_IPMIX_ALL", "OPS_DYNAMIC_MIXUP",
    "OPS_DYNAMIC_MIXUP_IMAGENET",
    "autocontrast", "autocontrast_ipmix", "equalize", "posterize", "solarize", "rotate",
    "shear_x", "shear_y", "translate_x", "translate_y", "color", "contrast", "brightness",
    "sharpness", "mirror", "flip", "invert", "downscale",
]

# ---------------------------------------------------------------- helpers


def check_severity(severity) -> float:
    """Severity as the papers use it: a number in [1, 10] (level ~ U(0.1, severity))."""
    if isinstance(severity, bool) or not isinstance(severity, (int, float, np.integer, np.floating)):
        raise TypeError(f"severity must be a number in [1, 10], got {severity!r}")
    if not 1 <= severity <= 10:
        raise ValueError(f"severity must be in [1, 10], got {severity}")
    return float(severity)


def as_pil(image, name: str = "image") -> Image.Image:
    """A PIL RGB image, or an H x W x 3 uint8 array turned into one; anything else raises."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise ValueError(f"{name} must be an RGB PIL image, got mode {image.mode!r}")
        return image
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{name} must be a PIL RGB image or an HxWx3 uint8 array, "
                         f"got {type(image).__name__} {getattr(arr, 'shape', None)} {arr.dtype}")
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def to_float(image) -> np.ndarray:
    """PIL/uint8 image -> float32 H x W x 3 in [0, 1] (torchvision ToTensor's value/255)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {arr.dtype}")
    return arr.astype(np.float32) / np.float32(255)


def quantize(x: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 as torchvision ToPILImage does (trunc(v*255) in float32), but
    clipped to [0, 1] first (ToPILImage wraps modulo 256 instead)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return (x * np.float32(255)).astype(np.uint8)


def int_param(level: float, maxval: float) -> int:
    return int(level * maxval / 10)


def float_param(level: float, maxval: float) -> float:
    return float(level) * maxval / 10.0


def sample_level(severity: float, rng: np.random.Generator) -> float:
    return float(rng.uniform(0.1, severity))


def _signed(value, rng: np.random.Generator):
    # AugMix code: `if np.random.uniform() > 0.5: value = -value`
    return -value if rng.random() > 0.5 else value


# ---------------------------------------------------------------- parameters

def _p_none(severity, rng, w, h):
    return None


def _p_autocontrast_ipmix(severity, rng, w, h):
    return 10.0 - float_param(sample_level(severity, rng), 10)


def _p_posterize(severity, rng, w, h):
    return 4 - int_param(sample_level(severity, rng), 4)


def _p_solarize(severity, rng, w, h):
    return 256 - int_param(sample_level(severity, rng), 256)


def _p_rotate(severity, rng, w, h):
    return _signed(int_param(sample_level(severity, rng), 30), rng)


def _p_shear(severity, rng, w, h):
    return _signed(float_param(sample_level(severity, rng), 0.3), rng)


def _p_translate_x(severity, rng, w, h):
    return _signed(int_param(sample_level(severity, rng), w / 3), rng)


def _p_translate_y(severity, rng, w, h):
    return _signed(int_param(sample_level(severity, rng), h / 3), rng)


def _p_enhance(severity, rng, w, h):
    return float_param(sample_level(severity, rng), 1.8) + 0.1


def _p_downscale(severity, rng, w, h):
    return 1.0 + float_param(sample_level(severity, rng), 3)


# ---------------------------------------------------------------- pixel operations (Pillow)

def _affine(img: Image.Image, coeffs) -> Image.Image:
    return img.transform(img.size, Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)


def _a_posterize(img, bits):
    if bits <= 0:  # Pillow >= 13 raises for 0 bits; older Pillow (the papers') gave black
        return Image.new("RGB", img.size, (0, 0, 0))
    return ImageOps.posterize(img, int(bits))


def _a_downscale(img, r):
    w, h = img.size
    small = (max(1, int(math.floor(w / r + 0.5))), max(1, int(math.floor(h / r + 0.5))))
    return img.resize(small, Image.Resampling.BILINEAR).resize((w, h), Image.Resampling.BILINEAR)


_OPS = {
    # name: (parameter sampler (severity, rng, width, height) -> param, apply (img, param) -> img)
    "autocontrast": (_p_none, lambda img, p: ImageOps.autocontrast(img, 0)),
    "autocontrast_ipmix": (_p_autocontrast_ipmix, lambda img, p: ImageOps.autocontrast(img, p)),
    "equalize": (_p_none, lambda img, p: ImageOps.equalize(img)),
    "posterize": (_p_posterize, _a_posterize),
    "solarize": (_p_solarize, lambda img, p: ImageOps.solarize(img, p)),
    "rotate": (_p_rotate, lambda img, p: img.rotate(p, resample=Image.Resampling.BILINEAR)),
    "shear_x": (_p_shear, lambda img, p: _affine(img, (1, p, 0, 0, 1, 0))),
    "shear_y": (_p_shear, lambda img, p: _affine(img, (1, 0, 0, p, 1, 0))),
    "translate_x": (_p_translate_x, lambda img, p: _affine(img, (1, 0, p, 0, 1, 0))),
    "translate_y": (_p_translate_y, lambda img, p: _affine(img, (1, 0, 0, 0, 1, p))),
    "color": (_p_enhance, lambda img, p: ImageEnhance.Color(img).enhance(p)),
    "contrast": (_p_enhance, lambda img, p: ImageEnhance.Contrast(img).enhance(p)),
    "brightness": (_p_enhance, lambda img, p: ImageEnhance.Brightness(img).enhance(p)),
    "sharpness": (_p_enhance, lambda img, p: ImageEnhance.Sharpness(img).enhance(p)),
    "mirror": (_p_none, lambda img, p: ImageOps.mirror(img)),
    "flip": (_p_none, lambda img, p: ImageOps.flip(img)),
    "invert": (_p_none, lambda img, p: ImageOps.invert(img)),
    "downscale": (_p_downscale, _a_downscale),
}
OP_NAMES: tuple[str, ...] = tuple(_OPS)

OPS_STANDARD: tuple[str, ...] = (
    "autocontrast", "equalize", "posterize", "rotate", "solarize",
    "shear_x", "shear_y", "translate_x", "translate_y",
)
OPS_ALL: tuple[str, ...] = OPS_STANDARD + ("color", "contrast", "brightness", "sharpness")
OPS_IPMIX: tuple[str, ...] = (
    "equalize", "posterize", "rotate", "solarize", "shear_x", "shear_y",
    "translate_x", "translate_y", "mirror", "invert",
)
OPS_IPMIX_ALL: tuple[str, ...] = (
    "autocontrast_ipmix", "equalize", "posterize", "rotate", "solarize", "shear_x", "shear_y",
    "translate_x", "translate_y", "color", "contrast", "brightness", "sharpness", "mirror", "invert",
)
OPS_DYNAMIC_MIXUP: tuple[str, ...] = (
    "mirror", "flip", "rotate", "translate_x", "translate_y", "shear_x", "shear_y",
    "autocontrast", "equalize", "solarize", "posterize",
)
OPS_DYNAMIC_MIXUP_IMAGENET: tuple[str, ...] = OPS_DYNAMIC_MIXUP + ("downscale",)

def _check_op(name: str) -> None:
    if name not in _OPS:
        raise ValueError(f"unknown op {name!r}; known ops: {', '.join(OP_NAMES)}")


def check_ops(ops: Sequence[str]) -> tuple[str, ...]:
    if isinstance(ops, str):
        raise TypeError("ops must be a sequence of op names, not a single string")
    ops = tuple(ops)
    if not ops:
        raise ValueError("ops must not be empty")
    for name in ops:
        _check_op(name)
    return ops


def sample_param(name: str, severity: float, rng: np.random.Generator, size: tuple[int, int]):
    """Draw op ``name``'s parameter for an image of ``size`` = (width, height); None for
    parameterless ops (they draw nothing)."""
    _check_op(name)
    w, h = size
    return _OPS[name][0](check_severity(severity), rng, w, h)


def apply_op(img: Image.Image, name: str, param=None) -> Image.Image:
    """Apply op ``name`` with an explicit parameter (deterministic)."""
    _check_op(name)
    return _OPS[name][1](as_pil(img), param)


def apply_random_op(img, ops: Sequence[str], severity: float, rng: np.random.Generator,
                    return_op: bool = False):
    """One op drawn uniformly from ``ops`` (``rng.integers(len(ops))``), then its parameter
    (level, then sign), then applied. Returns the image, or (image, (name, param))."""
    ops = check_ops(ops)
    img = as_pil(img)
    name = ops[int(rng.integers(len(ops)))]
    param = sample_param(name, severity, rng, img.size)
    out = _OPS[name][1](img, param)
    return (out, (name, param)) if return_op else out


def augment(img, ops: Sequence[str], severity: float, rng: np.random.Generator, return_op: bool = False):
    """The papers' ``augment_input``: one random op from ``ops`` on a copy of ``img``."""
    return apply_random_op(img, ops, severity, rng, return_op=return_op)


# ---------------------------------------------------------------- named op functions
# op(img, severity, rng) -> img; module-level so they pickle by reference.

def _make(name: str) -> Callable:
    def op(img, severity: float, rng: np.random.Generator) -> Image.Image:
        img = as_pil(img)
        return _OPS[name][1](img, sample_param(name, severity, rng, img.size))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Op {name!r}: sample its parameter from ``severity`` with ``rng`` and apply it."
    return op


autocontrast = _make("autocontrast")
autocontrast_ipmix = _make("autocontrast_ipmix")
equalize = _make("equalize")
posterize = _make("posterize")
solarize = _make("solarize")
rotate = _make("rotate")
shear_x = _make("shear_x")
shear_y = _make("shear_y")
translate_x = _make("translate_x")
translate_y = _make("translate_y")
color = _make("color")
contrast = _make("contrast")
brightness = _make("brightness")
sharpness = _make("sharpness")
mirror = _make("mirror")
flip = _make("flip")
invert = _make("invert")
downscale = _make("downscale")
