"""A file that passed the scan but fails in DALI (deleted afterwards, or refused by DALI's
decoder) is skipped by the DALI loader: the epoch completes with every other sample
exactly once, the promised batch count, a warning and a count; later epochs leave it out."""

from __future__ import annotations

import os
import shutil
import warnings

import pytest

pytest.importorskip("nvidia.dali")
torch = pytest.importorskip("torch")

import gpuaug  # noqa: E402
from gpuaug.loader import FileListLoader, ImageFolderLoader, refill  # noqa: E402
from gpuaug.loader.loadfail import BadSampleWarning  # noqa: E402

CPU = dict(device="cpu", num_threads=1, image_size=32)
NOT_A_JPEG_BODY = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"  # DALI's decoder refuses it


@pytest.fixture
def tree(clean_tree, tmp_path):
    """A private copy of the 22-file tree and its paths in label (= sample id) order."""
    root, files = clean_tree
    shutil.copytree(root, tmp_path / "data")
    return [str(tmp_path / "data" / f) for f in sorted(files)]


def _epoch(loader):
    """(sample ids, batch sizes) of one epoch."""
    ids, sizes = [], []
    for _, labels in loader:
        ids += labels.tolist()
        sizes.append(labels.shape[0])
    return ids, sizes


@pytest.mark.parametrize("bs,ranks,drop_last", [(4, 1, False), (5, 2, False), (3, 3, False), (4, 2, True)])
def test_a_file_deleted_after_the_scan_is_skipped(tree, bs, ranks, drop_last):
    loaders = [FileListLoader(tree, bs, shard=(r, ranks), seed=3, drop_last=drop_last, **CPU) for r in range(ranks)]
    promised = [len(ld) for ld in loaders]
    gone = loaders[-1]._rank_order(0)[1]  # read in the first batch (drop_last leaves a tail unread)
    os.unlink(tree[gone])
    with pytest.warns(BadSampleWarning, match=r"deleted or moved after the scan .*1 file\(s\) skipped"):
        runs = [_epoch(ld) for ld in loaders]
    ids = sum((r[0] for r in runs), [])
    assert [len(r[1]) for r in runs] == promised  # every rank yields the batches it promised
    assert all(1 <= s <= bs for r in runs for s in r[1])
    if drop_last:  # refilled from the unused rest of the rank's order: full batches, none repeated
        assert all(s == bs for r in runs for s in r[1]) and len(set(ids)) == len(ids) and gone not in ids
    else:
        assert sorted(ids) == [i for i in range(len(tree)) if i != gone]  # every other sample exactly once
    assert sum(ld.skipped.get("missing", []).count(tree[gone]) for ld in loaders) == 1
    assert sum(len(ld.bad_files.get("missing", [])) for ld in loaders) == 1
    for epoch in (1, 2):  # the rank that met it leaves it out from the start
        knows = [ld for ld in loaders if ld.bad_files]
        with warnings.catch_warnings():
            warnings.simplefilter("error", BadSampleWarning)
            runs = [_epoch(ld) for ld in knows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BadSampleWarning)  # another rank may meet it now
            runs += [_epoch(ld) for ld in loaders if ld not in knows]
        assert sorted(len(r[1]) for r in runs) == sorted(promised)
        if not drop_last:
            assert sorted(sum((r[0] for r in runs), [])) == [i for i in range(len(tree)) if i != gone], epoch


@pytest.mark.parametrize("train", [True, False])
def test_a_file_that_does_not_decode_is_skipped(tree, train):
    bad = 14
    with open(tree[bad], "wb") as f:
        f.write(NOT_A_JPEG_BODY)
    kwargs = dict(augment=gpuaug.AugMix()) if train else dict(train=False)
    loader = FileListLoader(tree, 4, validate="none", seed=1, **kwargs, **CPU)  # the scan passes it
    assert tree[bad] in loader.samples.files and len(loader) == 6
    with pytest.warns(BadSampleWarning, match=r"DALI's decoder refuses it \(validate='none'.*1 file\(s\) skipped"):
        ids, sizes = _epoch(loader)
    assert sorted(ids) == [i for i in range(len(tree)) if i != bad] and len(sizes) == 6
    assert loader.skipped == {"undecodable": [tree[bad]]} and loader.bad_files == loader.skipped
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadSampleWarning)
        ids, sizes = _epoch(loader)
    assert sorted(ids) == [i for i in range(len(tree)) if i != bad] and len(sizes) == 6


def test_several_bad_files_in_one_epoch(tmp_path, clean_tree):
    root, _ = clean_tree
    shutil.copytree(root, tmp_path / "data")
    loader = ImageFolderLoader(tmp_path / "data", 4, validate="header", seed=2, **CPU)
    files = list(loader.samples.files)
    with open(files[3], "wb") as f:
        f.write(NOT_A_JPEG_BODY)  # passes the header check
    for i in (0, 7, 20):
        os.unlink(files[i])
    with pytest.warns(BadSampleWarning):
        n = sum(labels.shape[0] for _, labels in loader)
    assert n == len(files) - 4
    assert {r: len(v) for r, v in loader.bad_files.items()} == {"missing": 3, "undecodable": 1}


def test_refill_keeps_the_batch_count():
    assert refill([4, 4, 4, 1], 13) == [4, 4, 4, 1]
    assert refill([4, 4, 4, 1], 11) == [4, 4, 2, 1]
    assert refill([4, 4, 4, 4], 5) == [2, 1, 1, 1]
    assert refill([3, 3], 1) == [1, 1]  # fewer samples than batches: the last batch repeats a sample
    for sizes in ([5, 5, 5, 2], [1, 1, 1], [8]):
        for available in range(len(sizes), sum(sizes) + 1):
            got = refill(sizes, available)
            assert len(got) == len(sizes) and sum(got) == available and min(got) >= 1


def test_a_rank_left_with_no_readable_file_stops_with_advice(tmp_path, clean_tree):
    root, files = clean_tree
    one = tmp_path / "one.jpg"
    shutil.copy(os.path.join(root, sorted(files)[0]), one)
    loader = FileListLoader([str(one)], 1, validate="none", **CPU)
    one.unlink()
    with pytest.warns(BadSampleWarning), pytest.raises(RuntimeError, match="no file of this rank's share.*deleted"):
        list(loader)


def test_a_file_changed_after_the_decode_check_is_skipped(tree):
    loader = FileListLoader(tree, 8, seed=4, **CPU)  # validate="decode", the default
    with open(tree[2], "wb") as f:
        f.write(NOT_A_JPEG_BODY)
    with pytest.warns(BadSampleWarning, match="although the scan's decode check passed it"):
        ids, sizes = _epoch(loader)
    assert sorted(ids) == [i for i in range(len(tree)) if i != 2] and sizes == [8, 8, 5]


def test_rebatch_joins_batches_across_a_restart():
    from gpuaug.loader.rebatch import _Rebatch

    out = _Rebatch([3, 3, 2, 1], jsd=True)
    got = []
    for lo, hi in ((0, 4), (4, 5), (5, 8)):  # DALI batches, the second cut short by a restart
        labels = torch.arange(lo, hi)
        views = [labels.float().reshape(-1, 1, 1, 1).expand(-1, 3, 2, 2) + k for k in range(3)]
        got += list(out.push(views, labels))
    got += list(out.finish())
    assert [labels.tolist() for _, labels in got] == [[0, 1, 2], [3, 4, 5], [6, 7], [7]]  # the last repeats
    for (clean, aug1, aug2), labels in got:
        assert torch.equal(clean[:, 0, 0, 0], labels.float()) and torch.equal(aug2[:, 0, 0, 0], labels.float() + 2)


def test_a_failure_whose_file_cannot_be_found_keeps_the_clear_error(tree, monkeypatch):
    from gpuaug.loader import loadfail

    with open(tree[5], "wb") as f:
        f.write(NOT_A_JPEG_BODY)
    loader = FileListLoader(tree, 4, validate="header", **CPU)
    monkeypatch.setattr(loadfail, "find_failed_file", lambda *a: None)
    with pytest.raises(RuntimeError, match="(?s)DALI failed in epoch 0.*validate='header'.*validate='decode'"):
        list(loader)
    assert loader.bad_files == {}
