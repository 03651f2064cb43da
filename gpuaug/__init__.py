"""gpuaug: AugMix, PixMix, IPMix, Dynamic Mixup and NoisyMix as batched, PIL-faithful GPU
augmentations (CUDA kernels, DALI graph nodes) with a CPU twin."""

from . import ops
from .loader import CIFARLoader, FileListLoader, ImageFolderLoader, WebDatasetLoader
from .methods import AugMix, CutMix, Cutout, DynamicMixup, IPMix, Method, Mixup, NoisyMix, PixMix, make_method
from .mixing import MixingSet

__version__ = "0.1.0"
__all__ = [
    "ops", "Method", "AugMix", "PixMix", "IPMix", "DynamicMixup", "NoisyMix", "Mixup", "CutMix",
    "Cutout", "make_method", "MixingSet", "ImageFolderLoader", "FileListLoader", "WebDatasetLoader", "CIFARLoader",
    "__version__",
]


def __getattr__(name):
    # Frontends load on first use: gpuaug.torch (nn.Modules) and gpuaug.ffcv (needs FFCV).
    if name in ("torch", "ffcv"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
