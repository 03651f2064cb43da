"""``python -m bench --suite robustness``: the papers' Table 1 in miniature.

Trains the built-in shapes set (``gpuaug train`` with no ``--data``: 6 classes, 6 x 200
training and 6 x 50 validation pictures of 48 x 48) with no augmentation method and with
each method at its paper's CIFAR settings (the ``[method]`` table and the JSD choice of
``pipelines/cifar-<method>.toml``), all at one budget (same model, epochs, optimiser and
seeds), then evaluates every model on the clean validation pictures and on regenerated
corruptions of them (``gpuaug corrupt``: the 15 ImageNet-C corruptions x 5 severities). Every
run is the user's own command line, ``gpuaug train`` then ``gpuaug eval``, in a subprocess.

Writes ``<name>.json`` (every run's errors, wall and CPU time, the machine's load), a
table ``<name>.md`` and a chart ``<name>.png`` (error per corruption per method).

The corruptions are regenerated (see :mod:`gpuaug.corrupt`): the numbers compare methods
on this data; they are not the papers' CIFAR-10-C / ImageNet-C numbers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import common

SCHEMA = "gpuaug-bench-robustness/1"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "out"
METHODS = ("none", "augmix", "pixmix", "ipmix", "dynamic-mixup", "noisymix")
SIZES = ("smoke", "default", "full")


def settings(size: str) -> dict:
    """``smoke``: structure only (a tiny set, one short run per method; tests);
    ``default``: the committed CPU table (15.8 min measured on 2 idle cores);
    ``full``: 3 seeds x 60 epochs, the budget at which every method's effect shows (a GPU, or
    about 2 hours of 2 idle CPU cores, estimated from the default size)."""
    if size == "smoke":
        return dict(seeds=[0], epochs=1, corruptions="gaussian_noise,contrast", severities=[1, 2, 3, 4, 5],
                    data=dict(train_per_class=6, val_per_class=3, size=32, classes=3),
                    # --data is given, so the shapes set's defaults are passed explicitly
                    train_args=["--arch", "tiny", "--image-size", "32", "--crop", "pad", "--batch-size", "6",
                                "--lr", "0.05", "--weight-decay", "5e-4", "--fractals", "4", "--workers", "0"])
    if size == "default":
        # 6 epochs: gpuaug train's own budget on the shapes set; 3 seeds for a spread
        return dict(seeds=[0, 1, 2], epochs=6, corruptions="common", severities=[1, 2, 3, 4, 5], data=None,
                    train_args=[])
    # 60 epochs: where PixMix and NoisyMix have fitted the set (bench/crosscheck.py: at 20 they still
    # trail the baseline, with the authors' code as with ours; at 60 both beat it by 11-15 points)
    return dict(seeds=[0, 1, 2], epochs=60, corruptions="common", severities=[1, 2, 3, 4, 5], data=None,
                train_args=[])


def method_args(method: str) -> tuple[list[str], dict]:
    """Command-line options of ``method`` at its paper's CIFAR settings (the recipe's
    ``[method]`` table and JSD choice; the recipe's [train] table is not used: every method
    trains at the suite's one budget). ``none``: no method, plain cross-entropy."""
    if method == "none":
        return ["--method", "none", "--no-jsd"], {"jsd": False, "settings": {}, "recipe": None}
    sys.path.insert(0, str(ROOT)) if str(ROOT) not in sys.path else None
    from gpuaug.train.recipes import load_recipe

    path = ROOT / "pipelines" / f"cifar-{method}.toml"
    recipe = load_recipe(path)
    table = {k: v for k, v in recipe["method"].items() if k != "name"}
    jsd = bool(recipe["train"].get("jsd", False))
    args = ["--method", method, "--settings", json.dumps(table), "--jsd" if jsd else "--no-jsd"]
    if jsd and "jsd_lambda" in recipe["train"]:
        args += ["--jsd-lambda", str(recipe["train"]["jsd_lambda"])]
    return args, {"jsd": jsd, "settings": table, "recipe": str(path.relative_to(ROOT))}


def _run(cmd: list[str], log_path: Path) -> dict:
    """Run ``cmd`` with output to ``log_path``; wall and CPU seconds (the child and the
    processes it waited for: loader workers)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-15:])
        raise RuntimeError(f"{' '.join(cmd[2:5])} ... exited with {proc.returncode} (log {log_path}):\n{tail}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _prepare_data(cfg: dict, work: Path, log) -> tuple[str | None, Path]:
    """(the --data to train on or None for the built-in set, its ImageFolder root)."""
    from gpuaug.train import synthetic

    if cfg["data"] is None:
        root = synthetic.build(train_per_class=synthetic.TRAIN_PER_CLASS, val_per_class=synthetic.VAL_PER_CLASS,
                               size=synthetic.SIZE, log=log)
        return None, root
    root = synthetic.build(work / "data", log=log, **cfg["data"])
    return str(root), root


def run(size: str = "default", out=DEFAULT_OUT, name: str | None = None, work=None, methods=METHODS,
        seeds=None, epochs=None, workers: int | None = None, device: str = "auto", argv=(), log=common.log) -> Path:
    """Run the suite; returns the JSON path (the table and chart are written beside it)."""
    from gpuaug.corrupt import corrupt_dataset

    cfg = settings(size)
    if seeds is not None:
        cfg["seeds"] = list(seeds)
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    methods = list(methods)
    out = Path(out)
    stem = name or f"robustness-{size}-{_dt.date.today().isoformat()}"
    work = Path(work) if work is not None else out / f"{stem}-runs"
    work.mkdir(parents=True, exist_ok=True)
    result = {"schema": SCHEMA, "size": size, "meta": common.environment(["--suite", "robustness", *argv]),
              "uptime_at_start": _uptime(), "settings": {}, "runs": []}
    start = time.perf_counter()
    data, data_root = _prepare_data(cfg, work, log)
    cdir = work / "corrupted-val"
    t = time.perf_counter()
    manifest = corrupt_dataset(str(data_root / "val") if data is not None else None, cdir, cfg["corruptions"],
                               cfg["severities"], workers=workers, layout="cifar-c", log=log)
    corrupt_s = time.perf_counter() - t
    result["corruptions"] = {k: manifest[k] for k in ("notice", "package", "package_version", "corruptions",
                                                      "severities", "images", "seed")} | {"wall_s": round(corrupt_s, 2)}
    result["settings"] = {"seeds": cfg["seeds"], "epochs": cfg["epochs"], "methods": {}, "methods_requested": methods,
                          "train": "the built-in shapes set defaults of gpuaug train (arch tiny, batch 32, lr 0.1, "
                                   "1 warm-up epoch, cosine, weight decay 5e-4, 48 px, pad crop)"
                          if data is None else "smoke: a tiny shapes set",
                          "extra_train_args": cfg["train_args"], "device": device}
    common_train = ["--epochs", str(cfg["epochs"]), "--device", device, "--no-preview", "--overwrite",
                    *cfg["train_args"]] + (["--data", data] if data is not None else [])
    eval_args = ["--data", str(data_root), "--corruptions", str(cdir), "--workers", "0", "--device", device]
    py = [sys.executable, "-m", "gpuaug.cli"]
    total = len(methods) * len(cfg["seeds"])
    for i, (seed, method) in enumerate((s, m) for s in cfg["seeds"] for m in methods):
        margs, info = method_args(method)
        result["settings"]["methods"][method] = info
        run_dir = work / f"{method}-seed{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        log(f"[{i + 1}/{total}] {method} seed {seed}: training ({time.perf_counter() - start:.0f}s elapsed)")
        train_t = _run(py + ["train", *margs, "--seed", str(seed), "--out", str(run_dir), *common_train],
                       run_dir / "train.log")
        eval_t = _run(py + ["eval", "--checkpoint", str(run_dir), "--json", str(run_dir / "eval.json"), *eval_args],
                      run_dir / "eval.log")
        ev = json.loads((run_dir / "eval.json").read_text())
        c = ev["corruptions"]
        row = {"method": method, "seed": seed, "clean_error": ev["clean"]["top1_error"],
               "clean_calibration": ev["clean"]["rms_calibration_error"],
               "mean_corruption_error": float(np.mean([np.mean(e) for e in c["errors"].values()])),
               "errors": c["errors"], "train": train_t, "eval": eval_t}
        result["runs"].append(row)
        log(f"    clean error {100 * row['clean_error']:.1f}%, mean corruption error "
            f"{100 * row['mean_corruption_error']:.1f}% (train {train_t['wall_s']:.0f}s, eval {eval_t['wall_s']:.0f}s)")
        path = _write(result, methods, start, out, stem, complete=i + 1 == total)  # partial results survive a stop
    return path


def _write(result: dict, methods, start: float, out: Path, stem: str, complete: bool) -> Path:
    """The JSON, table and chart of the runs so far (``complete``: all of them)."""
    result["complete"] = complete
    result["summary"] = summarize(result["runs"], methods)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["cpu_s"] = round(sum(r["train"]["cpu_s"] + r["eval"]["cpu_s"] for r in result["runs"]), 1)
    result["uptime_at_end"] = _uptime()
    try:
        result["meta"]["loadavg_at_end"] = list(os.getloadavg())
    except OSError:
        pass
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    path.with_suffix(".md").write_text(table(result) + "\n")
    draw(result, path.with_suffix(".png"))
    return path


# ----------------------------------------------------------------------------- summary
def _spread(values) -> dict:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def summarize(runs: list[dict], methods) -> dict:
    """Per method: clean and mean corruption error over seeds (mean, std, min, max), the
    corruption - clean gap, the paired difference to ``none`` (same seed) and how many seeds
    it beats ``none`` on, and the per-corruption error (mean over severities and seeds)."""
    by = {m: [r for r in runs if r["method"] == m] for m in methods}
    base = {r["seed"]: r for r in by.get("none", [])}
    out = {}
    for m, rows in by.items():
        if not rows:
            continue
        s = {"clean_error": _spread([r["clean_error"] for r in rows]),
             "mean_corruption_error": _spread([r["mean_corruption_error"] for r in rows]),
             "gap": _spread([r["mean_corruption_error"] - r["clean_error"] for r in rows]),
             "per_corruption": {c: float(np.mean([np.mean(r["errors"][c]) for r in rows]))
                                for c in rows[0]["errors"]},
             "train_wall_s": _spread([r["train"]["wall_s"] for r in rows]),
             "train_cpu_s": _spread([r["train"]["cpu_s"] for r in rows])}
        paired = [(r["mean_corruption_error"] - base[r["seed"]]["mean_corruption_error"]) for r in rows
                  if r["seed"] in base]
        if m != "none" and paired:
            s["vs_none"] = _spread(paired)
            s["beats_none"] = f"{sum(p < 0 for p in paired)}/{len(paired)}"
        out[m] = s
    return out


def _pm(s: dict) -> str:
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def table(result: dict) -> str:
    """Markdown: the summary table, the conditions, and the per-corruption table."""
    summ, st = result["summary"], result["settings"]
    meta = result["meta"]
    seeds = sorted({r["seed"] for r in result["runs"]})
    n = len(seeds)
    lines = ["| method | JSD | clean error % | mean corruption error % | corruption − clean | vs none (paired) "
             "| seeds below none | train s/run (wall, CPU) |",
             "|---|---|---|---|---|---|---|---|"]
    for m, s in summ.items():
        jsd = "yes" if st["methods"][m]["jsd"] else "no"
        vs = (f"{100 * s['vs_none']['mean']:+.1f} ± {100 * s['vs_none']['std']:.1f}" if "vs_none" in s else "—")
        lines.append(f"| {m} | {jsd} | {_pm(s['clean_error'])} | {_pm(s['mean_corruption_error'])} "
                     f"| {_pm(s['gap'])} | {vs} | {s.get('beats_none', '—')} "
                     f"| {s['train_wall_s']['mean']:.0f}, {s['train_cpu_s']['mean']:.0f} |")
    cor = result["corruptions"]
    host = meta["host"]
    if not result.get("complete", True):
        done = len(result["runs"])
        lines += ["", f"**Partial: {done} of {len(st['seeds']) * len(st['methods_requested'])} runs finished** "
                      "(seeds run one after another, every method per seed)."]
    lines += ["", f"Mean ± sample std over {n} seed(s) ({', '.join(map(str, seeds))}), {st['epochs']} epochs, "
              f"size {result['size']}; {len(cor['corruptions'])} corruptions x {len(cor['severities'])} severities "
              f"of {cor['images']} validation pictures. {cor['notice'][0].upper() + cor['notice'][1:]}.",
              f"Machine: {host.get('cpu_model')}, {host.get('cpu_cores_usable')} usable cores, device "
              f"{meta['device']['name']}; total wall {result['wall_s'] / 60:.1f} min, CPU "
              f"{result['cpu_s'] / 60:.1f} min (train + eval processes); load at start: "
              f"`{result.get('uptime_at_start', '')}`; at end: `{result.get('uptime_at_end', '')}`."]
    methods = list(summ)
    lines += ["", "| corruption (error %, mean over severities and seeds) | " + " | ".join(methods) + " |",
              "|---|" + "---|" * len(methods)]
    for c in cor["corruptions"]:
        if c in summ[methods[0]]["per_corruption"]:
            lines.append(f"| {c} | " + " | ".join(f"{100 * summ[m]['per_corruption'][c]:.1f}" for m in methods) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- chart
METHOD_COLORS = {"none": (127, 127, 127), "augmix": (31, 119, 180), "pixmix": (44, 160, 44),
                 "ipmix": (214, 39, 40), "dynamic-mixup": (148, 103, 189), "noisymix": (255, 127, 14)}


def draw(result: dict, path) -> Path:
    """Two panels: clean and mean corruption error per method (bar: mean over seeds,
    whisker: min..max), then error per corruption per method."""
    from .chart import _panel, save_stacked

    summ = result["summary"]
    items = []
    for m, s in summ.items():
        col = METHOD_COLORS.get(m, (0, 0, 0))
        for key, label in (("clean_error", "clean"), ("mean_corruption_error", "corrupted (mean)")):
            v = s[key]
            items.append((f"{m}  {label}", 100 * v["mean"], 100 * v["min"], 100 * v["max"], col))
    st = result["settings"]
    title = (f"Shapes set, {st['epochs']} epochs x {len(st['seeds'])} seeds: top-1 error % "
             f"(bar: mean over seeds, whisker: min..max)")
    parts = [_panel(title, items, "error %", log=False, notes=[result["corruptions"]["notice"]])]
    items = []
    for c in result["corruptions"]["corruptions"]:
        for m, s in summ.items():
            if c in s["per_corruption"]:
                items.append((f"{c}  {m}", 100 * s["per_corruption"][c], None, None, METHOD_COLORS.get(m, (0, 0, 0))))
    parts.append(_panel("Error % per corruption (mean over severities 1-5 and seeds)", items, "error %", log=False))
    return save_stacked(parts, path)


# ----------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench --suite robustness",
                                description="Train the built-in shapes set with each method at one budget and "
                                            "measure clean and corrupted error (regenerated corruptions).")
    p.add_argument("--suite", choices=("robustness",), default="robustness")
    p.add_argument("--size", choices=SIZES, default="default",
                   help="smoke: structure only (seconds); default: the committed CPU table (3 seeds x 6 epochs, "
                        "16 min measured on 2 idle cores); full: 3 seeds x 60 epochs, where "
                        "every method's effect shows (a GPU; ~2 h on 2 CPU cores, estimated)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the JSON, table and chart (default bench/out)")
    p.add_argument("--name", help="file stem (default robustness-<size>-<date>)")
    p.add_argument("--work", help="folder for the runs and the corrupted set (default <out>/<name>-runs)")
    p.add_argument("--methods", help=f"comma list (default all: {','.join(METHODS)})")
    p.add_argument("--seeds", help="comma list of seeds (overrides the size's)")
    p.add_argument("--epochs", type=int, help="epochs per run (overrides the size's)")
    p.add_argument("--workers", type=int, help="corruption worker processes (default: CPU count, <= 8)")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--chart", action="store_true", help="accepted for symmetry; the chart is always drawn")
    p.add_argument("--quiet", action="store_true", help="do not print the table")
    return p


def main(argv) -> int:
    args = build_parser().parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else list(METHODS)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    if args.epochs is not None and args.epochs < 1:
        raise SystemExit("error: --epochs must be >= 1")
    path = run(args.size, args.out, args.name, args.work, methods, seeds, args.epochs, args.workers, args.device,
               argv=list(argv))
    if not args.quiet:
        print(path.with_suffix(".md").read_text())
        print(f"wrote {path}, {path.with_suffix('.md')}, {path.with_suffix('.png')}")
    return 0
