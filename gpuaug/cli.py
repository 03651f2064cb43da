"""The `gpuaug` command line: demo, gallery, fractals (more subcommands join as they land)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_gallery(args) -> int:
    from .gallery import op_gallery

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    op_gallery(size=args.size, executor=args.executor).save(out)
    print(f"wrote {out}")
    return 0


def _cmd_demo(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.out = str(out / "ops.png")
    return _cmd_gallery(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpuaug", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gallery", help="write a grid of every op at a few strengths")
    p.add_argument("--out", default="ops.png", help="PNG file to write (default: ops.png)")
    p.add_argument("--size", type=_positive_int, default=128, help="tile side in pixels")
    p.add_argument("--executor", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(run=_cmd_gallery)

    p = sub.add_parser("demo", help="the main job on built-in data; writes pictures to --out")
    p.add_argument("--out", default="out", help="folder for the outputs (default: out/)")
    p.add_argument("--size", type=_positive_int, default=128, help="tile side in pixels")
    p.add_argument("--executor", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(run=_cmd_demo)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
