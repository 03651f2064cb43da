"""bench/gpu-check.sh and its report: argument handling here, verdicts on made-up results.

The dry run itself (every step, ~1.5 minutes) runs in .ci/run, not in the test suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu-check.sh"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

gpu_report = pytest.importorskip("bench.gpu_report")


def _bash(*args, env=None):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=env)


def test_script_parses_and_documents_itself():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    res = _bash("--help")
    assert res.returncode == 0 and "--dry-run" in res.stdout


def test_unknown_argument_is_refused():
    res = _bash("--fast")
    assert res.returncode == 2 and "unknown argument --fast" in res.stderr


def test_real_run_refuses_a_machine_without_gpu(tmp_path):
    import os

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    res = _bash(env=env)
    assert res.returncode == 2 and "--dry-run" in res.stderr


def _augment_row(method, throughput, status="ok"):
    row = {"impl": "ours-cuda", "method": method, "image_size": 224, "batch": 256, "status": status,
           "reason": None if status == "ok" else "no CUDA device"}
    if status == "ok":
        row["throughput"] = {"median": throughput}
    return row


def _write_run(out: Path, ratio: float, device: str = "cuda"):
    steps = [{"name": "memcheck", "status": "passed", "seconds": 12.0, "reason": "", "log": "memcheck.log"},
             {"name": "dali", "status": "skipped", "seconds": 0.0, "reason": "nvidia.dali is not importable",
              "log": ""}]
    (out / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    (out / "env.json").write_text(json.dumps({"device": "NVIDIA H200", "versions": {"torch": "2.11"}}))
    augment = {"suites": {"augment": {"rows": [_augment_row("augmix", 150_000.0), _augment_row("pixmix", 90_000.0),
                                                _augment_row("ipmix", 0, status="skipped")]}}}
    (out / "bench-augment-gpu.json").write_text(json.dumps(augment))
    roof = {"suites": {"roofline": {"rows": [
        {"impl": "ours-cuda", "method": "augmix", "image_size": 224, "status": "ok",
         "compulsory_fraction_of_copy_bw": {"median": 0.42}, "fraction_of_copy_bw": {"median": 0.8}},
        {"impl": "ours-cuda", "method": "ipmix", "image_size": 224, "status": "ok",
         "compulsory_fraction_of_copy_bw": {"median": 0.12}, "fraction_of_copy_bw": {"median": 0.5}}]}}}
    (out / "bench-roofline.json").write_text(json.dumps(roof))
    (out / "step-ratio.json").write_text(json.dumps(
        {"ratio": ratio, "settings": {"device": device, "arch": "resnet50", "batch": 256}}))
    (out / "memcheck.json").write_text(json.dumps({"verdict": "clean", "errors": 0, "detail": "0 errors"}))


MEMCHECK = "compute-sanitizer memcheck, every gpuaug kernel"


def _verdicts(text: str) -> dict:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("goal", "---"):
            rows[cells[0]] = cells[3]
    return rows


def test_report_states_each_goal(tmp_path):
    _write_run(tmp_path, ratio=0.97)
    assert gpu_report.main([str(tmp_path)]) == 0
    text = (tmp_path / "GPU-VALIDATION.md").read_text()
    v = _verdicts(text)
    assert v["aug-only augmix img/s (224², b256)"] == "met"
    assert v["aug-only pixmix img/s (224², b256)"] == "NOT met"
    assert v["aug-only ipmix img/s (224², b256)"] == "—"          # skipped, not a pass
    assert v["augmix: fraction of copy bandwidth for its bytes (224², b256)"] == "met"
    assert v["ipmix: fraction of copy bandwidth for its bytes (224², b256)"] == "NOT met"
    assert v["ResNet-50 step rate with IPMix + JSD / without"] == "met"
    assert v[MEMCHECK] == "met"
    assert "NVIDIA H200" in text and "| dali | skipped |" in text and "Dry run" not in text


def test_report_never_calls_a_cpu_ratio_a_figure(tmp_path):
    _write_run(tmp_path, ratio=1.3, device="cpu")
    copy = tmp_path / "results" / "GPU-VALIDATION.md"
    assert gpu_report.main([str(tmp_path), "--dry-run", "--copy-to", str(copy)]) == 0
    text = copy.read_text()
    assert _verdicts(text)["ResNet-50 step rate with IPMix + JSD / without"] == "CPU smoke only: not a figure"
    assert "Dry run" in text


def test_report_of_an_empty_folder_says_not_measured(tmp_path):
    assert gpu_report.main([str(tmp_path)]) == 0
    text = (tmp_path / "GPU-VALIDATION.md").read_text()
    assert text.count("not measured") == 5
    assert _verdicts(text)[MEMCHECK] == "—"
    assert "met" not in _verdicts(text).values()


# -- the run's plan: order by value, budgets inside the run's budget ----------------------------

ORDER = ["doctor", "step-ratio", "bench-augment-gpu", "pytest-gpu", "bench-roofline", "memcheck", "bench-host",
         "bench-augment-cpu", "dali-tests", "bench-loader"]


def test_plan_orders_steps_by_value_within_the_run_budget():
    res = _bash("--plan")
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()]
    steps = {r[0]: int(r[1]) for r in rows}
    assert [r[0] for r in rows][:len(ORDER)] == ORDER
    total = sum(steps[name] for name in ORDER) + steps["reserve"]
    assert total == steps["total"] <= 470


@pytest.mark.parametrize("args", [["--plan"], ["--dry-run"]])
def test_budgets_over_the_run_budget_are_refused(tmp_path, args):
    import os

    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, BUDGET_S="300")
    res = _bash(*args, env=env)
    assert res.returncode == 2 and "more than the run's budget BUDGET_S=300s" in res.stderr
    assert not (tmp_path / "steps.jsonl").exists()  # refused before any step ran


def test_the_step_ratio_runs_short_in_the_check():
    text = SCRIPT.read_text()
    assert "--steps 40 --warmup 5" in text


# -- the step ratio leaves its first half when the second does not finish -----------------------

def test_step_ratio_writes_json_after_each_half(tmp_path, monkeypatch):
    from bench import step_ratio

    out = tmp_path / "step-ratio.json"
    halves = []

    def timed(step, augment, batches, steps, warmup, jsd, device):
        if halves:  # the augmented half is stopped (a time-out)
            assert json.loads(out.read_text())["runs"]["plain"]["steps"] == 2
            raise KeyboardInterrupt
        halves.append(1)
        return 0.5

    monkeypatch.setattr(step_ratio, "_time_steps", timed)
    monkeypatch.setattr(step_ratio, "Step", lambda *a, **k: object())
    monkeypatch.setattr(step_ratio, "_batches", lambda *a: [])
    monkeypatch.setattr(step_ratio.common, "environment", lambda argv: {})
    with pytest.raises(KeyboardInterrupt):
        step_ratio.main(["--device", "cpu", "--method", "augmix", "--steps", "2", "--warmup", "0", "--batch", "2", "--image-size", "8",
                         "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["ratio"] is None and list(result["runs"]) == ["plain"]
    assert result["runs"]["plain"]["steps_per_s"] == 4.0
    line = gpu_report.step_ratio_line(tmp_path)
    assert "partial: plain 4.00 steps/s" in line and line.endswith("| — |")


# -- memcheck: a time-out never reads clean ---------------------------------------------------------

def _memcheck_report(tmp_path, status, verdict=None):
    steps = [{"name": "memcheck", "status": status, "seconds": 50.0, "reason": "stopped after 50s", "log": "m.log"}]
    (tmp_path / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    if verdict is not None:
        (tmp_path / "memcheck.json").write_text(json.dumps({"verdict": verdict, "errors": 0, "detail": "x"}))
    assert gpu_report.main([str(tmp_path)]) == 0
    return _verdicts((tmp_path / "GPU-VALIDATION.md").read_text())[MEMCHECK]


@pytest.mark.parametrize("status, verdict, want", [
    ("passed", "clean", "met"),
    ("timeout", None, "—"),
    ("timeout", "clean", "—"),
    ("passed", "timed out", "—"),
    ("passed", None, "—"),           # no verdict written: not clean
    ("failed", "errors", "NOT met"),
    ("skipped", "unsupported", "—"),
])
def test_memcheck_verdict_in_the_report(tmp_path, status, verdict, want):
    assert _memcheck_report(tmp_path, status, verdict) == want


def test_a_memcheck_time_out_reads_timed_out(tmp_path):
    text = (_memcheck_report(tmp_path, "timeout"), (tmp_path / "GPU-VALIDATION.md").read_text())
    row = next(line for line in text[1].splitlines() if MEMCHECK in line)
    assert "timed out" in row and "clean (0 errors)" not in row
