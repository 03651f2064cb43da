"""The training sample list a checkpoint keeps, so that a run resumes over the samples it
started with.

A run's fingerprint holds the number of training images and batches per epoch, and its
data order is a permutation of the sample list: a file deleted, corrupted or added
between a stop and ``--resume`` would change both. So the checkpoint stores the list
(:func:`pack`: paths relative to the training folder, NUL-separated and zlib-compressed
in a uint8 tensor, labels as int32: about 10 MB for ImageNet's 1.28M files), and a
resumed run reads the same list (:func:`unpack`); files of it that are now missing or
that the scan now rejects are skipped at load time (:func:`reconcile`), files added
since are not used until a fresh run.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import torch

from ..loader.loadfail import MISSING, UNDECODABLE


def _prefix(root) -> str:
    return str(Path(root)) + os.sep


def pack(root, files, labels) -> dict:
    """``files`` (under ``root``, else kept absolute) and their int ``labels`` as tensors."""
    prefix = _prefix(root)
    names = [f[len(prefix):] if f.startswith(prefix) else f for f in map(str, files)]
    blob = zlib.compress(b"\0".join(os.fsencode(n) for n in names), 1)
    return {"format": 1, "count": len(names), "files": torch.frombuffer(bytearray(blob), dtype=torch.uint8),
            "labels": torch.tensor([int(v) for v in labels], dtype=torch.int32)}


def unpack(packed: dict, root) -> tuple[list[str], list[int]]:
    """``(files, labels)`` of a :func:`pack` result, relative paths joined to ``root``."""
    blob = zlib.decompress(packed["files"].numpy().tobytes())
    names = [os.fsdecode(n) for n in blob.split(b"\0")] if packed["count"] else []
    prefix = _prefix(root)
    return [n if os.path.isabs(n) else prefix + n for n in names], packed["labels"].tolist()


def reconcile(saved: list[str], current: list[str], skipped: dict) -> tuple[dict, int]:
    """``({path: reason}, added)``: the files of the ``saved`` list that are not among the
    ``current`` scan's (the scan's skip reason, else missing / undecodable), and the
    number of current files the saved list lacks."""
    now = set(map(str, current))
    why = {str(p): r for r, ps in skipped.items() for p in ps}
    gone = {f: why.get(f, UNDECODABLE if os.path.exists(f) else MISSING) for f in saved if f not in now}
    return gone, len(now - set(saved))


def describe(gone: dict, added: int, total: int) -> str:
    """The log line of a resume whose data changed."""
    counts = {}
    for reason in gone.values():
        counts[reason] = counts.get(reason, 0) + 1
    parts = [f"resuming over the checkpoint's list of {total} training files"]
    if gone:
        parts.append(f"{len(gone)} of them, now missing or failing the scan, are skipped at load time ("
                     + ", ".join(f"{r}: {n}" for r, n in sorted(counts.items()))
                     + f"; e.g. {next(iter(gone))})")
    if added:
        parts.append(f"{added} file(s) added since are not used until a fresh run")
    return "; ".join(parts)
