"""Shared machinery of the benchmarks: timing, statistics, result rows, environment facts,
CPU-utilisation sampling.

Every figure is a *row* (a plain dict, JSON-ready). Rows of every suite share these keys:

    suite, name, method, image_size, batch, impl, status ("ok" | "skipped" | "error"),
    reason (why skipped / the error, else None), notes (what exactly was measured)

and, when ``status == "ok"``, ``time_s`` (per run: the stats below) and ``throughput``
(images/s per run: the same stats). Suites add their own keys (``cpu``, ``bytes``, ...).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

SCHEMA = "gpuaug-bench/1"
STATUSES = ("ok", "skipped", "error")


# ---------------------------------------------------------------- statistics

def stats(values) -> dict:
    """median, spread (min, max, quartiles, IQR), mean and the raw samples of a list."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {
        "n": int(v.size), "median": float(med), "min": float(v.min()), "max": float(v.max()),
        "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1), "mean": float(v.mean()),
        "rel_iqr": float((q3 - q1) / med) if med else None,
        "samples": [float(x) for x in v],
    }


def time_runs(run, *, warmup: int, repeats: int, sync=None) -> list[float]:
    """Call ``run(i)`` ``warmup`` times untimed (i = -warmup..-1), then ``repeats`` times
    timed (i = 0..repeats-1); ``sync()`` (e.g. a CUDA synchronise) ends each call inside
    the timed window. Returns the per-call seconds (perf_counter)."""
    sync = sync or (lambda: None)
    for i in range(-warmup, 0):
        run(i)
        sync()
    times = []
    for i in range(repeats):
        sync()
        t0 = time.perf_counter()
        run(i)
        sync()
        times.append(time.perf_counter() - t0)
    return times


def timed_row(base: dict, times: list[float], images_per_run: int, **extra) -> dict:
    """An "ok" row from per-run seconds: time_s and throughput (images/s) stats."""
    row = dict(base)
    row.update(status="ok", reason=None, images_per_run=int(images_per_run),
               time_s=stats(times), throughput=stats([images_per_run / t for t in times]))
    row.update(extra)
    return row


def skipped(base: dict, reason: str, **extra) -> dict:
    row = dict(base)
    row.update(status="skipped", reason=reason)
    row.update(extra)
    return row


def errored(base: dict, err: BaseException) -> dict:
    row = dict(base)
    last = traceback.format_exception(type(err), err, err.__traceback__)
    row.update(status="error", reason=f"{type(err).__name__}: {err}", traceback="".join(last[-6:]))
    return row


def make_base(suite: str, method: str | None, impl: str, image_size=None, batch=None, notes="") -> dict:
    parts = [suite, method or "-", impl]
    if image_size:
        parts.append(f"{image_size}px")
    if batch:
        parts.append(f"b{batch}")
    return {"suite": suite, "name": "/".join(parts), "method": method, "impl": impl,
            "image_size": image_size, "batch": batch, "notes": notes}


def guarded(base: dict, fn):
    """Run ``fn()`` (returns a row); an exception becomes an "error" row, not a crash."""
    try:
        return fn()
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - recorded, the run goes on
        return errored(base, err)


# ---------------------------------------------------------------- devices

def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def cuda_sync():
    import torch

    torch.cuda.synchronize()


def all_cores() -> int:
    """Cores this process may run on (affinity), the "all workers" count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


NO_CUDA = "no CUDA device visible to torch (CPU-only machine)"


# ---------------------------------------------------------------- environment

def _version(module: str):
    try:
        mod = __import__(module, fromlist=["__version__"])
        return str(getattr(mod, "__version__", "unknown"))
    except Exception:  # noqa: BLE001 - missing or broken: recorded as None
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git() -> dict:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return {"commit": commit or None, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_info() -> dict:
    info = {"cuda": False, "name": "cpu", "reason": NO_CUDA}
    if not cuda_available():
        return info
    import torch

    props = torch.cuda.get_device_properties(0)
    info = {"cuda": True, "name": torch.cuda.get_device_name(0), "reason": None,
            "capability": list(torch.cuda.get_device_capability(0)),
            "memory_gib": round(props.total_memory / 2 ** 30, 2),
            "multiprocessors": props.multi_processor_count,
            "torch_cuda": torch.version.cuda, "count": torch.cuda.device_count()}
    try:
        import cupy

        info["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    except Exception:  # noqa: BLE001
        pass
    return info


def environment(argv: list[str]) -> dict:
    now = _dt.datetime.now(_dt.timezone.utc)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "date": now.isoformat(timespec="seconds"),
        "command": "python -m bench " + shlex.join(argv),
        "host": {
            "hostname": platform.node(), "platform": platform.platform(), "cpu_model": _cpu_model(),
            "cpu_cores_logical": os.cpu_count(), "cpu_cores_usable": all_cores(),
            "loadavg_at_start": list(load) if load else None,
        },
        "device": device_info(),
        "versions": {
            "python": platform.python_version(), "gpuaug": _version("gpuaug"), "numpy": _version("numpy"),
            "pillow": _version("PIL"), "torch": _version("torch"), "torchvision": _version("torchvision"),
            "cupy": _version("cupy"), "dali": _version("nvidia.dali"), "ffcv": _version("ffcv"),
            "psutil": _version("psutil"),
        },
        "git": _git(),
    }


# ---------------------------------------------------------------- CPU utilisation

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _system_times():
    """(busy, total) jiffies of all CPUs from /proc/stat, or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    vals = [int(x) for x in fields]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    total = sum(vals[:8])  # guest time is already inside user/nice
    return total - idle, total


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def _tree_cpu_seconds() -> float | None:
    """user + system seconds of this process and its live descendants (DataLoader workers,
    all threads included) from /proc/<pid>/stat."""
    if not Path("/proc/self/stat").exists():
        return None
    total, stack, seen = 0, [os.getpid()], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
        stack += _children(pid)
    return total / _CLK_TCK


class CpuMonitor:
    """CPU use over a window: ``process_cores`` = CPU-seconds of this process tree per
    wall second (1.0 = one core busy), ``system_util`` = fraction of all CPUs busy
    (system-wide, includes other users of a shared machine). /proc on Linux; psutil
    elsewhere when installed; else None."""

    def __enter__(self):
        self._t = time.perf_counter()
        self._sys = _system_times()
        self._proc = _tree_cpu_seconds()
        self._psutil = None
        if self._sys is None:
            try:
                import psutil

                psutil.cpu_percent(None)
                self._psutil = psutil
                self._proc = sum(sum(p.cpu_times()[:2]) for p in
                                 [psutil.Process()] + psutil.Process().children(recursive=True))
            except Exception:  # noqa: BLE001
                self._psutil = None
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._t
        self.result = {"wall_s": wall, "process_cores": None, "system_util": None,
                       "source": "/proc" if self._sys else ("psutil" if self._psutil else None)}
        if self._sys is not None:
            end = _system_times()
            proc = _tree_cpu_seconds()
            d_busy, d_total = end[0] - self._sys[0], end[1] - self._sys[1]
            self.result["system_util"] = d_busy / d_total if d_total else None
            if proc is not None and self._proc is not None and wall > 0:
                self.result["process_cores"] = (proc - self._proc) / wall
        elif self._psutil is not None:
            ps = self._psutil
            self.result["system_util"] = ps.cpu_percent(None) / 100
            proc = sum(sum(p.cpu_times()[:2]) for p in [ps.Process()] + ps.Process().children(recursive=True))
            self.result["process_cores"] = (proc - self._proc) / wall if wall > 0 else None
        return False


def cpu_summary(samples: list[dict]) -> dict:
    """Median process_cores / system_util over several windows."""
    out = {"source": samples[0]["source"] if samples else None}
    for key in ("process_cores", "system_util"):
        vals = [s[key] for s in samples if s.get(key) is not None]
        out[key] = float(np.median(vals)) if vals else None
    return out


def log(msg: str):
    print(msg, file=sys.stderr, flush=True)
