"""``gpuaug scan ROOT``: validate a data set ahead of training and print the skip report.

Runs the loaders' check (validate="decode" by default: every image decoded once,
strictly, in worker processes) and fills the validation cache, so the loaders built on
ROOT later start at once. ROOT is an ImageFolder tree (ROOT/<class>/<image>) or a file
list ('<path> <label>' lines).
"""

from __future__ import annotations

import os
import sys
import time

SHOW = 20  # skipped paths listed per reason without --all


def add_subparser(sub, positive_int) -> None:
    """``gpuaug scan``'s options on ``sub``; ``positive_int``: the CLI's argument type for counts."""
    p = sub.add_parser("scan", help="check every image of a data set once (cached) and list the files "
                                    "the loaders will skip",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("root", metavar="ROOT", help="an ImageFolder tree or a '<path> <label>' list file")
    p.add_argument("--validate", choices=("decode", "header"), default="decode",
                   help="decode (default): decode every image strictly; header: two small reads per file")
    p.add_argument("--workers", type=positive_int, help="decoding processes (default: the CPU count, at most 8)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the validation cache")
    p.add_argument("--all", action="store_true", help=f"list every skipped file (default: the first {SHOW} "
                                                      "per reason)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Scan, print the report; Ctrl-C exits 130 keeping the verdicts finished so far."""
    try:
        return _scan(args)
    except KeyboardInterrupt:
        kept = ("nothing is cached (--no-cache)" if args.no_cache else
                "the verdicts finished so far are kept in the validation cache: run it again to continue")
        print(f"\ngpuaug scan: interrupted; {kept}", file=sys.stderr)
        return 130


def _scan(args) -> int:
    from .data import datafiles
    from .data.checkcache import cache_file
    from .data.datafiles import printable

    start = time.monotonic()
    if os.path.isfile(args.root):
        samples = datafiles.read_file_list(args.root, validate=args.validate, workers=args.workers,
                                           cache=not args.no_cache)
        what = f"{len(samples)} usable files"
    else:
        samples = datafiles.scan_image_folder(args.root, validate=args.validate, workers=args.workers,
                                              cache=not args.no_cache)
        what = f"{len(samples)} usable images in {len(samples.classes)} classes"
    n_skipped = sum(map(len, samples.skipped.values()))
    print(f"{printable(args.root)}: {what}, {n_skipped} skipped ({time.monotonic() - start:.1f} s, "
          f"validate={args.validate})")
    base = args.root if os.path.isdir(args.root) else os.path.dirname(os.path.abspath(args.root))
    for reason in datafiles.SKIP_REASONS:
        paths = samples.skipped.get(reason, [])
        if not paths:
            continue
        print(f"  {reason}: {len(paths)}")
        for p in paths if args.all else paths[:SHOW]:
            detail = samples.details.get(p)
            print(f"    {printable(os.path.relpath(p, base))}" + (f"  ({printable(detail)})" if detail else ""))
        if len(paths) > SHOW and not args.all:
            print(f"    ... {len(paths) - SHOW} more (--all lists them)")
    if samples.empty_classes:
        print(f"  empty class folders (labels kept): {printable(', '.join(samples.empty_classes))}")
    if args.validate == "decode" and not args.no_cache and os.path.isdir(args.root):
        print(f"validation cache: {printable(cache_file(args.root))}", file=sys.stderr)
    return 0
