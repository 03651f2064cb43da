"""NoisyMix's feature noise against a reference written from the paper and the authors'
code (erichson/NoisyMix ``src/noisy_mixup.py``), compared as distributions over many
draws with two-sample Kolmogorov-Smirnov tests, per split (clean, aug1, aug2):

* the per-step standard deviation of the additive and of the multiplicative noise,
* the per-step fraction of elements the noise leaves untouched,
* the per-step ratio of the aug1 / aug2 spread to the clean one (a Beta(2, 5) scale drawn
  afresh per split makes it vary; one scale shared by the splits would pin it).

The noise function gpuaug shipped before (one additive level for all splits, no sparsity
on the multiplicative noise, two Beta draws shared by the splits) is kept below as a
rejected mutant: the same comparison must reject it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from gpuaug.train.noisymix import MixDraw, NoisyFeatureMixup

N, FEATURES = 4, (8, 4, 4)  # rows per split, feature shape
DRAWS = 400
ADD, MULT, SPARSE = 0.5, 0.5, 0.65
ACCEPT_P = 1e-3   # the new code must not be rejected at this level (any statistic)
REJECT_P = 1e-6   # the mutant must be rejected at this level (some statistic)


def reference_noise(h: np.ndarray, splits: int, add: float, mult: float, sparse: float,
                    rng: np.random.Generator) -> np.ndarray:
    """The paper's noise injection as the authors run it with lam = 1 (no mixing): per
    split s a fresh Beta(2, 5) scale for each noise; the additive level times s + 1 with
    JSD; a ``sparse`` fraction of elements without additive noise and, independently, a
    ``sparse`` fraction with multiplier exactly 1."""
    out = np.empty_like(h)
    for s, x in enumerate(np.split(h, splits)):
        level = add * (s + 1) if splits > 1 else add
        additive = np.zeros_like(x)
        if add > 0:
            additive = level * rng.beta(2, 5) * rng.standard_normal(x.shape)
            additive[rng.random(x.shape) < sparse] = 0.0
        multiplier = np.ones_like(x)
        if mult > 0:
            multiplier = 1 + mult * rng.beta(2, 5) * rng.uniform(-1, 1, x.shape)
            multiplier[rng.random(x.shape) < sparse] = 1.0
        out[s * len(x):(s + 1) * len(x)] = multiplier * x + additive
    return out


def gpuaug_noise(h: np.ndarray, splits: int, add: float, mult: float, sparse: float,
                 rng: np.random.Generator, generator: torch.Generator) -> np.ndarray:
    """gpuaug's NoisyFeatureMixup with lam = 1 (mixing is the identity)."""
    nfm = NoisyFeatureMixup(torch.nn.Identity(), manifold_mixup=False, add_noise_level=add,
                            mult_noise_level=mult, sparse_level=sparse)
    draw = nfm.draw(N, splits, rng)
    draw.lam = 1.0
    return nfm.apply(torch.from_numpy(h).float(), draw, generator).double().numpy()


def rejected_noise(h: np.ndarray, splits: int, add: float, mult: float, sparse: float,
                   rng: np.random.Generator, generator: torch.Generator) -> np.ndarray:
    """The noise gpuaug shipped before this fix (kept as a mutant the test must reject)."""
    b_mult, b_add = (float(v) for v in rng.beta(2.0, 5.0, size=2))
    x = torch.from_numpy(h).float()
    out = x
    if mult > 0:
        u = torch.rand(x.shape, generator=generator) * 2 - 1
        out = out * (1 + mult * b_mult * u)
    if add > 0:
        z = torch.randn(x.shape, generator=generator)
        keep = (torch.rand(x.shape, generator=generator) >= sparse).float()
        out = out + add * b_add * z * keep
    return out.double().numpy()


def statistics(noise_fn, splits: int, add: float, mult: float, seed: int) -> dict:
    """{name: (DRAWS,) per-step values} of the noise on an all-ones feature batch."""
    rng = np.random.default_rng(seed)
    kwargs = {} if noise_fn is reference_noise else {"generator": torch.Generator().manual_seed(seed)}
    h = np.ones((splits * N, *FEATURES))
    stats: dict[str, list] = {}
    for _ in range(DRAWS):
        out = noise_fn(h, splits, add, mult, SPARSE, rng, **kwargs)
        delta = (out - h).reshape(splits, -1)
        std = delta.std(axis=1)
        for s in range(splits):
            stats.setdefault(f"std[{s}]", []).append(std[s])
            stats.setdefault(f"untouched[{s}]", []).append(float(np.mean(delta[s] == 0)))
            if s:
                stats.setdefault(f"std[{s}]/std[0]", []).append(std[s] / std[0])
    return {k: np.asarray(v) for k, v in stats.items()}


def compare(noise_fn, splits: int, add: float, mult: float) -> dict:
    """{statistic: KS p-value} of ``noise_fn`` against the reference."""
    ours = statistics(noise_fn, splits, add, mult, seed=1)
    ref = statistics(reference_noise, splits, add, mult, seed=2)
    return {k: ks_2samp(ours[k], ref[k]).pvalue for k in ref}


CASES = [
    pytest.param(3, ADD, 0.0, id="additive-jsd"),
    pytest.param(3, 0.0, MULT, id="multiplicative-jsd"),
    pytest.param(1, ADD, 0.0, id="additive-no-jsd"),
    pytest.param(1, 0.0, MULT, id="multiplicative-no-jsd"),
]


@pytest.mark.parametrize("splits,add,mult", CASES)
def test_noise_matches_the_reference_distribution(splits, add, mult):
    pvalues = compare(gpuaug_noise, splits, add, mult)
    rejected = {k: p for k, p in pvalues.items() if p < ACCEPT_P}
    assert not rejected, f"gpuaug's noise differs from the reference: {rejected}"


@pytest.mark.parametrize("splits,add,mult", [CASES[0], CASES[1]])
def test_the_previous_noise_is_rejected(splits, add, mult):
    pvalues = compare(rejected_noise, splits, add, mult)
    assert min(pvalues.values()) < REJECT_P, f"the comparison cannot tell the old noise apart: {pvalues}"


def test_noise_levels_and_sparsity_in_numbers():
    """The facts the issue measured, as plain numbers: aug1/aug2 additive spread about 2x/3x
    the clean one, 65% of the multipliers exactly 1, 6 Beta draws per JSD step."""
    add = statistics(gpuaug_noise, 3, ADD, 0.0, seed=3)
    clean = add["std[0]"].mean()
    assert add["std[1]"].mean() / clean == pytest.approx(2, rel=0.15)
    assert add["std[2]"].mean() / clean == pytest.approx(3, rel=0.15)
    mult = statistics(gpuaug_noise, 3, 0.0, MULT, seed=4)
    for s in range(3):
        assert mult[f"untouched[{s}]"].mean() == pytest.approx(SPARSE, abs=0.01)
    draw = NoisyFeatureMixup(torch.nn.Identity(), manifold_mixup=False).draw(N, 3, np.random.default_rng(0))
    assert draw.b_add.shape == draw.b_mult.shape == (3,)
    assert len(set(draw.b_add) | set(draw.b_mult)) == 6


def test_defaults_are_the_official_readme_levels():
    import gpuaug

    cfg = gpuaug.NoisyMix()
    assert (cfg.add_noise_level, cfg.mult_noise_level, cfg.sparse_level) == (0.5, 0.5, 0.65)
    nfm = NoisyFeatureMixup(torch.nn.Identity(), manifold_mixup=False)
    assert (nfm.add_noise_level, nfm.mult_noise_level, nfm.sparse_level) == (0.5, 0.5, 0.65)


def test_scalar_scales_still_apply_to_every_split():
    nfm = NoisyFeatureMixup(torch.nn.Identity(), manifold_mixup=False, add_noise_level=0.0,
                            mult_noise_level=0.0)
    draw = MixDraw(layer=0, lam=1.0, perm=np.arange(2), splits=3, b_mult=0.5, b_add=0.5)
    h = torch.randn(6, 3)
    assert torch.equal(nfm.apply(h, draw), h)
