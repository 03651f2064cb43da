"""The ``"emulated"`` backend: a kernel file compiled by g++ with the shim
``kernels/cuda_emu.h`` into a shared library whose ``extern "C"`` launchers run the kernel
on CPU threads (arrays are numpy). Libraries are cached on disk by source hash in a 0700
folder of the user's cache dir (:func:`cache_dir`); one there is loaded only when its
SHA-256 is the one recorded when this user compiled it."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .kernelsrc import Kernel, Signature, _check_array, _kernel_dir, _scalar
from .nvrtc_build import KernelCompileError

GXX_FLAGS = ("-std=c++20", "-O2", "-ffp-contract=off", "-pthread", "-fPIC", "-shared")
SHIM_NAME = "cuda_emu.h"


@dataclass
class _EmuLibrary:
    lib: ctypes.CDLL
    lock: threading.Lock  # __shared__ is static storage: one launch at a time


_libraries: dict[str, _EmuLibrary] = {}
_libraries_lock = threading.Lock()
_build_locks: dict[str, threading.Lock] = {}


def cache_dir() -> Path:
    """Where emulated shared libraries are cached: ``emulated/`` in the user's gpuaug
    cache folder (:mod:`gpuaug.data.cachedir`)."""
    from ..data.cachedir import cache_root

    return cache_root() / "emulated"


def _private_dir(folder: Path) -> Path:
    """``folder``, created mode 0700; refused when another user owns it or others may write
    to it (a library planted there would run as this user)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise PermissionError(
            f"refusing the emulated-kernel cache {str(folder)!r}: it must be a folder of this user's that "
            f"no one else may write to (owner uid {st.st_uid}, mode {st.st_mode & 0o777:o}); remove it, or "
            "point GPUAUG_CACHE_DIR at a private folder")
    return folder


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified(so_path: Path) -> bool:
    """Whether ``so_path`` is a library this user compiled: owned by them (in their private
    folder) and its SHA-256 the one recorded when it was compiled."""
    try:
        st = so_path.stat()
        recorded = so_path.with_name(so_path.name + ".sha256").read_text().strip()
    except OSError:
        return False
    return st.st_uid == os.getuid() and recorded == _file_digest(so_path)


def _wrapper_source(sigs) -> str:
    """extern "C" launchers: int gpuaug_emu_launch_<name>(grid xyz, block xyz, params...)."""
    lines = []
    for sig in sigs:
        params = "".join(f", {p.decl}" for p in sig.params)
        call = ", ".join(p.name for p in sig.params)
        lines.append(
            f'extern "C" int gpuaug_emu_launch_{sig.name}(unsigned int gpuaug_gx, unsigned int gpuaug_gy, '
            f"unsigned int gpuaug_gz, unsigned int gpuaug_bx, unsigned int gpuaug_by, unsigned int gpuaug_bz{params})\n"
            f"{{\n    return ::gpuaug_emu::launch(dim3{{gpuaug_gx, gpuaug_gy, gpuaug_gz}}, "
            f"dim3{{gpuaug_bx, gpuaug_by, gpuaug_bz}}, [&]() {{ {sig.name}({call}); }});\n}}\n"
        )
    lines.append('extern "C" const char* gpuaug_emu_last_error() { return ::gpuaug_emu::last_error.c_str(); }\n')
    return "\n".join(lines)


def _emulated_library(file_stem: str, source: str, sigs) -> _EmuLibrary:
    shim = _kernel_dir().joinpath(SHIM_NAME).read_text()
    unit = (
        f'#line 1 "{SHIM_NAME}"\n{shim}\n#line 1 "{file_stem}.cu"\n{source}\n'
        f'#line 1 "{file_stem}-launchers.cpp"\n{_wrapper_source(sigs)}'
    )
    compiler = os.environ.get("CXX", "g++")
    digest = hashlib.sha256("\0".join((unit, compiler, *GXX_FLAGS)).encode()).hexdigest()[:20]
    with _libraries_lock:  # one build per library; different libraries build in parallel
        build_lock = _build_locks.setdefault(digest, threading.Lock())
    with build_lock:
        if digest in _libraries:
            return _libraries[digest]
        folder = _private_dir(cache_dir())
        so_path = folder / f"{file_stem}-{digest}.so"
        if not _verified(so_path):  # absent, or not provably ours: compile it (again)
            _compile_emulated(compiler, unit, so_path, file_stem)
        entry = _EmuLibrary(ctypes.CDLL(str(so_path)), threading.Lock())
        _libraries[digest] = entry
        return entry


def _compile_emulated(compiler: str, unit: str, so_path: Path, file_stem: str) -> None:
    if shutil.which(compiler) is None:
        raise KernelCompileError(f"the emulated backend needs a C++20 compiler; {compiler!r} was not found (set CXX)")
    with tempfile.TemporaryDirectory(dir=so_path.parent) as tmp:
        cpp = Path(tmp) / f"{file_stem}.cpp"
        cpp.write_text(unit)
        tmp_so = Path(tmp) / so_path.name
        proc = subprocess.run([compiler, *GXX_FLAGS, "-o", str(tmp_so), str(cpp)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise KernelCompileError(f"{compiler} failed to compile {file_stem}.cu for emulation:\n{proc.stderr}")
        record = Path(tmp) / "digest"
        record.write_text(_file_digest(tmp_so) + "\n")
        os.replace(tmp_so, so_path)  # atomic: concurrent builders never see a partial file
        os.replace(record, so_path.with_name(so_path.name + ".sha256"))


def _emulated_kernel(file_stem: str, source: str, sigs: dict, sig: Signature) -> Kernel:
    entry = _emulated_library(file_stem, source, list(sigs.values()))
    fn = getattr(entry.lib, f"gpuaug_emu_launch_{sig.name}")
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_uint] * 6 + [
        ctypes.c_void_p if p.pointer else np.ctypeslib.as_ctypes_type(p.dtype) for p in sig.params
    ]
    last_error = entry.lib.gpuaug_emu_last_error
    last_error.restype = ctypes.c_char_p

    def launch(grid, block, args):
        converted = []
        for p, a in zip(sig.params, args):
            if p.pointer:
                arr = _check_array(p, a, np.ndarray, sig.name)
                if not p.const and not arr.flags.writeable:
                    raise ValueError(f"kernel {sig.name}: argument {p.name!r} is written by the kernel but is read-only")
                converted.append(arr.ctypes.data)
            else:
                converted.append(_scalar(p, a, sig.name).item())
        with entry.lock:
            rc = fn(*grid, *block, *converted)
            if rc != 0:
                raise RuntimeError(f"emulated launch of {sig.name} failed: {last_error().decode(errors='replace')}")

    return Kernel(sig, "emulated", launch)
