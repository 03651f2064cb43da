"""``python -m bench`` (and ``gpuaug bench``): run suites, print a table, write JSON, draw a chart.

    python -m bench [run] --suite augment,roofline,loader,train,host|all --size smoke|full
    python -m bench --suite robustness [--size smoke|default|full]   (bench/robustness.py)
                    [--out bench/out] [--name NAME] [--chart] [--methods ipmix,augmix]
                    [--image-sizes 224,32] [--batches 64,256] [--repeats N] [--warmup N]
                    [--workers N] [--data-dir DIR]
    python -m bench chart RESULT.json [--out RESULT.png]
    python -m bench table RESULT.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import common

SUITES = ("augment", "roofline", "loader", "train", "host")
ALL_SUITES = ("augment", "roofline", "loader", "train")  # "all"; the host suite runs on its own
SIZES = ("smoke", "full")
# Untracked (.gitignore): a run never writes into the tree. bench/results/ holds the
# committed results the README quotes; copy a run there (or pass --out) to publish it.
DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def settings(size: str, workers: int, data_dir: str | None) -> dict:
    """Per-suite settings of a size. ``smoke``: seconds on a CPU, to keep the code alive
    (CI); ``full``: the figures to report (run on a GPU machine)."""
    from . import data, loader

    methods = list(data.METHODS)
    if size == "smoke":
        jpegs = 16
        ddir = data_dir or loader.default_data_dir(jpegs)
        return {
            "augment": dict(image_sizes=[32], methods=methods, gpu_batches=[8], headline_batch=8,
                            cpu_batch={32: 8}, cpu_batch_all={32: 8}, dl_batch=4, dl_images_1={32: 8},
                            dl_images_all={32: 8}, warmup=1, repeats=2, cpu_warmup=1, cpu_repeats=2,
                            mixing_count=4, pool_count=8, workers=workers),
            "roofline": dict(image_sizes=[32], methods=methods, batch=8, warmup=1, repeats=2, mixing_count=4,
                             pool_count=8, bw_bytes=64 << 20),
            "loader": dict(data_dir=ddir, jpeg_count=jpegs, classes=4, image_size=64, batch=4, methods=["ipmix"],
                           batches_per_run=2, warmup=1, repeats=2, workers=workers, mixing_count=4),
            "train": dict(data_dir=ddir, jpeg_count=jpegs, classes=4, image_size=32, batch=4, method="ipmix",
                          jsd=True, steps_per_run=1, warmup=1, repeats=2, workers=workers, mixing_count=4,
                          arch="resnet50"),
            "host": dict(image_sizes=[32], methods=methods, batches=[8], warmup=1, min_repeats=2, repeats=2,
                         budget_s=0.0, mixing_count=4),
        }
    jpegs = 2048
    ddir = data_dir or loader.default_data_dir(jpegs)
    return {
        "augment": dict(image_sizes=[224, 32], methods=methods, gpu_batches=[64, 256, 1024], headline_batch=256,
                        cpu_batch={224: 16, 32: 256}, cpu_batch_all={224: 256, 32: 4096}, dl_batch=64,
                        dl_images_1={224: 128, 32: 1024}, dl_images_all={224: 1024, 32: 8192}, warmup=3,
                        repeats=10, cpu_warmup=1, cpu_repeats=3, mixing_count=256, pool_count=64, workers=workers),
        "roofline": dict(image_sizes=[224, 32], methods=methods, batch=256, warmup=3, repeats=10,
                         mixing_count=256, pool_count=64, bw_bytes=1 << 30),
        "loader": dict(data_dir=ddir, jpeg_count=jpegs, classes=10, image_size=224, batch=256, methods=methods,
                       batches_per_run=8, warmup=1, repeats=3, workers=workers, mixing_count=256),
        "train": dict(data_dir=ddir, jpeg_count=jpegs, classes=10, image_size=224, batch=128, method="ipmix",
                      jsd=True, steps_per_run=20, warmup=1, repeats=3, workers=workers, mixing_count=256,
                      arch="resnet50"),
        "host": dict(image_sizes=[224, 32], methods=methods, batches=[64, 256, 1024], warmup=2, min_repeats=5,
                     repeats=30, budget_s=1.0, mixing_count=16),
    }


def _csv(text, cast=str):
    return [cast(v) for v in text.split(",") if v.strip()]


def _apply_overrides(cfg: dict, args) -> dict:
    for suite, c in cfg.items():
        if args.methods:
            if suite == "train":
                c["method"] = args.methods[0]
            else:
                c["methods"] = list(args.methods)
        if args.image_sizes:
            if "image_sizes" in c:
                c["image_sizes"] = list(args.image_sizes)
                for key in ("cpu_batch", "cpu_batch_all", "dl_images_1", "dl_images_all"):
                    if key in c:  # sizes not in the table take the nearest one's figure
                        known = sorted(c[key])
                        c[key] = {s: c[key].get(s, c[key][min(known, key=lambda k: abs(k - s))])
                                  for s in args.image_sizes}
            else:
                c["image_size"] = args.image_sizes[0]
        if args.batches:
            if suite == "augment":
                c["gpu_batches"] = list(args.batches)
                c["headline_batch"] = args.batches[len(args.batches) // 2]
            elif suite == "roofline":
                c["batch"] = args.batches[len(args.batches) // 2]
            elif suite == "host":
                c["batches"] = list(args.batches)
        if args.repeats:
            c["repeats"] = args.repeats
            if "cpu_repeats" in c:
                c["cpu_repeats"] = args.repeats
            if "min_repeats" in c:
                c["min_repeats"] = min(c["min_repeats"], args.repeats)
        if args.warmup is not None:
            c["warmup"] = args.warmup
            if "cpu_warmup" in c:
                c["cpu_warmup"] = args.warmup
        if args.impls and suite in ("augment", "loader", "train"):
            c["impls"] = list(args.impls)
    return cfg


def _output_path(out: Path, name: str | None, device: dict) -> Path:
    import datetime as dt

    if name:
        return out / (name if name.endswith(".json") else name + ".json")
    tag = "cpu" if not device.get("cuda") else "".join(
        ch if ch.isalnum() else "-" for ch in device["name"].lower()).strip("-")
    stem = f"{tag}-{dt.date.today().isoformat()}"
    path, k = out / f"{stem}.json", 2
    while path.exists():
        path, k = out / f"{stem}-{k}.json", k + 1
    return path


def run_suites(suites, size="smoke", out=DEFAULT_OUT, name=None, chart=False, argv=(), args=None,
               workers=None, data_dir=None, quiet=False) -> tuple[dict, Path]:
    """Run ``suites`` at ``size``; write the JSON (and PNG with ``chart``); return both."""
    from . import augment, host, loader, roofline, train

    runners = {"augment": augment.run, "roofline": roofline.run, "loader": loader.run, "train": train.run,
               "host": host.run}
    workers = workers or common.all_cores()
    cfg = settings(size, workers, data_dir)
    if args is not None:
        cfg = _apply_overrides(cfg, args)
    result = {"schema": common.SCHEMA, "size": size, "suites_requested": list(suites),
              "meta": common.environment(list(argv)), "suites": {}}
    for suite in suites:
        common.log(f"== suite {suite} ({size})")
        try:
            result["suites"][suite] = runners[suite](cfg[suite])
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # noqa: BLE001 - a broken suite is recorded, the others run
            result["suites"][suite] = {"settings": cfg[suite], "rows": [common.errored(
                {"suite": suite, "name": f"{suite}/setup", "method": None, "impl": "setup"}, err)]}
    try:
        result["meta"]["loadavg_at_end"] = list(os.getloadavg())
    except OSError:
        pass
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = _output_path(out, name, result["meta"]["device"])
    path.write_text(json.dumps(result, indent=1, default=_json_default))
    if not quiet:
        from .report import print_table

        print_table(result)
        print(f"\nwrote {path}")
    if chart:
        from .chart import draw

        png = draw(result, path.with_suffix(".png"))
        if not quiet:
            print(f"wrote {png}")
    return result, path


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray, tuple, set)):
        return list(o)
    return str(o)


def _run_parser():
    p = argparse.ArgumentParser(prog="python -m bench", description="gpuaug throughput benchmarks "
                                "(subcommands: run [default], chart RESULT.json, table RESULT.json)")
    p.add_argument("--suite", default="all", help="comma list of augment, roofline, loader, train, host, or all (all but host); "
                   "robustness (alone: trains models, see python -m bench --suite robustness --help)")
    p.add_argument("--size", choices=SIZES, default="smoke", help="smoke: seconds, CPU (CI); full: the real figures")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the JSON (and PNG); default bench/out (not tracked by git)")
    p.add_argument("--name", default=None, help="file name of the JSON (default: <device>-<date>.json)")
    p.add_argument("--chart", action="store_true", help="also draw a PNG chart next to the JSON")
    p.add_argument("--methods", type=_csv, default=None, help="comma list (default: the five methods)")
    p.add_argument("--image-sizes", type=lambda t: _csv(t, int), default=None)
    p.add_argument("--batches", type=lambda t: _csv(t, int), default=None, help="cuda batch sizes (augment, host)")
    p.add_argument("--impls", type=_csv, default=None, help="only these implementations (augment/loader/train)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="'all cores' worker count (default: usable cores)")
    p.add_argument("--data-dir", default=None, help="generated JPEG folder (default bench/.data/jpeg-<count>)")
    p.add_argument("--quiet", action="store_true")
    return p


def _suite_value(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--suite" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--suite="):
            return a.split("=", 1)[1]
    return None


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("chart", "table"):
        p = argparse.ArgumentParser(prog=f"python -m bench {argv[0]}")
        p.add_argument("result", help="a bench JSON file")
        if argv[0] == "chart":
            p.add_argument("--out", default=None, help="PNG path (default: next to the JSON)")
        a = p.parse_args(argv[1:])
        result = json.loads(Path(a.result).read_text())
        if result.get("schema", "").startswith("gpuaug-bench-robustness"):
            from . import robustness

            if argv[0] == "table":
                print(robustness.table(result))
                return 0
            print(f"wrote {robustness.draw(result, a.out or Path(a.result).with_suffix('.png'))}")
            return 0
        if argv[0] == "table":
            from .report import print_table

            print_table(result)
            return 0
        from .chart import draw

        print(f"wrote {draw(result, a.out or Path(a.result).with_suffix('.png'))}")
        return 0
    if argv and argv[0] == "run":
        argv = argv[1:]
    if _suite_value(argv) == "robustness":  # trains models: its own sizes and options
        from . import robustness

        return robustness.main(argv)
    args = _run_parser().parse_args(argv)
    suites = list(ALL_SUITES) if args.suite == "all" else _csv(args.suite)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        print(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)} or all", file=sys.stderr)
        return 2
    result, _ = run_suites(suites, args.size, args.out, args.name, args.chart, argv, args,
                           workers=args.workers, data_dir=args.data_dir, quiet=args.quiet)
    errors = [r["name"] for s in result["suites"].values() for r in s.get("rows", []) if r.get("status") == "error"]
    if errors:
        print(f"\n{len(errors)} benchmark(s) failed: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0
