"""``gpuaug doctor``: what this machine's GPU path has, and whether it gives the right pixels.

Reports the versions of Python, numpy, torch, CuPy, NVRTC, the CUDA runtime and driver,
and DALI, and the visible GPUs; then checks that NVRTC compiles every kernel file with
no warnings and no flush-to-zero instructions -- the very build the ``cuda`` backend
runs, for the current GPU's architecture, or for ``--arch`` (default sm_90) without a
GPU --, that every kernel loads on the current GPU, and that one small batch of every
method on the GPU equals the cpu executor (exactly, or within the stated bound of
:mod:`gpuaug.tolerance` for the float64 ``pow`` of PixMix and IPMix). What it cannot
check (no GPU, no CuPy, ...) is reported as skipped with the reason; the exit status
is 1 only when a check that could run failed. ``--json PATH`` writes the report.

Run it as ``gpuaug doctor`` or ``python -m gpuaug.doctor``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_ARCH = "sm_90"


@dataclass
class Check:
    name: str
    status: str  # "ok", "failed" or "skipped"
    detail: str = ""


@dataclass
class Report:
    versions: dict = field(default_factory=dict)
    gpus: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    checks: list = field(default_factory=list)

    def add(self, name: str, status: str, detail: str = "") -> Check:
        check = Check(name, status, detail)
        self.checks.append(check)
        return check

    @property
    def failed(self) -> list:
        return [c for c in self.checks if c.status == "failed"]


def _try(fn):
    """fn()'s value, or 'unavailable (reason)'."""
    try:
        return fn()
    except Exception as err:  # a report: any failure is something to print, not to raise
        return f"unavailable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"


def _cuda_version(code) -> str:
    code = int(code)
    return f"{code // 1000}.{code % 1000 // 10}" if code else "none (no driver)"


def versions() -> dict:
    """Versions of everything the GPU path uses ('not installed' / 'unavailable (...)')."""
    import gpuaug

    out = {"python": platform.python_version(), "numpy": np.__version__, "gpuaug": gpuaug.__version__
           if hasattr(gpuaug, "__version__") else "source checkout"}
    try:
        import torch

        out["torch"] = torch.__version__
        out["torch CUDA"] = torch.version.cuda or "none (CPU build)"
    except ImportError:
        out["torch"] = "not installed"
    try:
        import cupy

        out["cupy"] = cupy.__version__
        out["CUDA runtime (CuPy)"] = _try(lambda: _cuda_version(cupy.cuda.runtime.runtimeGetVersion()))
        out["CUDA driver"] = _try(lambda: _cuda_version(cupy.cuda.runtime.driverGetVersion()))

        def nvrtc_version():
            from cupy_backends.cuda.libs import nvrtc

            return ".".join(map(str, nvrtc.getVersion()))

        out["NVRTC"] = _try(nvrtc_version)
    except ImportError:
        out["cupy"] = "not installed"
    try:
        import nvidia.dali as dali

        out["DALI"] = dali.__version__
    except ImportError:
        out["DALI"] = "not installed"
    return out


def visible_gpus() -> tuple[list, str]:
    """(one dict per GPU torch sees, why none when empty)."""
    try:
        import torch
    except ImportError:
        return [], "torch is not installed"
    if not torch.cuda.is_available():
        return [], "torch.cuda.is_available() is False (no GPU or no driver)"
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                     "memory_gib": round(p.total_memory / 2**30, 1)})
    return gpus, ""


def kernel_files() -> list[Path]:
    from .executors.kernelsrc import _kernel_dir

    return sorted(Path(str(p)) for p in _kernel_dir().iterdir() if str(p).endswith(".cu"))


def check_nvrtc(report: Report, arch: str) -> None:
    """Build every kernel file for ``arch`` as the cuda backend does; warnings and
    flush-to-zero instructions count as a failure."""
    from .executors import launch, nvrtc_build

    for path in kernel_files():
        t0 = time.perf_counter()
        try:
            built = launch.build_file(path, arch)
        except Exception as err:
            report.add(f"NVRTC compiles {path.name} for {arch}", "failed", str(err)[:2000])
            continue
        flushes = nvrtc_build.flush_to_zero_instructions(built.ptx)
        note = f"{time.perf_counter() - t0:.2f} s" + (f"; warnings: {built.log}" if built.log else "")
        if flushes:
            note += f"; flushes subnormals to zero: {', '.join(flushes[:8])}"
        report.add(f"NVRTC compiles {path.name} for {arch}", "failed" if built.log or flushes else "ok", note)


def check_kernel_loading(report: Report, device: int) -> None:
    """Load every kernel of every file on ``device`` (as at run time)."""
    from .executors.launch import get_kernel, parse_kernels

    for path in kernel_files():
        names = list(parse_kernels(path.read_text()))
        try:
            for name in names:
                get_kernel(path.stem, name, "cuda", device)
        except Exception as err:
            report.add(f"kernels of {path.name} load on cuda:{device}", "failed", str(err)[:2000])
        else:
            report.add(f"kernels of {path.name} load on cuda:{device}", "ok", f"{len(names)} kernel(s)")


def _method_inputs(n: int, size: int):
    from .data import samples

    images = samples.batch(n, size)
    rng = np.random.default_rng(7)
    pictures = rng.integers(0, 256, (3, size + 8, size + 8, 3), dtype=np.uint8)
    labels = np.arange(n) % 3
    return images, pictures, labels


def check_methods_on_gpu(report: Report, device: int, n: int = 4, size: int = 32) -> None:
    """One batch of every method on ``cuda:device`` against the cpu executor."""
    import torch

    from .methods import METHODS, make_method
    from .mixing import MixingSet
    from .tolerance import mismatch, pow_atol

    images, pictures, labels = _method_inputs(n, size)
    dev = torch.device("cuda", device)
    x = torch.from_numpy(images).to(dev)
    host_set = MixingSet.from_array(pictures)
    with torch.cuda.device(dev):
        gpu_set = MixingSet.from_array(pictures, device=str(dev))
    for name in METHODS:
        method = make_method(name)
        check = f"{name} on cuda:{device} equals the cpu executor"
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if name in ("mixup", "cutmix"):
                    got, got_y = method(x, torch.from_numpy(labels).to(dev), 3, seed=1)
                    want, want_y = method(images, labels, 3, seed=1, executor="cpu")
                    got_y = got_y.cpu().numpy()
                else:
                    mixing = (gpu_set, host_set) if method.needs_mixing else (None, None)
                    got = method(x, mixing=mixing[0], seed=1)
                    want = method(images, mixing=mixing[1], seed=1, executor="cpu")
                    got_y = want_y = None
            if got.device != dev:
                report.add(check, "failed", f"result on {got.device}, expected {dev}")
                continue
            problem = mismatch(got.cpu().numpy(), want, name)
            if problem is None and got_y is not None and not np.array_equal(got_y, want_y):
                problem = "the mixed targets differ"
            if problem is not None:
                report.add(check, "failed", problem)
                continue
            how = "exact" if pow_atol(name) == 0.0 else f"within the pow bound ({pow_atol(name):.3g})"
            noise = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
            report.add(check, "ok", how + (f"; warnings: {noise}" if noise else ""))
        except Exception as err:
            report.add(check, "failed", f"{type(err).__name__}: {err}"[:2000])


def diagnose(arch: str | None = None, n: int = 4, size: int = 32) -> Report:
    """Run every check this machine allows; see the module notes."""
    report = Report(versions=versions())
    gpus, why_none = visible_gpus()
    report.gpus = gpus
    try:
        import cupy  # noqa: F401
    except ImportError:
        report.add("NVRTC compiles the kernels", "skipped", "CuPy is not installed")
        report.add("methods on the GPU equal the cpu executor", "skipped", "CuPy is not installed")
        return report
    device = None
    if gpus:
        import torch

        from .executors.nvrtc_build import device_arch

        device = torch.cuda.current_device()
        try:
            target = arch or device_arch(device)
        except Exception as err:
            report.add(f"NVRTC has a target for cuda:{device}", "failed", str(err)[:2000])
            return report
        report.notes.append(f"current device cuda:{device}; NVRTC target {target}"
                            + (" (--arch)" if arch else " (the current GPU's)"))
        check_nvrtc(report, target)
        check_kernel_loading(report, device)
        check_methods_on_gpu(report, device, n, size)
    else:
        target = arch or DEFAULT_ARCH
        report.notes.append(f"no GPU: {why_none}; NVRTC target {target} "
                            f"({'--arch' if arch else 'default'}), built only, nothing loaded or run")
        check_nvrtc(report, target)
        report.add("kernels load on a GPU", "skipped", why_none)
        report.add("methods on the GPU equal the cpu executor", "skipped", why_none)
    return report


def format_report(report: Report) -> str:
    lines = ["gpuaug doctor", "", "versions:"]
    lines += [f"  {k}: {v}" for k, v in report.versions.items()]
    lines += ["", "GPUs:"]
    if report.gpus:
        lines += [f"  cuda:{g['index']}: {g['name']} (compute {g['capability']}, {g['memory_gib']} GiB)"
                  for g in report.gpus]
    else:
        lines.append("  none visible")
    lines += [f"  note: {n}" for n in report.notes]
    lines += ["", "checks:"]
    for c in report.checks:
        lines.append(f"  [{c.status}] {c.name}" + (f": {c.detail}" if c.detail else ""))
    counts = {s: sum(c.status == s for c in report.checks) for s in ("ok", "failed", "skipped")}
    lines += ["", f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped (could not be "
              "checked here)" + ("" if report.failed else "; nothing that could be checked failed")]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    parser.add_argument("--arch", help="NVRTC target, e.g. sm_90 or compute_90 (default: the current GPU's, "
                                       f"or {DEFAULT_ARCH} without a GPU)")
    parser.add_argument("--size", type=int, default=32, help="image side of the method check batch")
    parser.add_argument("--batch", type=int, default=4, help="images in the method check batch")


def run(args) -> int:
    report = diagnose(args.arch, args.batch, args.size)
    print(format_report(report))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"versions": report.versions, "gpus": report.gpus, "notes": report.notes,
                                    "checks": [asdict(c) for c in report.checks],
                                    "failed": len(report.failed)}, indent=2) + "\n")
        print(f"wrote {path}")
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpuaug doctor", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
