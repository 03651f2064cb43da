"""FFCV glue: pipelines that end in a gpuaug module, a .beton writer and a loader helper.

FFCV is optional (``pip install -e '.[ffcv]'``; it builds a C extension against the
system packages ``libopencv-dev``, ``libturbojpeg0-dev`` and ``pkg-config``) and is
imported only when one of these functions is called::

    import gpuaug, gpuaug.ffcv
    from ffcv.loader import Loader, OrderOption

    loader = Loader("train.beton", batch_size=256, num_workers=8, order=OrderOption.RANDOM,
                    os_cache=True, drop_last=True, pipelines={
                        "image": gpuaug.ffcv.train_pipeline(gpuaug.AugMix(), "cuda", 224,
                                                            seed=0, normalize=True),
                        "label": gpuaug.ffcv.label_pipeline("cuda"),
                    })
    for images, labels in loader:        # images: float32 (N, 3, 224, 224), channels_last
        ...

The image pipeline decodes and random-resized-crops on the CPU (FFCV's JIT-compiled
decoder), flips, copies the uint8 NHWC batch to ``device``, views it as NCHW
``channels_last`` (no copy) and ends with :class:`gpuaug.torch.Augment`, which runs the
method on the device (inside FFCV's loader thread and on its CUDA stream) and returns a
float NCHW ``channels_last`` batch. Mixup / CutMix need the labels, which FFCV keeps in a
separate pipeline: end the image pipeline with :func:`decode_pipeline` (uint8) and call
:class:`gpuaug.torch.MixBatch` in the training loop. On a CPU device FFCV warns
(``ResourceWarning``) that a torch module on the CPU is slow; that is expected.
"""

from __future__ import annotations

import numpy as np

INSTALL_HINT = (
    "gpuaug.ffcv needs FFCV: install the system packages first "
    "(apt-get install libopencv-dev libturbojpeg0-dev pkg-config), then "
    "pip install -e '.[ffcv]' (or pip install ffcv)"
)

__all__ = ["available", "require", "decode_pipeline", "train_pipeline", "val_pipeline",
           "label_pipeline", "write_dataset", "INSTALL_HINT"]


def require():
    """Import and return the ``ffcv`` package, or raise ImportError saying how to install it."""
    try:
        import ffcv  # noqa: F401  (absolute import: the FFCV package, not this module)
        import ffcv.fields.decoders
        import ffcv.transforms
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} ({err})") from err
    return ffcv


def available() -> bool:
    """True when FFCV can be imported."""
    try:
        require()
    except ImportError:
        return False
    return True


def _device(device):
    import torch

    return device if isinstance(device, torch.device) else torch.device(device)


def decode_pipeline(device, image_size: int = 224, *, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                    flip: bool = True, non_blocking: bool = True) -> list:
    """The uint8 part of a training image pipeline: random-resized-crop decode to
    ``image_size``, horizontal flip (``flip``), to a tensor, to ``device``, NCHW
    ``channels_last`` view. Ends at uint8 (N, 3, S, S), e.g. for :class:`~gpuaug.torch.MixBatch`."""
    require()
    from ffcv.fields.decoders import RandomResizedCropRGBImageDecoder
    from ffcv.transforms import RandomHorizontalFlip, ToDevice, ToTensor, ToTorchImage

    size = int(image_size)
    if size < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size!r}")
    ops = [RandomResizedCropRGBImageDecoder((size, size), scale=tuple(scale), ratio=tuple(ratio))]
    if flip:
        ops.append(RandomHorizontalFlip())
    ops += [ToTensor(), ToDevice(_device(device), non_blocking=non_blocking),
            ToTorchImage(channels_last=True)]
    return ops


def train_pipeline(method, device, image_size: int = 224, *, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                   flip: bool = True, non_blocking: bool = True, **augment) -> list:
    """FFCV operations for a training image field: :func:`decode_pipeline` followed by
    ``gpuaug.torch.Augment(method, layout="NCHW", **augment)`` (``augment``: ``mixing``,
    ``seed``, ``views``, ``normalize``, ``mean``, ``std``, ``dtype``, ``executor``).
    The loader yields the augmented float batch (or the ``views`` triple) on ``device``."""
    from .torch import Augment

    ops = decode_pipeline(device, image_size, scale=scale, ratio=ratio, flip=flip, non_blocking=non_blocking)
    augment.setdefault("layout", "NCHW")
    return ops + [Augment(method, **augment)]


def val_pipeline(device, image_size: int = 224, *, resize_ratio: float = 224 / 256,
                 non_blocking: bool = True, **convert) -> list:
    """FFCV operations for a validation image field: centre-crop decode (the crop is
    ``resize_ratio`` of the short side, resized to ``image_size``), to ``device``, then
    ``gpuaug.torch.Augment(None, **convert)``: x / 255 with the same ``normalize``,
    ``mean``, ``std`` and ``dtype`` as training, no augmentation."""
    require()
    from ffcv.fields.decoders import CenterCropRGBImageDecoder
    from ffcv.transforms import ToDevice, ToTensor, ToTorchImage

    from .torch import Augment

    size = int(image_size)
    convert.setdefault("layout", "NCHW")
    return [CenterCropRGBImageDecoder((size, size), ratio=float(resize_ratio)), ToTensor(),
            ToDevice(_device(device), non_blocking=non_blocking), ToTorchImage(channels_last=True),
            Augment(None, **convert)]


def label_pipeline(device, non_blocking: bool = True) -> list:
    """FFCV operations for an ``IntField`` label: int64-compatible (N,) tensor on ``device``."""
    require()
    from ffcv.fields.decoders import IntDecoder
    from ffcv.transforms import Squeeze, ToDevice, ToTensor

    return [IntDecoder(), ToTensor(), Squeeze(1), ToDevice(_device(device), non_blocking=non_blocking)]


def write_dataset(path, dataset, *, max_resolution: int | None = 256, write_mode: str = "smart",
                  jpeg_quality: int = 90, num_workers: int = 1, image_field: str = "image",
                  label_field: str = "label") -> str:
    """Write ``dataset`` (indexable, ``len()``; item ``i`` is ``(image, label)`` with
    ``image`` a PIL image or an HxWx3 uint8 array and ``label`` an int) as an FFCV
    ``.beton`` with an ``RGBImageField`` and an ``IntField``; returns the path.

    ``write_mode``: "raw" (lossless), "jpg" or "smart" (FFCV's choice per image);
    ``max_resolution``: longest side kept (None: as is). Use ``num_workers=1`` in tests.
    """
    require()
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter

    if write_mode not in ("raw", "jpg", "smart", "proportion"):
        raise ValueError(f"write_mode must be 'raw', 'jpg', 'smart' or 'proportion', got {write_mode!r}")
    if len(dataset) < 1:
        raise ValueError("dataset is empty")
    image, label = dataset[0]
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"dataset images must be HxWx3 uint8 (or RGB PIL images), got {arr.dtype} {arr.shape}")
    fields = {
        image_field: RGBImageField(write_mode=write_mode, max_resolution=max_resolution,
                                   jpeg_quality=int(jpeg_quality)),
        label_field: IntField(),
    }
    DatasetWriter(str(path), fields, num_workers=int(num_workers)).from_indexed_dataset(dataset)
    return str(path)
