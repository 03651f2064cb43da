"""Load and launch the CUDA C kernels of ``kernels/*.cu`` with one of two backends.

* ``"cuda"``: the file is built by :func:`gpuaug.executors.nvrtc_build.build` (NVRTC with
  the project's options, no ``-ftz``; a cubin for the device's architecture), loaded on one
  device (cached in memory per file, options, architecture and device), and launched on
  the current CuPy stream. A kernel belongs to its device: launching it while another
  device is current, or on arrays of another device, raises a clear error instead of
  CUDA's "invalid resource handle".
* ``"emulated"``: the same file is compiled by g++ together with the shim
  ``kernels/cuda_emu.h`` into a shared library (cached on disk by source hash, in a 0700
  folder of the user's cache dir: :func:`cache_dir`; a library there is loaded only when
  its SHA-256 is the one recorded when this user compiled it) whose generated
  ``extern "C"`` launchers run the kernel on CPU threads; arrays are numpy.
* ``"recording"``: nothing is compiled or run; arguments are checked as for ``"cuda"``
  and the launch is recorded (with the bytes it would move) by
  :mod:`gpuaug.executors.recording` (host-cost benchmark without a GPU).

Modules: :mod:`.kernelsrc` (sources, signatures, argument checks, :class:`Kernel`),
:mod:`.emulator` (the g++ build and its cache), this one (NVRTC build, cuda and recording
launchers, :func:`get_kernel`).

All return a :class:`Kernel`, called as ``kernel(grid, block, args)``. Kernel signatures
are parsed from the source (``extern "C" __global__ void name(...)``), and every
argument is checked against its C type before a launch. ``compile_check(path)`` makes
that same build of a file (no GPU needed) and returns the compiler log.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np

from . import nvrtc_build
from .emulator import _emulated_kernel, cache_dir  # noqa: F401 (cache_dir: where emulated builds go)
from .kernelsrc import (  # noqa: F401 (the signature types and checks, used here and by callers)
    MAX_BLOCK_THREADS, Kernel, KernelSignatureError, Param, Signature, _checked_args, parse_kernels, read_source,
)
from .nvrtc_build import KernelCompileError  # noqa: F401 (raised by both backends)

BACKENDS = ("cuda", "emulated", "recording")


# ---------------------------------------------------------------- nvrtc build

def build_file(path, arch: str = "sm_90") -> nvrtc_build.Build:
    """The build the ``cuda`` backend runs, of the .cu file at ``path``, for ``arch``."""
    path = Path(path)
    return _build(path.read_text(), path.name, arch)


@functools.lru_cache(maxsize=64)
def _build(source: str, name: str, arch: str) -> nvrtc_build.Build:
    return nvrtc_build.build(source, name, arch, nvrtc_build.OPTIONS)


def compile_check(path, arch: str = "sm_90") -> str:
    """Build a .cu file as the ``cuda`` backend does (no GPU needed) and return the log.

    Raises KernelCompileError (with the log) when compilation fails; an empty log means
    no errors and no warnings.
    """
    return build_file(path, arch).log


# ---------------------------------------------------------------- backend: cuda (CuPy)

_modules: dict[tuple[str, tuple[str, ...], str, int], object] = {}
_module_locks: dict[tuple[str, tuple[str, ...], str, int], threading.Lock] = {}
_modules_lock = threading.Lock()


def _current_device() -> int:
    from .._arrays import current_cuda_device

    return current_cuda_device()


def _cuda_function(file_stem: str, name: str, device: int):
    """Build ``file_stem``.cu for ``device``'s architecture (once) and load ``name`` on it."""
    arch = nvrtc_build.device_arch(device)
    key = (file_stem, nvrtc_build.OPTIONS, arch, device)
    with _modules_lock:  # one build per module; different files build concurrently
        module_lock = _module_locks.setdefault(key, threading.Lock())
    with module_lock:
        mod = _modules.get(key)
        if mod is None:
            built = _build(read_source(file_stem), f"{file_stem}.cu", arch)
            mod = nvrtc_build.load(built.binary, device)
            _modules[key] = mod
    import cupy

    with cupy.cuda.Device(device):
        return mod.get_function(name)


def _cuda_kernel(file_stem: str, sig: Signature, device: int) -> Kernel:
    import cupy

    fn = _cuda_function(file_stem, sig.name, device)

    def launch(grid, block, args):
        here = _current_device()
        if here != device:
            raise RuntimeError(f"kernel {sig.name} was loaded on cuda:{device} but cuda:{here} is current; "
                               "get it with get_kernel under the device it runs on")
        converted = _checked_args(sig, args, cupy.ndarray)
        for p, arr in zip(sig.params, converted):
            if p.pointer and arr.device.id != device:
                raise ValueError(f"kernel {sig.name} (cuda:{device}): argument {p.name!r} is on cuda:{arr.device.id}")
        fn(grid, block, converted)  # current CuPy stream, on `device`

    return Kernel(sig, "cuda", launch, device)


# ---------------------------------------------------------------- backend: recording

def _recording_kernel(sig: Signature) -> Kernel:
    from . import recording

    def launch(grid, block, args):
        recording.record_launch(sig, grid, _checked_args(sig, args, recording.RecArray))

    return Kernel(sig, "recording", launch)


# ---------------------------------------------------------------- entry point

def array_module(backend: str):
    """The array module whose arrays ``backend``'s kernels take: CuPy, numpy (emulated) or
    the recording stand-in."""
    if backend == "cuda":
        import cupy

        return cupy
    if backend == "emulated":
        return np
    if backend == "recording":
        from .recording import xp

        return xp
    raise ValueError(f"backend must be 'cuda', 'emulated' or 'recording', got {backend!r}")


_kernels: dict[tuple[str, str, str, int | None], Kernel] = {}


def get_kernel(file_stem: str, kernel_name: str, backend: str, device: int | None = None) -> Kernel:
    """The kernel ``kernel_name`` of ``kernels/<file_stem>.cu`` for ``backend`` (one of BACKENDS);
    for "cuda", loaded on ``device`` (default: the calling thread's current device -- pass it
    explicitly from worker threads, whose current device is 0)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cuda":
        device = _current_device() if device is None else int(device)
    else:
        device = None
    key = (file_stem, kernel_name, backend, device)
    kernel = _kernels.get(key)
    if kernel is not None:
        return kernel
    source = read_source(file_stem)
    sigs = parse_kernels(source)
    if kernel_name not in sigs:
        raise KeyError(
            f"{file_stem}.cu has no kernel {kernel_name!r} declared as extern \"C\" __global__ void; "
            f"found: {', '.join(sigs) or 'none'}"
        )
    if backend == "cuda":
        kernel = _cuda_kernel(file_stem, sigs[kernel_name], device)
    elif backend == "recording":
        kernel = _recording_kernel(sigs[kernel_name])
    else:
        kernel = _emulated_kernel(file_stem, source, sigs, sigs[kernel_name])
    _kernels[key] = kernel
    return kernel
