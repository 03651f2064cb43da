"""The loader as a torchvision drop-in: defaults, ``.dataset``, strict decode validation
and its cache, ``gpuaug scan``, symlink-safe scans, empty epochs (CPU DALI pipelines)."""

from __future__ import annotations

import io
import json
import logging
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("nvidia.dali")
torch = pytest.importorskip("torch")
F = torch.nn.functional

import gpuaug  # noqa: E402
from conftest import _jpeg, write_clean_tree  # noqa: E402
from gpuaug.loader import placement as loader_mod  # noqa: E402
from gpuaug.data import checkcache, datafiles, decodecheck  # noqa: E402
from gpuaug.cli import main as cli_main  # noqa: E402
from gpuaug.loader import ImageFolderLoader  # noqa: E402
from imagegen import natural  # noqa: E402


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "data"
    return str(root), write_clean_tree(str(root))


def scrambled_jpeg(seed: int = 0) -> bytes:
    """A JPEG with a valid header and EOI marker but random entropy-coded data."""
    good = _jpeg(natural(48, 48, seed))
    sos = good.index(b"\xff\xda")
    body = sos + 2 + int.from_bytes(good[sos + 2:sos + 4], "big")
    noise = np.random.default_rng(seed).integers(0, 255, len(good) - 2 - body, dtype=np.uint8)
    return good[:body] + noise.tobytes() + b"\xff\xd9"  # bytes < 0xff: no stray markers


# ------------------------------------------------------------------ torchvision habits


def _torchvision_fit(loader):
    """A plain fp32 torchvision training loop (no autocast); returns losses and accuracy."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(8, len(loader.dataset.classes))).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(2):
        model.train()
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images.to(device)).argmax(1) == labels.to(device)).sum().item()
    return losses, correct / len(loader.dataset)


def test_torchvision_fp32_loop_runs_unchanged(tree, monkeypatch, caplog):
    tv = pytest.importorskip("torchvision")
    root, _ = tree
    transform = tv.transforms.Compose([tv.transforms.RandomResizedCrop(32), tv.transforms.ToTensor(),
                                       tv.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    reference = torch.utils.data.DataLoader(tv.datasets.ImageFolder(root, transform), batch_size=8, shuffle=True)
    losses, acc = _torchvision_fit(reference)
    assert np.isfinite(losses).all() and 0 <= acc <= 1

    monkeypatch.setattr(loader_mod, "_auto_told", set())
    with caplog.at_level(logging.WARNING, logger="gpuaug.loader"):
        ours = ImageFolderLoader(root, 8, augment=gpuaug.AugMix(), image_size=32, num_threads=1)  # the one line
        again = ImageFolderLoader(root, 8, image_size=32, num_threads=1)
    expected = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    assert ours.device == again.device == expected
    told = [r.getMessage() for r in caplog.records if "device='auto'" in r.getMessage()]
    assert len(told) == 1 and f"-> {expected}" in told[0]  # said once
    images, _ = next(iter(ours))
    assert images.dtype == torch.float32
    losses, acc = _torchvision_fit(ours)
    assert len(losses) == 2 * len(ours) and np.isfinite(losses).all() and 0 <= acc <= 1


def test_dataset_view_matches_torchvision(tree):
    tv = pytest.importorskip("torchvision.datasets")
    root, files = tree
    ref = tv.ImageFolder(root)
    view = ImageFolderLoader(root, 4, device="cpu", image_size=32).dataset
    assert view.classes == ref.classes and view.class_to_idx == ref.class_to_idx
    assert view.samples == ref.samples and view.imgs == ref.imgs and view.targets == ref.targets
    assert len(view) == len(ref) == len(files) and view.root == root


def test_fast_path_dtypes_still_available(tree):
    root, _ = tree
    for dtype, expected in (("bfloat16", torch.bfloat16), ("float16", torch.float16)):
        images, _ = next(iter(ImageFolderLoader(root, 4, device="cpu", image_size=32, dtype=dtype, num_threads=1)))
        assert images.dtype == expected


# ------------------------------------------------------------------ empty epochs


def test_empty_epoch_builds_no_pipeline(tree, monkeypatch):
    root, files = tree
    with pytest.warns(UserWarning, match=rf"{len(files)} samples per rank is less than one batch of 64 "
                                         r"with drop_last=True.*lower batch_size"):
        loader = ImageFolderLoader(root, 64, device="cpu", image_size=32, drop_last=True)
    assert len(loader) == 0

    def no_pipeline(epoch):
        raise AssertionError("an empty epoch built a pipeline")

    monkeypatch.setattr(loader, "_pipeline", no_pipeline)
    for epoch in range(2):
        loader.set_epoch(epoch)
        assert list(loader) == []


def test_small_data_without_drop_last_does_not_warn(tree):
    root, files = tree
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader = ImageFolderLoader(root, 64, device="cpu", image_size=32)
    assert len(loader) == 1 and loader.num_samples == len(files)


# ------------------------------------------------------------------ decode validation


def test_scrambled_body_passes_header_check_but_is_skipped_by_default(tree):
    root, files = tree
    bad = os.path.join(root, "cat", "scrambled.jpg")
    with open(bad, "wb") as f:
        f.write(scrambled_jpeg())
    header = ImageFolderLoader(root, 4, device="cpu", image_size=32, validate="header")
    assert len(header.samples) == len(files) + 1 and bad in header.samples.files  # the old default trains on it
    with pytest.warns(UserWarning, match=r"skipped 1 files \(undecodable: 1\)"):
        loader = ImageFolderLoader(root, 4, device="cpu", image_size=32)
    assert loader.skipped == {"undecodable": [bad]} and len(loader.samples) == len(files)
    assert "Corrupt JPEG data" in loader.samples.details[bad]
    assert datafiles.check_file(bad, "header") is None and datafiles.check_file(bad) == "undecodable"


def test_strict_check_of_other_formats_and_tar_members(tmp_path):
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(natural(20, 20, 1)).save(png, format="PNG")
    data = bytearray(png.getvalue())
    data[60:90] = bytes(30)  # damaged IDAT, IEND intact
    (tmp_path / "bad.png").write_bytes(bytes(data))
    (tmp_path / "good.png").write_bytes(png.getvalue())
    blob = tmp_path / "blob.bin"
    good_jpeg, bad_jpeg = _jpeg(natural(16, 16, 2)), scrambled_jpeg(3)
    blob.write_bytes(b"xx" + good_jpeg + bad_jpeg)
    verdicts = decodecheck.check_items([(tmp_path / "good.png", 0, -1), (tmp_path / "bad.png", 0, -1),
                                        (blob, 2, len(good_jpeg)), (blob, 2 + len(good_jpeg), len(bad_jpeg))],
                                       workers=2)
    assert verdicts[0] is None and verdicts[1] and verdicts[2] is None and verdicts[3]


def test_verdicts_are_cached_per_root_by_size_and_mtime(tree, monkeypatch):
    root, files = tree
    first = datafiles.scan_image_folder(root)
    cache = checkcache.DecodeCache(root, datafiles.decoder_tag())
    assert cache.path.is_file() and str(cache.path).startswith(os.environ["GPUAUG_CACHE_DIR"])
    assert len(cache.entries) == len(files)
    assert not [p for p in os.listdir(cache.path.parent) if p.endswith(".tmp")]

    calls = []
    real = decodecheck.check_items
    monkeypatch.setattr(decodecheck, "check_items", lambda items, workers=None, **kw: calls.append(list(items))
                        or real(items, workers, **kw))
    again = datafiles.scan_image_folder(root)
    assert again.files == first.files and calls == []  # nothing decoded again

    changed = os.path.join(root, "ant", "a0.jpg")
    with open(changed, "wb") as f:
        f.write(scrambled_jpeg(5))
    os.utime(changed, ns=(1, 1))
    third = datafiles.scan_image_folder(root)
    assert [str(p) for p, _, _ in calls[-1]] == [changed]  # only the changed file
    assert third.skipped == {"undecodable": [changed]}
    assert datafiles.scan_image_folder(root, cache=False).skipped == third.skipped


def test_concurrent_cache_writers_merge(tmp_path):
    a, b = checkcache.DecodeCache(tmp_path, "t"), checkcache.DecodeCache(tmp_path, "t")
    for i, cache in enumerate((a, b)):
        f = tmp_path / f"{i}.jpg"
        f.write_bytes(b"x" * (i + 1))
        cache.store(f, None if i == 0 else "bad")
    a.save()
    b.save()
    merged = json.loads(a.path.read_text())["entries"]
    assert sorted(merged) == ["0.jpg", "1.jpg"]  # relative to the root
    assert checkcache.DecodeCache(tmp_path, "t").lookup(tmp_path / "1.jpg") == (True, "bad")
    assert checkcache.DecodeCache(tmp_path, "other decoder").lookup(tmp_path / "1.jpg") == (False, None)


def test_failure_hints_name_the_check_that_ran(tree):
    root, _ = tree
    for validate in ("none", "header", "decode"):
        hint = ImageFolderLoader(root, 4, device="cpu", image_size=32, validate=validate)._decode_failure_hint()
        assert (f"validate='{validate}'" in hint) and (("header" in hint) == (validate == "header"))


def test_scan_command_prints_the_skip_report(tree, capsys):
    root, files = tree
    with open(os.path.join(root, "bee", "scrambled.jpg"), "wb") as f:
        f.write(scrambled_jpeg(1))
    with open(os.path.join(root, "bee", "notes.txt"), "w") as f:
        f.write("not a picture")
    assert cli_main(["scan", root]) == 0
    out = capsys.readouterr().out
    assert f"{len(files)} usable images in 3 classes, 2 skipped" in out
    assert "undecodable: 1" in out and os.path.join("bee", "scrambled.jpg") in out and "Corrupt JPEG data" in out
    assert "not an image: 1" in out


# ------------------------------------------------------------------ symlinks


def test_symlink_loops_and_repeats_are_skipped_and_counted(tree):
    root, files = tree
    os.symlink(os.path.join(root, "cat"), os.path.join(root, "cat", "sub", "loop"))  # cat/sub/loop -> cat
    os.symlink(root, os.path.join(root, "ant", "to_root"))                          # ant/to_root -> root
    samples = datafiles.scan_image_folder(root, validate="header")
    assert sorted(os.path.relpath(p, root) for p in samples.files) == sorted(files)  # nothing multiplied
    assert sorted(os.path.relpath(p, root) for p in samples.skipped["repeated folder"]) == \
        [os.path.join("ant", "to_root"), os.path.join("cat", "sub", "loop")]
    with pytest.warns(UserWarning, match="2 folder links lead to a folder already read"):
        loader = ImageFolderLoader(root, 4, device="cpu", image_size=32, validate="header")
    assert len(loader.samples) == len(files)


def _torchvision_samples(root):
    from torchvision.datasets import ImageFolder

    return ImageFolder(str(root)).samples


def test_symlinked_class_folders_are_read_like_torchvision(tmp_path):
    real = tmp_path / "real"
    write_clean_tree(str(real))
    root = tmp_path / "linked"
    root.mkdir()
    os.symlink(real / "ant", root / "ant")  # a class folder that is a link: followed
    os.symlink(real / "ant", root / "ant2")  # the same folder as another class: read for it too
    samples = datafiles.scan_image_folder(root, validate="header")
    assert samples.classes == ["ant", "ant2"] and samples.empty_classes == [] and samples.skipped == {}
    assert list(zip(samples.files, samples.labels)) == _torchvision_samples(root)


def test_a_link_into_another_class_keeps_that_class(tree):
    """train/ant/alias -> ../bee: bee's images count for ant (under alias/) and for bee,
    as in torchvision's ImageFolder; bee is not reported empty (issue 21, item 7)."""
    root, files = tree
    os.symlink(os.path.join("..", "bee"), os.path.join(root, "ant", "alias"))
    samples = datafiles.scan_image_folder(root, validate="header")
    assert samples.empty_classes == [] and samples.skipped == {}
    assert list(zip(samples.files, samples.labels)) == _torchvision_samples(root)
    bee = samples.classes.index("bee")
    assert sum(1 for label in samples.labels if label == bee) == sum(1 for c in files.values() if c == "bee")


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_progress_line_only_on_a_terminal(tree, monkeypatch, tty):
    root, files = tree
    stream = _Stream(tty)
    monkeypatch.setattr(decodecheck.sys, "stderr", stream)
    monkeypatch.setattr(decodecheck, "PROGRESS_AFTER_S", 0.0)
    items = [(os.path.join(root, f), 0, -1) for f in files]
    assert decodecheck.check_items(items, workers=1) == [None] * len(files)
    shown = stream.getvalue()
    assert (f"{len(files)}/{len(files)} (100%" in shown and shown.endswith("\n")) if tty else shown == ""


def test_undecodable_file_under_validate_none_names_no_header_check(tree, tmp_path):
    from gpuaug.loader.loadfail import BadSampleWarning

    root, files = tree
    data = bytearray(open(os.path.join(root, next(iter(files))), "rb").read())
    data[300:700] = bytes(range(256)) + bytes(144)  # broken markers: DALI cannot decode it
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(bytes(data))
    paths = [os.path.join(root, f) for f in sorted(files)][:3] + [str(bad)]
    loader = gpuaug.FileListLoader(paths, 4, device="cpu", image_size=32, train=False, validate="none",
                                   num_threads=1)
    with pytest.warns(BadSampleWarning) as caught:  # skipped, with the check that ran and the one that helps
        assert sum(labels.shape[0] for _, labels in loader) == 3
    message = " ".join(str(w.message) for w in caught)
    assert str(bad) in message and "validate='none'" in message and "header" not in message
    assert "validate='decode'" in message
