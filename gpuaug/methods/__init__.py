"""The augmentation methods: config dataclasses with a plan sampler and an executor path."""

from .augmix import AugMix
from .baselines import CutMix, Cutout, Mixup
from .base import Method
from .dynamic_mixup import DynamicMixup
from .ipmix import IPMix
from .noisymix import NoisyMix
from .pixmix import PixMix

__all__ = ["Method", "AugMix", "PixMix", "IPMix", "DynamicMixup", "NoisyMix", "Mixup", "CutMix", "Cutout"]
