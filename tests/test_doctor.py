"""`gpuaug doctor` on this machine (CPU-only in CI): an honest report, exit 0 unless a
check that could run failed."""

import json
import sys

import pytest

from gpuaug import cli, doctor
from gpuaug.executors import launch, nvrtc_build
from gpuaug.executors.launch import KernelCompileError


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("doctor") / "report.json"
    assert cli.main(["doctor", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_reports_versions_and_gpus(report):
    for key in ("python", "numpy", "torch", "cupy", "NVRTC", "DALI"):
        assert key in report["versions"]
    assert isinstance(report["gpus"], list) and report["failed"] == 0


def test_nvrtc_compiles_every_kernel_file(report):
    compiled = [c for c in report["checks"] if c["name"].startswith("NVRTC compiles")]
    assert {c["name"].split()[2] for c in compiled} == {p.name for p in doctor.kernel_files()}
    assert all(c["status"] == "ok" for c in compiled)




def test_without_a_gpu_gpu_checks_are_skipped_with_the_reason(report):
    if report["gpus"]:
        pytest.skip("a GPU is visible")
    skipped = {c["name"]: c["detail"] for c in report["checks"] if c["status"] == "skipped"}
    assert "methods on the GPU equal the cpu executor" in skipped and "kernels load on a GPU" in skipped
    assert all("is_available() is False" in why for why in skipped.values())
    assert any("sm_90" in n and "nothing loaded or run" in n for n in report["notes"])


def test_a_failing_check_fails_the_run(monkeypatch, capsys):
    def build_file(path, arch):
        if path.name == "mix.cu":
            raise KernelCompileError("NVRTC failed to compile mix.cu: error: boom")
        return nvrtc_build.Build(arch, nvrtc_build.OPTIONS, "", "", b"")

    monkeypatch.setattr(launch, "build_file", build_file)
    assert doctor.main(["--arch", "compute_80"]) == 1
    out = capsys.readouterr().out
    assert "[failed] NVRTC compiles mix.cu for compute_80: NVRTC failed" in out
    assert "[ok] NVRTC compiles apply.cu for compute_80" in out


def test_a_build_that_flushes_subnormals_fails(monkeypatch, capsys):
    # what CuPy's RawModule(code=...) would have run: the same options plus -ftz=true
    def build_file(path, arch):
        return nvrtc_build.build(path.read_text(), path.name, arch, nvrtc_build.OPTIONS + ("-ftz=true",))

    monkeypatch.setattr(launch, "build_file", build_file)
    assert doctor.main(["--arch", "sm_90"]) == 1
    out = capsys.readouterr().out
    assert "[failed] NVRTC compiles mix.cu for sm_90" in out and "flushes subnormals to zero: " in out


def test_without_cupy_it_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    assert doctor.main([]) == 0
    out = capsys.readouterr().out
    assert "cupy: not installed" in out and "[skipped] NVRTC compiles the kernels: CuPy is not installed" in out


@pytest.mark.gpu
def test_on_a_gpu_every_method_is_checked():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    rep = doctor.diagnose()
    names = [c.name for c in rep.checks if c.name.endswith("equals the cpu executor")]
    assert len(names) == 8 and not rep.failed, doctor.format_report(rep)
