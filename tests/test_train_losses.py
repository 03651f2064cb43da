"""Losses against hand-computed values: cross-entropy, JSD consistency, NoisyMix."""

import math

import numpy as np
import pytest
import torch

from gpuaug.train.losses import cross_entropy, js_divergence, jsd_loss, mix_targets
from gpuaug.train.noisymix import MixDraw, NoisyFeatureMixup
from gpuaug.train.models import build_model


def _softmax(v):
    e = np.exp(np.asarray(v, float) - np.max(v))
    return e / e.sum()


def test_js_divergence_matches_hand_computation():
    a, b, c = [2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 3.0]
    p = [_softmax(v) for v in (a, b, c)]
    m = sum(p) / 3
    expected = sum(float(np.sum(q * (np.log(q) - np.log(m)))) for q in p) / 3
    got = js_divergence(*(torch.tensor([v]) for v in (a, b, c)))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_js_divergence_is_zero_for_identical_predictions_and_bounded():
    x = torch.randn(5, 7)
    assert js_divergence(x, x, x).item() == pytest.approx(0.0, abs=1e-7)
    far = torch.tensor([[50.0, 0, 0], [0, 50.0, 0], [0, 0, 50.0]])
    # three disjoint one-hot predictions: JS = log 3
    assert js_divergence(far[:1], far[1:2], far[2:]).item() == pytest.approx(math.log(3), rel=1e-4)


def test_jsd_loss_is_clean_ce_plus_lambda_js():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)  # 3 splits of 2
    y = torch.tensor([1, 3])
    loss, parts = jsd_loss(logits, y, jsd_lambda=12)
    clean = logits[:2].numpy()
    ce = -np.mean([np.log(_softmax(clean[i])[y[i]]) for i in range(2)])
    ps = [np.stack([_softmax(r) for r in logits[s * 2:(s + 1) * 2].numpy()]) for s in range(3)]
    m = sum(ps) / 3
    js = sum(np.mean(np.sum(q * (np.log(q) - np.log(m)), axis=1)) for q in ps) / 3
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert parts["js"].item() == pytest.approx(js, rel=1e-5)
    assert loss.item() == pytest.approx(ce + 12 * js, rel=1e-5)


def test_soft_target_ce_equals_mixed_hard_ce():
    torch.manual_seed(1)
    logits = torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 3])
    perm = torch.tensor([2, 0, 3, 1])
    t = mix_targets(y, 5, 0.3, perm)
    ce = torch.nn.functional.cross_entropy
    expected = 0.3 * ce(logits, y) + 0.7 * ce(logits, y[perm])
    assert cross_entropy(logits, t).item() == pytest.approx(expected.item(), rel=1e-6)
    smooth = cross_entropy(logits, torch.nn.functional.one_hot(y, 5).float(), label_smoothing=0.1)
    assert smooth.item() == pytest.approx(ce(logits, y, label_smoothing=0.1).item(), rel=1e-6)


def test_noisymix_mixing_without_noise_is_lambda_interpolation_per_split():
    model = build_model("tiny", 3)
    nfm = NoisyFeatureMixup(model, add_noise_level=0, mult_noise_level=0)
    h = torch.arange(6 * 2, dtype=torch.float32).reshape(6, 2)  # 3 splits of N = 2
    draw = MixDraw(layer=1, lam=0.25, perm=np.array([1, 0]), splits=3, b_mult=0.5, b_add=0.5)
    out = nfm.apply(h, draw)
    expected = torch.stack([0.25 * h[i] + 0.75 * h[[1, 0, 3, 2, 5, 4][i]] for i in range(6)])
    assert torch.allclose(out, expected)
    t = nfm.targets(torch.tensor([0, 2]), 3, draw)
    assert torch.allclose(t, torch.tensor([[0.25, 0, 0.75], [0.75, 0, 0.25]]))


def test_noisymix_noise_formula():
    model = build_model("tiny", 3)
    nfm = NoisyFeatureMixup(model, add_noise_level=0.0, mult_noise_level=0.3)
    h = torch.ones(3, 20000)
    draw = MixDraw(layer=0, lam=1.0, perm=np.arange(3), splits=1, b_mult=0.5, b_add=0.5)
    out = nfm.apply(h, draw, torch.Generator().manual_seed(0))
    # multiplicative only: 1 + 0.3 * 0.5 * U(-1, 1) lies in [0.85, 1.15] and has mean 1
    assert out.min() >= 0.85 - 1e-6 and out.max() <= 1.15 + 1e-6
    assert out.mean().item() == pytest.approx(1.0, abs=5e-3)
    nfm = NoisyFeatureMixup(model, add_noise_level=0.4, mult_noise_level=0.0, sparse_level=0.65)
    out = nfm.apply(torch.zeros(3, 20000), draw, torch.Generator().manual_seed(0))
    nonzero = (out != 0).float().mean().item()
    assert nonzero == pytest.approx(0.35, abs=0.02)          # sparsity: 65% of entries get no noise
    kept = out[out != 0]
    assert kept.std().item() == pytest.approx(0.4 * 0.5, rel=0.05)  # a * b_add * N(0, 1)


def test_noisymix_hooks_fire_only_when_armed_and_at_the_drawn_layer():
    torch.manual_seed(0)
    model = build_model("tiny", 3).eval()
    x = torch.randn(6, 3, 16, 16)
    plain = model(x)
    nfm = NoisyFeatureMixup(model, add_noise_level=0, mult_noise_level=0)
    assert torch.equal(model(x), plain)  # unarmed: no change
    ident = MixDraw(layer=2, lam=1.0, perm=np.arange(2), splits=3, b_mult=0, b_add=0)
    with nfm.armed(ident):
        assert torch.allclose(model(x), plain, atol=1e-6)  # lam = 1: identity
    swap = MixDraw(layer=0, lam=0.0, perm=np.array([1, 0]), splits=3, b_mult=0, b_add=0)
    with nfm.armed(swap):
        out = model(x)
    assert torch.allclose(out, plain[[1, 0, 3, 2, 5, 4]], atol=1e-5)  # lam = 0 at the input: partner's output
    # a draw for layer k mixes there: mixing after layer3 with lam = 0 also swaps outputs
    with nfm.armed(MixDraw(layer=3, lam=0.0, perm=np.array([1, 0]), splits=3, b_mult=0, b_add=0)):
        assert torch.allclose(model(x), plain[[1, 0, 3, 2, 5, 4]], atol=1e-5)


def test_noisymix_draws_layers_from_all_four_choices():
    nfm = NoisyFeatureMixup(build_model("tiny", 3))
    rng = np.random.default_rng(0)
    layers = {nfm.draw(4, 3, rng).layer for _ in range(100)}
    assert layers == {0, 1, 2, 3}
    no_manifold = NoisyFeatureMixup(build_model("tiny", 3), manifold_mixup=False)
    assert {no_manifold.draw(4, 3, rng).layer for _ in range(20)} == {0}
