"""Shared helpers of the trainer tests: a tiny shapes data set and a short-run command line."""

from __future__ import annotations

from pathlib import Path

from gpuaug.train import synthetic


def tiny_data(root: Path, per_class: int = 8, val: int = 4, size: int = 16, classes: int = 4) -> Path:
    """A 4-class ImageFolder (train/ + val/) of size x size JPEGs, cached per pytest session."""
    return synthetic.build(root, train_per_class=per_class, val_per_class=val, size=size, classes=classes,
                           log=lambda *a: None)


def short_run(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--arch", "tiny", "--image-size", "16", "--batch-size", "8",
            "--epochs", "1", "--lr", "0.05", "--workers", "0", "--device", "cpu", "--fractals", "8",
            "--no-preview", *extra]
