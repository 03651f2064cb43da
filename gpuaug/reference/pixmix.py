"""PixMix on one image (Hendrycks et al., CVPR 2022), the reference.

Algorithm (PixMix paper Sec. 2.2 "Mixing Pipeline" and Fig. 2; the parts the text leaves
open -- the Beta parameters of the conic coefficients and the two mixing formulas -- follow
the official code's ``get_ab``/``add``/``multiply``, which Sec. 2.2 describes as "conic
combinations ... exponents and weights sampled from a Beta distribution"):

1. start: with p = 1/2 (``rng.random() < 0.5``) mixed = augment(x), else mixed = x
2. rounds r ~ U{0, 1, ..., k}  (``rng.integers(0, k + 1)``; Fig. 2:
   ``random.choice([0, 1, ..., k])``, k inclusive)
3. each round, in order:
     partner: p = 1/2 (``rng.random() < 0.5``) a fresh augment(x) of the ORIGINAL x,
              else the mixing picture
     mix op:  p = 1/2 (``rng.random() < 0.5``) additive, else multiplicative
     (a, b) = get_ab(beta): p = 1/2 (``rng.random() < 0.5``):
                 a ~ Beta(beta, 1), b ~ Beta(1, beta)             (both weights positive)
              else:
                 a = 1 + Beta(1, beta), b = -Beta(1, beta)         (extrapolation)
              (a drawn before b; both rounded to float32)
     additive:       mixed = ((a*(2*mixed - 1) + b*(2*partner - 1)) + 1) / 2
     multiplicative: mixed = ((2*mixed)**a * max(2*partner, 1e-37)**b) / 2
     mixed = clip(mixed, 0, 1)
4. out = mixed (float32 H x W x 3 in [0, 1], no normalisation)

augment(x) = one op drawn uniformly from the standard list (``all_ops`` adds the four
enhance ops), severity-sampled as in ops.py. The mixing is done in float32 on x/255, as
the code does on ToTensor() tensors; there is no uint8 round trip between rounds.

Defaults: k = 4, beta = 3, severity = 3 are the CIFAR settings (Sec. 3 "Training Setup";
ImageNet uses k = 4, beta = 4 and the code's severity 1). ``all_ops`` defaults to off as
the official code's store_true flag does, but the README's training commands (CIFAR and
ImageNet) pass ``--all-ops``, so the recipes and ``gpuaug.PixMix`` use all ops.
"""

from __future__ import annotations

import numpy as np

from .ops import OPS_ALL, OPS_STANDARD, apply_random_op, as_pil, check_severity, to_float

__all__ = ["pixmix", "get_ab", "mix_add", "mix_multiply"]

_TINY = np.float32(1e-37)


def get_ab(beta: float, rng: np.random.Generator) -> tuple[np.float32, np.float32]:
    """Conic coefficients (a, b) of one PixMix/IPMix mixing (see module docstring)."""
    if rng.random() < 0.5:
        a = np.float32(rng.beta(beta, 1))
        b = np.float32(rng.beta(1, beta))
    else:
        a = np.float32(1) + np.float32(rng.beta(1, beta))
        b = -np.float32(rng.beta(1, beta))
    return a, b


def mix_add(x1: np.ndarray, x2: np.ndarray, a, b) -> np.ndarray:
    """Additive mixing in [-1, 1] space: ((a*(2x1-1) + b*(2x2-1)) + 1) / 2 (not clipped)."""
    a, b = np.float32(a), np.float32(b)
    one, two = np.float32(1), np.float32(2)
    return ((a * (x1 * two - one) + b * (x2 * two - one)) + one) / two


def mix_multiply(x1: np.ndarray, x2: np.ndarray, a, b) -> np.ndarray:
    """Multiplicative (geometric-mean-like) mixing: (2x1)^a * max(2x2, 1e-37)^b / 2 (not clipped)."""
    a, b = np.float32(a), np.float32(b)
    two = np.float32(2)
    with np.errstate(over="ignore", divide="ignore"):
        return (np.power(x1 * two, a) * np.power(np.maximum(x2 * two, _TINY), b)) / two


def pixmix(image, mixing_picture, rng: np.random.Generator, k: int = 4, beta: float = 3,
           severity: float = 3, all_ops: bool = False, return_info: bool = False):
    """PixMix of one image with one mixing picture (same size) -> float32 H x W x 3 in [0, 1].

    With ``return_info``, returns (out, info) with info = {"rounds": r,
    "start_augmented": bool, "partners": per round "augment" or "mixing",
    "mix_ops": per round "add" or "multiply", "ab": per round (a, b),
    "ops": list of (name, param) of every augment() call, in order}.
    """
    img = as_pil(image)
    pic = as_pil(mixing_picture, "mixing_picture")
    if pic.size != img.size:
        raise ValueError(f"mixing_picture size {pic.size} differs from image size {img.size}")
    severity = check_severity(severity)
    if int(k) != k or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    ops = OPS_ALL if all_ops else OPS_STANDARD
    applied = []

    def augment_x():
        out, rec = apply_random_op(img, ops, severity, rng, return_op=True)
        applied.append(rec)
        return to_float(out)

    start_augmented = bool(rng.random() < 0.5)
    mixed = augment_x() if start_augmented else to_float(img)
    pic_f = to_float(pic)

    rounds = int(rng.integers(0, int(k) + 1))
    partners, mix_ops, abs_ = [], [], []
    for _ in range(rounds):
        if rng.random() < 0.5:
            partner, which = augment_x(), "augment"
        else:
            partner, which = pic_f, "mixing"
        op = "add" if rng.random() < 0.5 else "multiply"
        a, b = get_ab(beta, rng)
        mixed = mix_add(mixed, partner, a, b) if op == "add" else mix_multiply(mixed, partner, a, b)
        mixed = np.clip(mixed, 0.0, 1.0).astype(np.float32)
        partners.append(which)
        mix_ops.append(op)
        abs_.append((float(a), float(b)))
    out = mixed.astype(np.float32, copy=False)
    if not return_info:
        return out
    info = {"rounds": rounds, "start_augmented": start_augmented, "partners": partners,
            "mix_ops": mix_ops, "ab": abs_, "ops": applied, "n_ops": len(applied)}
    return out, info
