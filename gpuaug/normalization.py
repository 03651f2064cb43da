"""The normalisation an output path applies after augmentation: (x - mean) / std per
channel, x on the [0, 1] scale. Named settings (a recipe's ``normalization``):

* ``"imagenet"``: ImageNet statistics, as every ImageNet script of the papers does (and
  the default of every output path);
* ``"half"``: mean = std = 0.5 per channel (x mapped to [-1, 1]), as the official CIFAR
  scripts of AugMix, PixMix, IPMix and NoisyMix do (``Normalize([0.5] * 3, [0.5] * 3)``).
  It matters for NoisyMix, whose noise is added to the normalised input.
"""

from __future__ import annotations

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)

NORMALIZATIONS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "half": (HALF_MEAN, HALF_STD)}


def mean_std(name: str | None) -> tuple[tuple, tuple]:
    """(mean, std) of a named normalisation; None (e.g. a model saved before runs recorded
    it) is ImageNet's."""
    if name is None:
        name = "imagenet"
    try:
        return NORMALIZATIONS[name]
    except KeyError:
        raise ValueError(f"normalization must be one of {sorted(NORMALIZATIONS)}, got {name!r}") from None
