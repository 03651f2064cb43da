"""Torch frontend: gpuaug methods as ``torch.nn.Module``s on uint8 image batches.

``Augment(method)`` takes a uint8 batch (NCHW or NHWC, CPU or CUDA tensor) and returns
the augmented float batch in the input's layout; ``MixBatch(method, num_classes)`` does
the same for the label-mixing baselines (Mixup, CutMix) and also returns soft targets.
Use them after a torchvision loader's ``.cuda()`` or at the end of an FFCV pipeline
(see :mod:`gpuaug.ffcv`)::

    aug = gpuaug.torch.Augment(gpuaug.AugMix(), seed=0, normalize=True)
    for x, y in loader:                  # x: uint8 (N, 3, H, W), e.g. PILToTensor()
        logits = model(aug(x.cuda(non_blocking=True)))

Layouts. The methods work on dense NHWC memory. An NHWC input is used as is (a
non-contiguous one is copied to contiguous memory first). An NCHW input is permuted to
NHWC: when it is ``channels_last`` in memory (FFCV's ``ToTorchImage(channels_last=True)``,
``x.to(memory_format=torch.channels_last)``) that is a free view; otherwise (the plain
contiguous NCHW a torchvision ``DataLoader`` collates) one uint8 NHWC copy is made, a
quarter of the size of the float result. NCHW results are NCHW-shaped views of the NHWC
result, i.e. ``channels_last`` memory, with no copy; convolutions take them directly.

Randomness. Each module holds a numpy ``Generator`` that advances on every training
call. It is created at the first call from ``seed`` (None: fresh OS entropy; an int: that
seed plus the ``torch.distributed`` rank when a process group is initialised, so ranks
draw different augmentations; a ``numpy.random.Generator``: used as is). With seed ``s``
on rank ``r``, the k-th call gives exactly the pixels of the k-th call of
``method(x_nhwc, seed=g)`` for ``g = numpy.random.default_rng(s + r)``. ``reseed()``
starts over. The generator state is not part of ``state_dict()`` (the modules have no
parameters and no buffers).

Train and eval. Augmentation is a training-time transform: in eval mode
(``module.eval()``) the modules return the clean batch (``x / 255``, then the same
normalisation, dtype and layout), ``Augment`` a single tensor even with ``views=True``
and ``MixBatch`` the one-hot targets; the generator does not advance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed

from .methods import METHODS, Method, make_method
from .methods.base import as_generator
from .methods.baselines import _LabelMixing
from .normalization import IMAGENET_MEAN, IMAGENET_STD

LAYOUTS = ("auto", "NCHW", "NHWC")
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)

__all__ = ["Augment", "MixBatch", "IMAGENET_MEAN", "IMAGENET_STD", "LAYOUTS"]


def _distributed_rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    return 0


def _three_floats(name: str, values) -> tuple:
    try:
        out = tuple(float(v) for v in values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of 3 numbers (one per RGB channel), got {values!r}") from None
    if len(out) != 3 or not all(np.isfinite(out)):
        raise ValueError(f"{name} must be 3 finite numbers (one per RGB channel), got {values!r}")
    return out


class _BatchModule(torch.nn.Module):
    """Shared machinery: input checks, layout, generator, float conversion and normalisation."""

    def __init__(self, seed, normalize, mean, std, dtype, layout, executor):
        super().__init__()
        if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator)) or isinstance(seed, bool):
            raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {type(seed).__name__}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if dtype not in _FLOAT_DTYPES:
            raise TypeError(f"dtype must be a torch floating dtype {_FLOAT_DTYPES}, got {dtype!r}")
        self.mean = _three_floats("mean", mean)
        self.std = _three_floats("std", std)
        if min(self.std) <= 0:
            raise ValueError(f"std must be > 0, got {std!r}")
        self.normalize = bool(normalize)
        self.dtype = dtype
        self.layout = layout
        self.executor = executor
        self.seed = seed
        self.rank = None  # resolved at the first call (a process group may start after __init__)
        self._rng = None
        self._stats = {}  # device -> (mean, std) tensors

    # -- randomness -----------------------------------------------------------------
    @property
    def generator(self) -> np.random.Generator:
        """The numpy Generator the next call draws from (created at first use)."""
        if self._rng is None:
            self.rank = _distributed_rank()
            if isinstance(self.seed, np.random.Generator):
                self._rng = self.seed
            elif self.seed is None:
                self._rng = np.random.default_rng()
            else:
                self._rng = as_generator(int(self.seed) + self.rank)
        return self._rng

    def reseed(self, seed=None):
        """Start over from ``seed`` (same rules as the constructor's)."""
        if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator)) or isinstance(seed, bool):
            raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {type(seed).__name__}")
        self.seed, self._rng, self.rank = seed, None, None
        return self

    # -- layout ---------------------------------------------------------------------
    def _to_nhwc(self, x, name="images"):
        """(dense NHWC uint8 view or copy, input layout)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__} (numpy and CuPy "
                            "arrays: call the method directly)")
        if x.dtype != torch.uint8:
            hint = ""
            if x.is_floating_point():
                hint = (" — pass the decoded uint8 batch (torchvision: transforms.PILToTensor() or "
                        "v2.ToImage(), not ToTensor()); float images would be rescaled twice")
            raise TypeError(f"{name} must have dtype torch.uint8, got {x.dtype}{hint}")
        if x.dim() != 4:
            hint = " (a single image: add a batch dimension with x.unsqueeze(0))" if x.dim() == 3 else ""
            raise ValueError(f"{name} must be a 4-d batch, NCHW (N, 3, H, W) or NHWC (N, H, W, 3); "
                             f"got shape {tuple(x.shape)}{hint}")
        if x.device.type not in ("cpu", "cuda"):
            raise TypeError(f"{name} must be on the CPU or a CUDA device, got {x.device}")
        layout = self.layout
        nchw, nhwc = x.shape[1] == 3, x.shape[3] == 3
        if layout == "auto":
            if nchw and nhwc:
                raise ValueError(f"{name} of shape {tuple(x.shape)} could be NCHW or NHWC (dims 1 and 3 are "
                                 "both 3); pass layout='NCHW' or layout='NHWC'")
            if not (nchw or nhwc):
                raise ValueError(f"{name} must have 3 (RGB) channels, NCHW (N, 3, H, W) or NHWC (N, H, W, 3); "
                                 f"got shape {tuple(x.shape)}")
            layout = "NCHW" if nchw else "NHWC"
        elif not (nchw if layout == "NCHW" else nhwc):
            raise ValueError(f"{name} must have 3 (RGB) channels in layout {layout}, got shape {tuple(x.shape)}")
        if layout == "NCHW":
            x = x.permute(0, 2, 3, 1)  # free when x is channels_last in memory
        if x.shape[0] < 1 or x.shape[1] < 1 or x.shape[2] < 1:
            raise ValueError(f"{name} must have at least one image of at least 1x1 pixels, got shape {tuple(x.shape)}")
        return x.contiguous(), layout

    def _finish(self, out, layout):
        """float32 NHWC [0, 1] -> normalised ``dtype`` in ``layout`` (NCHW: a view, channels_last)."""
        if self.normalize:
            if out.device not in self._stats:
                self._stats[out.device] = tuple(torch.tensor(v, dtype=torch.float32, device=out.device)
                                                for v in (self.mean, self.std))
            mean, std = self._stats[out.device]
            out = out.sub_(mean).div_(std)  # fresh memory: in place
        if self.dtype != torch.float32:
            out = out.to(self.dtype)
        return out.permute(0, 3, 1, 2) if layout == "NCHW" else out

    @staticmethod
    def _clean(x_nhwc):
        # as the methods' own conversion: float32(x) / float32(255)
        return x_nhwc.to(torch.float32).div_(255)

    def _stats_repr(self) -> str:
        parts = [f"layout={self.layout!r}", f"dtype={self.dtype}", f"seed={self.seed!r}"]
        if self.normalize:
            parts.append(f"normalize=True, mean={self.mean}, std={self.std}")
        if self.executor != "auto":
            parts.append(f"executor={self.executor!r}")
        return ", ".join(parts)


def _resolve_method(method):
    if isinstance(method, str):
        return make_method(method)
    return method


class Augment(_BatchModule):
    """A gpuaug method as an ``nn.Module``: uint8 batch in, augmented float batch out.

    Args:
        method: a method instance (``gpuaug.AugMix()``, ``PixMix``, ``IPMix``,
            ``DynamicMixup``, ``NoisyMix``, ``Cutout``), its name (``"augmix"``, paper
            defaults), or None for no augmentation (convert and normalise only, e.g. for
            a validation pipeline). Mixup and CutMix mix labels: use :class:`MixBatch`.
        mixing: the mixing pictures of PixMix / IPMix (a ``gpuaug.mixing.MixingSet`` or a
            uint8 NHWC pool of the images' size on their device).
        seed: None, an int (plus the distributed rank) or a numpy Generator; see the
            module notes.
        views: return ``(clean, aug1, aug2)`` for a JSD loss instead of one batch
            (``(clean, aug)`` for a method with ``jsd_views=1``).
        normalize: subtract ``mean`` and divide by ``std`` (per channel, [0, 1] scale).
        dtype: the output dtype (the work is done in float32, then cast).
        layout: "auto" (NCHW when dim 1 is 3, NHWC when dim 3 is 3; both: an error asking
            for this argument), "NCHW" or "NHWC". Output has the input's layout.
        executor: passed to the method ("auto": CUDA kernels for CUDA tensors, numpy on
            the CPU).

    ``forward(images)``: uint8 (N, 3, H, W) or (N, H, W, 3), CPU or CUDA; returns the
    batch (or triple) of ``dtype`` on the same device, in the same layout; NCHW outputs
    are ``channels_last`` in memory. Eval mode returns the clean batch (one tensor).
    """

    def __init__(self, method, mixing=None, seed=None, views: bool = False, normalize: bool = False,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 dtype: torch.dtype = torch.float32, layout: str = "auto", executor: str = "auto"):
        super().__init__(seed, normalize, mean, std, dtype, layout, executor)
        method = _resolve_method(method)
        if isinstance(method, _LabelMixing):
            raise TypeError(f"{type(method).__name__} mixes labels: use gpuaug.torch.MixBatch(method, "
                            "num_classes) and call it as mix(images, labels) -> (images, targets)")
        if method is not None and not isinstance(method, Method):
            raise TypeError(f"method must be a gpuaug method (e.g. gpuaug.AugMix()), one of the names "
                            f"{list(METHODS)} or None, got {type(method).__name__}")
        if method is None and (views or mixing is not None):
            raise ValueError("method=None (convert only) takes no views=True and no mixing")
        if method is not None and method.needs_mixing and mixing is None:
            raise ValueError(f"{type(method).__name__} needs mixing pictures: pass mixing= a "
                             "gpuaug.mixing.MixingSet (e.g. MixingSet.fractals(...)) or a uint8 NHWC pool")
        if method is not None and not method.needs_mixing and mixing is not None:
            raise ValueError(f"{type(method).__name__} takes no mixing pictures (mixing must be None)")
        self.method = method
        self.mixing = mixing
        self.views = bool(views)

    def forward(self, images):
        x, layout = self._to_nhwc(images)
        if self.method is None or not self.training:
            return self._finish(self._clean(x), layout)
        kw = dict(mixing=self.mixing, seed=self.generator, executor=self.executor)
        if self.views:
            return tuple(self._finish(o, layout) for o in self.method.views(x, **kw))
        return self._finish(self.method(x, **kw), layout)

    def extra_repr(self) -> str:
        views = ", views=True" if self.views else ""
        mixing = f", mixing={self.mixing!r}" if self.mixing is not None else ""
        return f"{self.method!r}{mixing}{views}, {self._stats_repr()}"


class MixBatch(_BatchModule):
    """A label-mixing baseline (``gpuaug.Mixup``, ``gpuaug.CutMix``) as an ``nn.Module``.

    ``forward(images, labels)``: uint8 images as for :class:`Augment` and integer class
    labels of shape (N,) (on any device: moved to the images' device); returns
    ``(images, targets)``: the mixed float batch (``dtype``, input layout, optional
    normalisation) and float32 soft targets (N, num_classes) on the images' device — use
    them with ``torch.nn.functional.cross_entropy(logits, targets)``. In eval mode the
    images are clean and the targets one-hot. Other arguments as :class:`Augment`.
    """

    def __init__(self, method, num_classes: int, seed=None, normalize: bool = False,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 dtype: torch.dtype = torch.float32, layout: str = "auto", executor: str = "auto"):
        super().__init__(seed, normalize, mean, std, dtype, layout, executor)
        method = _resolve_method(method)
        if not isinstance(method, _LabelMixing):
            raise TypeError(f"MixBatch takes a label-mixing method (gpuaug.Mixup(), gpuaug.CutMix(), "
                            f"'mixup', 'cutmix'), got {type(method).__name__}; use gpuaug.torch.Augment for others")
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.method = method
        self.num_classes = int(num_classes)

    def forward(self, images, labels):
        x, layout = self._to_nhwc(images)
        if not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(np.asarray(labels))
        if labels.dtype.is_floating_point or labels.dtype in (torch.bool, torch.complex64, torch.complex128):
            raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
        if tuple(labels.shape) != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},), one class index per image, got "
                             f"{tuple(labels.shape)} (FFCV: end the label pipeline with Squeeze(1))")
        labels = labels.to(x.device, non_blocking=True)
        if not self.training:
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise ValueError(f"labels must be in 0..{self.num_classes - 1}")
            targets = torch.nn.functional.one_hot(labels.long(), self.num_classes).to(torch.float32)
            return self._finish(self._clean(x), layout), targets
        out, targets = self.method(x, labels, self.num_classes, seed=self.generator, executor=self.executor)
        return self._finish(out, layout), targets

    def extra_repr(self) -> str:
        return f"{self.method!r}, num_classes={self.num_classes}, {self._stats_repr()}"
