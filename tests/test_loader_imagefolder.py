"""The drop-in loaders on a CPU DALI pipeline: skips, labels, coverage, determinism."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

pytest.importorskip("nvidia.dali")
torch = pytest.importorskip("torch")

import gpuaug  # noqa: E402
from gpuaug.data import datafiles  # noqa: E402
from gpuaug.loader import FileListLoader, ImageFolderLoader, batch_sizes  # noqa: E402
from gpuaug.mixing import MixingSet  # noqa: E402

CPU = dict(device="cpu", num_threads=1, image_size=32)


def _quiet(cls, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(*args, **kwargs)


def _rel(root, paths):
    return sorted(os.path.relpath(p, root) for p in paths)


def test_skip_policy_and_classes(odd_tree):
    root, kept, bad = odd_tree
    with pytest.warns(UserWarning) as record:
        loader = ImageFolderLoader(root, 4, **CPU)
    messages = " | ".join(str(w.message) for w in record)
    assert "skipped 6 files" in messages and "1 empty class folders" in messages
    assert {r: _rel(root, v) for r, v in loader.skipped.items()} == {r: sorted(v) for r, v in bad.items()}
    assert loader.classes == ["ant", "bee", "cat", "dog", "empty_class"]
    assert loader.samples.empty_classes == ["empty_class"]
    assert _rel(root, loader.samples.files) == sorted(kept)
    for f, label in zip(loader.samples.files, loader.samples.labels):
        assert loader.classes[label] == kept[os.path.relpath(f, root)]


def test_class_order_matches_torchvision(clean_tree):
    tv = pytest.importorskip("torchvision.datasets")
    root, _ = clean_tree
    ref = tv.ImageFolder(root)
    loader = ImageFolderLoader(root, 4, **CPU)
    assert loader.class_to_idx == ref.class_to_idx
    assert list(zip(loader.samples.files, loader.samples.labels)) == [(p, t) for p, t in ref.samples]


def test_odd_files_decode_shapes_dtypes(odd_tree):
    root, kept, _ = odd_tree
    loader = _quiet(ImageFolderLoader, root, 5, augment=gpuaug.AugMix(), cifar=False, dtype="float16",
                    memory_format="channels_last", **CPU)
    n = 0
    for images, labels in loader:
        assert images.dtype == torch.float16 and images.shape[1:] == (3, 32, 32)
        assert images.is_contiguous(memory_format=torch.channels_last)
        assert labels.dtype == torch.int64 and labels.shape == images.shape[:1]
        assert torch.isfinite(images.float()).all()
        n += len(labels)
    assert n == len(kept) and len(loader) == -(-len(kept) // 5)


def test_odd_files_match_pillow_rgb(odd_tree):
    """Validation output (resize + centre crop) of odd files vs Pillow's convert('RGB')."""
    from PIL import Image

    root, kept, _ = odd_tree
    names = ["gray.jpg", "cmyk.jpg", "rgba.png", "palette.png"]
    files = [os.path.join(root, "dog", n) for n in names]
    loader = FileListLoader(files, 4, train=False, dtype="float32", cifar=True, **CPU)
    (images, labels), = list(loader)
    mean, std = np.array(loader.mean), np.array(loader.std)  # image_size=32: the CIFAR preset's 0.5 / 0.5
    got = images.permute(0, 2, 3, 1).numpy() * std + mean
    for i, f in enumerate(files):
        ref = np.asarray(Image.open(f).convert("RGB").resize((32, 32), Image.BILINEAR)) / 255.0
        assert abs(got[i].mean(axis=(0, 1)) - ref.mean(axis=(0, 1))).max() < 0.03, names[i]


def test_no_images_found_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("no picture")
    with pytest.raises(ValueError, match="no images found in .*1 files, skipped not an image: 1"):
        ImageFolderLoader(tmp_path, 4, **CPU)
    with pytest.raises(ValueError, match="no class sub-folders"):
        ImageFolderLoader(tmp_path / "a", 4, **CPU)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderLoader(tmp_path / "missing", 4, **CPU)


def test_validate_decode_catches_inner_corruption(tmp_path, clean_tree):
    root, files = clean_tree
    data = bytearray(open(os.path.join(root, next(iter(files))), "rb").read())
    data[300:700] = bytes(range(256)) + bytes(144)  # broken entropy data, EOI intact
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(bytes(data))
    assert datafiles.check_file(bad, "header") is None
    assert datafiles.check_file(bad, "decode") == "undecodable"


@pytest.mark.parametrize("n", [1, 7, 21, 22, 24, 25, 97])
@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
@pytest.mark.parametrize("bs", [1, 4, 5])
def test_batch_sizes_policy(n, ranks, bs):
    if n < ranks:
        return
    per_rank = [batch_sizes(n, bs, r, ranks, False) for r in range(ranks)]
    assert len({len(s) for s in per_rank}) == 1 and all(min(s) >= 1 for s in per_rank)
    assert all(max(s) <= bs for s in per_rank)
    extra = sum(sum(s) for s in per_rank) - n
    assert extra == 0 or (bs == 1 and extra < ranks)  # exactly once (bs=1: repeats)
    dropped = [batch_sizes(n, bs, r, ranks, True) for r in range(ranks)]
    assert len({len(s) for s in dropped}) == 1 and all(set(s) <= {bs} for s in dropped)


def _ids(loader):
    seen = []
    for _, labels in loader:
        seen += labels.tolist()
    return seen


@pytest.mark.parametrize("bs,ranks", [(4, 1), (4, 2), (5, 2), (3, 3)])
def test_epoch_covers_every_sample_once(clean_tree, bs, ranks):
    root, files = clean_tree
    paths = [os.path.join(root, f) for f in sorted(files)]  # labels = sample ids
    loaders = [FileListLoader(paths, bs, shard=(r, ranks), seed=3, **CPU) for r in range(ranks)]
    assert len({len(ld) for ld in loaders}) == 1
    for epoch in range(2):
        per_rank = [_ids(ld) for ld in loaders]
        assert sorted(sum(per_rank, [])) == list(range(len(paths))), epoch
        assert [len(s) for s in per_rank] == [ld.num_samples for ld in loaders]
    assert per_rank[0] != _ids_for_epoch(loaders[0], 0)  # epochs reshuffle


def _ids_for_epoch(loader, epoch):
    loader.set_epoch(epoch)
    return _ids(loader)


def test_drop_last(clean_tree):
    root, files = clean_tree
    paths = [os.path.join(root, f) for f in sorted(files)]
    loaders = [FileListLoader(paths, 4, shard=(r, 2), drop_last=True, **CPU) for r in range(2)]
    seen = [_ids(ld) for ld in loaders]
    assert [len(s) for s in seen] == [8, 8] and len(loaders[0]) == 2
    assert len(set(seen[0]) | set(seen[1])) == 16


def test_determinism_and_set_epoch(clean_tree):
    root, _ = clean_tree

    def epoch(seed, e):
        ld = ImageFolderLoader(root, 8, augment=gpuaug.AugMix(), seed=seed, **CPU)
        ld.set_epoch(e)
        return [(x.clone(), y.clone()) for x, y in ld]

    a, b, c = epoch(0, 1), epoch(0, 1), epoch(1, 1)
    assert all(torch.equal(x, y) and torch.equal(u, v) for (x, u), (y, v) in zip(a, b))
    assert not all(torch.equal(x, y) for (x, _), (y, _) in zip(a, c))


def test_labels_follow_pictures(tmp_path):
    """Each class is one solid colour: the label must say which colour came out."""
    from PIL import Image

    colours = [(250, 10, 10), (10, 250, 10), (10, 10, 250)]
    for k, colour in enumerate(colours):
        (tmp_path / f"c{k}").mkdir()
        for i in range(3 + k):
            Image.new("RGB", (30 + i, 34), colour).save(tmp_path / f"c{k}" / f"{i}.png")
    loader = ImageFolderLoader(tmp_path, 4, dtype="float32", **CPU)
    for images, labels in loader:
        channel = images.float().mean(dim=(2, 3)).argmax(dim=1)
        assert torch.equal(channel, labels)


def test_jsd_views_and_dtypes(clean_tree):
    root, _ = clean_tree
    loader = ImageFolderLoader(root, 6, augment=gpuaug.AugMix(), jsd=True, dtype="bfloat16", **CPU)
    (clean, aug1, aug2), labels = next(iter(loader))
    assert clean.dtype == aug1.dtype == torch.bfloat16 and clean.shape == aug2.shape == (6, 3, 32, 32)
    assert not torch.equal(aug1, aug2) and not torch.equal(clean, aug1)
    with pytest.raises(ValueError, match="jsd=True needs augment"):
        ImageFolderLoader(root, 6, jsd=True, **CPU)


def test_mixing_sets(clean_tree):
    root, _ = clean_tree
    pool = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="smaller than image_size=32"):
        ImageFolderLoader(root, 4, augment=gpuaug.PixMix(), mixing=MixingSet.from_array(pool), **CPU)
    with pytest.raises(ValueError, match="needs mixing"):
        ImageFolderLoader(root, 4, augment=gpuaug.IPMix(), **CPU)
    big = np.random.default_rng(1).integers(0, 256, (3, 80, 80, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="much larger"):
        loader = ImageFolderLoader(root, 8, augment=gpuaug.PixMix(), mixing=MixingSet.from_array(big), **CPU)
    images, _ = next(iter(loader))
    assert images.shape == (8, 3, 32, 32)


def test_mixing_from_a_second_reader(clean_tree):
    root, _ = clean_tree
    loader = ImageFolderLoader(root, 8, augment=gpuaug.IPMix(), mixing=os.path.join(root, "bee"),
                               dtype="float32", **CPU)
    images, labels = next(iter(loader))
    assert images.shape == (8, 3, 32, 32) and torch.isfinite(images).all()


def test_undetected_bad_file_stops_with_advice_when_nothing_else_is_left(odd_tree):
    root, _, bad = odd_tree
    loader = FileListLoader([os.path.join(root, bad["truncated"][0])], 1, validate="none", **CPU)
    with pytest.warns(UserWarning, match="undecodable"), \
            pytest.raises(RuntimeError, match="(?s)no file of this rank's share.*validate='decode'"):
        list(loader)
