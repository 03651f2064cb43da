"""Evaluation: clean top-1/top-5 error, RMS calibration error, corruption robustness
(ImageNet-C mCE, CIFAR-10/100-C mean error), ImageNet-R and ImageNet-A.

* RMS calibration error (Hendrycks et al.; used by AugMix, PixMix, IPMix): predictions are
  sorted by confidence and cut into adaptive bins of ``bin_size`` = 100 consecutive
  predictions (the last bin takes the remainder);
  RMS = sqrt( sum_b (|b| / n) * (mean confidence_b - accuracy_b)^2 ).
  By default (``calibration="official"``) the sum runs over every bin but the last, the
  most confident one, as ``calib_err`` of the papers' ``calibration_tools.py`` does (its
  loop is ``range(len(bins) - 1)``; the weights keep n over all predictions): that is the
  number in their tables. ``"all-bins"`` sums every bin. With fewer than two bins
  (n < 200) the official sum is empty and the value is NaN here (``null`` in the JSON
  outputs, "n/a" when printed; the official code returns 0 there, or fails for n < 100).
* ImageNet-C: error E(c, s) per corruption c and severity s = 1..5; CE_c =
  sum_s E(c, s) / sum_s E_AlexNet(c, s); mCE = mean over the 15 benchmark corruptions
  (Hendrycks & Dietterich, 2019). Layout: ``<root>/<corruption>/<severity>/<wnid>/*.JPEG``.
* CIFAR-10-C / CIFAR-100-C: plain mean error over corruptions and severities. Layout:
  ``<root>/<corruption>.npy`` (50,000 images: 10,000 per severity, severity 1 first) and
  ``<root>/labels.npy``.
* CIFAR-10-C-Bar (Mintun et al., 2021; reported by PixMix): the CIFAR-C layout with the 10
  -Bar corruptions (``<root>/<corruption>.npy`` + ``labels.npy``), errors per corruption and
  severity and their plain mean over the 10.
* ImageNet-R / ImageNet-A cover 200 of the 1,000 classes: the prediction is the argmax
  over those 200 logits (the papers' protocol). The subset is read from the data set's
  own class folders (wnids), looked up in the model's class list from training, so no
  list is hard-coded.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..normalization import mean_std
from . import distributed
from .data import Dataset, TorchLoader, image_folder

# The 15 ImageNet-C benchmark corruptions, in the benchmark's order.
CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
               "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
               "jpeg_compression")
# Held-out corruptions shipped with the data sets (reported, not part of mCE).
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
# CIFAR-10-C-Bar's corruptions (file names as in the released arrays and PixMix's code).
CBAR_CORRUPTIONS = ("blue_noise_sample", "brownish_noise", "checkerboard_cutout", "inverse_sparkles",
                    "pinch_and_twirl", "ripple", "circular_motion_blur", "lines", "sparkles",
                    "transverse_chromatic_abberation")

# AlexNet's top-1 error on ImageNet-C, averaged over the five severities, per corruption:
# the published normalisers of the mCE (Hendrycks & Dietterich, 2019, "Benchmarking Neural
# Network Robustness to Common Corruptions and Perturbations", ICLR; the same values are
# used by the AugMix and PixMix evaluation code). CE_c = mean_s E(c, s) / ALEXNET_ERR[c].
ALEXNET_ERR = dict(zip(CORRUPTIONS, (
    0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816, 0.826572, 0.819324,
    0.564592, 0.853204, 0.646056, 0.717840, 0.606500)))


# ----------------------------------------------------------------------------- metrics
# The forms of the RMS calibration error, by name -> what the report says about each.
CALIBRATION_FORMS = {
    "official": "RMS over adaptive bins of 100 sorted predictions, the last (most confident) bin left out "
                "as calib_err of AugMix/PixMix calibration_tools.py does; undefined (null) under 200 predictions",
    "all-bins": "RMS over adaptive bins of 100 sorted predictions, every bin included",
}


def rms_calibration_error(confidence, correct, bin_size: int = 100, form: str = "official") -> float:
    """RMS calibration error with adaptive bins of ``bin_size`` sorted predictions;
    ``form`` "official" leaves the last bin out (the papers' ``calib_err``), "all-bins"
    keeps it (see the module docstring)."""
    if form not in CALIBRATION_FORMS:
        raise ValueError(f"unknown calibration form {form!r}; one of {', '.join(CALIBRATION_FORMS)}")
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, np.float64)
    n = len(confidence)
    if n == 0:
        return float("nan")
    order = np.argsort(confidence, kind="stable")
    confidence, correct = confidence[order], correct[order]
    bins = max(1, n // bin_size)
    used = bins - 1 if form == "official" else bins
    if used == 0:
        return float("nan")
    total = 0.0
    for b in range(used):
        lo, hi = b * bin_size, (b + 1) * bin_size if b < bins - 1 else n
        gap = confidence[lo:hi].mean() - correct[lo:hi].mean()
        total += (hi - lo) / n * gap * gap
    return math.sqrt(total)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1)


def ce_and_mce(errors: dict, baseline: dict = ALEXNET_ERR) -> tuple[dict, float]:
    """CE per corruption (sum of errors over severities / AlexNet's) and their mean over
    the corruptions present among the 15 benchmark ones."""
    ces = {c: float(np.sum(e)) / (baseline[c] * len(e)) for c, e in errors.items() if c in baseline}
    return ces, float(np.mean(list(ces.values()))) if ces else float("nan")


# ----------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict(model, loader, d: distributed.Dist, amp_dtype=None, subset: list[int] | None = None,
            limit_batches: int | None = None) -> dict:
    """Confidences and top-1/top-5 hits over a loader (all ranks' shards gathered)."""
    model.eval()
    conf, hit1, hit5, loss_sum = [], [], [], 0.0
    index = torch.as_tensor(subset, device=d.device) if subset is not None else None
    for i, (images, labels) in enumerate(loader):
        if limit_batches is not None and i >= limit_batches:
            break
        if labels.shape[0] == 0:  # every file of the batch failed to load (counted by the loader)
            continue
        images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(d.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images)
        logits = logits.float()
        if index is not None:
            logits = logits[:, index]
        loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
        p = logits.softmax(1)
        conf.append(p.max(1).values.cpu().numpy())
        hit1.append(topk_correct(logits, labels, 1).cpu().numpy())
        hit5.append(topk_correct(logits, labels, 5).cpu().numpy())
    local = (np.concatenate(conf) if conf else np.zeros(0), np.concatenate(hit1) if hit1 else np.zeros(0, bool),
             np.concatenate(hit5) if hit5 else np.zeros(0, bool), loss_sum)
    parts = distributed.gather_objects(local, d)
    return {"confidence": np.concatenate([p[0] for p in parts]), "correct": np.concatenate([p[1] for p in parts]),
            "correct5": np.concatenate([p[2] for p in parts]), "loss_sum": sum(p[3] for p in parts)}


def summarize(pred: dict, calibration: str = "official") -> dict:
    """Top-1/top-5 error, mean loss and the RMS calibration error of form ``calibration``."""
    n = len(pred["correct"])
    if n == 0:
        return {"n": 0}
    return {"n": n, "top1_error": float(1 - pred["correct"].mean()), "top5_error": float(1 - pred["correct5"].mean()),
            "loss": pred["loss_sum"] / n,
            "rms_calibration_error": rms_calibration_error(pred["confidence"], pred["correct"], form=calibration)}


# ----------------------------------------------------------------------------- suites
def _loader(dataset: Dataset, cfg, d) -> TorchLoader:
    mean, std = mean_std(getattr(cfg, "normalization", None))  # the run's, as recorded in its model file
    return TorchLoader(dataset, cfg.batch_size, train=False, image_size=cfg.image_size, device=d.device,
                       num_workers=cfg.workers, seed=0, shard=(d.rank, d.world), drop_last=False, crop=cfg.crop,
                       mean=mean, std=std)


def _calibration(cfg) -> str:
    return getattr(cfg, "calibration", "official")


def corruption_layout(root: Path, bar: bool = False) -> str:
    root = Path(root)
    if (root / "labels.npy").exists():
        return "cifar-c"
    if bar:
        raise SystemExit(f"error: {root} is not a CIFAR-10-C-Bar folder (<corruption>.npy + labels.npy; "
                         f"corruptions {', '.join(CBAR_CORRUPTIONS)})")
    if any((root / c).is_dir() for c in CORRUPTIONS + EXTRA_CORRUPTIONS):
        return "imagenet-c"
    raise SystemExit(f"error: {root} is neither a CIFAR-C folder (<corruption>.npy + labels.npy) "
                     "nor an ImageNet-C folder (<corruption>/<severity>/<wnid>/)")


def evaluate_corruptions(model, root, classes, cfg, d, amp_dtype=None, log=print, bar: bool = False) -> dict:
    """Per-corruption, per-severity errors, plus mCE (ImageNet-C) or the mean error (CIFAR-C);
    ``bar``: the CIFAR-10-C-Bar corruptions, mean error over all of them."""
    root = Path(root)
    layout = corruption_layout(root, bar)
    errors, calib = {}, {}
    names = [c for c in (CBAR_CORRUPTIONS if bar else CORRUPTIONS + EXTRA_CORRUPTIONS)
             if (root / f"{c}.npy").exists() or (root / c).is_dir()]
    if bar and not names:
        raise SystemExit(f"error: {root} has none of the CIFAR-10-C-Bar arrays ({', '.join(CBAR_CORRUPTIONS)}.npy)")
    labels = np.load(root / "labels.npy") if layout == "cifar-c" else None
    for c in names:
        errs = []
        for s in range(1, 6):
            if layout == "cifar-c":
                arr = np.load(root / f"{c}.npy", mmap_mode="r")
                per = len(arr) // 5
                sl = slice((s - 1) * per, s * per)
                ds = Dataset("cifar-c", str(root), list(classes), np.asarray(labels[sl], np.int64),
                             arrays=np.ascontiguousarray(arr[sl]))
            else:
                folder = root / c / str(s)
                if not folder.is_dir():
                    continue
                ds = image_folder(folder, list(classes))
            res = summarize(predict(model, _loader(ds, cfg, d), d, amp_dtype, limit_batches=cfg.limit_batches),
                            _calibration(cfg))
            errs.append(res["top1_error"])
            calib.setdefault(c, []).append(res["rms_calibration_error"])
        if errs:
            errors[c] = errs
            log(f"  {c:<18} " + " ".join(f"{100 * e:5.1f}" for e in errs))
    out = {"layout": layout, "errors": errors, "rms_calibration_error": calib}
    bench = {c: e for c, e in errors.items() if c in (CBAR_CORRUPTIONS if bar else CORRUPTIONS)}
    # The headline means cover the benchmark corruptions only (the 15, or the 10 -Bar ones);
    # held-out ones a folder also holds (CIFAR-10-C ships 4) are reported per corruption.
    out["averaged_over"] = list(bench)
    out["mean_rms_calibration_error"] = (float(np.mean([np.mean(calib[c]) for c in bench])) if bench else None)
    if layout == "imagenet-c":
        ces, mce = ce_and_mce(bench)
        out.update(ce=ces, mce=mce, mean_error=float(np.mean([np.mean(e) for e in bench.values()])) if bench else None)
    else:
        out["mean_error"] = float(np.mean([np.mean(e) for e in bench.values()])) if bench else None
    if (root / "gpuaug-corruptions.json").exists():  # written by gpuaug corrupt: not the released set
        import json

        out["regenerated"] = json.loads((root / "gpuaug-corruptions.json").read_text()).get("notice", "regenerated")
        out.pop("ce", None), out.pop("mce", None)  # AlexNet's normalisers are for the released ImageNet-C only
        log(f"  note: {out['regenerated']}")
    return out


def evaluate_subset(model, root, classes, cfg, d, amp_dtype=None) -> dict:
    """ImageNet-R / -A: classes are the folder's wnids, logits restricted to them."""
    root = Path(root)
    ds = image_folder(root)
    index = {c: i for i, c in enumerate(classes)}
    missing = [c for c in ds.classes if c not in index]
    if missing:
        raise SystemExit(f"error: {root} has classes the model was not trained on: {missing[:5]} "
                         f"(the model knows {len(classes)} classes)")
    subset = [index[c] for c in ds.classes]
    return summarize(predict(model, _loader(ds, cfg, d), d, amp_dtype, subset=subset,
                             limit_batches=cfg.limit_batches), _calibration(cfg)) | {"classes": len(subset)}


def definitions(calibration: str, amp_dtype=None, pgd_form: str | None = None) -> dict:
    """What the report's numbers mean: the calibration form, the precision of the forward
    passes and, when PGD ran, its form (for eval.json and the printed report)."""
    from .eval_adversarial import PGD_FORMS

    precision = ("float32, as the official evaluation code" if amp_dtype is None else
                 f"{str(amp_dtype).removeprefix('torch.')} autocast (by option; the official code evaluates in "
                 "float32); the attacks run in float32")
    out = {"calibration": f"{calibration}: {CALIBRATION_FORMS[calibration]}", "precision": precision}
    if pgd_form is not None:
        out["pgd"] = f"{pgd_form}: {PGD_FORMS[pgd_form]}"
    return out


def format_table(results: dict) -> str:
    """A plain-text table of the headline numbers (percent unless the row says otherwise)."""
    from . import eval_adversarial, eval_ood, eval_perturb

    rows = []
    if "clean" in results and results["clean"].get("n"):
        r = results["clean"]
        rows.append(("clean top-1 error", 100 * r["top1_error"]))
        rows.append(("clean top-5 error", 100 * r["top5_error"]))
        rows.append(("clean RMS calibration error", 100 * r["rms_calibration_error"]))
    if "corruptions" in results:
        c = results["corruptions"]
        over = f"{len(c['averaged_over'])} benchmark corruptions"
        if c.get("mce") is not None:
            rows.append((f"ImageNet-C mCE (AlexNet = 100; {over})", 100 * c["mce"]))
        if c.get("mean_error") is not None:
            name = "ImageNet-C" if c["layout"] == "imagenet-c" else "CIFAR-C"
            label = "regenerated corruptions" if c.get("regenerated") else name
            rows.append((f"{label} mean error ({over})", 100 * c["mean_error"]))
        if c.get("mean_rms_calibration_error") is not None:
            rows.append((f"corruption RMS calibration error ({over})", 100 * c["mean_rms_calibration_error"]))
    if results.get("corruptions_bar", {}).get("mean_error") is not None:
        b = results["corruptions_bar"]
        rows.append((f"CIFAR-10-C-Bar mean error ({len(b['averaged_over'])} -Bar corruptions)", 100 * b["mean_error"]))
    for name in ("imagenet_r", "imagenet_a"):
        if name in results:
            label = name.replace("imagenet_", "ImageNet-").replace("-r", "-R").replace("-a", "-A")
            rows.append((f"{label} top-1 error", 100 * results[name]["top1_error"]))
            rows.append((f"{label} RMS calibration error", 100 * results[name]["rms_calibration_error"]))
    for key, label in (("imagenet_p", "ImageNet-P"), ("cifar_p", "CIFAR-P")):
        if key in results:
            rows += eval_perturb.table_rows(results[key], label)
    if "adversarial" in results:
        rows += eval_adversarial.table_rows(results["adversarial"])
    if "ood" in results:
        rows += eval_ood.table_rows(results["ood"])
    width = max((len(r[0]) for r in rows), default=10)
    lines = [f"{'metric':<{width}}  value (%)", "-" * (width + 11)]
    # an undefined value (NaN: e.g. the official RMS calibration error under 200 predictions) reads n/a
    lines += [f"{name:<{width}}  {value:8.2f}" if math.isfinite(value) else f"{name:<{width}}  {'n/a':>8}"
              for name, value in rows]
    for key in ("corruptions", "corruptions_bar"):
        if key in results and results[key]["errors"]:
            c = results[key]
            w = max(18, *(len(n) for n in c["errors"]))
            lines += ["", f"{'corruption':<{w}} " + " ".join(f"  s{s} " for s in range(1, 6))
                      + ("    CE" if "ce" in c else "")]
            for name, errs in c["errors"].items():
                ce = f" {100 * c['ce'][name]:6.1f}" if name in c.get("ce", {}) else ""
                lines.append(f"{name:<{w}} " + " ".join(f"{100 * e:5.1f}" for e in errs) + ce)
    notes = dict(results.get("definitions", {}))
    for key, label in (("imagenet_p", "ImageNet-P"), ("cifar_p", "CIFAR-P")):
        if results.get(key, {}).get("averaged_over"):
            notes[f"{label} mean over"] = ", ".join(results[key]["averaged_over"])
    if notes:
        w = max(len(k) for k in notes)
        lines += ["", "definitions:"] + [f"  {k:<{w}}  {v}" for k, v in notes.items()]
    return "\n".join(lines)
