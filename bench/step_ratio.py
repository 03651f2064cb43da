"""ResNet-50 step rate with and without on-device augmentation (``python -m bench.step_ratio``).

The question a user asks: does augmenting on the GPU slow my training step? Two runs of
``--steps`` optimisation steps on synthetic, device-resident uint8 batches (no loading),
bf16 autocast and channels_last on CUDA, the model of ``bench.train.Step``:

* ``plain``      the clean batch converted and normalised by ``gpuaug.torch.Augment(None)``;
                 with ``--jsd`` the clean view is fed three times, so the model does the
                 same work as ``augmented``;
* ``augmented``  ``gpuaug.torch.Augment(method, views=--jsd)`` on the same batches, on the
                 training stream (the serial case: nothing overlaps the augmentation).

``ratio`` = augmented steps/s / plain steps/s (goal on a GPU: >= 0.95 for IPMix + JSD at
224 px, batch 256). Prints one line per run and writes JSON with the environment after
each run (``ratio`` null until both ran), so a run stopped in its second half still
leaves the first. On a CPU (``--device cpu``) it only proves the script runs: the
numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import common, data
from .train import Step


def _batches(count: int, batch: int, size: int, device: str):
    import torch

    pool = data.image_pool(min(64, batch), size)
    rng = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        idx = torch.randint(0, pool.shape[0], (batch,), generator=rng).numpy()
        images = torch.from_numpy(pool[idx]).to(device).permute(0, 3, 1, 2)  # NCHW view of NHWC memory
        labels = torch.randint(0, 1000, (batch,), generator=rng).to(device)
        out.append((images, labels))
    return out


def _time_steps(step: Step, augment, batches, steps: int, warmup: int, jsd: bool, device: str) -> float:
    """Seconds for ``steps`` steps after ``warmup`` untimed ones (device synchronised)."""
    import torch

    def one(i):
        images, labels = batches[i % len(batches)]
        x = augment(images)
        if jsd and not isinstance(x, tuple):
            x = (x, x, x)
        step(x, labels)

    for i in range(warmup):
        one(i)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        one(warmup + i)
    sync()
    return time.perf_counter() - start


def _result(args, runs: dict) -> dict:
    import gpuaug

    ratio = runs["augmented"]["steps_per_s"] / runs["plain"]["steps_per_s"] if len(runs) == 2 else None
    return {"schema": "gpuaug-step-ratio/1", "meta": common.environment(["step_ratio", *sys.argv[1:]]),
            "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "runs": runs, "ratio": ratio, "goal": 0.95, "gpuaug": gpuaug.__version__}


def write_json(path, result: dict) -> None:
    """Write ``result`` to ``path`` atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    os.replace(tmp, path)


def run(args) -> dict:
    import torch

    import gpuaug.torch as gtorch
    from gpuaug.methods import make_method

    method = make_method(args.method)
    mixing = data.mixing_set(args.image_size, args.mixing_count, args.device) if method.needs_mixing else None
    batches = _batches(args.distinct_batches, args.batch, args.image_size, args.device)
    runs = {}
    for name in ("plain", "augmented"):
        torch.manual_seed(0)
        step = Step(args.device, num_classes=1000, jsd=args.jsd, arch=args.arch)
        if name == "plain":
            augment = gtorch.Augment(None, normalize=True)
        else:
            augment = gtorch.Augment(method, mixing=mixing, seed=0, views=args.jsd, normalize=True)
        seconds = _time_steps(step, augment, batches, args.steps, args.warmup, args.jsd, args.device)
        runs[name] = {"seconds": seconds, "steps": args.steps, "steps_per_s": args.steps / seconds,
                      "images_per_s": args.steps * args.batch / seconds}
        print(f"{name:10s} {runs[name]['steps_per_s']:8.2f} steps/s  {runs[name]['images_per_s']:9.0f} img/s",
              flush=True)
        del step
        result = _result(args, runs)
        if args.out:
            write_json(args.out, result)
    print(f"ratio augmented/plain = {result['ratio']:.3f} (goal >= 0.95 on a GPU)", flush=True)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.step_ratio", description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="ipmix", help="augmentation (default ipmix)")
    p.add_argument("--jsd", action=argparse.BooleanOptionalAction, default=True,
                   help="three views and the JSD loss (default on)")
    p.add_argument("--arch", default="resnet50", help="torchvision model (default resnet50)")
    p.add_argument("--steps", type=int, default=200, help="timed steps per run (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps before timing (default 20)")
    p.add_argument("--batch", type=int, default=256, help="images per step (default 256)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--distinct-batches", type=int, default=4, help="device-resident batches cycled through")
    p.add_argument("--mixing-count", type=int, default=256, help="procedural fractals (PixMix/IPMix)")
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu (smoke only)")
    p.add_argument("--out", default=None, help="JSON path (default: print only)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("steps", "batch", "image_size", "distinct_batches", "mixing_count"):
        if getattr(args, name) < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        raise SystemExit("error: --warmup must be >= 0")
    if args.device is None:
        args.device = "cuda" if common.cuda_available() else "cpu"
    run(args)
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
