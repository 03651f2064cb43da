"""CIFAR-10/100 "python version" files, read without running code from the data.

The authors' files (``cifar-10-batches-py``: ``data_batch_1..5``, ``test_batch``,
``batches.meta``; ``cifar-100-python``: ``train``, ``test``, ``meta``) are Python 2 pickles
of a dict: bytes keys, bytes/str values, lists of ints or bytes, ints, and the images as a
uint8 numpy array. A plain ``pickle.load`` runs whatever callable a file names, so a
crafted file could run a shell command; :func:`read_pickle` admits only the few numpy
functions that rebuild an array (nothing else can be called) and then checks that the
result is such a dict. Anything else is refused with :class:`CifarFileError` naming the
file; nothing in it has run.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIDE = 32
CIFAR10_DIR, CIFAR100_DIR = "cifar-10-batches-py", "cifar-100-python"


class CifarFileError(ValueError):
    """A file that is not a CIFAR python pickle (refused before anything in it ran)."""


def _numpy_globals() -> dict:
    rebuild = np.zeros(0).__reduce__()[0]  # numpy's _reconstruct, whichever module holds it
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = rebuild  # pickle protocols 0-4 (the authors' files)
    try:  # protocol 5 (a file re-saved by Python 3.8+): an array rebuilt from its bytes
        from numpy._core.numeric import _frombuffer  # numpy 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = _frombuffer
    return allowed


_ALLOWED = None


class _CifarUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file, encoding="bytes")  # the authors' Python 2 str -> bytes, as numpy expects
        self.path = path

    def find_class(self, module, name):
        global _ALLOWED
        if _ALLOWED is None:
            _ALLOWED = _numpy_globals()
        found = _ALLOWED.get((module, name))
        if found is None:
            raise CifarFileError(f"{self.path}: not a CIFAR python pickle: it asks to load {module}.{name}, which "
                                 "a CIFAR file never does (refused; nothing in the file ran)")
        return found


_PLAIN = (bytes, str, int, float, bool, type(None))


def _check_value(value, path, key) -> None:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "uib":
            raise CifarFileError(f"{path}: entry {key!r} is a {value.dtype} array, not CIFAR's integer data")
    elif isinstance(value, list):
        if not all(isinstance(v, _PLAIN) for v in value):
            raise CifarFileError(f"{path}: entry {key!r} is a list of something else than labels or names")
    elif not isinstance(value, _PLAIN):
        raise CifarFileError(f"{path}: entry {key!r} is a {type(value).__name__}, not part of a CIFAR file")


def read_pickle(path) -> dict:
    """The dict in one CIFAR python file, keys as bytes (``b"data"``, ``b"labels"``...)
    as in the authors' files; :class:`CifarFileError` for anything else."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            out = _CifarUnpickler(f, path).load()
    except CifarFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError) as err:
        raise CifarFileError(f"{path}: not a readable CIFAR python pickle ({type(err).__name__}: {err})") from None
    if not isinstance(out, dict):
        raise CifarFileError(f"{path}: holds a {type(out).__name__}, not the dict of a CIFAR file")
    out = {k.encode() if isinstance(k, str) else k: v for k, v in out.items()}  # a file re-saved by Python 3
    for key, value in out.items():
        if not isinstance(key, bytes):
            raise CifarFileError(f"{path}: has a key of type {type(key).__name__}, not a CIFAR file's")
        _check_value(value, path, key)
    return out


@dataclass
class CifarSplit:
    """One split in memory: ``images`` (N, 32, 32, 3) uint8 RGB, ``labels`` int64."""

    kind: str        # "cifar10" | "cifar100"
    root: str        # the folder holding the batches
    classes: list
    images: np.ndarray
    labels: np.ndarray
    files: list      # the pickle file of each sample's batch, for messages


def _kind_of(folder: Path) -> str | None:
    if (folder / "data_batch_1").is_file():
        return "cifar10"
    if (folder / "meta").is_file() and (folder / "train").is_file():
        return "cifar100"
    return None


def find_root(root, kind: str | None = None) -> Path | None:
    """The folder holding the CIFAR batches: ``root`` itself or its ``cifar-10-batches-py`` /
    ``cifar-100-python`` subfolder (torchvision's ``root``); ``kind`` ("cifar10" |
    "cifar100") picks one when ``root`` holds both; None when there is none."""
    if kind not in (None, "cifar10", "cifar100"):
        raise ValueError(f"kind must be 'cifar10', 'cifar100' or None, got {kind!r}")
    root = Path(root).expanduser()
    found = [c for c in (root, root / CIFAR10_DIR, root / CIFAR100_DIR) if _kind_of(c) in ((kind,) if kind else
                                                                                          ("cifar10", "cifar100"))]
    if len(found) > 1 and kind is None and root not in found:
        raise ValueError(f"{root} holds both {CIFAR10_DIR}/ and {CIFAR100_DIR}/: pass kind='cifar10' or 'cifar100'")
    return found[0] if found else None


def _column(d: dict, key: bytes, path: Path, n: int | None = None) -> list:
    if key not in d:
        raise CifarFileError(f"{path}: has no {key.decode()!r} entry (keys: {sorted(k.decode() for k in d)})")
    values = d[key]
    values = values.tolist() if isinstance(values, np.ndarray) else values
    if not isinstance(values, list) or (n is not None and len(values) != n):
        raise CifarFileError(f"{path}: {key.decode()!r} should list {n} entries")
    return values


def load_split(root, train: bool, kind: str | None = None) -> CifarSplit:
    """CIFAR-10 (``data_batch_1..5`` / ``test_batch`` + ``batches.meta``) or CIFAR-100
    (``train`` / ``test`` + ``meta``, fine labels) from ``root`` (see :func:`find_root`)."""
    folder = find_root(root, kind)
    if folder is None:
        what = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}.get(kind, "CIFAR-10/100")
        raise FileNotFoundError(f"{root} holds no {what} python files (data_batch_1.. or train + meta, "
                                f"directly or in {CIFAR10_DIR}/ or {CIFAR100_DIR}/); gpuaug does not download them")
    if _kind_of(folder) == "cifar10":
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        meta, key, class_key, kind = "batches.meta", b"labels", b"label_names", "cifar10"
    else:
        names = ["train"] if train else ["test"]
        meta, key, class_key, kind = "meta", b"fine_labels", b"fine_label_names", "cifar100"
    images, labels, files = [], [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing from the CIFAR folder {folder}")
        d = read_pickle(path)
        data = np.asarray(d.get(b"data", np.zeros(0, np.uint8)))
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
            raise CifarFileError(f"{path}: 'data' should be a uint8 array of shape (N, {3 * SIDE * SIDE}), "
                                 f"got {data.dtype} {data.shape}")
        labels.extend(int(v) for v in _column(d, key, path, len(data)))
        images.append(data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1))
        files.extend([str(path)] * len(data))
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in _column(read_pickle(folder / meta),
                                                                              class_key, folder / meta)]
    labels = np.asarray(labels, np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise CifarFileError(f"{folder}: labels outside 0..{len(classes) - 1} ({len(classes)} classes in {meta})")
    return CifarSplit(kind, str(folder), classes, np.ascontiguousarray(np.concatenate(images)), labels, files)
