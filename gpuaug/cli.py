"""The `gpuaug` command line: train, eval, demo, gallery, preview, fractals, doctor."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

PREVIEW_METHODS = ("augmix", "pixmix", "ipmix", "dynamic-mixup", "noisymix", "mixup", "cutmix", "cutout")


def _device_for(executor: str) -> str:
    """'cuda' when the executor asks for it (or auto and torch sees a GPU), else 'cpu'."""
    if executor == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if executor == "cuda":
        raise SystemExit("error: --executor cuda was asked for but torch sees no CUDA device")
    return "cpu"


def _on_device(batch: np.ndarray, device: str):
    if device == "cpu":
        return batch
    import torch

    return torch.from_numpy(batch).to(device)


def _out_file(path: str) -> Path:
    """--out as a file to write: its folder is created; a folder or a file in the way is
    an error naming --out."""
    out = Path(path)
    if out.is_dir():
        raise IsADirectoryError(f"--out {path!r} is a folder; name the PNG file to write, e.g. {path}/out.png")
    _out_folder(str(out.parent), path)
    return out


def _out_folder(path: str, given: str | None = None) -> Path:
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"--out {given or path!r}: cannot create the folder {path!r}, "
                                 "a file is in the way") from None
    return folder


def _cmd_gallery(args) -> int:
    from .gallery import op_gallery

    _device_for(args.executor)  # a clear error for --executor cuda without a GPU
    out = _out_file(args.out)
    op_gallery(size=args.size, executor=args.executor).save(out)
    print(f"wrote {out}")
    return 0


def _from_folder(option: str, what: str, folder: str, **kwargs):
    """MixingSet.from_folder with its errors naming the option and what the folder holds."""
    from .mixing import MixingSet

    try:
        return MixingSet.from_folder(folder, **kwargs)
    except (FileNotFoundError, NotADirectoryError, ValueError) as err:
        message = str(err).replace("mixing set ", f"{what} ", 1)
        raise type(err)(f"{option}: {message}") from None


def _load_inputs(folder: str | None, size: int, count: int, device: str):
    from .data import samples

    if folder is None:
        return _on_device(samples.batch(count, size), device)
    with warnings.catch_warnings():  # reported below, as input images rather than a mixing set
        warnings.simplefilter("ignore")
        loaded = _from_folder("--images", "input image", folder, resize=size, max_images=count)
    for reason, paths in loaded.skipped.items():
        print(f"skipped {len(paths)} file(s) in {folder}: {reason}", file=sys.stderr)
    return _on_device(np.asarray(loaded.images), device)


def _load_mixing(folder: str | None, size: int, device: str, seed: int):
    from .mixing import MixingSet

    if folder is None:
        return MixingSet.fractals(16, size=size, seed=seed, device=device)
    return _from_folder("--mixing", "mixing picture", folder, resize=size, device=device)


def _settings(text: str | None) -> dict:
    if not text:
        return {}
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--settings {text!r} is not valid JSON ({err}); write e.g. '{{\"k\": 4}}'") from None
    if not isinstance(settings, dict):
        raise ValueError(f"--settings must be a JSON object of method settings like '{{\"k\": 4}}', "
                         f"got {type(settings).__name__} {text!r}")
    return settings


def _make_method(name: str, text: str | None):
    from .methods import make_method

    settings = _settings(text)
    try:
        return make_method(name, **settings)
    except (TypeError, ValueError) as err:
        if not settings:
            raise
        raise ValueError(f"--settings {text!r}: {err}") from None


def _cmd_preview(args) -> int:
    from .preview import method_preview

    device = _device_for(args.executor)
    method = _make_method(args.method, args.settings)
    out = _out_file(args.out)
    images = _load_inputs(args.images, args.size, args.count, device)
    mixing = _load_mixing(args.mixing, args.size, device, args.seed) if getattr(method, "needs_mixing", False) else None
    method_preview(method, images, mixing, draws=args.draws, seed=args.seed, title=args.method).save(out)
    print(f"wrote {out} ({args.method} on {device})")
    return 0


def _cmd_fractals(args) -> int:
    from .fractals import write_fractal_pngs

    executor = "cuda" if _device_for(args.executor) == "cuda" else "cpu"
    _out_folder(args.out)
    paths = write_fractal_pngs(args.out, args.count, size=args.size, seed=args.seed, executor=executor)
    print(f"wrote {len(paths)} fractals to {args.out}")
    return 0


def _cmd_demo(args) -> int:
    """The op gallery, a preview of every method on the built-in scenes (fractal mixing
    pictures) and a few fractals, written to --out."""
    out = _out_folder(args.out)
    _cmd_gallery(argparse.Namespace(out=str(out / "ops.png"), size=args.size, executor=args.executor))
    for name in PREVIEW_METHODS:
        _cmd_preview(argparse.Namespace(
            method=name, images=None, mixing=None, size=args.size, count=3, draws=4, seed=args.seed,
            settings=None, executor=args.executor, out=str(out / f"preview-{name}.png")))
    _cmd_fractals(argparse.Namespace(out=str(out / "fractals"), count=8, size=args.size, seed=args.seed,
                                     executor=args.executor))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpuaug", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, size_default):
        p.add_argument("--size", type=_positive_int, default=size_default, help="image side in pixels")
        p.add_argument("--executor", choices=("auto", "cpu", "cuda"), default="auto",
                       help="auto: the GPU when torch sees one, else the CPU")
        p.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")

    # train and eval have their own parsers (gpuaug.train.cli); listed here for --help.
    sub.add_parser("train", help="train a classifier (no --data: a short run on built-in data)")
    sub.add_parser("eval", help="clean accuracy, calibration and corruption robustness of a model")

    from . import corrupt, scan

    scan.add_subparser(sub, _positive_int)
    corrupt.add_subparser(sub)

    p = sub.add_parser("demo", help="pictures of every op, method and fractals on built-in data")
    p.add_argument("--out", default="out", help="folder for the outputs (default: out/)")
    common(p, 128)
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser("gallery", help="a grid of every op at levels 1, 3, 6, 10")
    p.add_argument("--out", default="ops.png", help="PNG file to write (default: ops.png)")
    common(p, 128)
    p.set_defaults(run=_cmd_gallery)

    p = sub.add_parser("preview", help="inputs and augmented draws of one method side by side")
    p.add_argument("--method", required=True, choices=PREVIEW_METHODS)
    p.add_argument("--images", help="folder of input images (default: built-in scenes)")
    p.add_argument("--mixing", help="folder of mixing pictures for pixmix/ipmix (default: procedural fractals)")
    p.add_argument("--count", type=_positive_int, default=4, help="number of input images")
    p.add_argument("--draws", type=_positive_int, default=4, help="augmented draws per image")
    p.add_argument("--settings", help='method settings as JSON, e.g. \'{"k": 4, "beta": 4}\'')
    p.add_argument("--out", default="preview.png")
    common(p, 224)
    p.set_defaults(run=_cmd_preview)

    p = sub.add_parser("doctor", help="versions, GPUs, NVRTC and every method on the GPU vs the CPU")
    _doctor().add_arguments(p)
    p.set_defaults(run=lambda args: _doctor().run(args))

    p = sub.add_parser("fractals", help="write procedural fractal mixing pictures as PNG")
    p.add_argument("--out", required=True, help="folder to write fractal_00000.png ... into")
    p.add_argument("--count", type=_positive_int, default=16)
    common(p, 256)
    p.set_defaults(run=_cmd_fractals)
    return parser


def _doctor():
    from . import doctor

    return doctor


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _tolerant_stdout() -> None:
    """Print what the output encoding cannot take (a path that is not UTF-8 under a strict
    UTF-8 locale) as escapes instead of failing, as Python already does on stderr."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and getattr(sys.stdout, "errors", None) == "strict":
        reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _tolerant_stdout()
    if argv and argv[0] in ("train", "eval"):
        from .train import cli as train_cli

        return (train_cli.main_train if argv[0] == "train" else train_cli.main_eval)(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
