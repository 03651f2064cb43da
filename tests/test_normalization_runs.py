"""Per-recipe normalisation: a CIFAR recipe's batches are normalised with mean = std = 0.5
on both loaders (torch / CPU executor and DALI), the run records it, and ``gpuaug eval``
evaluates with the recorded statistics."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from _train_helpers import short_run, tiny_data
from gpuaug.normalization import HALF_MEAN, HALF_STD, IMAGENET_MEAN, mean_std
from gpuaug.train import evaluate
from gpuaug.train.cli import build_parser, main_eval, main_train, resolve_train_args
from gpuaug.train.data import make_loader, resolve_data

RECIPE = Path(__file__).parent.parent / "pipelines" / "cifar-augmix.toml"


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory) -> Path:
    """A CIFAR-10 python folder with a few random images per batch."""
    root = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)

    def batch(name, n):
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [int(v) for v in rng.integers(0, 10, n)]}, f)

    for i in range(1, 6):
        batch(f"data_batch_{i}", 4)
    batch("test_batch", 8)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    return root


def _raw_test_images(cifar_dir: Path) -> np.ndarray:
    with open(cifar_dir / "test_batch", "rb") as f:
        d = pickle.load(f, encoding="bytes")
    return d[b"data"].reshape(-1, 3, 32, 32).astype(np.float32) / 255  # NCHW in [0, 1]


def _loader_args(spec, loader: str, normalization: str, augment=None, jsd=False) -> SimpleNamespace:
    return SimpleNamespace(data_spec=spec, loader=loader, augment=augment, mixing=None, jsd=jsd, batch_size=4,
                           image_size=32, device="cpu", workers=0 if loader == "torch" else 1, seed=0,
                           shard=(0, 1), crop="pad", amp_dtype=None, normalization=normalization, classes=None)


def test_cifar_recipe_resolves_to_half_normalisation(cifar_dir):
    cfg = resolve_train_args(build_parser().parse_args(["--recipe", str(RECIPE), "--data", str(cifar_dir)]))
    assert cfg.normalization == "half"
    assert mean_std(cfg.normalization) == (HALF_MEAN, HALF_STD)
    plain = resolve_train_args(build_parser().parse_args(["--data", str(cifar_dir)]))
    assert plain.normalization == "half"  # the CIFAR data-set default: the AugMix CIFAR setting


def test_torch_loader_normalises_with_the_recipe_statistics(cifar_dir):
    cfg = resolve_train_args(build_parser().parse_args(["--recipe", str(RECIPE), "--data", str(cifar_dir)]))
    spec = resolve_data(str(cifar_dir))
    images, _ = next(iter(make_loader(_loader_args(spec, "torch", cfg.normalization), train=False)))
    expected = (torch.from_numpy(_raw_test_images(cifar_dir)[:4]) - 0.5) / 0.5
    assert torch.allclose(images, expected, atol=1e-6)
    imagenet, _ = next(iter(make_loader(_loader_args(spec, "torch", "imagenet"), train=False)))
    assert not torch.allclose(imagenet, expected, atol=1e-2)
    import gpuaug

    (clean, aug1, aug2), _ = next(iter(make_loader(
        _loader_args(spec, "torch", cfg.normalization, augment=gpuaug.AugMix(), jsd=True), train=True)))
    for view in (clean, aug1, aug2):
        assert view.min() >= -1 - 1e-6 and view.max() <= 1 + 1e-6


def test_dali_loader_normalises_with_the_recipe_statistics(tmp_path):
    pytest.importorskip("nvidia.dali")
    from PIL import Image

    import gpuaug

    rng = np.random.default_rng(1)
    pics = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        for i, pic in enumerate(pics):
            Image.fromarray(pic).save(tmp_path / split / "a" / f"{i}.png")
    spec = {"kind": "folder", "train": tmp_path / "train", "val": tmp_path / "val"}
    images, _ = next(iter(make_loader(_loader_args(spec, "dali", "half"), train=False)))
    expected = (torch.from_numpy(pics).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    assert images.dtype == torch.float32
    assert torch.allclose(images, expected, atol=1e-5)
    (clean, aug1, aug2), _ = next(iter(make_loader(
        _loader_args(spec, "dali", "half", augment=gpuaug.AugMix(), jsd=True), train=True)))
    for view in (clean, aug1, aug2):
        assert view.min() >= -1 - 1e-3 and view.max() <= 1 + 1e-3
    assert clean.min() < -0.9  # the pad-crop's zero border is -1 under 0.5 / 0.5


class _Recording(evaluate.TorchLoader):
    seen: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _Recording.seen.append((self.mean, self.std))


def test_run_records_normalisation_and_eval_uses_it(tmp_path, monkeypatch):
    data = tiny_data(tmp_path / "data")
    out = tmp_path / "run"
    assert main_train(short_run(data, out, "--method", "augmix", "--normalization", "half")) == 0
    assert torch.load(out / "model.pt", weights_only=True)["normalization"] == "half"
    assert json.loads((out / "config.json").read_text())["normalization"] == "half"
    monkeypatch.setattr(evaluate, "TorchLoader", _Recording)
    _Recording.seen = []
    assert main_eval(["--checkpoint", str(out), "--data", str(data), "--device", "cpu", "--workers", "0",
                      "--limit-batches", "1", "--batch-size", "4"]) == 0
    assert _Recording.seen and all(s == (HALF_MEAN, HALF_STD) for s in _Recording.seen)
    assert json.loads((out / "eval.json").read_text())["normalization"] == "half"
    # a model file from before runs recorded it evaluates with ImageNet's statistics
    state = torch.load(out / "model.pt", weights_only=True)
    del state["normalization"]
    torch.save(state, tmp_path / "old.pt")
    _Recording.seen = []
    assert main_eval(["--checkpoint", str(tmp_path / "old.pt"), "--data", str(data), "--device", "cpu",
                      "--workers", "0", "--limit-batches", "1", "--batch-size", "4",
                      "--json", str(tmp_path / "old.json")]) == 0
    assert _Recording.seen and all(s[0] == IMAGENET_MEAN for s in _Recording.seen)
