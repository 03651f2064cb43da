"""bench.gpu_memcheck without a GPU: the workload launches every kernel of kernels/*.cu
(on the emulated backend, CuPy-free), the sanitizer is filtered to them, and its verdict
is read right -- a time-out is "timed out", never "clean"."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import gpu_memcheck  # noqa: E402
from gpuaug.executors.launch import parse_kernels  # noqa: E402

EVERY_KERNEL = sorted(name for p in (ROOT / "kernels").glob("*.cu") for name in parse_kernels(p.read_text()))


def test_the_workload_launches_every_kernel_without_torch():
    assert gpu_memcheck.kernel_names() == EVERY_KERNEL
    done, seen = gpu_memcheck.run("emulated", sizes=((5, 7),))  # the shapes: on the GPU
    assert seen == set(EVERY_KERNEL)
    from gpuaug.methods import METHODS

    assert {line.split()[0] for line in done} >= set(METHODS) | {"ops", "crops", "fractals"}
    assert any("escape-time" in line for line in done) and any("IFS" in line for line in done)


def test_a_kernel_left_out_fails_the_workload(monkeypatch):
    monkeypatch.setattr(gpu_memcheck, "kernel_names", lambda: EVERY_KERNEL + ["gpuaug_not_launched"])
    with pytest.raises(RuntimeError, match="did not launch: gpuaug_not_launched"):
        gpu_memcheck.run("emulated", sizes=((5, 7),))


def test_the_sanitizer_checks_gpuaug_kernels_only():
    cmd = gpu_memcheck.sanitizer_command("compute-sanitizer", "python3")
    filters = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--kernel-name"]
    assert filters == [f"kne={name}" for name in EVERY_KERNEL]
    assert cmd[-5:] == ["python3", "-m", "bench.gpu_memcheck", "--executor", "cuda"]


DONE = f"{gpu_memcheck.DONE_LINE}: 12 kernels launched on cuda\n"


@pytest.mark.parametrize("rc, output, timed_out, want", [
    (0, DONE + "========= ERROR SUMMARY: 0 errors\n", False, "clean"),
    (1, "========= Invalid __global__ read of size 4 bytes\n========= ERROR SUMMARY: 3 errors\n", False, "errors"),
    (None, DONE + "========= ERROR SUMMARY: 0 errors\n", True, "timed out"),  # whatever it printed
    (None, "", True, "timed out"),
    (1, "========= Error: Device not supported\n", False, "unsupported"),
    (0, "========= ERROR SUMMARY: 0 errors\n", False, "failed"),  # the workload never reached its end
    (1, DONE + "Traceback (most recent call last):\nRuntimeError: boom\n", False, "failed"),
])
def test_verdict(rc, output, timed_out, want):
    assert gpu_memcheck.verdict(rc, output, timed_out)["verdict"] == want


def _fake_sanitizer(tmp_path, body: str) -> str:
    path = tmp_path / "compute-sanitizer"
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_sanitizer_run_past_its_time_is_timed_out_and_killed(tmp_path):
    pid_file = tmp_path / "pid"
    fake = _fake_sanitizer(tmp_path, f'echo "========= ERROR SUMMARY: 0 errors"; echo $$ > {pid_file}; exec sleep 60')
    result = gpu_memcheck.sanitize(0.5, sanitizer=fake)
    assert result["verdict"] == "timed out"
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_an_unsupported_device_is_a_skip(tmp_path, monkeypatch, capsys):
    fake = _fake_sanitizer(tmp_path, 'echo "========= Error: Device not supported"; exit 1')
    monkeypatch.setattr(gpu_memcheck.shutil, "which", lambda name: fake)
    out = tmp_path / "memcheck.json"
    assert gpu_memcheck.main(["--sanitize", "--timeout", "30", "--json", str(out)]) == gpu_memcheck.SKIP_EXIT
    assert '"verdict": "unsupported"' in out.read_text()
    assert capsys.readouterr().out.splitlines()[-1].startswith("memcheck: unsupported: ")
