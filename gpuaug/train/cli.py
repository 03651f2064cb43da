"""Command line of the trainer: ``gpuaug train`` and ``gpuaug eval``.

Settings resolve as: explicit command-line option > ``--recipe`` file > data-set defaults
(built-in shapes set / CIFAR) > built-in defaults (ImageNet, ResNet-50).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

from . import argtypes as T
from .defaults import CIFAR_DEFAULTS, DEFAULTS, SYNTHETIC_DEFAULTS  # noqa: F401  (cli.DEFAULTS: public)
from .models import ARCHS
from .schedule import SCHEDULES

METHOD_CHOICES = ("augmix", "pixmix", "ipmix", "dynamic-mixup", "noisymix", "mixup", "cutmix", "cutout", "none")


def _add_train_options(p: argparse.ArgumentParser) -> None:
    B = argparse.BooleanOptionalAction
    g = p.add_argument_group("data")
    g.add_argument("--data", help="ImageFolder root (train/ and val/; without val/ validation is skipped), or a "
                                  "CIFAR-10/100 python folder; default: the built-in shapes set, generated on first use")
    g.add_argument("--loader", choices=("auto", "dali", "torch"), default="auto",
                   help="dali: gpuaug.loader (GPU); torch: Pillow + the CPU executor in DataLoader workers "
                        "(auto: dali for ImageFolder data on a GPU when available)")
    g.add_argument("--validate", choices=("decode", "header", "none"),
                   help="how the ImageFolder scan screens files before training (decode: full decode; "
                        "header: size and markers only; none: no checks); default: the loader's. The CPU loader "
                        "skips, counts and warns about files that still fail at train time")
    g.add_argument("--workers", type=T.count(0), help="loader worker processes / DALI threads, >= 0 "
                                                       "(default: CPU count, <= 8)")
    g.add_argument("--image-size", type=T.count(T.MIN_IMAGE_SIZE),
                   help=f"training crop side in pixels, >= {T.MIN_IMAGE_SIZE} (default 224; CIFAR 32; built-in shapes 48)")
    g.add_argument("--crop", choices=("auto", "rrc", "pad"), help="rrc: random resized crop; pad: CIFAR pad-4 crop")
    g.add_argument("--mixing", help="folder of mixing pictures for PixMix/IPMix, or a (N, S, S, 3) uint8 .npy such "
                   "as PixMix's 300K_random_images.npy (pad-4 crop + flip per draw) (default: procedural fractals)")
    g.add_argument("--fractals", type=T.count(1), help="number of procedural fractals when --mixing is not given")
    g.add_argument("--normalization", choices=("imagenet", "half"),
                   help="imagenet: ImageNet mean/std; half: mean = std = 0.5 (the official CIFAR scripts; CIFAR default)")
    g = p.add_argument_group("method")
    g.add_argument("--recipe", help="a recipe: a pipelines/*.toml file or its name, e.g. cifar-augmix (paper settings)")
    g.add_argument("--print-config", action="store_true",
                   help="print every resolved setting with its source (recipe tag, command line, default) and exit")
    g.add_argument("--method", choices=METHOD_CHOICES, help="augmentation (default augmix)")
    g.add_argument("--settings", help='method settings as JSON, e.g. \'{"severity": 1}\'')
    g.add_argument("--jsd", action=B, help="JSD consistency training on (clean, aug1, aug2)")
    g.add_argument("--jsd-lambda", type=T.real(0), help="JSD weight (default 12, NoisyMix: its config's jsd_lambda)")
    g.add_argument("--label-smoothing", type=T.real(0, 1, hi_open=True), help="label smoothing in [0, 1) (default 0)")
    g = p.add_argument_group("model and optimiser")
    g.add_argument("--arch", help=f"one of {', '.join(ARCHS)} (default resnet50)")
    g.add_argument("--pretrained", action=B, help="start from torchvision's ImageNet weights")
    g.add_argument("--drop", type=T.real(0, 1, hi_open=True), help="Wide ResNet dropout probability in [0, 1)")
    g.add_argument("--epochs", type=T.count(1), help="epochs to train, >= 1 (default 90; CIFAR 100; shapes 12)")
    g.add_argument("--batch-size", type=T.count(1), help="per-rank batch size (images; JSD adds two views each)")
    g.add_argument("--lr", type=T.real(0, lo_open=True), help="peak learning rate, > 0 (default 0.1)")
    g.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule after warm-up (default cosine)")
    g.add_argument("--warmup-epochs", type=T.real(0), help="linear warm-up length in epochs, >= 0 (default 0)")
    g.add_argument("--milestones", type=T.milestones,
                   help="step schedule: epochs where lr *= gamma, e.g. 30,60,80")
    g.add_argument("--gamma", type=T.real(0, lo_open=True), help="step schedule factor, > 0 (default 0.1)")
    g.add_argument("--min-lr", type=T.real(0), help="cosine schedule floor, >= 0 (default 0)")
    g.add_argument("--weight-decay", "--wd", dest="weight_decay", type=T.real(0), help="L2 weight decay, >= 0 (default 1e-4; CIFAR 5e-4)")
    g.add_argument("--momentum", type=T.real(0, 1, hi_open=True), help="SGD momentum in [0, 1) (default 0.9)")
    g.add_argument("--nesterov", action=B, help="Nesterov momentum (default on)")
    g.add_argument("--bn-decay", action=B, help="weight decay on biases and norm weights too (default); "
                                                 "--no-bn-decay: none on them")
    g.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), help="auto: bf16 on GPU, off on CPU")
    g.add_argument("--channels-last", action=B, help="channels_last memory format (default on)")
    g.add_argument("--compile", action=B, help="torch.compile the model")
    g = p.add_argument_group("run")
    g.add_argument("--out", help="folder for logs, checkpoints and previews (default runs/<data>-<method>[-N])")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    g.add_argument("--allow-changed-settings", action="store_true",
                   help="with --resume: accept settings (lr, weight decay, schedule, method settings, ...) "
                        "that differ from the checkpoint's")
    g.add_argument("--overwrite", action="store_true", help="start over (fresh log and checkpoint) even if "
                                                           "--out has a checkpoint")
    g.add_argument("--seed", type=T.seed(), default=0,
                   help="random seed of data order, augmentation and init, in [0, 2**63 - 1] (default 0)")
    g.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                   help="auto: the GPU when torch sees one, else the CPU")
    g.add_argument("--eval-every", type=T.count(1), default=1, help="validate every N epochs (and after the last)")
    g.add_argument("--limit-val-batches", type=T.count(1), help="validate on at most N batches per rank")
    g.add_argument("--preview", action=B, default=True, help="write preview.png of the first augmented batch")
    g.add_argument("--tensorboard", action="store_true", help="also log to <out>/tensorboard")
    g.add_argument("--stop-after-steps", type=T.count(1), help=argparse.SUPPRESS)  # tests: as if SIGTERM came


def build_parser(prog: str = "gpuaug train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Train a classifier with a gpuaug augmentation "
                                "(with no --data: a short run on a built-in shapes data set).")
    _add_train_options(p)
    return p


def build_eval_parser(prog: str = "gpuaug eval") -> argparse.ArgumentParser:
    from .eval_suites import add_options
    from .evaluate import CALIBRATION_FORMS

    p = argparse.ArgumentParser(prog=prog, description="Evaluate a trained model: clean error, calibration, "
                                "corruptions (ImageNet-C / CIFAR-C / CIFAR-10-C-Bar), ImageNet-R and -A, "
                                "ImageNet-P / CIFAR-P flip rates, PGD / FGSM error, OOD-detection AUROC.")
    p.add_argument("--checkpoint", required=True, help="a run folder, its model.pt or checkpoint.pt")
    p.add_argument("--data", help="clean validation data as for training, also what --pgd/--fgsm attack and "
                                  "--ood compares with (default: the built-in shapes set when no other suite is "
                                  "given or one of those is)")
    p.add_argument("--corruptions", help="ImageNet-C (<c>/<severity>/<wnid>/) or CIFAR-C (<c>.npy, labels.npy) folder")
    p.add_argument("--imagenet-r", help="ImageNet-R folder (200 wnid folders)")
    p.add_argument("--imagenet-a", help="ImageNet-A folder (200 wnid folders)")
    p.add_argument("--batch-size", type=T.count(1), default=256, help="images per batch (default 256)")
    p.add_argument("--image-size", type=T.count(T.MIN_IMAGE_SIZE), help="evaluation crop side in pixels "
                   "(default: the training size)")
    p.add_argument("--workers", type=T.count(0), help="loader worker processes, >= 0 (default: CPU count, <= 8)")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                   help="auto: the GPU when torch sees one, else the CPU")
    p.add_argument("--amp", choices=("none", "bf16", "fp16", "auto"), default="none",
                   help="none (default): float32, as the official evaluation code; bf16 / fp16: autocast, faster "
                        "but near-tied predictions can flip; auto: bf16 on GPU, off on CPU")
    p.add_argument("--calibration", choices=tuple(CALIBRATION_FORMS), default="official",
                   help="RMS calibration error: official (default; the papers' calib_err, which leaves the most "
                        "confident bin out) or all-bins")
    p.add_argument("--limit-batches", type=T.count(1), help="at most N batches per set (quick checks)")
    p.add_argument("--json", help="write the results here (default: <run>/eval.json)")
    add_options(p)
    return p


def _default_workers() -> int:
    """Loader processes: the CPU count (<= 8), one fewer without a GPU (the CPU trains too)."""
    cpus = os.cpu_count() or 1
    return max(1, min(8, cpus if _cuda() else cpus - 1))


def resolve_train_args(args: argparse.Namespace) -> SimpleNamespace:
    """Merge CLI options, recipe and defaults into the trainer's settings."""
    cfg = dict(DEFAULTS)
    recipe = {"train": {}, "method": {}}
    if args.data is None:
        cfg.update(SYNTHETIC_DEFAULTS)
    else:
        from .data import resolve_data

        if resolve_data(args.data)["kind"] == "cifar":
            cfg.update(CIFAR_DEFAULTS)
    if args.recipe:
        from .recipes import load_recipe, recipe_path

        recipe = load_recipe(recipe_path(args.recipe))
        parser = build_parser()
        cfg.update({k: T.check_value(parser, k, v, f"recipe {args.recipe}")
                    for k, v in recipe["train"].items() if k != "dataset"})
        if recipe["method"]:
            cfg["method"] = recipe["method"]["name"]
    explicit = {k: v for k, v in vars(args).items() if v is not None and k in cfg}
    if getattr(args, "bn_decay", None) is not None:
        explicit["no_bn_decay"] = not args.bn_decay
    cfg.update(explicit)
    method = cfg["method"]
    settings = {}
    if recipe["method"] and recipe["method"]["name"] == method:
        settings = {k: v for k, v in recipe["method"].items() if k != "name"}
        for k, v in settings.items():  # TOML arrays -> tuples for frozen configs
            if isinstance(v, list):
                settings[k] = tuple(v)
    if args.settings:
        try:
            extra = json.loads(args.settings)
        except json.JSONDecodeError as err:
            raise SystemExit(f"error: --settings is not valid JSON: {err}") from None
        if not isinstance(extra, dict):
            raise SystemExit(f"error: --settings must be a JSON object of method settings, e.g. "
                             f"'{{\"severity\": 1}}'; got {args.settings!r}")
        settings.update({k: tuple(v) if isinstance(v, list) else v for k, v in extra.items()})
    if cfg["crop"] == "auto":
        cfg["crop"] = "pad" if (args.data is None or cfg["image_size"] <= 64) else "rrc"
    if cfg["fractals"] is None:
        cfg["fractals"] = 1000 if _cuda() else 256
    out = args.out
    if out is None:
        base = Path("runs") / f"{'shapes' if args.data is None else Path(args.data).name}-{method}"
        out, i = base, 2
        while (out / "checkpoint.pt").exists() and not args.resume:
            out, i = Path(f"{base}-{i}"), i + 1
    return SimpleNamespace(
        **cfg, method_settings=settings, data=args.data, loader=args.loader,
        workers=args.workers if args.workers is not None else _default_workers(),
        out=str(out), resume=args.resume, overwrite=args.overwrite, seed=args.seed, device=args.device,
        eval_every=args.eval_every, limit_val_batches=args.limit_val_batches, preview=args.preview,
        tensorboard=args.tensorboard, stop_after_steps=args.stop_after_steps, recipe=args.recipe,
        validate=args.validate, allow_changed_settings=args.allow_changed_settings)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main_train(argv: list[str] | None = None) -> int:
    """``gpuaug train ...``; returns the exit status (143 when stopped by SIGTERM)."""
    args = build_parser().parse_args(argv)
    cfg = resolve_train_args(args)
    if args.print_config:
        from .recipes import print_config

        print_config(args, cfg)
        return 0
    from .loop import train
    from .outputs import describe_os_error

    try:
        result = train(cfg)
    except OSError as err:
        message = describe_os_error(err)
        if message is None:
            raise
        raise SystemExit(message) from None
    except KeyboardInterrupt:  # Ctrl-C outside the loop's own handler (data scan, mixing set)
        print("\ninterrupted outside the training loop; outputs written so far are intact", file=sys.stderr)
        return 130
    if result["status"] == "completed" and result["history"] is not None and int(os.environ.get("RANK", "0")) == 0:
        hist = result["history"]
        if hist:
            curve = " -> ".join(f"{100 * h.get('val_top1', h['train_top1']):.0f}%" for h in hist)
            which = "validation" if "val_top1" in hist[-1] else "training"
            print(f"{which} accuracy by epoch: {curve}")
        out = Path(result["out"])
        print(f"outputs in {out}/: train.jsonl (metrics), checkpoint.pt (resume), model.pt (weights), "
              f"config.json{', preview.png (augmented batch)' if (out / 'preview.png').exists() else ''}")
        if cfg.data is None or _has_val(cfg.data):
            print(f"evaluate with: gpuaug eval --checkpoint {out}" + (f" --data {cfg.data}" if cfg.data else ""))
        else:
            print(f"evaluate with: gpuaug eval --checkpoint {out} --data DIR, DIR holding a val/ split "
                  f"({cfg.data} has none), and/or --corruptions / --imagenet-r / --imagenet-a")
    return result.get("exit_status", 143) if result["status"] == "stopped" else 0


def _has_val(data: str) -> bool:
    """Whether ``--data`` has a validation split ``gpuaug eval --data`` can read."""
    from .data import resolve_data

    spec = resolve_data(data, log=lambda *a, **k: None)
    return spec["kind"] == "cifar" or spec.get("val") is not None


def _load_for_eval(path: str):
    """(arch, classes, state_dict, image_size, crop, normalization) from a run folder, model.pt
    or checkpoint.pt."""
    from .checkpoint import CheckpointError, read

    p = Path(path)
    if p.is_dir():
        if (p / "model.pt").exists():
            try:
                return _load_model_file(p / "model.pt")
            except SystemExit as err:  # never prefer a damaged model.pt over a valid checkpoint
                if not (p / "checkpoint.pt").exists():
                    raise
                print(f"note: {str(err).removeprefix('error: ')}; using {p / 'checkpoint.pt'} instead")
        p = p / "checkpoint.pt"
    if not p.exists():
        raise SystemExit(f"error: no model at {p}")
    if p.name == "checkpoint.pt" or "checkpoint" in p.name:
        try:
            state = read(p)
        except CheckpointError as err:
            raise SystemExit(f"error: {err}") from None
        fp, extra = state["fingerprint"], state["extra"]
        return (fp["arch"], extra.get("classes"), state["model"], fp["image_size"], extra.get("crop", "rrc"),
                extra.get("normalization"))
    return _load_model_file(p)


def _load_model_file(p: Path):
    import torch

    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
        return (state["arch"], state["classes"], state["model"], state["image_size"], state.get("crop", "rrc"),
                state.get("normalization"))
    except Exception as err:
        raise SystemExit(f"error: {p} is not a gpuaug model file ({type(err).__name__}: {err})") from None


def main_eval(argv: list[str] | None = None) -> int:
    """``gpuaug eval ...``: prints a table and writes JSON."""
    import torch

    from ..normalization import mean_std
    from . import distributed, eval_suites, outputs
    from .data import load_split, resolve_data
    from .evaluate import definitions, evaluate_corruptions, evaluate_subset, format_table, predict, summarize
    from .loop import _amp_dtype
    from .models import build_model

    args = build_eval_parser().parse_args(argv)
    arch, classes, state, image_size, crop, normalization = _load_for_eval(args.checkpoint)
    d = distributed.setup(args.device)
    log = print if d.main else (lambda *a, **k: None)
    try:
        model = build_model(arch, len(classes))
        model.load_state_dict(state)
        model = model.to(d.device, memory_format=torch.channels_last).eval()
        cfg = SimpleNamespace(batch_size=args.batch_size, image_size=args.image_size or image_size,
                              workers=args.workers if args.workers is not None else _default_workers(),
                              crop=crop, limit_batches=args.limit_batches, normalization=normalization,
                              calibration=args.calibration)
        amp = _amp_dtype(args.amp, d.device)
        results = {"checkpoint": str(args.checkpoint), "arch": arch, "classes": len(classes),
                   "normalization": normalization or "imagenet",
                   "definitions": definitions(args.calibration, amp, args.pgd_form if args.pgd else None)}
        data, ds, pred = args.data, None, None
        if data is not None or eval_suites.needs_clean(args) or not (
                args.corruptions or args.imagenet_r or args.imagenet_a or eval_suites.requested(args)):
            spec = resolve_data(data, log=log)
            ds = load_split(spec, train=False, classes=classes)
            if ds is None:
                raise SystemExit(f"error: {data} has no validation split (val/)")
            from .evaluate import _loader

            log(f"clean: {len(ds)} images")
            pred = predict(model, _loader(ds, cfg, d), d, amp, limit_batches=args.limit_batches)
            results["clean"] = summarize(pred, args.calibration)
        if args.corruptions:
            log(f"corruptions in {args.corruptions} (top-1 error %, severities 1-5):")
            cc_cfg = SimpleNamespace(**{**vars(cfg), "crop": "pad"})  # corrupted sets are pre-cropped
            results["corruptions"] = evaluate_corruptions(model, args.corruptions, classes, cc_cfg, d, amp, log=log)
        if args.imagenet_r:
            results["imagenet_r"] = evaluate_subset(model, args.imagenet_r, classes, cfg, d, amp)
        if args.imagenet_a:
            results["imagenet_a"] = evaluate_subset(model, args.imagenet_a, classes, cfg, d, amp)
        norm = mean_std(normalization)  # what the run's loaders normalised with
        results.update(eval_suites.run(args, model, classes, cfg, d, amp, norm, ds, pred, log=log))
        if d.main:
            print(format_table(results))
            ck = Path(args.checkpoint)
            out = Path(args.json) if args.json else (ck if ck.is_dir() else ck.parent) / "eval.json"
            try:
                outputs.write_atomic(out, outputs.json_text(results, indent=2))
            except OSError as err:
                raise SystemExit(f"error: cannot write {out}: {err.strerror or err}; "
                                 "choose a writable file with --json") from None
            print(f"wrote {out}")
    finally:
        distributed.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m gpuaug.train [train|eval] ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "eval":
        return main_eval(argv[1:])
    if argv and argv[0] == "train":
        argv = argv[1:]
    return main_train(argv)
