"""Chains of image-level ops: sampled per sample as (ids, values) tables, run step by step.

A chain table has shape (N, D): step s of image i applies op ``ids[i, s]`` with
``values[i, s]``. Chains shorter than D are padded with the identity op, so one batched
executor call runs step s for the whole batch.
"""

from __future__ import annotations

import numpy as np

from .. import catalogue

IDENTITY = catalogue.OP_IDS["identity"]


def resolve_ops(op_list, all_ops_default) -> np.ndarray:
    """Op ids of a method's op list: a named list, a sequence of names, or the default."""
    return catalogue.op_ids(catalogue.resolve_op_list(op_list if op_list is not None else all_ops_default))


def sample_ops(rng: np.random.Generator, op_ids: np.ndarray, shape, severity, height, width,
               autocontrast_cutoff="none"):
    """Uniformly drawn ops of ``op_ids`` and their severity-sampled parameters."""
    ids = op_ids[rng.integers(0, len(op_ids), size=shape)]
    values = catalogue.sample_values(ids.ravel(), severity, rng, height, width, autocontrast_cutoff)
    return ids.astype(np.int32), values.reshape(shape)


def sample_chains(rng, op_ids, shape, depth, severity, height, width, min_depth=1,
                  max_depth=3, autocontrast_cutoff="none"):
    """Chains for every position of ``shape`` (e.g. (N, width)): depth fixed when > 0,
    else uniform on min_depth..max_depth. Returns ids, values (shape + (D,)) and depths."""
    if depth > 0:
        depths = np.full(shape, depth, dtype=np.int32)
        d_max = depth
    else:
        depths = rng.integers(min_depth, max_depth + 1, size=shape).astype(np.int32)
        d_max = max_depth
    ids, values = sample_ops(rng, op_ids, tuple(shape) + (d_max,), severity, height, width,
                             autocontrast_cutoff)
    unused = np.arange(d_max) >= depths[..., None]
    ids[unused] = IDENTITY
    values[unused] = 0.0
    return ids, values, depths


def run_chain(backend, images, ids: np.ndarray, values: np.ndarray):
    """Apply an (N, D) chain table to a uint8 batch; steps that are identity for every
    image are skipped."""
    out = images
    for s in range(ids.shape[1]):
        if np.all(ids[:, s] == IDENTITY):
            continue
        out = backend.apply_ops(out, ids[:, s], values[:, s])
    return out


# Backends whose apply_ops takes m N ops for N images (output v from image v % N).
MULTI_CHAIN_BACKENDS = ("cuda", "emulated", "recording")


def run_chains(backend, images, ids: np.ndarray, values: np.ndarray, needed=None) -> list:
    """Apply m chain tables (ids, values of shape (N, m, D)) to one batch: a list of m
    uint8 batches, chain j's equal to ``run_chain(backend, images, ids[:, j], values[:, j])``
    for image i wherever ``needed[i, j]`` (bool (N, m); default everywhere: images the
    caller never reads may be left undefined).

    On the kernel backends the m chains run together (``executors.cuda.apply_chains_xp``):
    one executor step per chain step for all of them, no pass over an image at a step
    where its chain has no op."""
    n, m, depth = ids.shape
    if backend.name not in MULTI_CHAIN_BACKENDS:
        return [run_chain(backend, images, ids[:, j], values[:, j]) for j in range(m)]
    from ..executors.cuda import apply_chains_xp

    flat_needed = None if needed is None else np.asarray(needed, bool).T.reshape(m * n)
    out = apply_chains_xp(images, *_flat(ids, values), backend.name, flat_needed)
    if out is images:
        return [images] * m
    return [out[j * n:(j + 1) * n] for j in range(m)]


def _flat(ids, values):
    """(N, m, D) tables -> (m N, D) int32 / float64, row j N + i: chain j of image i."""
    n, m, depth = ids.shape
    return (ids.transpose(1, 0, 2).reshape(m * n, depth).astype(np.int32),
            values.transpose(1, 0, 2).reshape(m * n, depth).astype(np.float64))


def run_chains_for_reader(backend, images, ids: np.ndarray, values: np.ndarray):
    """On a kernel backend (``MULTI_CHAIN_BACKENDS``): the m chains of (N, m, D) tables
    left for a mixing kernel to read, each chain's last LUT op fused into that read
    (``executors.cuda.apply_chains_xp(defer_lut=True)``). Returns a ``ChainRows`` with
    ``rows`` and ``luts`` shaped (N, m)."""
    from ..executors.cuda import ChainRows, apply_chains_xp

    n, m, _ = ids.shape
    cr = apply_chains_xp(images, *_flat(ids, values), backend.name, defer_lut=True)
    return ChainRows(np.ascontiguousarray(cr.rows.reshape(m, n).T), np.ascontiguousarray(cr.luts.reshape(m, n).T),
                     cr.keep)
