"""``gpuaug eval``'s robustness and safety suites beyond clean / -C / -R / -A: their
command-line options and the code that runs them (ImageNet-P / CIFAR-P consistency,
PGD / FGSM adversarial error, OOD-detection AUROC, CIFAR-10-C-Bar)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

from .eval_adversarial import FGSM_EPS, PGD_EPS, PGD_FORMS, PGD_STEP_SIZE, PGD_STEPS


def _eps(text: str) -> float:
    """'2/255' or '0.00784' -> float."""
    try:
        if "/" in text:
            num, den = text.split("/")
            value = float(num) / float(den)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction like 2/255, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (pixel units of [0, 1] images), got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("consistency, adversaries, anomalies")
    g.add_argument("--imagenet-p", metavar="DIR", help="ImageNet-P: <perturbation>/<wnid>/<video> with each video "
                   "the released .mp4 (needs PyAV: pip install 'gpuaug[video]'), an .npy (frames, H, W, 3) or a "
                   "folder of frames")
    g.add_argument("--imagenet-p-baseline", metavar="JSON", help="ImageNet-P: {perturbation: flip probability} "
                   "of the normalising model (AlexNet in the paper) to report mFR instead of the mean FP")
    g.add_argument("--cifar-p", metavar="DIR", help="CIFAR-10/100-P: <perturbation>.npy of (videos, frames, 32, 32, 3)")
    g.add_argument("--corruptions-bar", metavar="DIR", help="CIFAR-10-C-Bar: <corruption>.npy + labels.npy")
    g.add_argument("--pgd", action="store_true", help="PGD error on the clean validation set (PixMix/IPMix: "
                   "l-inf, eps 2/255, 20 steps of 0.5/255, random start)")
    g.add_argument("--pgd-eps", type=_eps, default=PGD_EPS, help="PGD budget, e.g. 2/255 (default)")
    g.add_argument("--pgd-steps", type=_positive_int, default=PGD_STEPS, help="PGD steps (default 20)")
    g.add_argument("--pgd-step-size", type=_eps, default=PGD_STEP_SIZE, help="PGD step size (default 0.5/255)")
    g.add_argument("--pgd-form", choices=tuple(PGD_FORMS), default="authors",
                   help="authors (default): as the PixMix/IPMix code runs it, the projection ball centred on the "
                        "random start (up to 2 eps from the clean image), what their tables report; strict: the "
                        "eps-ball around the clean image")
    g.add_argument("--fgsm", action="store_true", help="FGSM error on the clean validation set (NoisyMix)")
    g.add_argument("--fgsm-eps", type=_eps, default=FGSM_EPS, help="FGSM step, e.g. 4/255 (default; an assumption, "
                   "see README)")
    g.add_argument("--attack-seed", type=int, default=0, help="seed of PGD's random start")
    g.add_argument("--ood", metavar="DIR", nargs="+", help="out-of-distribution image folders (flat or with "
                   "sub-folders): MSP AUROC against the clean validation set")


def needs_clean(args) -> bool:
    """The attacks and OOD detection run on the clean validation set."""
    return bool(args.pgd or args.fgsm or args.ood)


def requested(args) -> bool:
    return bool(args.imagenet_p or args.cifar_p or args.corruptions_bar or needs_clean(args))


def run(args, model, classes, cfg, d, amp_dtype, norm, clean_ds, clean_pred, log=print) -> dict:
    """The suites ``args`` asks for -> {result key: result}; ``clean_ds`` / ``clean_pred``
    are the clean validation set and its predictions (when :func:`needs_clean`)."""
    out = {}
    pre_cropped = SimpleNamespace(**{**vars(cfg), "crop": "pad"})
    if args.corruptions_bar:
        from .evaluate import evaluate_corruptions

        log(f"CIFAR-10-C-Bar in {args.corruptions_bar} (top-1 error %, severities 1-5):")
        out["corruptions_bar"] = evaluate_corruptions(model, args.corruptions_bar, classes, pre_cropped, d,
                                                      amp_dtype, log=log, bar=True)
    for key, root in (("imagenet_p", args.imagenet_p), ("cifar_p", args.cifar_p)):
        if root:
            from .eval_perturb import evaluate_perturbations, read_baseline

            baseline = None
            if key == "imagenet_p" and args.imagenet_p_baseline:
                baseline = read_baseline(args.imagenet_p_baseline)
            log(f"perturbations in {root} (flip probability, top-5 distance):")
            out[key] = evaluate_perturbations(model, root, pre_cropped, d, norm, amp_dtype, log=log, baseline=baseline)
    if args.pgd or args.fgsm:
        from .eval_adversarial import evaluate_adversarial

        attacks = {}
        if args.pgd:
            attacks["pgd"] = {"eps": args.pgd_eps, "steps": args.pgd_steps, "step_size": args.pgd_step_size,
                              "form": args.pgd_form}
        if args.fgsm:
            attacks["fgsm"] = {"eps": args.fgsm_eps}
        log(f"adversarial ({', '.join(attacks)}) on {len(clean_ds)} clean images, float32, model in eval mode")
        out["adversarial"] = evaluate_adversarial(model, clean_ds, cfg, d, norm, attacks, seed=args.attack_seed)
    if args.ood:
        from .eval_ood import evaluate_ood
        from .evaluate import _loader, predict

        def confidence(ds):
            return predict(model, _loader(ds, cfg, d), d, amp_dtype, limit_batches=cfg.limit_batches)["confidence"]

        out["ood"] = evaluate_ood(clean_pred["confidence"], args.ood, confidence, classes, log=log)
    return out
