"""AugMix on one image (Hendrycks et al., ICLR 2020), the reference for AugMix and the data
side of NoisyMix (NoisyMix trains on AugMix's (clean, aug1, aug2) views with JSD; see the
NoisyMix slides, 004).

Algorithm (AugMix paper, Sec. 3 "AugMix", Algorithm 1; defaults of its code, which
``gpuaug``'s DESIGN.md restates):

1. w ~ Dirichlet(alpha * 1_width)                   (one draw, ``rng.dirichlet``)
2. m ~ Beta(alpha, alpha)                            (skip-connection weight)
3. for each of the ``width`` chains, in order:
     d = depth if depth > 0 else U{1, 2, 3}          (``rng.integers(1, 4)``)
     d times: op ~ U(ops), then its parameter (see ops.py); applied to the chain's PIL
     image (uint8 between ops, as PIL keeps it)
4. out = (1 - m) * x + m * sum_i w_i * chain_i,  all in float32 [0, 1] (x/255).

The output is a convex combination of [0, 1] images, so it lies in [0, 1]; the final clip
only guards float32 rounding. No normalisation (the papers normalise after mixing, which is
linear and commutes).
"""

from __future__ import annotations

import numpy as np

from .ops import OPS_ALL, OPS_STANDARD, apply_random_op, as_pil, check_severity, to_float

__all__ = ["augmix"]


def augmix(image, rng: np.random.Generator, width: int = 3, depth: int = -1, severity: float = 3,
           alpha: float = 1.0, all_ops: bool = False, return_info: bool = False):
    """AugMix of one image -> float32 H x W x 3 in [0, 1].

    ``depth <= 0`` draws each chain's depth from U{1, 2, 3}. ``all_ops`` adds color,
    contrast, brightness, sharpness (they overlap ImageNet-C; off in the paper's runs).
    With ``return_info``, returns (out, info) with info = {"n_ops": total ops applied,
    "m": skip weight, "ws": chain weights, "depths": per-chain depth,
    "ops": per chain a list of (name, param), "chains": per-chain float32 images}.
    """
    img = as_pil(image)
    severity = check_severity(severity)
    if int(width) != width or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width}")
    if int(depth) != depth:
        raise ValueError(f"depth must be an integer (<= 0 for random 1..3), got {depth}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    width, depth = int(width), int(depth)
    ops = OPS_ALL if all_ops else OPS_STANDARD

    ws = rng.dirichlet([alpha] * width).astype(np.float32)
    m = np.float32(rng.beta(alpha, alpha))

    x = to_float(img)
    mix = np.zeros_like(x)
    depths, chain_ops, chains = [], [], []
    for i in range(width):
        d = depth if depth > 0 else int(rng.integers(1, 4))
        aug = img
        applied = []
        for _ in range(d):
            aug, rec = apply_random_op(aug, ops, severity, rng, return_op=True)
            applied.append(rec)
        chain = to_float(aug)
        mix += ws[i] * chain
        depths.append(d)
        chain_ops.append(applied)
        chains.append(chain)
    out = np.clip((np.float32(1) - m) * x + m * mix, 0.0, 1.0).astype(np.float32)
    if not return_info:
        return out
    info = {"n_ops": int(sum(depths)), "m": float(m), "ws": ws, "depths": depths,
            "ops": chain_ops, "chains": chains}
    return out, info
