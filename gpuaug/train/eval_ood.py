"""Anomaly detection (PixMix's "Anomaly" column): AUROC of the maximum softmax
probability (Hendrycks & Gimpel, 2017) separating the in-distribution test set from each
out-of-distribution set the user points to, and the mean over the OOD sets.

The score of an image is its MSP; AUROC is the probability that a random in-distribution
image scores higher than a random OOD image, ties counting one half (equivalently: OOD as
the positive class with the anomaly score -MSP). It is computed exactly from ranks
(Mann-Whitney U with average ranks for ties), no binning.

OOD folders: any folder of images, flat or with sub-folders (ImageFolder-like); every image
file below it is used, labels ignored. Unreadable files are skipped and counted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data.datafiles import IMG_EXTENSIONS, read_file_list
from .data import Dataset


def average_ranks(values) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing the mean of their ranks."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="stable")
    sorted_vals = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks start+1 .. end
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auroc(positive_scores, negative_scores) -> float:
    """P(score of a positive > score of a negative) + 0.5 P(equal)."""
    pos = np.asarray(positive_scores, np.float64).ravel()
    neg = np.asarray(negative_scores, np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"AUROC needs both classes (got {len(pos)} positive, {len(neg)} negative scores)")
    if np.isnan(pos).any() or np.isnan(neg).any():
        raise ValueError("AUROC scores contain NaN")
    ranks = average_ranks(np.concatenate([pos, neg]))
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def image_files(root) -> list[Path]:
    """Every image file below ``root`` (recursively, sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise SystemExit(f"error: OOD folder {root} does not exist or is not a folder")
    found = []
    for dirpath, dirnames, filenames in sorted(os.walk(root, followlinks=True)):
        dirnames.sort()
        found += [Path(dirpath) / f for f in sorted(filenames) if Path(f).suffix.lower() in IMG_EXTENSIONS]
    if not found:
        raise SystemExit(f"error: no image files ({', '.join(IMG_EXTENSIONS)}) under OOD folder {root}")
    return found


def ood_dataset(root, classes) -> Dataset:
    """The images below ``root`` as an evaluation set (all labelled 0; labels are unused)."""
    files = image_files(root)
    try:
        samples = read_file_list(files, labels=[0] * len(files))
    except ValueError as err:
        raise SystemExit(f"error: OOD folder {root}: {err}") from None
    return Dataset("ood", str(root), list(classes), np.zeros(len(samples.files), np.int64),
                   paths=samples.files, skipped=samples.skipped)


def evaluate_ood(in_confidence, roots, predict_confidence, classes, log=print) -> dict:
    """AUROC per OOD folder and their mean; ``in_confidence`` is the in-distribution MSP,
    ``predict_confidence(dataset)`` returns the MSP of a data set's images."""
    in_confidence = np.asarray(in_confidence)
    per = {}
    for root in roots:
        ds = ood_dataset(root, classes)
        conf = predict_confidence(ds)
        name = Path(root).name or str(root)
        if name in per:
            name = str(root)
        per[name] = {"path": str(root), "n": int(len(conf)), "auroc": auroc(in_confidence, conf),
                     "skipped": {k: len(v) for k, v in ds.skipped.items()}}
        log(f"  OOD {name}: {len(conf)} images, AUROC {100 * per[name]['auroc']:.2f}%")
    return {"n_in": int(len(in_confidence)), "sets": per,
            "mean_auroc": float(np.mean([v["auroc"] for v in per.values()])) if per else None}


def table_rows(res: dict) -> list:
    rows = [(f"OOD AUROC {name} (MSP)", 100 * v["auroc"]) for name, v in res["sets"].items()]
    if res.get("mean_auroc") is not None and len(res["sets"]) > 1:
        rows.append(("OOD AUROC mean (MSP)", 100 * res["mean_auroc"]))
    return rows
