"""Adversarial error: untargeted ℓ∞ PGD (PixMix, IPMix) and FGSM (NoisyMix).

Both attack the model as trained, in eval mode, in pixel space [0, 1] with the input
normalisation inside the attacked function (:class:`~.eval_pixels.Normalized`), batched on
the evaluation device, in float32 (AMP off: half-precision gradients make a weaker attack).

* PGD (Madry et al., 2018) as the PixMix and IPMix CIFAR evaluations run it (their
  cifar.py files both build the attack with ε = 2/255, 20 steps, step size 0.5/255; the
  PixMix paper states ε and the steps): a uniform random start δ0 in [-ε, ε], loss =
  summed cross-entropy, each step ``x += step * sign(grad)`` then projection onto a ball
  of radius ε and [0, 1]. Two forms, by name (``form``):

  - ``"authors"`` (default: what produced the papers' tables): the authors' code adds the
    random start in place to the tensor it later projects around, so the ball is centred
    on x + δ0, not on x; the adversarial image can be up to 2ε from the clean one (4/255
    at ε = 2/255). The random start is not clipped to [0, 1] before the first gradient,
    as there.
  - ``"strict"``: the ε-ball around the clean image (Madry et al.'s threat model); the
    random start is clipped to [0, 1] before the first gradient.
* FGSM (Goodfellow et al., 2015): ``x + ε sign(∇x CE)`` clipped to [0, 1], no random start.
  NoisyMix's paper reports FGSM robust accuracy without stating ε in the text available
  here, and its public code has no attack code; the default ε = 4/255 is an assumption
  (``--fgsm-eps`` sets it).

The metric is the top-1 error on the attacked images (all images, as the papers report).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import distributed
from .eval_pixels import Normalized, pixel_batches

PGD_EPS, PGD_STEPS, PGD_STEP_SIZE = 2 / 255, 20, 0.5 / 255
FGSM_EPS = 4 / 255
# The PGD forms, by name -> what the report says about each.
PGD_FORMS = {
    "authors": "PixMix/IPMix cifar.py as run: projection ball centred on the random start x + d0, "
               "so up to 2 eps from the clean image",
    "strict": "projection onto the eps-ball around the clean image (Madry et al.)",
}


def _input_grad(net, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
        loss = F.cross_entropy(net(x).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def pgd(net, x: torch.Tensor, y: torch.Tensor, eps: float = PGD_EPS, steps: int = PGD_STEPS,
        step_size: float = PGD_STEP_SIZE, random_start: bool = True,
        generator: torch.Generator | None = None, form: str = "authors") -> torch.Tensor:
    """ℓ∞ PGD on ``net`` (pixels in [0, 1] -> logits); returns the adversarial batch.
    ``form``: "authors" (ball around the random start) or "strict" (ball around ``x``)."""
    if form not in PGD_FORMS:
        raise ValueError(f"unknown PGD form {form!r}; one of {', '.join(PGD_FORMS)}")
    x = x.detach().float()
    centre = adv = x
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        start = x + (2 * noise - 1) * eps
        if form == "authors":
            centre = adv = start
        else:
            adv = start.clamp(0, 1)
    for _ in range(steps):
        adv = adv + step_size * _input_grad(net, adv, y).sign()
        adv = torch.minimum(torch.maximum(adv, centre - eps), centre + eps).clamp(0, 1)
    return adv.detach()


def fgsm(net, x: torch.Tensor, y: torch.Tensor, eps: float = FGSM_EPS) -> torch.Tensor:
    """One signed-gradient step of size ``eps``, clipped to [0, 1]."""
    x = x.detach().float()
    return (x + eps * _input_grad(net, x, y).sign()).clamp(0, 1).detach()


def evaluate_adversarial(model, dataset, cfg, d, norm, attacks: dict, seed: int = 0) -> dict:
    """Top-1 error under each attack in ``attacks`` ({"pgd": {eps, steps, step_size},
    "fgsm": {eps}}) on ``dataset`` (its evaluation crops), plus the clean error of the same
    images; ``norm`` = (mean, std) of the model's input normalisation."""
    net = Normalized(model, *norm).to(d.device).eval()
    frozen = [p for p in net.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    gen = torch.Generator(device=d.device).manual_seed(int(seed) * 7919 + d.rank)
    wrong = {name: 0 for name in ("clean", *attacks)}
    n = 0
    try:
        for x, y in pixel_batches(dataset, cfg, d):
            with torch.no_grad():
                wrong["clean"] += int((net(x).argmax(1) != y).sum())
            for name, spec in attacks.items():
                adv = pgd(net, x, y, generator=gen, **spec) if name == "pgd" else fgsm(net, x, y, **spec)
                with torch.no_grad():
                    wrong[name] += int((net(adv).argmax(1) != y).sum())
            n += len(y)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    parts = distributed.gather_objects((wrong, n), d)
    n = sum(p[1] for p in parts)
    total = {k: sum(p[0][k] for p in parts) for k in wrong}
    out = {"n": n, "clean_error": total["clean"] / n if n else float("nan")}
    for name, spec in attacks.items():
        out[name] = {"error": total[name] / n if n else float("nan"), **spec}
    return out


def table_rows(res: dict) -> list:
    rows = []
    if "pgd" in res:
        p = res["pgd"]
        rows.append((f"PGD error (ε={255 * p['eps']:g}/255, {p['steps']} steps, {p.get('form', 'authors')})",
                     100 * p["error"]))
    if "fgsm" in res:
        rows.append((f"FGSM error (ε={255 * res['fgsm']['eps']:g}/255)", 100 * res["fgsm"]["error"]))
    return rows
