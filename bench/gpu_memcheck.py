"""Every gpuaug kernel on small odd-sized batches, and the memcheck of it
(``python -m bench.gpu_memcheck``).

The workload ``bench/gpu-check.sh`` runs under ``compute-sanitizer --tool memcheck``:
CuPy only (no torch: a full-torch process is slow under the sanitizer), through the
executors' own entry points, at 17x23, 37x29 and 32x32 -- every image-level op (histogram,
LUT, apply and resize kernels), the mixing-set crop kernel, every method with two plans
(JSD views: the fused mixing kernels) and procedural fractals (IFS and escape-time). It counts
the kernels launched and fails unless every kernel of ``kernels/*.cu`` ran; each call is
printed as it completes, so a time-out shows how far it got.

``--executor emulated`` runs the same launches on the CPU kernel emulator (CI's dry run).
``--sanitize`` runs the cuda workload under the sanitizer, checking gpuaug's kernels only
(``--kernel-name kne=...``), within ``--timeout`` seconds, and states one verdict --
clean, errors, timed out, unsupported (the sanitizer refused the device or is missing) or
failed -- on its last line and in ``--json``. Exit status: 0 clean, 77 unsupported (a
skip), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

SIZES = ((17, 23), (37, 29), (32, 32))  # odd and non-square sides, and a power of two
BATCH = 3
FRACTAL_SIDE = 37
SKIP_EXIT = 77
VERDICTS = ("clean", "errors", "timed out", "unsupported", "failed")
_SUMMARY_RE = re.compile(r"ERROR SUMMARY:\s*(\d+)\s+error")
_UNSUPPORTED = ("Device not supported", "device is not supported")
DONE_LINE = "memcheck workload done"


def kernel_names() -> list[str]:
    """Every kernel of ``kernels/*.cu`` (sorted)."""
    from gpuaug.doctor import kernel_files
    from gpuaug.executors.launch import parse_kernels

    return sorted(name for path in kernel_files() for name in parse_kernels(path.read_text()))


@contextlib.contextmanager
def _launches_seen():
    """The names of the kernels launched inside the block."""
    from gpuaug.executors import launch

    seen: set[str] = set()
    original = launch.Kernel.__call__

    def counted(kernel, grid, block, args):
        seen.add(kernel.name)
        return original(kernel, grid, block, args)

    launch.Kernel.__call__ = counted
    try:
        yield seen
    finally:
        launch.Kernel.__call__ = original


def _workload(executor: str, sync, sizes, progress) -> list[str]:
    from gpuaug import fractals, ops
    from gpuaug.executors import crops, cuda
    from gpuaug.executors.backend import get_backend
    from gpuaug.methods import METHODS, make_method
    from gpuaug.data.samples import batch as sample_batch

    backend = get_backend(executor)
    xp = backend.xp
    rng = np.random.default_rng(0)
    names = [n for n in ops.OP_IDS if n != "identity"]
    done = []

    def finished(line):
        sync()
        done.append(line)
        progress(line)

    for h, w in sizes:
        images = np.ascontiguousarray(sample_batch(len(names), max(h, w), seed=h)[:, :h, :w])
        ids = ops.op_ids(names).astype(np.int32)
        cuda.apply_ops_xp(xp.asarray(images), ids, ops.sample_values(ids, 3, rng, h, w), executor)
        finished(f"ops x{len(names)} at {h}x{w}")

        side = max(h, w) + 3
        pool = xp.asarray(rng.integers(0, 256, (5, side, side, 3), dtype=np.uint8))
        flip = rng.random(BATCH) < 0.5
        pictures = crops.gather_crops(executor, pool, rng.integers(0, 5, BATCH), rng.integers(0, side + 8 - h + 1, BATCH),
                                      rng.integers(0, side + 8 - w + 1, BATCH), flip, h, w, 4)
        finished(f"crops x{BATCH} at {h}x{w} (padded, flipped)")

        x = xp.asarray(np.ascontiguousarray(images[:BATCH]))
        for name in METHODS:
            method = make_method(name)
            plans = [method.plan(BATCH, h, w, rng) for _ in range(2)]
            mixing = pictures if getattr(method, "needs_mixing", False) else None
            if hasattr(method, "execute_all"):
                method.execute_all(plans, x, mixing, backend)
            else:  # Mixup, CutMix: one plan at a time
                for plan in plans:
                    method.execute(plan, x, mixing, backend)
            finished(f"{name} x2 plans at {h}x{w}")
    for p_ifs, kind in ((1.0, "IFS"), (0.0, "escape-time")):
        fractals.render_fractals_xp(fractals.sample_fractal_plan(2, rng, p_ifs), FRACTAL_SIDE, executor)
        finished(f"fractals x2 ({kind}) at {FRACTAL_SIDE} px")
    return done


def run(executor: str, sizes=SIZES, progress=lambda line: None) -> tuple[list[str], set[str]]:
    """Run the workload on ``executor`` ("cuda" or "emulated") at ``sizes`` ((h, w) each),
    calling ``progress(line)`` after each call; (calls made, kernels launched). Raises
    RuntimeError if a kernel of ``kernels/*.cu`` did not run."""
    if executor == "cuda":
        import cupy

        sync = cupy.cuda.get_current_stream().synchronize
    elif executor == "emulated":
        sync = lambda: None  # noqa: E731
    else:
        raise ValueError(f"executor must be 'cuda' or 'emulated', got {executor!r}")
    with _launches_seen() as seen:
        done = _workload(executor, sync, sizes, progress)
    missing = sorted(set(kernel_names()) - seen)
    if missing:
        raise RuntimeError(f"the memcheck workload did not launch: {', '.join(missing)}")
    return done, seen


# ---------------------------------------------------------------- the sanitizer run

def sanitizer_command(sanitizer: str, python: str) -> list[str]:
    """compute-sanitizer's memcheck over the cuda workload, checking gpuaug's kernels only."""
    filters = [arg for name in kernel_names() for arg in ("--kernel-name", f"kne={name}")]
    return [sanitizer, "--tool", "memcheck", "--error-exitcode", "1", "--print-limit", "20", *filters,
            python, "-m", "bench.gpu_memcheck", "--executor", "cuda"]


def verdict(returncode: int | None, output: str, timed_out: bool) -> dict:
    """The memcheck verdict from the sanitizer's exit status and output.

    Clean only when the run finished in time, the workload reached its end and the
    sanitizer summed up 0 errors; a time-out is "timed out" whatever was printed.
    """
    summary = _SUMMARY_RE.findall(output)
    errors = int(summary[-1]) if summary else None
    if timed_out:
        return {"verdict": "timed out", "errors": errors, "detail": "stopped before the workload finished"}
    if any(s in output for s in _UNSUPPORTED):
        line = next(ln for ln in output.splitlines() if any(s in ln for s in _UNSUPPORTED))
        return {"verdict": "unsupported", "errors": None, "detail": line.strip(" =")[:200]}
    if errors:
        return {"verdict": "errors", "errors": errors, "detail": f"{errors} memcheck error(s) in gpuaug kernels"}
    if errors == 0 and returncode == 0 and DONE_LINE in output:
        return {"verdict": "clean", "errors": 0, "detail": "0 errors in every gpuaug kernel"}
    last = output.strip().splitlines()[-1][:200] if output.strip() else "no output"
    return {"verdict": "failed", "errors": errors, "detail": f"exit {returncode}: {last}"}


def sanitize(timeout: float, python: str = sys.executable, sanitizer: str | None = None) -> dict:
    """Run the workload under compute-sanitizer within ``timeout`` seconds; its verdict."""
    sanitizer = sanitizer or shutil.which("compute-sanitizer")
    if sanitizer is None:
        return {"verdict": "unsupported", "errors": None, "detail": "compute-sanitizer is not on PATH"}
    cmd = sanitizer_command(sanitizer, python)
    print("$ " + " ".join(cmd), flush=True)
    # its own session: on a time-out the sanitizer and the python under it go together
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        timed_out = True
    print(output, end="" if output.endswith("\n") else "\n", flush=True)
    result = verdict(proc.returncode, output, timed_out)
    result["command"] = cmd
    result["timeout_s"] = timeout
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_memcheck", description=__doc__.split("\n\n")[0])
    p.add_argument("--executor", choices=("cuda", "emulated"), default="cuda")
    p.add_argument("--sanitize", action="store_true", help="run the cuda workload under compute-sanitizer memcheck")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds for the sanitizer run (default 60)")
    p.add_argument("--json", default=None, help="write the verdict here (with --sanitize)")
    args = p.parse_args(argv)
    if args.sanitize:
        result = sanitize(args.timeout)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"memcheck: {result['verdict']}: {result['detail']}", flush=True)
        return {"clean": 0, "unsupported": SKIP_EXIT}.get(result["verdict"], 1)
    _, seen = run(args.executor, progress=lambda line: print(f"ok  {line}", flush=True))
    print(f"{DONE_LINE}: {len(seen)} kernels launched on {args.executor} ({', '.join(sorted(seen))})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
