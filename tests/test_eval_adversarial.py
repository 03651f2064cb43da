"""PGD / FGSM on tiny models: they raise the error, stay inside the ε-ball (PGD's strict
form; the authors' form is tested in test_eval_official_definitions.py) and [0, 1],
normalise inside the attacked function, and PGD is deterministic given a seed."""

import numpy as np
import pytest
import torch

from gpuaug.train.eval_adversarial import FGSM_EPS, PGD_EPS, PGD_STEP_SIZE, PGD_STEPS, fgsm, pgd
from gpuaug.train.eval_pixels import Normalized


class Brightness(torch.nn.Module):
    """Class 1 iff the mean normalised pixel is above 0 (a margin of a few 1/255)."""

    def forward(self, x):
        s = x.mean(dim=(1, 2, 3))
        return torch.stack([-s, s], dim=1) * 100


def _data(n=16, margin=1.5 / 255):
    y = torch.arange(n) % 2
    x = torch.full((n, 3, 8, 8), 0.5) + (2 * y.float() - 1).view(-1, 1, 1, 1) * margin
    x += torch.linspace(-0.3, 0.3, 64).view(1, 1, 8, 8)  # texture; the mean stays at 0.5 +- margin
    return x.clamp(0, 1), y


def test_paper_settings():
    assert (PGD_EPS, PGD_STEPS, PGD_STEP_SIZE) == pytest.approx((2 / 255, 20, 0.5 / 255))
    assert FGSM_EPS == pytest.approx(4 / 255)


@pytest.mark.parametrize("attack", ["pgd", "fgsm"])
def test_attack_flips_a_correct_model_within_budget(attack):
    net = Normalized(Brightness(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)).eval()
    x, y = _data()
    assert (net(x).argmax(1) == y).all()  # clean error 0
    eps = 2 / 255
    if attack == "pgd":
        adv = pgd(net, x, y, eps=eps, generator=torch.Generator().manual_seed(0), form="strict")
    else:
        adv = fgsm(net, x, y, eps=eps)
    assert (net(adv).argmax(1) != y).all()  # every prediction flipped: margin 1.5/255 < eps
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1


def test_pgd_beats_clean_on_a_random_cnn_and_respects_clipping():
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(32, 4)).eval()
    net = Normalized(cnn, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).eval()
    x = torch.rand(32, 3, 12, 12)
    x[:4] = 0.0  # pixels at the bounds: the attack must not leave [0, 1]
    x[4:8] = 1.0
    y = net(x).argmax(1)  # labels = the model's clean predictions: clean error 0
    adv = pgd(net, x, y, eps=8 / 255, steps=10, step_size=2 / 255, generator=torch.Generator().manual_seed(1),
              form="strict")
    with torch.no_grad():
        err = (net(adv).argmax(1) != y).float().mean()
        loss_adv = torch.nn.functional.cross_entropy(net(adv), y)
        loss_clean = torch.nn.functional.cross_entropy(net(x), y)
    assert err > 0 and loss_adv > loss_clean
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6 and adv.min() >= 0 and adv.max() <= 1


def test_pgd_is_deterministic_given_a_seed_and_random_start_matters():
    torch.manual_seed(0)
    net = Normalized(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3)), (0.5,) * 3, (0.5,) * 3)
    x, y = torch.rand(8, 3, 4, 4), torch.arange(8) % 3
    a = pgd(net, x, y, steps=3, generator=torch.Generator().manual_seed(5))
    b = pgd(net, x, y, steps=3, generator=torch.Generator().manual_seed(5))
    c = pgd(net, x, y, steps=3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # no random start, one step of size eps: FGSM
    assert torch.allclose(pgd(net, x, y, eps=0.01, steps=1, step_size=0.01, random_start=False),
                          fgsm(net, x, y, eps=0.01))


def test_attack_runs_in_float32_under_an_outer_autocast():
    net = Normalized(Brightness(), (0.5,) * 3, (0.25,) * 3)
    x, y = _data(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        adv = fgsm(net, x, y, eps=2 / 255)
    assert adv.dtype == torch.float32
    assert np.allclose((adv - x).abs().max().item(), 2 / 255, atol=1e-6)
