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

Both return a :class:`Kernel`, called as ``kernel(grid, block, args)``. Kernel signatures
are parsed from the source (``extern "C" __global__ void name(...)``), and every
argument is checked against its C type before a launch. ``compile_check(path)`` makes
that same build of a file (no GPU needed) and returns the compiler log.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.resources
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import nvrtc_build
from .nvrtc_build import KernelCompileError  # noqa: F401 (raised by both backends)

BACKENDS = ("cuda", "emulated", "recording")
GXX_FLAGS = ("-std=c++20", "-O2", "-ffp-contract=off", "-pthread", "-fPIC", "-shared")
SHIM_NAME = "cuda_emu.h"
MAX_BLOCK_THREADS = 1024


class KernelSignatureError(ValueError):
    """A kernel signature could not be parsed or uses an unsupported C type."""


# C base types (qualifiers removed) -> numpy dtypes of the same width and signedness.
_C_TYPES = {
    "char": np.int8, "signed char": np.int8, "unsigned char": np.uint8, "bool": np.bool_,
    "short": np.int16, "unsigned short": np.uint16,
    "int": np.int32, "signed int": np.int32, "unsigned": np.uint32, "unsigned int": np.uint32,
    "long long": np.int64, "long long int": np.int64,
    "unsigned long long": np.uint64, "unsigned long long int": np.uint64,
    "float": np.float32, "double": np.float64,
}
_QUALIFIERS = {"const", "volatile", "__restrict__", "__restrict", "restrict"}


@dataclass(frozen=True)
class Param:
    """One kernel parameter: its declaration text, name, numpy dtype and pointer-ness."""

    decl: str
    name: str
    dtype: np.dtype
    pointer: bool
    const: bool


@dataclass(frozen=True)
class Signature:
    name: str
    params: tuple[Param, ...]


# ---------------------------------------------------------------- parsing

_KERNEL_RE = re.compile(
    r'extern\s+"C"\s+__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+'
    r"(?:__launch_bounds__\s*\([^)]*\)\s*)?([A-Za-z_]\w*)\s*\(([^)]*)\)"
)


def _strip_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    return re.sub(r"//[^\n]*", "", source)


def _parse_param(text: str, kernel: str) -> Param:
    decl = " ".join(text.split())
    m = re.fullmatch(r"(.*?)([A-Za-z_]\w*)", decl)
    if not m or not m.group(1).strip():
        raise KernelSignatureError(f"kernel {kernel}: cannot parse parameter {decl!r}")
    type_part, name = m.group(1), m.group(2)
    stars = type_part.count("*")
    if stars > 1:
        raise KernelSignatureError(f"kernel {kernel}: parameter {name!r}: pointers to pointers are not supported")
    words = [w for w in re.findall(r"\w+", type_part) if w not in _QUALIFIERS]
    base = " ".join(words)
    if base not in _C_TYPES:
        raise KernelSignatureError(
            f"kernel {kernel}: parameter {name!r} has unsupported type {base!r}; "
            f"supported: {', '.join(sorted(_C_TYPES))} and pointers to them"
        )
    const = stars == 1 and "const" in re.findall(r"\w+", type_part.split("*")[0])
    return Param(decl, name, np.dtype(_C_TYPES[base]), stars == 1, const)


def parse_kernels(source: str) -> dict[str, Signature]:
    """All ``extern "C" __global__ void`` kernels of a source, by name."""
    out = {}
    for m in _KERNEL_RE.finditer(_strip_comments(source)):
        name, body = m.group(1), m.group(2).strip()
        parts = [] if body in ("", "void") else body.split(",")
        out[name] = Signature(name, tuple(_parse_param(p, name) for p in parts))
    return out


# ---------------------------------------------------------------- sources

def _kernel_dir():
    try:
        return importlib.resources.files("gpuaug.kernels")
    except ModuleNotFoundError:
        # Run from a checkout that was never installed (PYTHONPATH=., as on the lent GPU):
        # the package maps the top-level kernels/ folder, which is right here.
        return Path(__file__).resolve().parents[2] / "kernels"


def read_source(file_stem: str) -> str:
    """Text of ``kernels/<file_stem>.cu`` (package ``gpuaug.kernels``)."""
    if not re.fullmatch(r"[A-Za-z_]\w*", file_stem):
        raise ValueError(f"kernel file stem must be a plain name like 'apply', got {file_stem!r}")
    res = _kernel_dir().joinpath(f"{file_stem}.cu")
    if not res.is_file():
        raise FileNotFoundError(f"no kernel source {file_stem}.cu in gpuaug.kernels ({_kernel_dir()})")
    return res.read_text()


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


# ---------------------------------------------------------------- argument checks

def _dims(value, what: str) -> tuple[int, int, int]:
    if isinstance(value, (int, np.integer)):
        value = (value,)
    dims = tuple(int(v) for v in value)
    if not 1 <= len(dims) <= 3 or any(d < 1 for d in dims):
        raise ValueError(f"{what} must be 1 to 3 positive integers, got {value!r}")
    return dims + (1,) * (3 - len(dims))


def _check_launch(grid, block) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    try:
        return _checked_dims(grid, block)  # launches repeat a few shapes: checked once each
    except TypeError:  # unhashable (a list): check it directly
        return _check_launch_dims(grid, block)


@functools.lru_cache(maxsize=4096)
def _checked_dims(grid, block):
    return _check_launch_dims(grid, block)


def _check_launch_dims(grid, block):
    grid, block = _dims(grid, "grid"), _dims(block, "block")
    if grid[1] > 65535 or grid[2] > 65535 or grid[0] > 2**31 - 1:
        raise ValueError(f"grid {grid} exceeds CUDA limits (x < 2**31, y and z <= 65535)")
    if block[0] * block[1] * block[2] > MAX_BLOCK_THREADS or block[2] > 64:
        raise ValueError(f"block {block} exceeds CUDA limits ({MAX_BLOCK_THREADS} threads, z <= 64)")
    return grid, block


@functools.lru_cache(maxsize=None)
def _int_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _scalar(param: Param, value, kernel: str):
    """A Python/numpy scalar converted to the parameter's exact numpy type."""
    where = f"kernel {kernel}: argument {param.name!r} ({param.decl})"
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if param.dtype.kind in "iub":
        if isinstance(value, (bool, np.bool_)) and param.dtype.kind != "b":
            raise TypeError(f"{where} must be an integer, got a bool")
        if not isinstance(value, (int, np.integer, bool, np.bool_)):
            raise TypeError(f"{where} must be an integer, got {type(value).__name__}")
        if param.dtype.kind != "b":
            low, high = _int_range(param.dtype)
            if not low <= int(value) <= high:
                raise ValueError(f"{where}: {int(value)} is out of range [{low}, {high}]")
        return param.dtype.type(value)
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where} must be a real number, got {type(value).__name__}")
    return param.dtype.type(value)


def _check_array(param: Param, value, array_type, kernel: str):
    where = f"kernel {kernel}: argument {param.name!r} ({param.decl})"
    if not isinstance(value, array_type):
        raise TypeError(f"{where} must be a {array_type.__module__}.{array_type.__name__}, got {type(value).__name__}")
    if value.dtype != param.dtype:
        raise TypeError(f"{where} needs dtype {param.dtype}, got {value.dtype}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{where} must be C-contiguous")
    return value


def _checked_args(sig: Signature, args, array_type) -> tuple:
    """Arguments checked against the signature: arrays of ``array_type``, exact scalars."""
    return tuple(_check_array(p, a, array_type, sig.name) if p.pointer else _scalar(p, a, sig.name)
                 for p, a in zip(sig.params, args))


class Kernel:
    """A launchable kernel: ``kernel(grid, block, args)`` with args in declaration order."""

    def __init__(self, signature: Signature, backend: str, launch, device: int | None = None):
        self.signature = signature
        self.name = signature.name
        self.backend = backend
        self.device = device  # the CUDA device it is loaded on ("cuda" backend only)
        self._launch = launch

    @property
    def params(self) -> tuple[Param, ...]:
        return self.signature.params

    def __repr__(self) -> str:
        return f"<Kernel {self.name} ({self.backend}): {', '.join(p.decl for p in self.params)}>"

    def __call__(self, grid, block, args) -> None:
        grid, block = _check_launch(grid, block)
        args = tuple(args)
        if len(args) != len(self.params):
            names = ", ".join(p.name for p in self.params)
            raise TypeError(f"kernel {self.name} takes {len(self.params)} arguments ({names}), got {len(args)}")
        self._launch(grid, block, args)


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


# ---------------------------------------------------------------- backend: emulated (g++)

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
