"""Shared op batches for the cuda executor tests (emulated and on the GPU).

Each case is (label, images, ids, values): every op at every severity (both autocontrast
cutoff modes), cycling through natural and degenerate images, plus hand-picked edge
parameters. Sizes: 32x32, 17x23 (non-square), 1x1, 2x5.
"""

from __future__ import annotations

import numpy as np

from gpuaug import ops
from imagegen import image_set

SIZES = ((32, 32), (17, 23), (1, 1), (2, 5))

# Parameters at the ends of each op's range and on its special paths.
EDGE_VALUES = {
    "identity": [0.0],
    "autocontrast": [0.0, 0.5, 10.0, 33.3, 49.9],
    "equalize": [0.0],
    "posterize": [0, 1, 7, 8],
    "solarize": [0, 1, 128, 255, 256],
    "rotate": [0.0, 90.0, -90.0, 180.0, 45.0, -360.0, 359.5],
    "shear_x": [0.3, -0.3, 10.0, -10.0],
    "shear_y": [0.3, -0.3, 10.0, -10.0],
    "translate_x": [1.0, -1.0, 7.0, -40.0, 1e6],
    "translate_y": [1.0, -2.0, 9.0, -1e6],
    "color": [0.0, 1.0, 0.1, 1.9, 10.0],
    "contrast": [0.0, 1.0, 0.1, 1.9, 10.0],
    "brightness": [0.0, 1.0, 0.1, 1.9, 10.0],
    "sharpness": [0.0, 1.0, 0.1, 1.9, 10.0],
    "mirror": [0.0],
    "flip": [0.0],
    "invert": [0.0],
    "downscale": [1.0, 1.5, 2.0, 3.7, 64.0],
}


def _images(h: int, w: int, n: int, seed: int) -> np.ndarray:
    pool = [img for _, img in image_set(h, w, seed=seed)]
    return np.ascontiguousarray(np.stack([pool[i % len(pool)] for i in range(n)]))


def severity_case(h: int, w: int, seed: int = 0):
    """Every op at every severity 1..10 in one shuffled batch."""
    rng = np.random.default_rng([seed, h, w])
    ids_parts, val_parts = [], []
    for severity in range(1, 11):
        ids = ops.op_ids(ops.OP_NAMES)
        mode = "ipmix" if severity % 2 else "none"
        ids_parts.append(ids)
        val_parts.append(ops.sample_values(ids, severity, rng, h, w, autocontrast_cutoff=mode))
    ids = np.concatenate(ids_parts)
    values = np.concatenate(val_parts)
    order = rng.permutation(ids.size)
    return ids[order], values[order], _images(h, w, ids.size, seed)


def edge_case(h: int, w: int, seed: int = 0):
    """Every op at its edge parameters, one batch."""
    names = [n for n, vs in EDGE_VALUES.items() for _ in vs]
    values = np.array([v for vs in EDGE_VALUES.values() for v in vs], dtype=np.float64)
    ids = ops.op_ids(names)
    return ids, values, _images(h, w, ids.size, seed + 1)


def all_cases():
    """[(label, ids, values, images)] for every size."""
    cases = []
    for h, w in SIZES:
        cases.append((f"severities-{h}x{w}", *severity_case(h, w)))
        cases.append((f"edges-{h}x{w}", *edge_case(h, w)))
    return cases


def mismatch_report(got: np.ndarray, want: np.ndarray, ids: np.ndarray, values: np.ndarray) -> str:
    """Which samples differ, by op and parameter (empty when identical)."""
    bad = np.nonzero((got != want).reshape(got.shape[0], -1).any(axis=1))[0]
    rows = [f"sample {i}: {ops.OP_NAMES[ids[i]]}({values[i]!r}), "
            f"{int((got[i] != want[i]).sum())} values differ" for i in bad[:20]]
    return "\n".join(rows)
