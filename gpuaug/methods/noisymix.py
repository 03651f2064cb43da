"""NoisyMix (Erichson et al., 2022), data side: AugMix views for JSD training.

The model side (noisy feature mixup at a random layer) is the trainer's job; its settings
travel in this config. Defaults are the authors' CIFAR settings (the erichson/NoisyMix
README command): mixup alpha 1.0 with manifold mixup, additive noise level 0.5 (scaled x1,
x2, x3 on the clean, aug1 and aug2 splits), multiplicative noise level 0.5, sparsity 0.65
(on both noises), JSD weight 12. See :mod:`gpuaug.train.noisymix` for the formula.
"""

from __future__ import annotations

from dataclasses import dataclass

from .augmix import AugMix
from .base import check_range


@dataclass(frozen=True)
class NoisyMix(AugMix):
    """AugMix data augmentation plus the model-side noisy feature mixup settings."""

    mix_alpha: float = 1.0
    manifold_mixup: bool = True
    add_noise_level: float = 0.5
    mult_noise_level: float = 0.5
    sparse_level: float = 0.65
    jsd_lambda: float = 12.0

    def __post_init__(self):
        super().__post_init__()
        check_range("mix_alpha", self.mix_alpha, low=0, low_open=True)
        check_range("add_noise_level", self.add_noise_level, low=0)
        check_range("mult_noise_level", self.mult_noise_level, low=0)
        check_range("sparse_level", self.sparse_level, low=0, high=1)
        check_range("jsd_lambda", self.jsd_lambda, low=0)
