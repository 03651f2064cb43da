"""Pixel-space evaluation helpers: the model with its input normalisation inside, and
evaluation batches in [0, 1] (what the attacks perturb and the -P videos hold).

The adversarial and -P evaluations work on images in [0, 1]; the normalisation the model
was trained with is part of the function they evaluate (so an ε-ball is measured in pixel
units, as the papers' code does it)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .data import Dataset, prepare


class Normalized(torch.nn.Module):
    """``model((x - mean) / std)`` for ``x`` float NCHW in [0, 1]."""

    def __init__(self, model: torch.nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last))


def unit_nchw(pics: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1] (a channels_last view)."""
    return pics.permute(0, 3, 1, 2).float().div_(255)


def fit_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> (N, size, size, 3): short side resized to ``size`` and centre
    cropped (the pre-cropped sets' evaluation transform; identity at the right size)."""
    if frames.shape[1:3] == (size, size):
        return np.ascontiguousarray(frames)
    return np.stack([prepare(f, size, False, "pad", None) for f in frames])


class _Batches(torch.utils.data.Dataset):
    def __init__(self, dataset: Dataset, index: np.ndarray, batch_size: int, size: int, crop: str):
        self.dataset, self.index, self.batch_size, self.size, self.crop = dataset, index, batch_size, size, crop

    def __len__(self):
        return math.ceil(len(self.index) / self.batch_size)

    def __getitem__(self, b):
        idx = self.index[b * self.batch_size:(b + 1) * self.batch_size]
        pics = np.stack([prepare(self.dataset.load(int(j)), self.size, False, self.crop, None) for j in idx])
        return torch.from_numpy(pics), torch.from_numpy(self.dataset.labels[idx])


def pixel_batches(dataset: Dataset, cfg, d):
    """This rank's evaluation batches ``(x, labels)`` on ``d.device``: x float NCHW in [0, 1],
    the same crops and order as the evaluation loader (ranks take disjoint strides);
    at most ``cfg.limit_batches`` batches."""
    index = np.arange(len(dataset))[d.rank::d.world]
    data = _Batches(dataset, index, cfg.batch_size, cfg.image_size, cfg.crop)
    dl = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=cfg.workers,
                                     pin_memory=d.device.type == "cuda")
    for i, (pics, labels) in enumerate(dl):
        if cfg.limit_batches is not None and i >= cfg.limit_batches:
            break
        yield unit_nchw(pics.to(d.device, non_blocking=True)), labels.to(d.device, non_blocking=True)
