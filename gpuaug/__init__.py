"""gpuaug: AugMix, PixMix, IPMix, Dynamic Mixup and NoisyMix as batched, PIL-faithful GPU
augmentations (CUDA kernels, DALI graph nodes) with a CPU twin."""

from . import ops
from .methods import AugMix, CutMix, Cutout, DynamicMixup, IPMix, Method, Mixup, NoisyMix, PixMix

__version__ = "0.1.0"
__all__ = ["ops", "Method", "AugMix", "PixMix", "IPMix", "DynamicMixup", "NoisyMix", "Mixup", "CutMix",
           "Cutout", "__version__"]
