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

from .models import ARCHS
from .schedule import SCHEDULES

METHOD_CHOICES = ("augmix", "pixmix", "ipmix", "dynamic-mixup", "noisymix", "mixup", "cutmix", "cutout", "none")

DEFAULTS = dict(
    method="augmix", arch="resnet50", epochs=90, batch_size=256, lr=0.1, schedule="cosine", warmup_epochs=0.0,
    milestones=[], gamma=0.1, min_lr=0.0, weight_decay=1e-4, momentum=0.9, nesterov=True, no_bn_decay=False,
    label_smoothing=0.0, jsd=False, jsd_lambda=None, image_size=224, crop="auto", pretrained=False, drop=None,
    amp="auto", channels_last=True, compile=False, fractals=None, mixing=None,
)
# The built-in shapes set (no --data): 6 epochs, about a minute on 2 free CPU cores, with
# validation accuracy rising from chance (17%) to ~40%.
SYNTHETIC_DEFAULTS = dict(arch="tiny", epochs=6, batch_size=32, lr=0.1, warmup_epochs=1.0, weight_decay=5e-4,
                          jsd=True, image_size=48, crop="pad")
# CIFAR-10/100 (32x32): the AugMix CIFAR setting; recipes refine it per method.
CIFAR_DEFAULTS = dict(arch="wrn40_2", epochs=100, batch_size=128, weight_decay=5e-4, image_size=32, crop="pad")


def _add_train_options(p: argparse.ArgumentParser) -> None:
    B = argparse.BooleanOptionalAction
    g = p.add_argument_group("data")
    g.add_argument("--data", help="ImageFolder root (train/ and val/), or a CIFAR-10/100 python folder; "
                                  "default: the built-in shapes set, generated on first use")
    g.add_argument("--loader", choices=("auto", "dali", "torch"), default="auto",
                   help="dali: gpuaug.loader (GPU); torch: Pillow + the CPU executor in DataLoader workers "
                        "(auto: dali for ImageFolder data on a GPU when available)")
    g.add_argument("--workers", type=int, help="loader worker processes / DALI threads (default: CPU count, <= 8)")
    g.add_argument("--image-size", type=int, help="training crop side (224; CIFAR 32; shapes 64)")
    g.add_argument("--crop", choices=("auto", "rrc", "pad"), help="rrc: random resized crop; pad: CIFAR pad-4 crop")
    g.add_argument("--mixing", help="folder of mixing pictures for PixMix/IPMix (default: procedural fractals)")
    g.add_argument("--fractals", type=int, help="number of procedural fractals when --mixing is not given")
    g = p.add_argument_group("method")
    g.add_argument("--recipe", help="a pipelines/*.toml recipe (paper settings)")
    g.add_argument("--method", choices=METHOD_CHOICES, help="augmentation (default augmix)")
    g.add_argument("--settings", help='method settings as JSON, e.g. \'{"severity": 1}\'')
    g.add_argument("--jsd", action=B, help="JSD consistency training on (clean, aug1, aug2)")
    g.add_argument("--jsd-lambda", type=float, help="JSD weight (default 12, NoisyMix: its config's jsd_lambda)")
    g.add_argument("--label-smoothing", type=float)
    g = p.add_argument_group("model and optimiser")
    g.add_argument("--arch", help=f"one of {', '.join(ARCHS)} (default resnet50)")
    g.add_argument("--pretrained", action=B, help="start from torchvision's ImageNet weights")
    g.add_argument("--drop", type=float, help="Wide ResNet dropout")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int, help="per-rank batch size (images; JSD adds two views each)")
    g.add_argument("--lr", type=float)
    g.add_argument("--schedule", choices=SCHEDULES)
    g.add_argument("--warmup-epochs", type=float)
    g.add_argument("--milestones", type=lambda s: [float(v) for v in s.split(",") if v],
                   help="step schedule: epochs where lr *= gamma, e.g. 30,60,80")
    g.add_argument("--gamma", type=float)
    g.add_argument("--min-lr", type=float)
    g.add_argument("--weight-decay", "--wd", dest="weight_decay", type=float)
    g.add_argument("--momentum", type=float)
    g.add_argument("--nesterov", action=B)
    g.add_argument("--no-bn-decay", action=B, help="no weight decay on biases and norm weights")
    g.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), help="auto: bf16 on GPU, off on CPU")
    g.add_argument("--channels-last", action=B)
    g.add_argument("--compile", action=B, help="torch.compile the model")
    g = p.add_argument_group("run")
    g.add_argument("--out", help="folder for logs, checkpoints and previews (default runs/<data>-<method>[-N])")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    g.add_argument("--overwrite", action="store_true", help="start over even if --out has a checkpoint")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    g.add_argument("--eval-every", type=int, default=1, help="validate every N epochs")
    g.add_argument("--limit-val-batches", type=int, help="validate on at most N batches per rank")
    g.add_argument("--preview", action=B, default=True, help="write preview.png of the first augmented batch")
    g.add_argument("--tensorboard", action="store_true", help="also log to <out>/tensorboard")
    g.add_argument("--stop-after-steps", type=int, help=argparse.SUPPRESS)  # tests: behave as if SIGTERM came


def build_parser(prog: str = "gpuaug train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Train a classifier with a gpuaug augmentation "
                                "(with no --data: a short run on a built-in shapes data set).")
    _add_train_options(p)
    return p


def build_eval_parser(prog: str = "gpuaug eval") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Evaluate a trained model: clean error, calibration, "
                                "corruptions (ImageNet-C / CIFAR-C), ImageNet-R and -A.")
    p.add_argument("--checkpoint", required=True, help="a run folder, its model.pt or checkpoint.pt")
    p.add_argument("--data", help="clean validation data as for training (default: the built-in shapes set "
                                  "when no other suite is given)")
    p.add_argument("--corruptions", help="ImageNet-C (<c>/<severity>/<wnid>/) or CIFAR-C (<c>.npy, labels.npy) folder")
    p.add_argument("--imagenet-r", help="ImageNet-R folder (200 wnid folders)")
    p.add_argument("--imagenet-a", help="ImageNet-A folder (200 wnid folders)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--image-size", type=int, help="default: the training size")
    p.add_argument("--workers", type=int)
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), default="auto")
    p.add_argument("--limit-batches", type=int, help="at most N batches per set (quick checks)")
    p.add_argument("--json", help="write the results here (default: <run>/eval.json)")
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
        from .recipes import load_recipe

        recipe = load_recipe(args.recipe)
        cfg.update({k: v for k, v in recipe["train"].items() if k != "dataset"})
        if recipe["method"]:
            cfg["method"] = recipe["method"]["name"]
    explicit = {k: v for k, v in vars(args).items() if v is not None and k in cfg}
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
        eval_every=max(1, args.eval_every), limit_val_batches=args.limit_val_batches, preview=args.preview,
        tensorboard=args.tensorboard, stop_after_steps=args.stop_after_steps, recipe=args.recipe)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def main_train(argv: list[str] | None = None) -> int:
    """``gpuaug train ...``; returns the exit status (143 when stopped by SIGTERM)."""
    args = build_parser().parse_args(argv)
    cfg = resolve_train_args(args)
    from .loop import train

    result = train(cfg)
    if result["status"] == "completed" and result["history"] is not None and int(os.environ.get("RANK", "0")) == 0:
        hist = result["history"]
        if hist:
            curve = " -> ".join(f"{100 * h.get('val_top1', h['train_top1']):.0f}%" for h in hist)
            which = "validation" if "val_top1" in hist[-1] else "training"
            print(f"{which} accuracy by epoch: {curve}")
        out = Path(result["out"])
        print(f"outputs in {out}/: train.jsonl (metrics), checkpoint.pt (resume), model.pt (weights), "
              f"config.json{', preview.png (augmented batch)' if (out / 'preview.png').exists() else ''}")
        print(f"evaluate with: gpuaug eval --checkpoint {out}" + (f" --data {cfg.data}" if cfg.data else ""))
    return 143 if result["status"] == "stopped" else 0


def _load_for_eval(path: str):
    """(arch, classes, state_dict, image_size, crop) from a run folder, model.pt or checkpoint.pt."""
    import torch

    from .checkpoint import CheckpointError, read

    p = Path(path)
    if p.is_dir():
        p = p / "model.pt" if (p / "model.pt").exists() else p / "checkpoint.pt"
    if not p.exists():
        raise SystemExit(f"error: no model at {p}")
    if p.name == "checkpoint.pt" or "checkpoint" in p.name:
        try:
            state = read(p)
        except CheckpointError as err:
            raise SystemExit(f"error: {err}") from None
        fp, extra = state["fingerprint"], state["extra"]
        return fp["arch"], extra.get("classes"), state["model"], fp["image_size"], extra.get("crop", "rrc")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
        return state["arch"], state["classes"], state["model"], state["image_size"], state.get("crop", "rrc")
    except Exception as err:
        raise SystemExit(f"error: {p} is not a gpuaug model file ({type(err).__name__}: {err})") from None


def main_eval(argv: list[str] | None = None) -> int:
    """``gpuaug eval ...``: prints a table and writes JSON."""
    import torch

    from . import distributed
    from .data import load_split, resolve_data
    from .evaluate import evaluate_corruptions, evaluate_subset, format_table, predict, summarize
    from .loop import _amp_dtype
    from .models import build_model

    args = build_eval_parser().parse_args(argv)
    arch, classes, state, image_size, crop = _load_for_eval(args.checkpoint)
    d = distributed.setup(args.device)
    log = print if d.main else (lambda *a, **k: None)
    try:
        model = build_model(arch, len(classes))
        model.load_state_dict(state)
        model = model.to(d.device, memory_format=torch.channels_last).eval()
        cfg = SimpleNamespace(batch_size=args.batch_size, image_size=args.image_size or image_size,
                              workers=args.workers if args.workers is not None else _default_workers(),
                              crop=crop, limit_batches=args.limit_batches)
        amp = _amp_dtype(args.amp, d.device)
        results = {"checkpoint": str(args.checkpoint), "arch": arch, "classes": len(classes)}
        data = args.data
        if data is not None or not (args.corruptions or args.imagenet_r or args.imagenet_a):
            spec = resolve_data(data, log=log)
            ds = load_split(spec, train=False, classes=classes)
            if ds is None:
                raise SystemExit(f"error: {data} has no validation split (val/)")
            from .evaluate import _loader

            log(f"clean: {len(ds)} images")
            results["clean"] = summarize(predict(model, _loader(ds, cfg, d), d, amp, limit_batches=args.limit_batches))
        if args.corruptions:
            log(f"corruptions in {args.corruptions} (top-1 error %, severities 1-5):")
            cc_cfg = SimpleNamespace(**{**vars(cfg), "crop": "pad"})  # corrupted sets are pre-cropped
            results["corruptions"] = evaluate_corruptions(model, args.corruptions, classes, cc_cfg, d, amp, log=log)
        if args.imagenet_r:
            results["imagenet_r"] = evaluate_subset(model, args.imagenet_r, classes, cfg, d, amp)
        if args.imagenet_a:
            results["imagenet_a"] = evaluate_subset(model, args.imagenet_a, classes, cfg, d, amp)
        if d.main:
            print(format_table(results))
            ck = Path(args.checkpoint)
            out = Path(args.json) if args.json else (ck if ck.is_dir() else ck.parent) / "eval.json"
            out.write_text(json.dumps(results, indent=2))
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
