"""Issue 19: presets, memory format, view layouts and the DataLoader surface of the
gpuaug loaders, and the CIFAR loader as a drop-in for torchvision's CIFAR10 + DataLoader."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pytest
import torch

import gpuaug
from cifarfiles import write_cifar10, write_cifar100
from conftest import _jpeg, write_clean_tree
from gpuaug.loader import surface as loadersurface
from gpuaug.loader import presets
from imagegen import natural

CPU = dict(device="cpu", num_threads=1)


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=6, test=10)
    return root


@pytest.fixture(scope="module")
def folder32(tmp_path_factory):
    """An ImageFolder tree of 32 x 32 JPEGs (CIFAR written out as files)."""
    root = tmp_path_factory.mktemp("f32")
    for i in range(8):
        path = root / ("a" if i % 2 else "b") / f"{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(_jpeg(natural(32, 32, i)))
    return str(root)


@pytest.fixture(scope="module")
def folder_big(tmp_path_factory):
    root = tmp_path_factory.mktemp("fbig")
    write_clean_tree(str(root))
    return str(root)


@pytest.fixture
def fresh_log(monkeypatch):
    monkeypatch.setattr(presets, "_told", set())
    monkeypatch.setattr(loadersurface, "_warned", set())


# ------------------------------------------------------------------ presets
def test_32px_images_choose_the_cifar_preset_logged_once(folder32, fresh_log, caplog):
    with caplog.at_level(logging.INFO, logger="gpuaug.loader"):
        loader = gpuaug.ImageFolderLoader(folder32, 4, validate="header", **CPU)
        gpuaug.ImageFolderLoader(folder32, 4, validate="header", **CPU)
    assert (loader.preset, loader.image_size, loader.cifar) == ("cifar", 32, True)
    assert loader.mean == loader.std == (0.5, 0.5, 0.5)
    lines = [r.getMessage() for r in caplog.records if "preset inferred" in r.getMessage()]
    assert len(lines) == 1 and "the images are 32x32" in lines[0] and "image_size=32" in lines[0]
    assert caplog.records[0].levelno == logging.INFO
    images, _ = next(iter(loader))
    assert images.shape == (4, 3, 32, 32)


def test_other_images_choose_imagenet_and_explicit_arguments_win(folder_big, folder32, fresh_log):
    big = gpuaug.ImageFolderLoader(folder_big, 4, validate="header", **CPU)
    assert (big.preset, big.image_size, big.cifar, big.mean) == ("imagenet", 224, False, (0.485, 0.456, 0.406))
    small = gpuaug.ImageFolderLoader(folder_big, 4, validate="header", image_size=48, **CPU)
    assert (small.preset, small.image_size, small.cifar, small.mean) == ("cifar", 48, True, (0.5, 0.5, 0.5))
    mixed = gpuaug.ImageFolderLoader(folder32, 4, validate="header", preset="cifar", image_size=40, cifar=False,
                                     mean=(0.4, 0.4, 0.4), **CPU)
    assert (mixed.image_size, mixed.cifar, mixed.mean, mixed.std) == (40, False, (0.4,) * 3, (0.5,) * 3)
    up = gpuaug.ImageFolderLoader(folder32, 4, validate="header", preset="imagenet", **CPU)
    assert (up.image_size, up.cifar, up.std) == (224, False, (0.229, 0.224, 0.225))
    with pytest.raises(ValueError, match="preset must be one of"):
        gpuaug.ImageFolderLoader(folder32, 4, validate="header", preset="cifar10", **CPU)
    with pytest.raises(ValueError, match="mean must have 3 values"):
        gpuaug.ImageFolderLoader(folder32, 4, validate="header", mean=(0.5,), **CPU)


def test_repr_shows_the_resolved_settings(folder32):
    text = repr(gpuaug.ImageFolderLoader(folder32, 4, validate="header", augment=gpuaug.AugMix(), jsd=True,
                                         dtype="bfloat16", **CPU))
    for part in ("preset='cifar'", "image_size=32", "crop='pad 4 + random crop + flip'", "mean=(0.5, 0.5, 0.5)",
                 "dtype='bfloat16'", "memory_format='contiguous'", "device='cpu'", "views='list'"):
        assert part in text


# ------------------------------------------------------------------ layout
class LeNet(torch.nn.Module):
    """Flattens with ``.view``, as LeNet-style models do (fails on channels_last activations)."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 5)
        self.fc = torch.nn.Linear(4 * 14 * 14, classes)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(x.view(-1, 4 * 14 * 14))


def test_output_is_contiguous_nchw_unless_channels_last_is_asked(cifar_root):
    images, _ = next(iter(gpuaug.CIFARLoader(cifar_root, 4, **CPU)))
    assert images.is_contiguous() and images.dtype == torch.float32
    LeNet()(images)  # .view works
    fast, _ = next(iter(gpuaug.CIFARLoader(cifar_root, 4, memory_format=torch.channels_last, **CPU)))
    assert fast.is_contiguous(memory_format=torch.channels_last) and not fast.is_contiguous()
    assert torch.equal(fast, images)
    with pytest.raises(ValueError, match="memory_format must be one of"):
        gpuaug.CIFARLoader(cifar_root, 4, memory_format="nhwc", **CPU)


def test_jsd_views_are_a_list_or_one_concatenated_tensor(cifar_root):
    common = dict(augment=gpuaug.AugMix(), jsd=True, seed=3, **CPU)
    views, labels = next(iter(gpuaug.CIFARLoader(cifar_root, 4, **common)))
    assert isinstance(views, list) and len(views) == 3
    views[0] = views[0] * 1  # the official loops may assign into it
    cat, targets = next(iter(gpuaug.CIFARLoader(cifar_root, 4, views="concat", **common)))
    assert cat.shape == (12, 3, 32, 32) and cat.is_contiguous()
    assert torch.equal(cat, torch.cat(views)) and torch.equal(targets, labels.repeat(3))
    with pytest.raises(ValueError, match="views='concat' lays out the views of jsd=True"):
        gpuaug.CIFARLoader(cifar_root, 4, views="concat", **CPU)


# ------------------------------------------------------------------ DataLoader surface
def timm_epochs(loader, epochs, distributed=True):
    """What timm 1.0's train.py reads: sampler.set_epoch when distributed, len(loader),
    then (input, target) pairs and input.size(0)."""
    seen = []
    for epoch in range(epochs):
        if distributed and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        last_idx = len(loader) - 1
        for batch_idx, (input, target) in enumerate(loader):
            seen.append((epoch, batch_idx == last_idx, input.size(0), target.tolist()))
    return seen


def lightning_set_epoch(dataloader, epoch):
    """Lightning 2.x: set_epoch on ``sampler`` and ``batch_sampler.sampler``, once per object."""
    objects = {}
    if (sampler := getattr(dataloader, "sampler", None)) is not None:
        objects[id(sampler)] = sampler
    if (batch_sampler := getattr(dataloader, "batch_sampler", None)) is not None and (
            sampler := getattr(batch_sampler, "sampler", None)) is not None:
        objects[id(sampler)] = sampler
    for obj in objects.values():
        if callable(getattr(obj, "set_epoch", None)):
            obj.set_epoch(epoch)
    return len(objects)


def test_dataloader_attributes_timm_and_lightning_read(cifar_root, fresh_log):
    loader = gpuaug.CIFARLoader(cifar_root, 8, drop_last=True, shard=(0, 1), **CPU)
    assert (loader.batch_size, loader.drop_last, len(loader), len(loader.dataset)) == (8, True, 3, 30)
    assert (loader.num_workers, loader.pin_memory) == (0, False)
    assert loader.batch_sampler.sampler is loader.sampler and len(loader.sampler) == 24
    assert (loader.batch_sampler.batch_size, loader.batch_sampler.drop_last, len(loader.batch_sampler)) == (8, True, 3)
    seen = timm_epochs(loader, 2)
    assert [(e, last, n) for e, last, n, _ in seen] == [(0, False, 8), (0, False, 8), (0, True, 8)] * 1 + \
        [(1, False, 8), (1, False, 8), (1, True, 8)]
    assert lightning_set_epoch(loader, 5) == 1 and loader.epoch == 5
    targets = loader.dataset.targets
    planned, order = list(loader.batch_sampler), list(loader.sampler)  # epoch 5's batches of indices
    assert [i for b in planned for i in b] == order and len(set(order)) == 24
    got = [labels.tolist() for _, labels in loader]
    assert got == [[targets[i] for i in batch] for batch in planned]
    assert loader.epoch == 6 and list(loader.sampler) != order  # the next epoch's


def test_worker_arguments_are_accepted_and_warned_once(cifar_root, fresh_log):
    with pytest.warns(UserWarning, match=r"num_workers=4, pin_memory=True ignored: DALI decodes"):
        loader = gpuaug.CIFARLoader(cifar_root, 4, num_workers=4, pin_memory=True, **CPU)
    assert (loader.num_workers, loader.pin_memory) == (4, True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gpuaug.CIFARLoader(cifar_root, 4, num_workers=4, pin_memory=True, **CPU)  # said once
        gpuaug.CIFARLoader(cifar_root, 4, num_workers=0, pin_memory=False, **CPU)  # the defaults: silent


def test_webdataset_sampler_says_the_order_is_not_known():
    from gpuaug.loader import WebDatasetLoader

    loader = object.__new__(WebDatasetLoader)
    with pytest.raises(TypeError, match="shuffle buffer"):
        list(loader.sampler)


# ------------------------------------------------------------------ CIFAR loader
def test_cifar_eval_equals_torchvision(cifar_root):
    tv = pytest.importorskip("torchvision")
    from torchvision import transforms

    class Unchecked(tv.datasets.CIFAR10):  # our files, not the authors': no MD5 to check
        train_list = [[f"data_batch_{i}", None] for i in range(1, 6)]
        test_list = [["test_batch", None]]
        meta = {"filename": "batches.meta", "key": "label_names", "md5": None}

    ref = Unchecked(str(cifar_root), train=False, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]))
    ref_loader = torch.utils.data.DataLoader(ref, batch_size=4, shuffle=False)
    ours = gpuaug.CIFARLoader(cifar_root, 4, train=False, **CPU)
    assert ours.dataset.classes == ref.classes and ours.dataset.targets == ref.targets
    assert ours.dataset.class_to_idx == ref.class_to_idx and np.array_equal(ours.dataset.data, ref.data)
    assert len(ours) == len(ref_loader)
    for (x, y), (rx, ry) in zip(ours, ref_loader):
        assert torch.equal(y, ry)
        assert torch.allclose(x, rx, atol=1e-6)


def test_cifar_training_crop_is_pad4_crop_and_flip(cifar_root):
    loader = gpuaug.CIFARLoader(cifar_root, 6, seed=1, **CPU)
    order = list(loader.batch_sampler)[0]
    images, _ = next(iter(loader))
    pixels = np.rint((images.permute(0, 2, 3, 1).numpy() * 0.5 + 0.5) * 255).astype(int)
    shifts = set()
    for out, i in zip(pixels, order):
        padded = np.pad(loader.dataset.data[i].astype(int), ((4, 4), (4, 4), (0, 0)))
        found = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                 if np.array_equal(out, (padded[dy:dy + 32, dx:dx + 32][:, ::-1] if f else
                                         padded[dy:dy + 32, dx:dx + 32]))]
        assert found, "not a pad-4 crop (+ flip) of its source image"
        shifts.add(found[0])
    assert len(shifts) > 1  # random per image


def test_cifar_shards_are_disjoint_and_cover(cifar_root):
    seen = []
    for rank in range(2):
        loader = gpuaug.CIFARLoader(cifar_root, 4, shard=(rank, 2), **CPU)
        loader.set_epoch(2)
        indices = [i for batch in loader.batch_sampler for i in batch]
        labels = [int(v) for _, y in loader for v in y]
        assert labels == [loader.dataset.targets[i] for i in indices]
        seen += indices
    assert sorted(seen) == list(range(30))


def test_cifar100_and_bad_roots(tmp_path, cifar_root):
    write_cifar100(tmp_path, train=6, test=3)
    loader = gpuaug.CIFARLoader(tmp_path, 3, train=False, **CPU)
    assert len(loader.dataset.classes) == 100 and loader.preset == "cifar"
    write_cifar10(tmp_path, per_batch=2, test=2)
    with pytest.raises(ValueError, match="holds both"):
        gpuaug.CIFARLoader(tmp_path, 3, **CPU)
    assert len(gpuaug.CIFARLoader(tmp_path, 3, kind="cifar10", **CPU).dataset) == 10
    with pytest.raises(ValueError, match="does not download"):
        gpuaug.CIFARLoader(tmp_path, 3, download=True, **CPU)
    with pytest.raises(FileNotFoundError, match="holds no CIFAR-10/100 python files"):
        gpuaug.CIFARLoader(tmp_path / "none", 3, **CPU)


def test_trainer_keeps_channels_last_and_its_crop(folder32, monkeypatch):
    """The trainer's DALI path asks for channels_last and passes its crop (numbers unchanged)."""
    from types import SimpleNamespace

    from gpuaug.train.data import make_loader

    made = {}
    monkeypatch.setattr(gpuaug.loader.ImageFolderLoader, "__init__", lambda self, root, **kw: made.update(kw))
    args = SimpleNamespace(data_spec={"kind": "folder", "train": folder32, "val": None}, loader="dali",
                           augment=None, mixing=None, jsd=False, batch_size=4, image_size=32, device="cpu",
                           workers=1, seed=0, shard=(0, 1), crop="pad", amp_dtype=None, normalization="half")
    make_loader(args, True)
    assert made["memory_format"] == "channels_last" and made["cifar"] is True and made["image_size"] == 32
    assert made["mean"] == (0.5, 0.5, 0.5)
    assert os.environ.get("CUDA_VISIBLE_DEVICES", "") is not None


@pytest.mark.gpu
def test_cifar_loader_on_the_gpu(cifar_root):
    """The external source moved to the GPU: same evaluation batches as the CPU pipeline."""
    cpu = gpuaug.CIFARLoader(cifar_root, 4, train=False, **CPU)
    gpu = gpuaug.CIFARLoader(cifar_root, 4, train=False, device="cuda")
    for (x, y), (gx, gy) in zip(cpu, gpu):
        assert gx.is_cuda and gx.is_contiguous() and torch.equal(gy.cpu(), y)
        assert torch.allclose(gx.cpu(), x, atol=1e-6)
    views, labels = next(iter(gpuaug.CIFARLoader(cifar_root, 4, augment=gpuaug.AugMix(), jsd=True, device="cuda",
                                                 memory_format="channels_last")))
    assert isinstance(views, list) and labels.is_cuda
    assert all(v.is_cuda and v.is_contiguous(memory_format=torch.channels_last) for v in views)


def test_every_setting_given_uses_no_preset_and_reads_no_header(folder32, fresh_log, caplog, monkeypatch):
    """The trainer's call: nothing inferred, no file opened for it, no 'inferred' in the log."""
    monkeypatch.setattr(presets, "image_sides", lambda files: pytest.fail("no header needs reading"))
    with caplog.at_level(logging.INFO, logger="gpuaug.loader"):
        loader = gpuaug.ImageFolderLoader(folder32, 4, validate="header", image_size=32, cifar=True,
                                          mean=(0.5,) * 3, std=(0.5,) * 3, **CPU)
    assert loader.preset is None and "preset=None" in repr(loader)
    assert [r for r in caplog.records if "image_size=32" in r.getMessage() and "inferred" not in r.getMessage()]
