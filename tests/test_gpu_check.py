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
    assert v["compute-sanitizer memcheck, every kernel family and method"] == "met"
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
    assert _verdicts(text)["compute-sanitizer memcheck, every kernel family and method"] == "—"
    assert "met" not in _verdicts(text).values()
