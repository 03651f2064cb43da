"""Shared helpers of the evaluation tests: a tiny trained run and its validation images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gpuaug.train.cli import main_train

from _train_helpers import short_run, tiny_data


def trained_tiny(root: Path) -> tuple[Path, Path]:
    """(data, run folder) of a 2-epoch run without augmentation on the tiny shapes set."""
    data = tiny_data(root / "shapes")
    out = root / "run"
    assert main_train(short_run(data, out, "--method", "none", "--epochs", "2")) == 0
    return data, out


def val_arrays(data: Path) -> tuple[np.ndarray, np.ndarray, list]:
    """The validation images as uint8 (N, H, W, 3), their labels and the class names."""
    from PIL import Image

    classes = sorted(p.name for p in (data / "val").iterdir())
    imgs, labels = [], []
    for li, c in enumerate(classes):
        for p in sorted((data / "val" / c).iterdir()):
            imgs.append(np.asarray(Image.open(p).convert("RGB")))
            labels.append(li)
    return np.stack(imgs), np.asarray(labels), classes
