"""NoisyMix, model side: noisy feature mixup at a random layer (Erichson et al., 2022),
attached to an unmodified network with forward hooks.

For one training step on the batch cat(clean, aug1, aug2) (3 splits of N) we draw

* the mixing layer k uniformly from {input, after layer1, after layer2, after layer3}
  (only the input when ``manifold_mixup`` is off),
* lam ~ Beta(alpha, alpha) and one permutation pi of 0..N-1, shared by the three splits
  (row i of split s is mixed with row pi(i) of the same split s),
* per split s, two noise scales b_add[s], b_mult[s] ~ Beta(2, 5), drawn afresh for each
  split (6 draws a step with JSD, 2 without), as the authors' ``do_noisy_mixup`` calls its
  noise function once per split.

At layer k the features h of split s (s = 0, 1, 2: clean, aug1, aug2) become

    h_mix = lam * h + (1 - lam) * h[pi]
    h'    = h_mix * (1 + J * m * b_mult[s] * U(-1, 1)) + I * (s + 1) * a * b_add[s] * N(0, 1)

elementwise, with m = ``mult_noise_level``, a = ``add_noise_level`` scaled by the split's
index (clean x1, aug1 x2, aug2 x3; x1 without JSD), and I, J ~ Bernoulli(1 -
``sparse_level``) two independent sparsity masks: a ``sparse_level`` fraction of the
elements gets no additive noise and (as in the authors' code) a multiplier of exactly 1.
The clean targets become lam * onehot(y) + (1 - lam) * onehot(y[pi]), and the step's loss
is the JSD loss (:func:`gpuaug.train.losses.jsd_loss`) with those soft targets (or plain
soft-target CE when training without JSD, then with one split).

The stages are found by name (``layer1``..``layer3``: torchvision ResNets and the local
CIFAR networks); the input mixing is a forward pre-hook on the model itself.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._arrays import torch_to_device

LAYERS = ("input", "layer1", "layer2", "layer3")
NOISE_BETA = (2.0, 5.0)


@dataclass
class MixDraw:
    """Every random choice of one NoisyMix step except the elementwise noise."""

    layer: int          # index into LAYERS
    lam: float          # image/feature weight
    perm: np.ndarray    # (N,) partner within each split
    splits: int         # 3 with JSD, else 1
    b_mult: np.ndarray  # (splits,) multiplicative noise scale per split (a float: the same for all)
    b_add: np.ndarray   # (splits,) additive noise scale per split (a float: the same for all)

    def per_split(self, values) -> np.ndarray:
        """``values`` (a scale per split, or one for all) as a (splits,) float array."""
        return np.broadcast_to(np.asarray(values, np.float64), (self.splits,))

    def full_perm(self) -> np.ndarray:
        n = len(self.perm)
        return np.concatenate([self.perm + s * n for s in range(self.splits)])


class NoisyFeatureMixup:
    """Hooks that apply noisy feature mixup to ``model`` during an armed forward pass.

    ``with nfm.armed(draw, generator): logits = model(x)`` mixes at ``draw.layer``; outside
    the context the hooks do nothing (evaluation is unaffected)."""

    def __init__(self, model: nn.Module, alpha: float = 1.0, manifold_mixup: bool = True,
                 add_noise_level: float = 0.5, mult_noise_level: float = 0.5, sparse_level: float = 0.65):
        self.alpha, self.manifold_mixup = float(alpha), bool(manifold_mixup)
        self.add_noise_level, self.mult_noise_level = float(add_noise_level), float(mult_noise_level)
        self.sparse_level = float(sparse_level)
        self._active: tuple[MixDraw, torch.Generator | None] | None = None
        self._handles = [model.register_forward_pre_hook(self._pre_hook)]
        missing = [name for name in LAYERS[1:] if not hasattr(model, name)]
        if missing and self.manifold_mixup:
            raise ValueError(f"NoisyMix manifold mixup needs stages named {LAYERS[1:]}; "
                             f"{type(model).__name__} lacks {missing}")
        for i, name in enumerate(LAYERS[1:], start=1):
            if hasattr(model, name):
                self._handles.append(getattr(model, name).register_forward_hook(self._make_hook(i)))

    @classmethod
    def from_config(cls, model: nn.Module, config) -> "NoisyFeatureMixup":
        """From a :class:`gpuaug.methods.NoisyMix` config (its model-side fields)."""
        return cls(model, config.mix_alpha, config.manifold_mixup, config.add_noise_level,
                   config.mult_noise_level, config.sparse_level)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    # ------------------------------------------------------------------ drawing
    def draw(self, n: int, splits: int, rng: np.random.Generator) -> MixDraw:
        layer = int(rng.integers(len(LAYERS))) if self.manifold_mixup else 0
        lam = float(rng.beta(self.alpha, self.alpha))
        perm = rng.permutation(n)
        scales = rng.beta(*NOISE_BETA, size=(splits, 2))  # per split: (add, mult), as drawn upstream
        return MixDraw(layer, lam, perm, splits, b_mult=scales[:, 1].copy(), b_add=scales[:, 0].copy())

    def targets(self, labels: torch.Tensor, num_classes: int, draw: MixDraw) -> torch.Tensor:
        """Soft targets of the N clean rows: lam onehot(y) + (1 - lam) onehot(y[pi])."""
        onehot = torch.nn.functional.one_hot(labels.long(), num_classes).float()
        perm = torch_to_device(draw.perm, labels.device)  # no host sync on CUDA
        return draw.lam * onehot + (1 - draw.lam) * onehot[perm]

    # ------------------------------------------------------------------ applying
    def apply(self, h: torch.Tensor, draw: MixDraw, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mix and noise a feature batch of ``draw.splits * N`` rows (the formula above)."""
        rows = len(draw.perm) * draw.splits
        if h.shape[0] != rows:
            raise ValueError(f"NoisyMix draw is for {rows} rows, the features have {h.shape[0]}")
        perm = torch_to_device(draw.full_perm(), h.device)
        out = draw.lam * h + (1 - draw.lam) * h[perm]
        n = len(draw.perm)

        def per_row(scales) -> torch.Tensor:  # one scale per split -> a (rows, 1, ...) factor
            col = torch.empty((rows,) + (1,) * (h.dim() - 1), dtype=torch.float32, device=h.device)
            for s, v in enumerate(scales):  # fills from Python floats: no host-device copy
                col[s * n:(s + 1) * n] = float(v)
            return col

        def sparse_mask() -> torch.Tensor:  # 1 where an element gets noise
            return (torch.rand(h.shape, generator=generator, device=h.device) >= self.sparse_level).float()

        if self.mult_noise_level > 0:
            u = torch.rand(h.shape, generator=generator, device=h.device, dtype=torch.float32) * 2 - 1
            scale = per_row(self.mult_noise_level * draw.per_split(draw.b_mult))
            out = out * (1 + scale * u * sparse_mask()).to(h.dtype)
        if self.add_noise_level > 0:
            z = torch.randn(h.shape, generator=generator, device=h.device, dtype=torch.float32)
            index = np.arange(1, draw.splits + 1) if draw.splits > 1 else np.ones(1)
            scale = per_row(self.add_noise_level * index * draw.per_split(draw.b_add))
            out = out + (scale * z * sparse_mask()).to(h.dtype)
        return out

    @contextlib.contextmanager
    def armed(self, draw: MixDraw, generator: torch.Generator | None = None):
        self._active = (draw, generator)
        try:
            yield
        finally:
            self._active = None

    def _pre_hook(self, module, args):
        if self._active is None or self._active[0].layer != 0:
            return None
        return (self.apply(args[0], *self._active),) + tuple(args[1:])

    def _make_hook(self, index: int):
        def hook(module, args, output):
            if self._active is None or self._active[0].layer != index:
                return None
            return self.apply(output, *self._active)
        return hook
