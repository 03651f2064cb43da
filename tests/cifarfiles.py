"""Small CIFAR-10/100 folders in the authors' file format, for tests.

The authors' files are Python 2 ``cPickle`` dumps at protocol 2: a dict whose keys and
strings are Python 2 ``str`` (the ``BINSTRING`` opcodes), the images a uint8 numpy array
rebuilt by ``numpy.core.multiarray._reconstruct``. :class:`Py2Pickler` writes that format
from Python 3 (``pickle.dump(protocol=2)`` would encode bytes through ``_codecs.encode``
instead); ``py2=False`` writes what Python 3's default protocol makes of the same dict.
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: bytes and str as BINSTRING, numpy's globals under
    ``numpy.core``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_string(self, obj):
        raw = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = _save_string
    dispatch[str] = _save_string

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", "")
        name = name or obj.__qualname__
        if module.startswith("numpy._core"):
            module = module.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n")
        self.memoize(obj)

    dispatch[type] = save_global
    dispatch[type(len)] = save_global


def dumps(obj, py2: bool = True) -> bytes:
    if not py2:
        return pickle.dumps(obj)
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def images(n: int, seed: int) -> np.ndarray:
    """(n, 3072) uint8 rows as CIFAR stores them: 1024 red, 1024 green, 1024 blue."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)


def write_cifar10(root, per_batch: int = 6, test: int = 6, py2: bool = True, n_classes: int = 10) -> Path:
    """``root/cifar-10-batches-py`` with 5 training batches, a test batch and the meta file."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]
    for k, (name, n) in enumerate(names):
        d = {b"batch_label": f"training batch {k + 1} of 5".encode(), b"labels": [(k + i) % n_classes for i in range(n)],
             b"data": images(n, k), b"filenames": [f"img_{k}_{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(dumps(d, py2))
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [c.encode() for c in CIFAR10_CLASSES[:n_classes]],
            b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(dumps(meta, py2))
    return folder


def write_cifar100(root, train: int = 10, test: int = 5, py2: bool = True) -> Path:
    """``root/cifar-100-python`` with ``train``, ``test`` and ``meta`` (100 fine, 20 coarse classes)."""
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for k, (name, n) in enumerate((("train", train), ("test", test))):
        d = {b"filenames": [f"f{i}.png".encode() for i in range(n)], b"batch_label": f"{name}ing batch".encode(),
             b"fine_labels": [(7 * i + k) % 100 for i in range(n)], b"coarse_labels": [i % 20 for i in range(n)],
             b"data": images(n, 10 + k)}
        (folder / name).write_bytes(dumps(d, py2))
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(dumps(meta, py2))
    return folder
