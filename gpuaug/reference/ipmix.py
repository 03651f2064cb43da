"""IPMix on one image (Huang et al., NeurIPS 2023), the reference.

The paper text gives the structure (Sec. 4.1 Eq. (1) and "The IPMix framework": k chains,
Chain-Mixed, Dirichlet chain weights, Beta skip weight, Fig. 3; Sec. 4.2: the four random
mixing ops and square / scar-like patches; t = "the maximum number of times an image can
be augmented"); its Appendix D (the algorithm) is missing from our extract, so the exact
draws follow the official code (``imagenet.py``/``cifar.py`` ``ipmix``, ``IPMix_utils``):

1. w ~ Dirichlet(1_k); m ~ Beta(1, 1)                      (in that order)
2. for each of the k chains, in order, starting from x (PIL uint8):
     kind: p = 1/2 (``rng.random() < 0.5``) image-level, else P-level
     n ~ U{0, ..., t}  (``rng.integers(0, t + 1)``; the code's randint(t + 1): 0 allowed,
                         so a chain can be the clean image)
     image-level: n times chain = augment(chain)  (one op ~ U(ops), severity-sampled)
     P-level:     n times, in order:
        s ~ U(patch_sizes), then s = min(s, W, H)            (clamp: ours, see below)
        mix op ~ U{add, multiply, random_pixels, random_elems}
        partner: if augment_partner: p = 1/2 (``rng.random() < 0.5``) the mixing
                 picture, else a fresh augment(x) of the ORIGINAL x;
                 if not augment_partner: always the mixing picture (the CIFAR code)
        patch: left ~ U{0..W-s}, top ~ U{0..H-s}; p = 1/2 (``rng.random() < 0.5``) square
               s x s, else scar: pw ~ U{2..s}, ph ~ U{2..s} (pw drawn first)
        mix the patch of the chain (x1) and the same box of the partner (x2), as float32
        /255:  add / multiply: PixMix's formulas with (a, b) = get_ab(beta)
               random_pixels:  thr ~ U(0,1), then u ~ U(0,1)^(ph x pw x 1); x1 where u < thr
               random_elems:   thr ~ U(0,1), then u ~ U(0,1)^(ph x pw x 3); x1 where u < thr
        write back as uint8: trunc(clip(v, 0, 1) * 255)
3. out = (1 - m) * x + m * sum_i w_i * chain_i, float32 [0, 1].

The paper's Eq. (1) describes the patch value as lambda "sampled from a Beta distribution";
in the code that is the conic (a, b) of get_ab(beta) for add/multiply (beta = "severity of
mixing"), while the random-mask ops ignore beta and draw their keep-probability from U(0, 1)
-- we follow the code. Defaults k = 3, t = 3, beta = 4, severity = 1 and patch sizes
(4, 8, 16, 32, 64, 224) are the ImageNet code's (CIFAR code: beta 3, severity 3, sizes
(4, 8, 16, 32), partner always the mixing picture -> ``augment_partner=False``).

Deviations: the code's float -> uint8 patch write (ToPILImage) wraps values outside [0, 1]
modulo 256; we clip first. Patch sizes larger than the image are clamped to min(W, H) (the
code would crash on them; with the ImageNet list on 32 x 32 images 3/6 of the size draws
become 32, i.e. whole-image patches when square: pass (4, 8, 16, 32) for CIFAR). Scar sides are drawn from U{min(2, s)..s} so s = 1 works.
"""

from __future__ import annotations

import numpy as np

from .ops import OPS_IPMIX, OPS_IPMIX_ALL, apply_random_op, as_pil, check_severity, quantize, to_float
from .pixmix import get_ab, mix_add, mix_multiply

__all__ = ["ipmix", "patch_mix", "MIX_OPS"]

MIX_OPS = ("add", "multiply", "random_pixels", "random_elems")


def _mix(op: str, x1: np.ndarray, x2: np.ndarray, beta: float, rng: np.random.Generator):
    if op == "add":
        a, b = get_ab(beta, rng)
        return mix_add(x1, x2, a, b), {"a": float(a), "b": float(b)}
    if op == "multiply":
        a, b = get_ab(beta, rng)
        return mix_multiply(x1, x2, a, b), {"a": float(a), "b": float(b)}
    channels = 1 if op == "random_pixels" else 3
    thr = float(rng.random())
    keep = rng.random(x1.shape[:2] + (channels,)) < thr
    return np.where(keep, x1, x2), {"threshold": thr, "kept": float(keep.mean())}


def patch_mix(chain: np.ndarray, partner: np.ndarray, patch_size: int, op: str, beta: float,
              rng: np.random.Generator):
    """One IPMix patch mixing on uint8 HxWx3 arrays; returns (new chain, record dict)."""
    if op not in MIX_OPS:
        raise ValueError(f"unknown mix op {op!r}; expected one of {MIX_OPS}")
    h, w = chain.shape[:2]
    s = int(min(patch_size, w, h))
    left = int(rng.integers(0, w - s + 1))
    top = int(rng.integers(0, h - s + 1))
    square = bool(rng.random() < 0.5)
    if square:
        pw = ph = s
    else:
        lo = min(2, s)
        pw = int(rng.integers(lo, s + 1))
        ph = int(rng.integers(lo, s + 1))
    box = (slice(top, top + ph), slice(left, left + pw))
    mixed, rec = _mix(op, to_float(chain[box]), to_float(partner[box]), beta, rng)
    out = chain.copy()
    out[box] = quantize(mixed)
    rec.update({"op": op, "patch_size": s, "box": (left, top, pw, ph), "square": square})
    return out, rec


def ipmix(image, mixing_picture, rng: np.random.Generator, k: int = 3, t: int = 3, beta: float = 4,
          severity: float = 1, patch_sizes=(4, 8, 16, 32, 64, 224), all_ops: bool = False,
          return_info: bool = False, augment_partner: bool = True):
    """IPMix of one image with one mixing picture (same size) -> float32 H x W x 3 in [0, 1].

    With ``return_info``, returns (out, info) with info = {"m", "ws", "kinds": per chain
    "image" or "p", "counts": per chain n, "chains": per chain a list of records (image
    level: (name, param); P-level: dict with op, patch_size (clamped), box (left, top, w, h),
    square, partner, and a/b or threshold), "n_ops": total ops + mixings}.
    """
    img = as_pil(image)
    pic = as_pil(mixing_picture, "mixing_picture")
    if pic.size != img.size:
        raise ValueError(f"mixing_picture size {pic.size} differs from image size {img.size}")
    severity = check_severity(severity)
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k}")
    if int(t) != t or t < 0:
        raise ValueError(f"t must be an integer >= 0, got {t}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    patch_sizes = tuple(patch_sizes)
    if not patch_sizes or any(int(p) != p or p < 1 for p in patch_sizes):
        raise ValueError(f"patch_sizes must be a non-empty sequence of integers >= 1, got {patch_sizes}")
    ops = OPS_IPMIX_ALL if all_ops else OPS_IPMIX
    k, t = int(k), int(t)

    ws = rng.dirichlet([1.0] * k).astype(np.float32)
    m = np.float32(rng.beta(1, 1))

    x_u8 = np.asarray(img)
    pic_u8 = np.asarray(pic)
    x = to_float(x_u8)
    mix = np.zeros_like(x)
    kinds, counts, records = [], [], []
    for i in range(k):
        kind = "image" if rng.random() < 0.5 else "p"
        n = int(rng.integers(0, t + 1))
        recs = []
        if kind == "image":
            chain = img
            for _ in range(n):
                chain, rec = apply_random_op(chain, ops, severity, rng, return_op=True)
                recs.append(rec)
            chain_u8 = np.asarray(chain)
        else:
            chain_u8 = x_u8
            for _ in range(n):
                size = int(patch_sizes[int(rng.integers(len(patch_sizes)))])
                op = MIX_OPS[int(rng.integers(len(MIX_OPS)))]
                use_mixing_picture = (not augment_partner) or rng.random() < 0.5
                if use_mixing_picture:
                    partner, which = pic_u8, ("mixing", None)
                else:
                    aug, aug_rec = apply_random_op(img, ops, severity, rng, return_op=True)
                    partner, which = np.asarray(aug), ("augment", aug_rec)
                chain_u8, rec = patch_mix(chain_u8, partner, size, op, beta, rng)
                rec["partner"] = which
                recs.append(rec)
        mix += ws[i] * to_float(chain_u8)
        kinds.append(kind)
        counts.append(n)
        records.append(recs)
    out = np.clip((np.float32(1) - m) * x + m * mix, 0.0, 1.0).astype(np.float32)
    if not return_info:
        return out
    info = {"m": float(m), "ws": ws, "kinds": kinds, "counts": counts, "chains": records,
            "n_ops": int(sum(counts))}
    return out, info
