"""Learning-rate schedules, as a pure function of the global step (so a resumed run
continues exactly where it stopped: the checkpoint only needs the step).

* ``cosine``: linear warm-up from ~0 over ``warmup_epochs``, then
  lr_min + (lr - lr_min) * (1 + cos(pi * t)) / 2, t going 0 -> 1 over the remaining steps,
  updated every step (AugMix / PixMix / IPMix CIFAR code anneal per step).
* ``step``: lr * gamma ** (number of milestones passed), milestones in epochs, after the
  same optional warm-up (Goyal et al., 2017 warm-up for large ImageNet batches).
* ``constant``: lr (after the warm-up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SCHEDULES = ("cosine", "step", "constant")
FLOAT32_MAX = 3.4028234663852886e38  # a larger lr does not convert to the parameters' float


@dataclass
class Schedule:
    kind: str
    base_lr: float
    epochs: int
    steps_per_epoch: int
    warmup_epochs: float = 0.0
    milestones: list = field(default_factory=list)
    gamma: float = 0.1
    min_lr: float = 0.0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.kind!r}")
        if self.steps_per_epoch < 1:
            raise ValueError("the training loader has no batches (fewer images than one batch per rank?)")
        peak = self.peak_lr()
        if not peak <= FLOAT32_MAX:
            raise ValueError(f"the learning rate would reach {peak:g} (--lr {self.base_lr:g}, --gamma "
                             f"{self.gamma:g} after {len(self.milestones)} milestone(s)), beyond float32's range")

    def peak_lr(self) -> float:
        """The largest learning rate of the schedule (inf if it overflows a float)."""
        peak = max(self.base_lr, self.min_lr)
        if self.kind == "step" and self.gamma > 1 and self.milestones:
            log = math.log(self.base_lr) + len(self.milestones) * math.log(self.gamma)
            peak = math.exp(log) if log < 709 else math.inf  # exp overflows a float beyond ~709.78
        return peak

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def lr(self, step: int) -> float:
        """Learning rate for global step ``step`` (0-based)."""
        warm = int(round(self.warmup_epochs * self.steps_per_epoch))
        if step < warm:
            return self.base_lr * (step + 1) / warm
        if self.kind == "cosine":
            span = max(1, self.total_steps - warm)
            t = min(1.0, (step - warm) / span)
            return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))
        if self.kind == "step":
            epoch = step / self.steps_per_epoch
            passed = sum(1 for m in self.milestones if epoch >= m)
            return self.base_lr * self.gamma ** passed
        return self.base_lr

    def apply(self, optimizer, step: int) -> float:
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
