"""One small batch through every kernel family and every method (``python -m bench.gpu_memcheck``).

The workload ``bench/gpu-check.sh`` runs under ``compute-sanitizer --tool memcheck``:
every image-level op (histogram, LUT, apply and resize kernels) on a non-square batch,
procedural fractals rendered on the device, and every method (the fused mixing kernels)
at 32 px, JSD views included. Small on purpose: memcheck slows kernels ~100x.

``--executor cpu`` runs the same calls on the host, to check the script itself where there
is no GPU (CI's dry run). Exits non-zero if any call raises; memory errors are the
sanitizer's to report (``--error-exitcode``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

# One representative parameter per op (inside every op's valid range).
OP_VALUES = {
    "autocontrast": 5.0, "posterize": 3, "solarize": 100, "rotate": 17.0, "shear_x": 0.2, "shear_y": -0.2,
    "translate_x": 5.0, "translate_y": -4.0, "color": 1.5, "contrast": 0.4, "brightness": 1.7,
    "sharpness": 1.9, "downscale": 2.5,
}


def _to_device(batch: np.ndarray, executor: str):
    if executor == "cpu":
        return batch
    import torch

    return torch.from_numpy(batch).cuda()


def _sync(executor: str) -> None:
    if executor != "cpu":
        import torch

        torch.cuda.synchronize()


def run(executor: str) -> list[str]:
    """Run the workload; returns the names of the calls made (each synchronised)."""
    from gpuaug import ops
    from gpuaug.methods import METHODS, make_method
    from gpuaug.mixing import MixingSet
    from gpuaug.samples import batch as sample_batch

    done = []
    names = [n for n in ops.OP_IDS if n != "identity"]
    images = np.ascontiguousarray(sample_batch(len(names), 37, seed=1)[:, :, :29])  # 37 x 29: non-square
    out = ops.apply_batch(_to_device(images, executor), names, [OP_VALUES.get(n, 0.0) for n in names],
                          executor=executor)
    _sync(executor)
    done.append(f"ops x{len(names)} on {tuple(out.shape)}")

    device = "cpu" if executor == "cpu" else "cuda"
    mixing = MixingSet.fractals(8, size=40, seed=0, device=device)
    _sync(executor)
    done.append("fractals x8 at 40 px")

    x = _to_device(np.ascontiguousarray(sample_batch(8, 32, seed=2)), executor)
    labels = np.arange(8) % 10
    for name, cls in METHODS.items():
        method = make_method(name)
        if name in ("mixup", "cutmix"):
            y = labels if executor == "cpu" else _to_device(labels, executor)
            method(x, y, num_classes=10, seed=0)
        else:
            kwargs = {"mixing": mixing} if method.needs_mixing else {}
            method(x, seed=0, executor=executor, **kwargs)
            if hasattr(method, "views"):
                method.views(x, seed=1, executor=executor, **kwargs)
        _sync(executor)
        done.append(name)
    return done


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_memcheck", description=__doc__.split("\n\n")[0])
    p.add_argument("--executor", choices=("cuda", "cpu"), default="cuda")
    args = p.parse_args(argv)
    for line in run(args.executor):
        print(f"ok  {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
