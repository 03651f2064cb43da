"""CIFAR python files are read without running code from them (issue 21, S1)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cifarfiles import dumps, images, write_cifar10, write_cifar100
from gpuaug.data import cifarfile
from gpuaug.data.cifarfile import CifarFileError, load_split, read_pickle


class _Touch:
    """A harmless payload: unpickling it creates ``marker`` (the attack ran os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("py2", [True, False], ids=["python2-protocol2", "python3-default"])
def test_real_format_files_load(tmp_path, py2):
    write_cifar10(tmp_path, per_batch=4, test=3, py2=py2)
    train, test = load_split(tmp_path, True), load_split(tmp_path / "cifar-10-batches-py", False)
    assert train.kind == "cifar10" and train.images.shape == (20, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (3, 32, 32, 3) and train.classes[:2] == ["airplane", "automobile"]
    rows = images(4, 0)  # batch 1: channel planes -> HWC
    assert np.array_equal(train.images[:4], rows.reshape(4, 3, 32, 32).transpose(0, 2, 3, 1))
    assert train.labels.tolist()[:4] == [0, 1, 2, 3]
    d = read_pickle(tmp_path / "cifar-10-batches-py" / "data_batch_1")
    assert set(d) == {b"batch_label", b"labels", b"data", b"filenames"}


def test_cifar100_fine_labels(tmp_path):
    write_cifar100(tmp_path, train=6, test=2)
    split = load_split(tmp_path, True)
    assert split.kind == "cifar100" and len(split.classes) == 100 and split.labels.tolist() == [0, 7, 14, 21, 28, 35]


def test_python3_protocol5_and_str_keys_load(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": images(2, 1), "labels": [1, 2]}, protocol=5))
    d = read_pickle(path)
    assert d[b"labels"] == [1, 2] and d[b"data"].shape == (2, 3072)


@pytest.mark.parametrize("py2", [True, False], ids=["python2-protocol2", "python3-default"])
@pytest.mark.parametrize("where", ["top", "in_the_dict", "in_a_list"])
def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path, where, py2):
    marker = tmp_path / "marker"
    payload = _Touch(marker)
    obj = {"top": payload, "in_the_dict": {b"data": images(1, 0), b"labels": [0], b"x": payload},
           "in_a_list": {b"data": images(1, 0), b"labels": [payload]}}[where]
    folder = write_cifar10(tmp_path / "data", per_batch=1, test=1)
    (folder / "data_batch_1").write_bytes(dumps(obj, py2))
    with pytest.raises(CifarFileError, match=r"data_batch_1: not a CIFAR python pickle: it asks to load io\.open"):
        load_split(folder, True)
    assert not marker.exists()


def test_trainer_refuses_a_crafted_batch(tmp_path):
    from gpuaug.train.data import cifar

    marker = tmp_path / "marker"
    folder = write_cifar10(tmp_path, per_batch=1, test=1)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _Touch(marker)}, protocol=2))
    with pytest.raises(SystemExit, match="test_batch: not a CIFAR python pickle"):
        cifar(folder, train=False)
    assert not marker.exists()


@pytest.mark.parametrize("content, match", [
    (b"", "not a readable CIFAR python pickle"),
    (b"\x80\x02}q\x00(U\x04data", "not a readable CIFAR python pickle"),  # cut short
    (dumps([1, 2]), "holds a list, not the dict"),
    (dumps({b"data": np.zeros(3, np.float32)}), "float32 array"),
])
def test_other_bad_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "data_batch_1"
    path.write_bytes(content)
    with pytest.raises(CifarFileError, match=match) as info:
        read_pickle(path)
    assert str(path) in str(info.value)


def test_wrong_shapes_and_labels_are_errors(tmp_path):
    folder = write_cifar10(tmp_path, per_batch=2, test=2)
    (folder / "test_batch").write_bytes(dumps({b"data": images(2, 0)[:, :100], b"labels": [0, 1]}))
    with pytest.raises(CifarFileError, match=r"test_batch: 'data' should be a uint8 array of shape \(N, 3072\)"):
        load_split(folder, False)
    (folder / "test_batch").write_bytes(dumps({b"data": images(2, 0), b"labels": [0, 10]}))
    with pytest.raises(CifarFileError, match="labels outside 0..9"):
        load_split(folder, False)
    with pytest.raises(FileNotFoundError, match="does not download"):
        load_split(tmp_path / "nothing", True)


def test_only_numpy_array_rebuilders_are_admitted():
    names = set(cifarfile._numpy_globals())
    assert {n for _, n in names} == {"ndarray", "dtype", "_reconstruct", "_frombuffer"}
