"""Every kernels/*.cu compiles with NVRTC for sm_90 without errors or warnings, in the very
build the cuda backend loads (no flush-to-zero)."""

import re
from pathlib import Path

import pytest

from gpuaug.executors import launch, nvrtc_build
from gpuaug.ops import OP_IDS

KERNEL_DIR = Path(__file__).resolve().parents[1] / "kernels"
SOURCES = sorted(KERNEL_DIR.glob("*.cu"))


def test_kernel_sources_exist():
    names = {p.stem for p in SOURCES}
    assert {"histogram", "lut", "apply", "resize"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_nvrtc_compiles_cleanly(path):
    log = launch.compile_check(path)
    assert log == "", f"NVRTC log for {path.name}:\n{log}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_kernels_are_parseable(path):
    sigs = launch.parse_kernels(path.read_text())
    assert sigs, f"{path.name} declares no extern \"C\" __global__ kernel"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_op_id_defines_match_catalogue(path):
    for name, value in re.findall(r"#define\s+OP_([A-Z_]+)\s+(\d+)", path.read_text()):
        assert OP_IDS[name.lower()] == int(value), f"{path.name}: OP_{name} = {value}"


def test_compile_check_reports_errors(tmp_path):
    bad = tmp_path / "bad.cu"
    bad.write_text('extern "C" __global__ void k(int* a) { a[0] = undefined_name; }\n')
    with pytest.raises(launch.KernelCompileError, match="undefined_name"):
        launch.compile_check(bad)


def test_compile_check_returns_warnings(tmp_path):
    src = tmp_path / "warn.cu"
    src.write_text('extern "C" __global__ void k(int* a) { int unused; a[0] = 1; }\n')
    assert "unused" in launch.compile_check(src)


def test_sources_found_from_an_uninstalled_checkout(monkeypatch):
    """Run from the tree with PYTHONPATH=. (as on the lent GPU), gpuaug.kernels does not
    import: the sources come from the checkout's kernels/ folder."""
    import importlib.resources

    from gpuaug.executors import launch

    def no_package(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib.resources, "files", no_package)
    assert "gpuaug_dynamic_mix" in launch.read_source("mix")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_the_build_that_runs_keeps_subnormals(path):
    # CuPy's RawModule(code=...) adds -ftz=true; the cuda backend's own build must not
    built = launch.build_file(path, "sm_90")
    assert "-ftz=true" not in built.options and not any("ftz" in o for o in built.options)
    assert built.binary[:4] == b"\x7fELF"  # a cubin for the device, nothing left to the driver
    assert nvrtc_build.flush_to_zero_instructions(built.ptx) == []


def test_flush_to_zero_instructions_are_found():
    source = 'extern "C" __global__ void k(float* a) { a[0] = a[1] * a[2]; }\n'
    flushed = nvrtc_build.build(source, "k.cu", "sm_90", nvrtc_build.OPTIONS + ("-ftz=true",))
    assert nvrtc_build.flush_to_zero_instructions(flushed.ptx) == ["mul.rn.ftz.f32"]
    kept = nvrtc_build.build(source, "k.cu", "sm_90")
    assert nvrtc_build.flush_to_zero_instructions(kept.ptx) == [] and "mul.rn.f32" in kept.ptx


def test_the_cuda_backend_loads_the_checked_build(monkeypatch):
    # no GPU here: the device's architecture and the driver's loader are stood in for
    import contextlib

    import cupy

    class Module:
        def get_function(self, name):
            return name

    loaded = []
    monkeypatch.setattr(nvrtc_build, "device_arch", lambda device: "sm_90")
    monkeypatch.setattr(nvrtc_build, "load", lambda binary, device: loaded.append((binary, device)) or Module())
    monkeypatch.setattr(cupy.cuda, "Device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(launch, "_modules", {})
    assert launch._cuda_function("mix", "gpuaug_dynamic_mix", 3) == "gpuaug_dynamic_mix"
    assert launch._cuda_function("mix", "gpuaug_weighted_mix", 3) == "gpuaug_weighted_mix"
    want = nvrtc_build.build(launch.read_source("mix"), "mix.cu", "sm_90").binary
    assert loaded == [(want, 3)]  # built once, loaded once per device


def test_nothing_compiles_through_cupy_rawmodule_code():
    package = Path(__file__).resolve().parents[1] / "gpuaug"
    pattern = re.compile(r"cupy\.Raw(Module|Kernel)\(|import\s+Raw")
    offenders = [str(p) for p in package.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
