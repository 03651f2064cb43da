"""Training losses: cross-entropy (hard or soft targets), the AugMix JSD consistency loss.

JSD consistency (Hendrycks et al., 2020, "AugMix", eq. 2 and their official training code),
used by AugMix, IPMix, Dynamic Mixup and NoisyMix:

    L = CE(p_clean, y) + lambda * JS(p_clean, p_aug1, p_aug2)
    M = (p_clean + p_aug1 + p_aug2) / 3
    JS = 1/3 * (KL(p_clean || M) + KL(p_aug1 || M) + KL(p_aug2 || M))

with KL averaged over the batch and lambda = 12 by default. As in the official code, M is
clamped to [1e-7, 1] before its log. With one augmented view (Dynamic Mixup's "JSD with
a single sample" ablation, papers/002 Table 5) the same formula runs over the two
distributions: M = (p_clean + p_aug) / 2, JS = 1/2 (KL(p_clean || M) + KL(p_aug || M)).

Mixed targets (Mixup, CutMix, NoisyMix's feature mixup) are soft (N, C) target vectors
lam * onehot(y) + (1 - lam) * onehot(y[perm]); soft-target CE is -sum_c t_c log p_c, which
equals lam * CE(y) + (1 - lam) * CE(y[perm]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_JSD_LAMBDA = 12.0


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean CE for integer (N,) or soft (N, C) targets; optional label smoothing
    (targets become (1 - s) t + s / C)."""
    logits = logits.float()
    if targets.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        return F.cross_entropy(logits, targets.long(), label_smoothing=label_smoothing)
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / logits.shape[1]
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def js_divergence(*logits: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Jensen-Shannon divergence of the softmax distributions of k logit batches:
    mean over the batch of (1/k) sum_i KL(p_i || M), M = mean_i p_i (clamped to [eps, 1])."""
    probs = [F.softmax(x.float(), dim=1) for x in logits]
    mixture = torch.clamp(torch.stack(probs).mean(0), eps, 1.0).log()
    total = 0.0
    for p in probs:
        # KL(p || M) = sum_c p_c (log p_c - log M_c); xlogy gives 0 for p_c = 0.
        total = total + (torch.xlogy(p, p) - p * mixture).sum(dim=1).mean()
    return total / len(probs)


def jsd_loss(logits: torch.Tensor, targets: torch.Tensor, jsd_lambda: float = DEFAULT_JSD_LAMBDA,
             label_smoothing: float = 0.0, views: int = 2) -> tuple[torch.Tensor, dict]:
    """``logits``: the model's output on cat(clean, aug1, ..., aug_views) ((1 + views) N
    rows; views = 2: AugMix's triple, 1: single-sample JSD); ``targets``: the N clean
    targets (integer or soft). CE on the clean split + lambda * JS of all splits. Returns
    (loss, parts) with parts = {"ce": ..., "js": ...} detached."""
    if isinstance(views, bool) or not isinstance(views, int) or views < 1:
        raise ValueError(f"views must be a positive int (augmented views per image), got {views!r}")
    if logits.shape[0] % (1 + views):
        raise ValueError(f"JSD needs {1 + views} equal splits (clean and {views} augmented); "
                         f"got {logits.shape[0]} rows")
    splits = torch.chunk(logits, 1 + views)
    ce = cross_entropy(splits[0], targets, label_smoothing)
    js = js_divergence(*splits)
    return ce + jsd_lambda * js, {"ce": ce.detach(), "js": js.detach()}


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels.long(), num_classes).float()


def mix_targets(labels: torch.Tensor, num_classes: int, lam, perm: torch.Tensor) -> torch.Tensor:
    """lam * onehot(y) + (1 - lam) * onehot(y[perm]) as float32 (N, C); ``lam`` a float or 0-d tensor."""
    t = one_hot(labels, num_classes)
    return lam * t + (1 - lam) * t[perm]
