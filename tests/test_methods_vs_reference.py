"""The batched methods (cpu executor) against the papers' algorithms (gpuaug.reference).

For one input image and one mixing picture we draw >= 1,000 outputs from each side and
compare the distributions of per-image statistics with two-sample tests: Kolmogorov-Smirnov
for the continuous ones (mean, std, mean and 99th percentile of |out - in|, fraction
of unchanged values, and for skip-connected methods mean |out - in| / m, which removes the
skip weight's spread and exposes the chains) and a
chi-square test for the number of ops applied. Seeds are fixed, so the verdicts are
deterministic. The second half checks the tests' power: deliberately wrong variants (a wrong
coefficient distribution, a missing clip, a wrong round count, ...) must be rejected.
"""

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from scipy import stats

import gpuaug
from gpuaug import reference
from gpuaug.data import samples
from gpuaug.executors import cpu
from gpuaug.executors.backend import Backend, get_backend
from gpuaug.methods.chains import IDENTITY

N = 1200
SIZE = 32
P_MIN = 1e-4  # per statistic; ~25 comparisons -> a false alarm with probability ~2.5e-3


@pytest.fixture(scope="module")
def image():
    return samples.scene(SIZE, seed=1)


@pytest.fixture(scope="module")
def picture():
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    rings = (np.sin(np.hypot(x - 11, y - 19) / 2.0) * 120 + 128)
    pic = np.stack([rings, rings[::-1], rings.T], -1) + rng.normal(0, 10, (SIZE, SIZE, 3))
    return np.clip(pic, 0, 255).astype(np.uint8)


def image_stats(out: np.ndarray, image: np.ndarray) -> dict:
    """Per-image statistics of (n, H, W, 3) float outputs against the uint8 input."""
    flat = out.reshape(len(out), -1).astype(np.float64)
    base = (image.astype(np.float64) / 255).reshape(1, -1)
    diff = np.abs(flat - base)
    return {"mean": flat.mean(1), "std": flat.std(1), "mad": diff.mean(1),
            "p99_diff": np.quantile(diff, 0.99, axis=1), "unchanged": (diff < 0.5 / 255).mean(1)}


def batched(method, image, picture, n_ops_of, backend=None, seed=0):
    backend = backend or get_backend("cpu")
    rng = np.random.default_rng(seed)
    images = np.repeat(image[None], N, axis=0)
    pictures = np.repeat(picture[None], N, axis=0) if method.needs_mixing else None
    plan = method.plan(N, SIZE, SIZE, rng)
    out = method.execute(plan, images, pictures, backend)
    result = image_stats(np.asarray(out), image)
    result["n_ops"] = n_ops_of(plan)
    if hasattr(plan, "skip"):
        result["mix_mad"] = result["mad"] / np.maximum(plan.skip, 1e-3)
    return result


def referenced(fn, image, picture, seed=1, **kw):
    rng = np.random.default_rng(seed)
    args = (Image.fromarray(image),) if picture is None else (Image.fromarray(image), Image.fromarray(picture))
    outs, n_ops, skips = [], [], []
    for _ in range(N):
        out, info = fn(*args, rng=rng, return_info=True, **kw)
        outs.append(out)
        n_ops.append(info["n_ops"])
        skips.append(info.get("m", np.nan))
    result = image_stats(np.stack(outs), image)
    result["n_ops"] = np.asarray(n_ops)
    if not np.isnan(skips).any():
        result["mix_mad"] = result["mad"] / np.maximum(skips, 1e-3)
    return result


def p_values(a: dict, b: dict) -> dict:
    """p-value per statistic; non-finite statistics (NaN/inf outputs) count as p = 0."""
    ps = {}
    for k in ("mean", "std", "mad", "p99_diff", "unchanged", "mix_mad"):
        if k not in a and k not in b:
            continue
        finite = np.isfinite(a[k]).all() and np.isfinite(b[k]).all()
        ps[k] = stats.ks_2samp(a[k], b[k]).pvalue if finite else 0.0
    values = np.union1d(a["n_ops"], b["n_ops"])
    table = np.array([[np.sum(a["n_ops"] == v) for v in values], [np.sum(b["n_ops"] == v) for v in values]])
    ps["n_ops"] = 1.0 if len(values) == 1 else stats.chi2_contingency(table).pvalue
    return ps


# -- how many image-level ops each plan applies (for the n_ops statistic) ---------------

def chain_ops(plan):
    return (plan.ops != IDENTITY).sum(axis=tuple(range(1, plan.ops.ndim)))


def pixmix_ops(plan):
    return (plan.start_op != IDENTITY).astype(int) + (plan.partner_op != IDENTITY).sum(1)


def ipmix_ops(plan):
    return plan.n_ops()


CASES = {
    "augmix": (gpuaug.AugMix(), chain_ops, reference.augmix, {}),
    "augmix-all-ops-depth2": (gpuaug.AugMix(depth=2, all_ops=True, severity=6), chain_ops,
                              reference.augmix, {"depth": 2, "all_ops": True, "severity": 6}),
    "pixmix": (gpuaug.PixMix(all_ops=False), pixmix_ops, reference.pixmix, {}),
    "pixmix-all-ops": (gpuaug.PixMix(all_ops=True, beta=4), pixmix_ops, reference.pixmix,
                       {"all_ops": True, "beta": 4}),
    "dynamic-mixup": (gpuaug.DynamicMixup(), chain_ops, reference.dynamic_mixup, {}),
    "dynamic-mixup-independent-m2": (gpuaug.DynamicMixup(independent_m2=True), chain_ops,
                                     reference.dynamic_mixup, {"independent_m2": True}),
}
if hasattr(gpuaug, "IPMix"):
    CASES["ipmix"] = (gpuaug.IPMix(), ipmix_ops, reference.ipmix, {})
    CASES["ipmix-cifar"] = (gpuaug.IPMix(beta=3, severity=3, patch_sizes=(4, 8, 16, 32), augment_partner=False),
                            ipmix_ops, reference.ipmix,
                            {"beta": 3, "severity": 3, "patch_sizes": (4, 8, 16, 32), "augment_partner": False})


@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_method_matches_reference_distribution(case, image, picture):
    method, n_ops_of, fn, kw = CASES[case]
    ours = batched(method, image, picture, n_ops_of)
    theirs = referenced(fn, image, picture if method.needs_mixing else None, **kw)
    ps = p_values(ours, theirs)
    assert min(ps.values()) > P_MIN, f"{case}: distributions differ: {ps}"


class _NoClip:
    """numpy with clip disabled: a method run on it has lost its clipping."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def clip(x, low, high):
        return x


MUTANTS = {
    "augmix-wrong-dirichlet": ("augmix", lambda m: replace(m, alpha=0.2)),
    "augmix-fixed-depth": ("augmix", lambda m: replace(m, depth=1)),
    "pixmix-wrong-beta": ("pixmix", lambda m: replace(m, beta=1)),
    "pixmix-wrong-rounds": ("pixmix", lambda m: replace(m, k=2)),
    "pixmix-no-clip": ("pixmix", "no-clip"),
    "dynamic-mixup-wrong-alpha": ("dynamic-mixup", lambda m: replace(m, alpha=0.2)),
    "dynamic-mixup-m2-independent-when-complementary": ("dynamic-mixup",
                                                         lambda m: replace(m, independent_m2=True)),
    "dynamic-mixup-m2-complementary-when-independent": ("dynamic-mixup-independent-m2",
                                                         lambda m: replace(m, independent_m2=False)),
}
if hasattr(gpuaug, "IPMix"):
    MUTANTS["ipmix-wrong-t"] = ("ipmix", lambda m: replace(m, t=1))
    MUTANTS["ipmix-wrong-beta"] = ("ipmix", lambda m: replace(m, beta=0.3))
    MUTANTS["ipmix-no-augmented-partners"] = ("ipmix", lambda m: replace(m, augment_partner=False))


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_comparison_rejects_a_wrong_implementation(mutant, image, picture):
    case, mutate = MUTANTS[mutant]
    method, n_ops_of, fn, kw = CASES[case]
    if mutate == "no-clip":
        ours = batched(method, image, picture, n_ops_of, backend=Backend("cpu", _NoClip(), cpu.apply_ops))
    else:
        ours = batched(mutate(method), image, picture, n_ops_of)
    theirs = referenced(fn, image, picture if method.needs_mixing else None, **kw)
    ps = p_values(ours, theirs)
    assert min(ps.values()) < P_MIN, f"{mutant} was not detected: {ps}"
