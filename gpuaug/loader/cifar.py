"""CIFAR-10/100 from the authors' python files, in memory: the drop-in for
``torchvision.datasets.CIFAR10(root, train)`` (or ``CIFAR100``) + ``DataLoader``.

The images (50,000 x 32 x 32 x 3 bytes for a training set) are read once with
:mod:`gpuaug.data.cifarfile` (no code from the files runs) and fed to the same DALI pipeline
as the file loaders through an external source: no decoding, the CIFAR preset (32 x 32,
pad 4 + random crop + flip, mean = std = 0.5) unless told otherwise, and the epochs,
shards, last batch and DataLoader attributes of :mod:`gpuaug.loader`.
"""

from __future__ import annotations

import numpy as np

from ..data import cifarfile, datafiles
from .daliloader import DaliLoader


class CIFARDatasetView:
    """``loader.dataset`` as torchvision's CIFAR10 names it: ``data`` ((N, 32, 32, 3)
    uint8), ``targets``, ``classes``, ``class_to_idx``, ``train``, ``root``, ``len()``."""

    def __init__(self, split: cifarfile.CifarSplit, train: bool):
        self.data, self.classes, self.train, self.root = split.images, list(split.classes), train, split.root
        self._labels = split.labels

    @property
    def targets(self) -> list:
        return self._labels.tolist()

    @property
    def class_to_idx(self) -> dict:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self._labels)

    def __repr__(self) -> str:
        return f"CIFARDatasetView({len(self)} images, {len(self.classes)} classes, root={self.root!r})"


class _ArrayBatches:
    """The external source of one epoch: batches of (uint8 HWC images, int32 labels)."""

    def __init__(self, images, labels, indices, batch_size: int):
        self.images, self.labels, self.indices, self.batch_size = images, labels, np.asarray(indices), batch_size

    def __iter__(self):
        for start in range(0, len(self.indices), self.batch_size):
            idx = self.indices[start:start + self.batch_size]
            yield self.images[idx], self.labels[idx].astype(np.int32).reshape(-1, 1)


class CIFARLoader(DaliLoader):
    """``for images, labels in CIFARLoader(root, 128, augment=gpuaug.AugMix())``.

    ``root``: torchvision's ``root`` (holding ``cifar-10-batches-py/`` or
    ``cifar-100-python/``) or that folder itself; ``kind`` "cifar10" | "cifar100" picks
    one when ``root`` holds both; ``train`` the split; ``download`` must stay False (gpuaug
    never downloads). Every other argument is :class:`gpuaug.ImageFolderLoader`'s; the
    preset is "cifar" (the images are 32 x 32) unless given.
    """

    _skips_files = False  # in memory: no file can fail at load time

    def __init__(self, root, batch_size: int, augment=None, train: bool = True, download: bool = False,
                 kind: str | None = None, **kwargs):
        if download:
            raise ValueError("download=True: gpuaug does not download data sets; fetch the python version from "
                             "the CIFAR page once (or with torchvision) and pass its folder")
        split = cifarfile.load_split(root, train, kind)
        self.split = split
        samples = datafiles.Samples(files=split.files, labels=split.labels.tolist(), classes=split.classes)
        super().__init__(samples, batch_size, augment, train=train, root=split.root, **kwargs)
        self.root = split.root
        self.dataset = CIFARDatasetView(split, train)

    @property
    def class_to_idx(self) -> dict:
        return self.dataset.class_to_idx

    def _image_sides(self, samples) -> set:
        return {(cifarfile.SIDE, cifarfile.SIDE)}

    def _source(self, epoch: int, indices=None) -> dict:
        indices = self._rank_order(epoch) if indices is None else indices
        return {"kind": "arrays", "reader": None, "side": cifarfile.SIDE,
                "batches": _ArrayBatches(self.split.images, self.split.labels, indices, self.batch_size)}
