"""Dynamic Mixup on one image (anonymous submission, paper 002), the reference.

Algorithm (Sec. 3 "Algorithm Pseudocode for Dynamic Mixup", "Augmentation", "Mixing";
Appendix B for the op list):

1. for each of the k = 2 chains, in order:
     t1 ~ U(ops), t2 ~ U(ops)  (independent, with replacement; pseudocode line 5)
     p = 1/2 (``rng.random() < 0.5``): chain = t1(x), else chain = t2(t1(x))
       (line 7 "chain ~ {t1, t2 o t1}": "at most two randomly selected transformations")
     each op's parameter is drawn when it is applied (level, then sign; ops.py)
2. m1 ~ Beta(alpha, alpha), m2 = 1 - m1  (line 10; Sec. 3 "Mixing": weights from
   Beta(alpha, alpha), and m2 = 1 - m1 as in DESIGN.md); with ``independent_m2=True``
   (the paper's other reading: "we draw these weights randomly from a Beta(alpha, alpha)")
   m2 is a second draw, m2 ~ Beta(alpha, alpha), after m1
3. out = m1*x1 + m2*x2 + m1*m2*(x1 - x2), clipped to [0, 1]  (line 11; float32 x/255)

Note: with m2 = 1 - m1, out = m1*(1 + m2)*x1 + m2**2 * x2 and m1*(1 + m2) + m2**2 = 1, so
the result is a convex combination and the clip only guards float32 rounding. With an
independent m2 the coefficients m1*(1 + m2) and m2*(1 - m1) sum to m1 + m2 in [0, 2] and
the clip shapes the result.

JSD training (Sec. 3 "Consistency Loss") uses (clean, dynmix1, dynmix2); the "JSD with
single sample" ablation (Table 5) uses (clean, dynmix): ``views(dynamic_mixup, image,
rng=rng, jsd_views=1)``.

The paper gives no severity: default 3 (AugMix's, whose code Dynamic Mixup builds on).
Default ops: the 11 CIFAR operations; pass ``ops=OPS_DYNAMIC_MIXUP_IMAGENET`` for ImageNet
(adds downscale, whose parameterisation is ours -- the paper only shows it, Fig. 6).
"""

from __future__ import annotations

import numpy as np

from .ops import OPS_DYNAMIC_MIXUP, as_pil, check_ops, check_severity, sample_param, apply_op, to_float

__all__ = ["dynamic_mixup", "dynamic_mix"]


def dynamic_mix(x1, x2, m1, m2=None):
    """The Dynamic Mixup interpolation m1*x1 + m2*x2 + m1*m2*(x1 - x2), m2 = 1 - m1 when
    not given (no clip)."""
    m2 = 1 - m1 if m2 is None else m2
    return m1 * x1 + m2 * x2 + m1 * m2 * (x1 - x2)


def dynamic_mixup(image, rng: np.random.Generator, k: int = 2, alpha: float = 1.0, severity: float = 3,
                  ops=None, independent_m2: bool = False, return_info: bool = False):
    """Dynamic Mixup of one image -> float32 H x W x 3 in [0, 1].

    With ``return_info``, returns (out, info) with info = {"m1", "m2", "chains": per chain
    a list of (name, param) applied (1 or 2), "n_ops", "x1", "x2" (float32 chain images)}.
    """
    img = as_pil(image)
    severity = check_severity(severity)
    if k != 2:
        raise ValueError(f"Dynamic Mixup mixes exactly k=2 chains, got k={k}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    ops = check_ops(OPS_DYNAMIC_MIXUP if ops is None else ops)

    xs, records = [], []
    for _ in range(2):
        t1 = ops[int(rng.integers(len(ops)))]
        t2 = ops[int(rng.integers(len(ops)))]
        names = (t1,) if rng.random() < 0.5 else (t1, t2)
        aug, recs = img, []
        for name in names:
            p = sample_param(name, severity, rng, aug.size)
            aug = apply_op(aug, name, p)
            recs.append((name, p))
        xs.append(to_float(aug))
        records.append(recs)
    m1 = np.float32(rng.beta(alpha, alpha))
    m2 = np.float32(rng.beta(alpha, alpha)) if independent_m2 else np.float32(1) - m1
    out = np.clip(dynamic_mix(xs[0], xs[1], m1, m2), 0.0, 1.0).astype(np.float32)
    if not return_info:
        return out
    info = {"m1": float(m1), "m2": float(m2), "chains": records,
            "n_ops": sum(len(r) for r in records), "x1": xs[0], "x2": xs[1]}
    return out, info
