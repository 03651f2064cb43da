"""Presets: the output size, crop and normalisation a data set's training scripts use, set
together (``preset="cifar"`` or ``"imagenet"``).

* ``"cifar"``: 32 x 32 output; training crop: pad 4 + random 32 crop + flip
  (torchvision's ``RandomCrop(32, padding=4)``); evaluation: the image itself; mean = std
  = 0.5 per channel, as the official CIFAR scripts of AugMix, PixMix, IPMix and NoisyMix.
* ``"imagenet"``: 224 x 224 output; training crop: random resized crop (scale 0.08-1) +
  flip; evaluation: short side to 256, centre crop 224; ImageNet mean/std.

``preset=None`` (the default) infers it from the data: images of 32 x 32 pixels (read from
a few files' headers; a CIFAR loader's always) or an ``image_size`` of 64 or less given
explicitly choose ``"cifar"``, anything else ``"imagenet"``; the choice and the reason are
logged once per process at INFO on ``gpuaug.loader``, as ``device="auto"`` is. Arguments
given explicitly (``image_size``, ``cifar`` -- the crop --, ``mean``, ``std``) always win
over the preset's values; with all four given no preset applies (``loader.preset`` is
None) and nothing is inferred.
"""

from __future__ import annotations

import logging
import operator
import warnings
from dataclasses import dataclass

from ..normalization import mean_std

log = logging.getLogger("gpuaug.loader")
_told: set = set()
PROBE_FILES = 8  # files whose header is read to infer the preset


@dataclass(frozen=True)
class Preset:
    image_size: int
    cifar: bool  # the crop: True pad 4 + random crop (CIFAR), False random resized crop (ImageNet)
    normalization: str  # a gpuaug.normalization name


PRESETS = {"cifar": Preset(32, True, "half"), "imagenet": Preset(224, False, "imagenet")}
GIVEN_ALL = "every setting given"


@dataclass(frozen=True)
class Resolved:
    """The settings a loader runs with, and where the preset came from."""

    preset: str | None  # None: every setting was given
    reason: str  # "given", GIVEN_ALL, or why it was inferred
    image_size: int
    cifar: bool
    mean: tuple
    std: tuple

    @property
    def crop(self) -> str:
        return "pad 4 + random crop + flip" if self.cifar else "random resized crop + flip"


def image_sides(files, limit: int = PROBE_FILES) -> set:
    """``{(width, height)}`` of up to ``limit`` files spread over ``files``, from their
    headers (files that do not open are left out)."""
    from PIL import Image

    files = list(files)
    if not files:
        return set()
    step = max(1, len(files) // limit)
    sides = set()
    for path in files[::step][:limit]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(path) as img:
                    sides.add((img.width, img.height))
        except Exception:  # noqa: BLE001 -- not a file Pillow opens (a tar member, a bad file): no vote
            continue
    return sides


def infer(sides, image_size) -> tuple[str, str]:
    """(preset name, reason) from the data's image sides and an explicit image_size."""
    if sides and sides == {(32, 32)}:
        return "cifar", "the images are 32x32"
    if image_size is not None and int(image_size) <= 64:
        return "cifar", f"image_size={int(image_size)} <= 64"
    if sides:
        w, h = max(sides)
        return "imagenet", f"the images are not 32x32 (e.g. {w}x{h})"
    return "imagenet", "the image size is unknown"


def resolve(preset=None, image_size=None, cifar=None, mean=None, std=None, sides=None) -> Resolved:
    """The loader settings: ``preset`` (or the inferred one; ``sides`` is a callable
    returning the data's image sides, called only when inference is needed), overridden by
    each explicit argument."""
    if image_size is not None:
        try:
            image_size = operator.index(image_size)
        except TypeError:
            raise ValueError(f"image_size must be a positive int, got {image_size!r}") from None
        if image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)} or None (inferred), got {preset!r}")
        name, reason = preset, "given"
    elif image_size is not None and cifar is not None and mean is not None and std is not None:
        name, reason = None, GIVEN_ALL  # nothing left for a preset to set
    else:
        name, reason = infer(sides() if sides is not None else set(), image_size)
    p = PRESETS[name or "imagenet"]
    p_mean, p_std = mean_std(p.normalization)
    out = Resolved(name, reason, p.image_size if image_size is None else int(image_size),
                   p.cifar if cifar is None else bool(cifar),
                   tuple(float(v) for v in (p_mean if mean is None else mean)),
                   tuple(float(v) for v in (p_std if std is None else std)))
    for what, values in (("mean", out.mean), ("std", out.std)):
        if len(values) != 3:
            raise ValueError(f"{what} must have 3 values (R, G, B on the [0, 1] scale), got {values!r}")
    if any(v <= 0 for v in out.std):
        raise ValueError(f"std must be positive, got {out.std!r}")
    return out


def describe(settings: dict) -> str:
    """``key=value, ...`` of the resolved settings (log line and repr)."""
    return ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in settings.items())


def log_once(kind: str, settings: dict, resolved: Resolved) -> None:
    """The INFO line giving a loader's resolved settings, once per process for each set."""
    inferred = resolved.reason not in ("given", GIVEN_ALL)
    why = f" (preset inferred: {resolved.reason}; pass preset= to choose)" if inferred else ""
    line = f"gpuaug {kind}: {describe(settings)}{why}"
    if line not in _told:
        _told.add(line)
        log.info("%s", line)
