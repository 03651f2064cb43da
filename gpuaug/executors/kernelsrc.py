"""The kernels' sources as Python sees them: ``kernels/*.cu`` read from the package, their
``extern "C" __global__`` signatures parsed, every launch argument checked against its C
type, and :class:`Kernel`, the launchable handle every backend returns."""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
