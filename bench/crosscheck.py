"""``python -m bench.crosscheck``: gpuaug's PixMix / NoisyMix training path against the
authors' own code, trained side by side on the built-in shapes set.

The robustness suite (:mod:`bench.robustness`) found PixMix and NoisyMix far behind
training without a method on the shapes set. This harness asks whether that is our code
or the methods on this data: it trains the same tiny CNN, in one plain loop, with

* ``none``: crop + flip only, cross-entropy;
* ``pixmix-gpuaug`` / ``pixmix-authors``: :class:`gpuaug.PixMix` on the batch, or the
  ``pixmix()`` function of the official ``cifar.py`` (andyzoujm/pixmix) per picture, both
  mixing with the same procedural fractals (256 pictures of 52 px, random 48 px crops);
* ``noisymix-gpuaug`` / ``noisymix-authors``: :class:`gpuaug.NoisyMix` views and
  :class:`gpuaug.train.noisymix.NoisyFeatureMixup`, or the official repo's (erichson/NoisyMix)
  ``aug_utils.aug`` views and ``src/noisy_mixup.do_noisy_mixup`` at a layer drawn from
  (input, layer1, layer2, layer3) as its networks' ``forward`` does, with its loss (mixup
  cross-entropy on the clean split + 12 x JSD);
* ``augmix-gpuaug`` / ``augmix-authors``: the AugMix data side of the same two sources, JSD
  without feature mixing (a control);
* ``noisymix-nonoise-gpuaug``: NoisyMix with both noise levels 0 (AugMix + JSD + the
  feature mixup alone), to tell which part of NoisyMix costs clean accuracy.

The authors' code is imported from checkouts the user gives (``--pixmix-repo``,
``--noisymix-repo``); nothing of it is part of gpuaug. It is written for CUDA and
numpy < 1.24, so the authors' arms run it on the CPU through small shims (``torch.cuda``
tensor constructors as CPU tensors, ``np.int``), set only in that arm's process.

Every arm: a random crop of the picture zero-padded by 4 pixels + a horizontal flip
(torchvision's ``RandomCrop(size, padding=4)``, as the authors' CIFAR scripts; ``gpuaug
train`` pads by size / 8, 6 pixels at 48), batch 32, SGD (momentum 0.9, Nesterov, weight decay 5e-4), lr 0.1 with one
linear warm-up epoch then a per-step cosine to 0 (``gpuaug train``'s shapes defaults),
ImageNet normalisation; evaluated on the 300 clean validation pictures and on their
regenerated corruptions (15 x 5, the robustness suite's set). One arm per process; the
driver runs ``--parallel`` of them at once with one torch thread each.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "gpuaug-bench-crosscheck/1"
ARMS = ("none", "pixmix-gpuaug", "pixmix-authors", "noisymix-gpuaug", "noisymix-authors",
        "augmix-gpuaug", "augmix-authors", "noisymix-nonoise-gpuaug")
PAD, BATCH, LR, WD, JSD_LAMBDA = 4, 32, 0.1, 5e-4, 12.0
SEVERITIES = 5
MIX_COUNT = 256  # the trainer's mixing pool on the shapes set: 256 pictures of 52 px for 48 px crops


def mixing_size(size: int) -> int:
    """Side of the mixing pictures for ``size`` crops: the trainer's (:func:`gpuaug.train.loop.mixing_side`)."""
    from gpuaug.train.loop import mixing_side

    return mixing_side(size)


# ----------------------------------------------------------------------------- data
def _load_split(folder: Path, classes: list | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """A split's pictures (uint8 NHWC), labels and classes, read as ``gpuaug train`` reads an
    ImageFolder (same scan and skips; ``classes`` pins validation's indices to training's)."""
    from gpuaug.train.data import image_folder

    split = image_folder(folder, classes)
    return np.stack([np.asarray(split.load(i)) for i in range(len(split))]), split.labels, split.classes


def _pad_crop_flip(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """torchvision's RandomCrop(size, padding=4) (zero fill) + RandomHorizontalFlip."""
    h, w = img.shape[:2]
    padded = np.zeros((h + 2 * PAD, w + 2 * PAD, 3), np.uint8)
    padded[PAD:PAD + h, PAD:PAD + w] = img
    y, x = rng.integers(0, 2 * PAD + 1, 2)
    out = padded[y:y + h, x:x + w]
    return out[:, ::-1] if rng.random() < 0.5 else out


# ----------------------------------------------------------------------------- authors' code
def _authors_shims() -> None:
    """Let CUDA-only, numpy-1.x code run on the CPU in this process."""
    import torch

    np.int = int  # removed in numpy 1.24; do_noisy_mixup uses it
    torch.cuda.FloatTensor = lambda *shape: torch.empty(*shape)
    torch.cuda.device = lambda *a, **k: contextlib.nullcontext()
    torch.Tensor.cuda = lambda self, *a, **k: self


def _import_from(repo: Path, module: str, argv: list[str] | None = None):
    """Import ``module`` from a checkout; ``argv``: what its module-level argparse reads."""
    sys.path.insert(0, str(repo))
    saved = sys.argv
    try:
        if argv is not None:
            sys.argv = [f"{module}.py", *argv]
        return importlib.import_module(module)
    finally:
        sys.argv = saved


def _authors_pixmix(repo: Path, size: int, k: int, beta: int, severity: int, all_ops: bool):
    """The official cifar.py's pixmix(orig, mixing_pic, preprocess) at these settings."""
    cifar = _import_from(repo, "cifar", ["--data-path", "unused", "--mixing-set", "unused", "--k", str(k),
                                         "--beta", str(beta), "--aug-severity", str(severity)]
                         + (["--all-ops"] if all_ops else []))
    cifar.utils.IMAGE_SIZE = size  # its ops' output size (32 for CIFAR)
    return cifar.pixmix


def _authors_noisymix(repo: Path, size: int):
    aug_utils = _import_from(repo, "aug_utils")
    aug_utils.augmentations.IMAGE_SIZE = size
    # src/__init__.py pulls in data code (the `robustness` package); load the one file alone
    spec = importlib.util.spec_from_file_location("authors_noisy_mixup", repo / "src" / "noisy_mixup.py")
    noisy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noisy)
    return aug_utils.aug, noisy.do_noisy_mixup, noisy.mixup_criterion


# ----------------------------------------------------------------------------- one arm
def _forward_mixed_authors(model, x, targets, do_noisy_mixup, settings):
    """The official networks' forward with NoisyMix on: k ~ U{0..3}; mix the input (k = 0)
    or the output of stage k (layer1..layer3 of the tiny CNN)."""
    import torch
    import torch.nn.functional as F

    kw = dict(jsd=1, alpha=settings["mix_alpha"], add_noise_level=settings["add_noise_level"],
              mult_noise_level=settings["mult_noise_level"], sparse_level=settings["sparse_level"])
    k = np.random.choice(range(4), 1)[0]
    if k == 0:
        x, ya, yb, lam = do_noisy_mixup(x, targets, **kw)
    out = model.conv1(x)
    for i, stage in enumerate((model.layer1, model.layer2, model.layer3)):
        out = stage(out)
        if k == i + 1:  # a copy: it writes in place, and ReLU's backward needs its output
            out, ya, yb, lam = do_noisy_mixup(out.clone(), targets, **kw)
    return model.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)), ya, yb, lam


def run_arm(arm: str, seed: int, epochs: int, data_root: Path, corrupted: Path, out: Path,
            pixmix_repo: Path | None, noisymix_repo: Path | None) -> dict:
    import torch
    import torch.nn.functional as F

    import gpuaug
    from gpuaug.mixing import MixingSet
    from gpuaug.normalization import mean_std
    from gpuaug.train.losses import js_divergence
    from gpuaug.train.models import build_model
    from gpuaug.train.noisymix import NoisyFeatureMixup

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)  # the authors' code draws from numpy's global generator
    rng = np.random.default_rng(seed)
    train_x, train_y, train_classes = _load_split(data_root / "train")
    val_x, val_y, _ = _load_split(data_root / "val", train_classes)
    classes = len(train_classes)
    size = train_x.shape[1]
    mean = torch.tensor(mean_std("imagenet")[0]).view(1, 3, 1, 1)
    std = torch.tensor(mean_std("imagenet")[1]).view(1, 3, 1, 1)

    def normalize(float_nhwc: torch.Tensor) -> torch.Tensor:  # [0, 1] NHWC -> normalised NCHW
        return (float_nhwc.permute(0, 3, 1, 2) - mean) / std

    def to_float(u8: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(u8.astype(np.float32) / 255.0)

    method, family = arm.split("-")[0], "authors" if arm.endswith("-authors") else "gpuaug"
    pix_settings = dict(k=4, beta=3, severity=3, all_ops=True)  # pipelines/cifar-pixmix.toml
    nm = gpuaug.NoisyMix()  # the CIFAR recipe's settings are its defaults (pipelines/cifar-noisymix.toml)
    nm_settings = dict(mix_alpha=nm.mix_alpha, add_noise_level=nm.add_noise_level,
                       mult_noise_level=nm.mult_noise_level, sparse_level=nm.sparse_level)
    mixing = MixingSet.fractals(MIX_COUNT, size=mixing_size(size), seed=0) if method == "pixmix" else None
    model = build_model("tiny", classes)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=WD)
    steps_per_epoch = len(train_x) // BATCH
    total = steps_per_epoch * epochs

    def lr_at(step: int) -> float:  # one linear warm-up epoch, then cosine to 0
        if step < steps_per_epoch:
            return LR * (step + 1) / steps_per_epoch
        t = (step - steps_per_epoch) / max(1, total - steps_per_epoch)
        return 0.5 * LR * (1 + np.cos(np.pi * t))

    if family == "authors":
        from PIL import Image
        from torchvision import transforms

        _authors_shims()
        to_tensor = transforms.ToTensor()
        if method == "pixmix":
            pixmix_fn = _authors_pixmix(pixmix_repo, size, **pix_settings)
            crop = transforms.RandomCrop(size)  # the official mixing_set_transform: Resize(36) + RandomCrop(32)
            mix_pics = [Image.fromarray(p) for p in _mixing_pictures(mixing)]
            preprocess = {"tensorize": to_tensor, "normalize": lambda t: t}  # normalised below, as every arm
        else:
            aug_fn, do_noisy_mixup, mixup_criterion = _authors_noisymix(noisymix_repo, size)
            aug_args = SimpleNamespace(all_ops=nm.all_ops, mixture_width=nm.width, mixture_depth=nm.depth,
                                       aug_severity=nm.severity)

    nfm = None
    if arm == "noisymix-gpuaug":
        nfm = NoisyFeatureMixup.from_config(model, nm)
    elif arm == "noisymix-nonoise-gpuaug":  # the feature mixup alone: which part costs the clean error
        nfm = NoisyFeatureMixup(model, nm.mix_alpha, nm.manifold_mixup, add_noise_level=0.0, mult_noise_level=0.0,
                                sparse_level=nm.sparse_level)
    log_rows, step, start = [], 0, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train_x))
        loss_sum = correct = seen = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * BATCH:(b + 1) * BATCH]
            crops = np.stack([_pad_crop_flip(train_x[i], rng) for i in idx])
            y = torch.from_numpy(train_y[idx])
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            step_seed = int(rng.integers(2 ** 62))
            if arm == "none":
                logits = model(normalize(to_float(crops)))
                loss = F.cross_entropy(logits, y)
            elif arm == "pixmix-gpuaug":
                x = torch.from_numpy(gpuaug.PixMix(**pix_settings)(crops, mixing=mixing, seed=step_seed))
                logits = model(normalize(x))
                loss = F.cross_entropy(logits, y)
            elif arm == "pixmix-authors":
                x = torch.stack([pixmix_fn(Image.fromarray(c), crop(mix_pics[np.random.randint(len(mix_pics))]),
                                           preprocess) for c in crops]).permute(0, 2, 3, 1)
                logits = model(normalize(x))
                loss = F.cross_entropy(logits, y)
            elif family == "gpuaug":  # augmix / noisymix: JSD triple of gpuaug's AugMix data side
                views = (nm if method == "noisymix" else gpuaug.AugMix()).views(crops, seed=step_seed)
                x = normalize(torch.cat([torch.from_numpy(v) for v in views]))
                targets = y
                if nfm is not None:
                    draw = nfm.draw(len(idx), 3, rng)
                    targets = nfm.targets(y, classes, draw)
                    with nfm.armed(draw, torch.Generator().manual_seed(step_seed)):
                        logits = model(x)
                else:
                    logits = model(x)
                splits = torch.chunk(logits, 3)
                loss = F.cross_entropy(splits[0], targets) + JSD_LAMBDA * js_divergence(*splits)
            else:  # augmix / noisymix with the official NoisyMix repo's AugMixDataset views
                pil = [Image.fromarray(c) for c in crops]
                views = [torch.stack([to_tensor(p) for p in pil])]
                views += [torch.stack([aug_fn(p, to_tensor, aug_args) for p in pil]) for _ in range(2)]
                x = normalize(torch.cat(views).permute(0, 2, 3, 1))
                if method == "noisymix":
                    logits, ya, yb, lam = _forward_mixed_authors(model, x, y, do_noisy_mixup, nm_settings)
                    splits = torch.chunk(logits, 3)
                    ce = mixup_criterion(F.cross_entropy, splits[0], ya, yb, lam)
                else:
                    logits = model(x)
                    splits = torch.chunk(logits, 3)
                    ce = F.cross_entropy(splits[0], y)
                loss = ce + JSD_LAMBDA * js_divergence(*splits)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            correct += float((logits[:len(idx)].argmax(1) == y).sum())
            seen += len(idx)
        val_err = _error(model, normalize, to_float, val_x, val_y)
        log_rows.append({"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_top1": correct / seen,
                         "val_error": val_err, "wall_s": round(time.perf_counter() - start, 1)})
        print(json.dumps({"arm": arm, "seed": seed, **log_rows[-1]}), flush=True)
    corrupt = {}
    labels = np.load(corrupted / "labels.npy")
    for f in sorted(corrupted.glob("*.npy")):
        if f.name == "labels.npy":
            continue
        arr = np.load(f)  # severities 1..5 one after another; labels.npy repeats per severity, as CIFAR-10-C's
        per = len(arr) // SEVERITIES
        corrupt[f.stem] = [_error(model, normalize, to_float, arr[s * per:(s + 1) * per],
                                  labels[s * per:(s + 1) * per]) for s in range(SEVERITIES)]
    result = {"arm": arm, "seed": seed, "epochs": epochs, "clean_error": log_rows[-1]["val_error"],
              "mean_corruption_error": float(np.mean([np.mean(v) for v in corrupt.values()])),
              "corruption_errors": corrupt, "epochs_log": log_rows, "wall_s": round(time.perf_counter() - start, 1)}
    out.write_text(json.dumps(result, indent=1))
    return result


def _mixing_pictures(mixing) -> np.ndarray:
    """The MixingSet's pictures as a uint8 (N, S, S, 3) numpy array."""
    pics = mixing.images
    return np.asarray(pics.cpu() if hasattr(pics, "cpu") else pics)


# ----------------------------------------------------------------------------- distributions
def distributions(data_root: Path, pixmix_repo: Path | None, noisymix_repo: Path | None, draws: int = 15,
                  images: int = 96) -> list[dict]:
    """Per-draw statistics of gpuaug's and the authors' augmentation, compared by a
    two-sample Kolmogorov-Smirnov test (no training). PixMix: ``images`` training pictures x
    ``draws`` draws each, same fractal pool; NoisyMix: 1,500 feature-mixing steps on one
    fixed (3 x 16, 8, 6, 6) ReLU feature batch. Runs the authors' code: call it in its own
    process (the shims patch torch)."""
    import torch
    from scipy.stats import ks_2samp

    import gpuaug
    from gpuaug.mixing import MixingSet
    from gpuaug.train.noisymix import NoisyFeatureMixup

    torch.set_num_threads(1)
    _authors_shims()
    rows = []

    def compare(method, name, ours, theirs):
        rows.append({"method": method, "statistic": name, "gpuaug_mean": float(np.mean(ours)),
                     "authors_mean": float(np.mean(theirs)), "n": [len(ours), len(theirs)],
                     "ks_p": float(ks_2samp(ours, theirs).pvalue)})

    if pixmix_repo is not None:
        from PIL import Image
        from torchvision import transforms

        train_x, _, _ = _load_split(data_root / "train")
        size = train_x.shape[1]
        picked = train_x[np.random.default_rng(0).choice(len(train_x), min(images, len(train_x)), replace=False)]
        mixing = MixingSet.fractals(MIX_COUNT, size=mixing_size(size), seed=0)
        pics = [Image.fromarray(p) for p in _mixing_pictures(mixing)]
        settings = dict(k=4, beta=3, severity=3, all_ops=True)
        pixmix_fn = _authors_pixmix(pixmix_repo, size, **settings)
        crop, pre = transforms.RandomCrop(size), {"tensorize": transforms.ToTensor(), "normalize": lambda t: t}
        np.random.seed(1)
        torch.manual_seed(1)  # the mixing picture's RandomCrop
        orig = np.concatenate([picked] * draws).astype(np.float32) / 255
        ours = np.concatenate([gpuaug.PixMix(**settings)(picked, mixing=mixing, seed=s) for s in range(draws)])
        theirs = np.stack([pixmix_fn(Image.fromarray(im), crop(pics[np.random.randint(len(pics))]), pre)
                           .permute(1, 2, 0).numpy() for im in np.concatenate([picked] * draws)])
        for name, f in (("mean abs(out - x)", lambda o: np.abs(o - orig).mean((1, 2, 3))),
                        ("mean of out", lambda o: o.mean((1, 2, 3))),
                        ("std of out", lambda o: o.std((1, 2, 3))),
                        ("fraction of pixels at 0 or 1", lambda o: ((o <= 0) | (o >= 1)).mean((1, 2, 3))),
                        ("fraction of pixels unchanged", lambda o: (np.abs(o - orig) < 1e-6).mean((1, 2, 3)))):
            compare("pixmix", name, f(ours), f(theirs))
    if noisymix_repo is not None:
        _, do_noisy_mixup, _ = _authors_noisymix(noisymix_repo, 32)
        nm = gpuaug.NoisyMix()
        n = 16
        np.random.seed(0)
        torch.manual_seed(0)
        h = torch.relu(torch.randn(3 * n, 8, 6, 6))
        nfm = NoisyFeatureMixup(torch.nn.Module(), nm.mix_alpha, False, nm.add_noise_level, nm.mult_noise_level,
                                nm.sparse_level)
        rng = np.random.default_rng(0)
        ours, theirs = [], []

        def stats(out):
            parts = [(out[k * n:(k + 1) * n], h[k * n:(k + 1) * n]) for k in range(3)]
            return [v for o, x in parts for v in (float((o - x).abs().mean()), float(o.std()),
                                                  float((o < 0).float().mean()))]

        for _ in range(1500):
            out, *_ = do_noisy_mixup(h.clone(), torch.zeros(n, dtype=torch.long), jsd=1, alpha=nm.mix_alpha,
                                     add_noise_level=nm.add_noise_level, mult_noise_level=nm.mult_noise_level,
                                     sparse_level=nm.sparse_level)
            theirs.append(stats(out))
            ours.append(stats(nfm.apply(h, nfm.draw(n, 3, rng))))
        ours, theirs = np.asarray(ours), np.asarray(theirs)
        names = [f"{split}: {stat}" for split in ("clean split", "aug1 split", "aug2 split")
                 for stat in ("mean abs(out - h)", "std of out", "fraction of out < 0")]
        for i, name in enumerate(names):
            compare("noisymix (feature step)", name, ours[:, i], theirs[:, i])
    return rows


def distributions_table(rows: list[dict]) -> str:
    """Markdown: one row per compared statistic."""
    lines = ["| method | statistic (per draw) | gpuaug mean | authors' mean | draws | KS p |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['statistic']} | {r['gpuaug_mean']:.4f} | {r['authors_mean']:.4f} "
                     f"| {r['n'][0]} + {r['n'][1]} | {r['ks_p']:.3g} |")
    return "\n".join(lines)


def _error(model, normalize, to_float, x: np.ndarray, y: np.ndarray) -> float:
    import torch

    model.eval()
    wrong = 0
    with torch.no_grad():
        for i in range(0, len(x), 256):
            logits = model(normalize(to_float(x[i:i + 256])))
            wrong += int((logits.argmax(1).numpy() != y[i:i + 256]).sum())
    model.train()
    return wrong / len(x)


# ----------------------------------------------------------------------------- driver
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.crosscheck",
                                description="Train the tiny CNN with gpuaug's and the authors' PixMix / NoisyMix "
                                            "/ AugMix side by side on the shapes set (see bench/README.md).")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma list (default all: {','.join(ARMS)})")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--pixmix-repo", type=Path, help="a checkout of andyzoujm/pixmix (for pixmix-authors)")
    p.add_argument("--noisymix-repo", type=Path,
                   help="a checkout of erichson/NoisyMix (for noisymix-authors and augmix-authors)")
    p.add_argument("--data", type=Path,
                   help="an ImageFolder root with train/ and val/ (default: the built-in shapes set)")
    p.add_argument("--corruptions", default="common", help="what gpuaug corrupt writes of val/ (default: the 15)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "crosscheck")
    p.add_argument("--parallel", type=int, default=2, help="arms at once, one torch thread each")
    p.add_argument("--skip-distributions", action="store_true",
                   help="do not compare per-draw statistics with the authors' code before training")
    p.add_argument("--collect", action="store_true",
                   help="only write crosscheck.json / .md from the runs already in --out (several invocations)")
    p.add_argument("--one", nargs=2, metavar=("ARM", "SEED"), help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if not (args.one or args.collect):  # refuse a bad request before building anything
        arms = [a.strip() for a in args.arms.split(",")]
        bad = [a for a in arms if a not in ARMS]
        if bad:
            raise SystemExit(f"--arms: unknown {bad}; choose from {', '.join(ARMS)}")
        if "pixmix-authors" in arms and args.pixmix_repo is None:
            raise SystemExit("pixmix-authors needs --pixmix-repo (a checkout of andyzoujm/pixmix)")
        if {"noisymix-authors", "augmix-authors"} & set(arms) and args.noisymix_repo is None:
            raise SystemExit("noisymix-authors and augmix-authors need --noisymix-repo "
                             "(a checkout of erichson/NoisyMix)")
        if args.epochs < 1 or args.parallel < 1:
            raise SystemExit("--epochs and --parallel must be >= 1")
        try:
            seeds = [int(v) for v in args.seeds.split(",")]
        except ValueError:
            raise SystemExit(f"--seeds: a comma list of integers, got {args.seeds!r}") from None
    if args.collect:
        print(collect(args.out, list(argv if argv is not None else sys.argv[1:]), args.pixmix_repo,
                      args.noisymix_repo))
        return 0
    from gpuaug.corrupt import corrupt_dataset
    from gpuaug.train import synthetic

    data_root = args.data if args.data is not None else synthetic.build(
        train_per_class=synthetic.TRAIN_PER_CLASS, val_per_class=synthetic.VAL_PER_CLASS, size=synthetic.SIZE)
    corrupted = args.out / "corrupted-val"
    if args.one and args.one[0] == "distributions":
        rows = distributions(data_root, args.pixmix_repo, args.noisymix_repo)
        (args.out / "distributions.json").write_text(json.dumps(rows, indent=1))
        return 0
    if args.one:
        arm, seed = args.one[0], int(args.one[1])
        run_arm(arm, seed, args.epochs, data_root, corrupted, args.out / f"{arm}-seed{seed}.json",
                args.pixmix_repo, args.noisymix_repo)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    corrupt_dataset(str(data_root / "val") if args.data is not None else None, corrupted, args.corruptions,
                    list(range(1, SEVERITIES + 1)), layout="cifar-c", workers=min(2, args.parallel))
    jobs = [(a, s) for s in seeds for a in arms]
    if not args.skip_distributions and (args.pixmix_repo or args.noisymix_repo):
        jobs.insert(0, ("distributions", 0))
    running: list[tuple[subprocess.Popen, object, Path]] = []
    failed = []
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "bench.crosscheck", "--epochs", str(args.epochs), "--out", str(args.out)]
    for flag, val in (("--pixmix-repo", args.pixmix_repo), ("--noisymix-repo", args.noisymix_repo),
                      ("--data", args.data)):
        if val is not None:
            base += [flag, str(val)]
    while jobs or running:
        while jobs and len(running) < args.parallel:
            arm, seed = jobs.pop(0)
            log_path = args.out / f"{arm}-seed{seed}.log"
            log = open(log_path, "w")
            running.append((subprocess.Popen(base + ["--one", arm, str(seed)], stdout=log, stderr=subprocess.STDOUT,
                                             env=env, cwd=ROOT, stdin=subprocess.DEVNULL), log, log_path))
        time.sleep(0.5)
        for proc, log, log_path in list(running):
            if proc.poll() is None:
                continue
            log.close()
            running.remove((proc, log, log_path))
            name = " seed ".join(proc.args[-2:])
            if proc.returncode:
                failed.append(name)
                tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-8:])
                print(f"{name}: FAILED (exit {proc.returncode}, log {log_path}):\n{tail}", flush=True)
            else:
                print(f"{name}: done", flush=True)
    print(collect(args.out, list(argv if argv is not None else sys.argv[1:]), args.pixmix_repo, args.noisymix_repo))
    return 1 if failed else 0


def collect(out: Path, argv: list[str], pixmix_repo: Path | None, noisymix_repo: Path | None) -> str:
    """Write ``crosscheck.json`` (every run in ``out``, the distribution comparison, the
    machine) and ``crosscheck.md``; returns the markdown."""
    from . import common

    table = summary(out)
    runs = [json.loads(f.read_text()) for f in sorted(out.glob("*-seed*.json"))]
    combined = {"schema": SCHEMA, "meta": common.environment(argv),
                "authors_checkouts": {"pixmix": str(pixmix_repo), "noisymix": str(noisymix_repo)},
                "runs": runs, "table": table}
    dist = out / "distributions.json"
    if dist.exists():
        combined["distributions"] = json.loads(dist.read_text())
        table += "\n\n" + distributions_table(combined["distributions"])
    (out / "crosscheck.json").write_text(json.dumps(combined, indent=1))
    (out / "crosscheck.md").write_text(table + "\n")
    return table


def _pm(values) -> str:
    v = np.asarray(values, np.float64)
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v.mean():.1f}"


def summary(out: Path) -> str:
    """Markdown table of every ``<arm>-seed<N>.json`` in ``out``: errors per seed and their
    mean ± sample std, the corruption - clean gap, and mean corruption error minus the
    ``none`` arm's of the same seed."""
    rows = [json.loads(f.read_text()) for f in sorted(out.glob("*-seed*.json"))]
    by: dict[str, list] = {}
    for r in rows:
        by.setdefault(r["arm"], []).append(r)
    base = {r["seed"]: r["mean_corruption_error"] for r in by.get("none", [])}
    lines = ["| arm | epochs | seeds | clean error % (per seed) | clean error % | mean corruption error % "
             "| corruption − clean | vs none (paired) | final train loss |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arm in ARMS:
        rs = sorted(by.get(arm, []), key=lambda r: r["seed"])
        if not rs:
            continue
        ce = [100 * r["clean_error"] for r in rs]
        mc = [100 * r["mean_corruption_error"] for r in rs]
        paired = [100 * (r["mean_corruption_error"] - base[r["seed"]]) for r in rs if r["seed"] in base]
        vs = "—" if arm == "none" or not paired else f"{np.mean(paired):+.1f} ({len(paired)} seeds)"
        lines.append(f"| {arm} | {rs[0]['epochs']} | {','.join(str(r['seed']) for r in rs)} | "
                     f"{' / '.join(f'{v:.1f}' for v in ce)} | {_pm(ce)} | {_pm(mc)} | "
                     f"{_pm([m - c for m, c in zip(mc, ce)])} | {vs} | "
                     f"{np.mean([r['epochs_log'][-1]['train_loss'] for r in rs]):.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
