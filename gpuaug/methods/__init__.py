"""The augmentation methods: config dataclasses with a plan sampler and an executor path."""

from .augmix import AugMix
from .base import Method
from .baselines import CutMix, Cutout, Mixup
from .dynamic_mixup import DynamicMixup
from .ipmix import IPMix
from .noisymix import NoisyMix
from .pixmix import PixMix

# Command-line and recipe names of the methods.
METHODS = {
    "augmix": AugMix, "pixmix": PixMix, "ipmix": IPMix, "dynamic-mixup": DynamicMixup,
    "noisymix": NoisyMix, "mixup": Mixup, "cutmix": CutMix, "cutout": Cutout,
}


def make_method(name: str, **settings):
    """A method by its name ("augmix", "pixmix", "ipmix", "dynamic-mixup", "noisymix",
    "mixup", "cutmix", "cutout") with the paper's defaults overridden by ``settings``."""
    key = name.lower().replace("_", "-")
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    try:
        return METHODS[key](**settings)
    except TypeError as err:  # an unknown setting
        raise TypeError(f"{key}: {err}") from None


__all__ = ["Method", "AugMix", "PixMix", "IPMix", "DynamicMixup", "NoisyMix", "Mixup", "CutMix",
           "Cutout", "METHODS", "make_method"]
