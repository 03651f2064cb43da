"""The one NVRTC build of a kernel file: what the doctor and the compile tests check is
exactly what the ``cuda`` backend loads and runs.

CuPy's ``RawModule(code=...)`` appends ``-ftz=true`` to every compile, which flushes float
subnormals to zero on the GPU only (the emulator and the numpy twin keep them), so the
kernels are built here with NVRTC directly and :data:`OPTIONS` (no ``-ftz``), and the
binary is loaded as it is. :func:`device_arch` picks the target: ``sm_XY`` (a cubin) for
a device NVRTC supports, else PTX for the newest virtual architecture below it (the
driver compiles it; the PTX carries its rounding and subnormal modes per instruction).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPTIONS = ("--fmad=false", "-std=c++17", "--device-as-default-execution-space")

# PTX defines the approximate f64 reciprocal only with .ftz; libdevice's double pow seeds
# a Newton step with it and treats tiny inputs itself, so it is no flush of our results.
_FTZ_ALLOWED = {"rcp.approx.ftz.f64"}
_FTZ_RE = re.compile(r"\b[a-z][\w.]*\.ftz\b[\w.]*")


class KernelCompileError(RuntimeError):
    """A kernel source failed to compile (the message carries the compiler log)."""


@dataclass(frozen=True)
class Build:
    """One NVRTC build: ``binary`` is a cubin for ``sm_XY``, the PTX for ``compute_XY``."""

    arch: str
    options: tuple[str, ...]
    log: str
    ptx: str
    binary: bytes


def _check_arch(arch: str) -> str:
    if not re.fullmatch(r"(sm|compute)_\d+[af]?", arch):
        raise ValueError(f"NVRTC target must look like sm_90 or compute_90, got {arch!r}")
    return arch


def build(source: str, name: str, arch: str, options: tuple[str, ...] = OPTIONS) -> Build:
    """Compile CUDA C ``source`` (``name`` appears in messages) for ``arch`` with ``options``.

    Raises KernelCompileError (with the log) when compilation fails; an empty ``log``
    means no errors and no warnings.
    """
    from cupy_backends.cuda.libs import nvrtc

    arch = _check_arch(arch)
    prog = nvrtc.createProgram(source, name, [], [])
    try:
        try:
            nvrtc.compileProgram(prog, [f"--gpu-architecture={arch}", *options])
        except nvrtc.NVRTCError as err:
            log = nvrtc.getProgramLog(prog)
            raise KernelCompileError(f"NVRTC failed to compile {name} ({err}):\n{log}") from None
        log = nvrtc.getProgramLog(prog).rstrip("\x00").strip()
        ptx = nvrtc.getPTX(prog)
        binary = nvrtc.getCUBIN(prog) if arch.startswith("sm_") else ptx.rstrip(b"\x00") + b"\x00"
        return Build(arch, tuple(options), log, ptx.rstrip(b"\x00").decode(), binary)
    finally:
        nvrtc.destroyProgram(prog)


def flush_to_zero_instructions(ptx: str) -> list[str]:
    """The PTX instructions that flush subnormals to zero (sorted, distinct); none expected."""
    return sorted({m for m in _FTZ_RE.findall(ptx) if m not in _FTZ_ALLOWED})


def device_arch(device: int) -> str:
    """The NVRTC target for CUDA ``device``: ``sm_XY`` when NVRTC supports its compute
    capability, else ``compute_XY`` of the newest supported one below it."""
    import cupy
    from cupy_backends.cuda.libs import nvrtc

    cc = int(cupy.cuda.Device(device).compute_capability)
    supported = sorted(int(a) for a in nvrtc.getSupportedArchs())
    if cc in supported:
        return f"sm_{cc}"
    below = [a for a in supported if a < cc]
    if not below:
        raise KernelCompileError(f"cuda:{device} has compute capability {cc}; this NVRTC targets "
                                 f"{supported[0]} to {supported[-1]}")
    return f"compute_{below[-1]}"


def load(binary: bytes, device: int):
    """Load a built binary (cubin or PTX) as a module on ``device``; ``.get_function(name)``
    gives kernels launched as ``fn(grid, block, args)`` on the current CuPy stream."""
    import cupy
    from cupy.cuda import function

    with cupy.cuda.Device(device):
        module = function.Module()
        module.load(binary)
    return module
