"""The benchmark harness runs end to end at its smoke size (CPU, seconds) so it never rots.

Asserts the JSON structure and that the chart is drawn -- never a timing value.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

bench = pytest.importorskip("bench")

ROW_KEYS = {"suite", "name", "method", "impl", "image_size", "batch", "status", "reason"}
STAT_KEYS = {"n", "median", "min", "max", "q1", "q3", "samples"}


def _check_row(row, suite):
    assert ROW_KEYS <= set(row), row
    assert row["suite"] == suite
    assert row["status"] in ("ok", "skipped"), f"{row['name']}: {row.get('reason')}\n{row.get('traceback', '')}"
    if row["status"] == "ok":
        assert STAT_KEYS <= set(row["time_s"]) and STAT_KEYS <= set(row["throughput"])
        assert row["time_s"]["n"] == len(row["time_s"]["samples"]) >= 1
        assert row["images_per_run"] >= 1
    else:
        assert isinstance(row["reason"], str) and row["reason"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = bench.main(["run", "--suite", "all", "--size", "smoke", "--out", str(out), "--name", "smoke",
                       "--chart", "--quiet", "--data-dir", str(out / "jpegs")])
    return code, out


def test_smoke_runs_and_writes_json_and_chart(smoke):
    code, out = smoke
    result = json.loads((out / "smoke.json").read_text())
    assert code == 0
    assert (out / "smoke.png").stat().st_size > 1000
    assert result["schema"] == "gpuaug-bench/1" and result["size"] == "smoke"
    meta = result["meta"]
    for key in ("date", "command", "host", "device", "versions", "git"):
        assert key in meta
    assert meta["host"]["cpu_cores_usable"] >= 1
    for lib in ("torch", "cupy", "dali", "numpy"):
        assert lib in meta["versions"]
    assert set(result["suites"]) == {"augment", "roofline", "loader", "train"}
    for suite, body in result["suites"].items():
        assert body["rows"], suite
        for row in body["rows"]:
            _check_row(row, suite)


def test_smoke_covers_every_method_and_baseline(smoke):
    _, out = smoke
    result = json.loads((out / "smoke.json").read_text())
    aug = result["suites"]["augment"]["rows"]
    methods = {r["method"] for r in aug}
    assert methods == {"augmix", "pixmix", "ipmix", "dynamic-mixup", "noisymix"}
    impls = {r["impl"] for r in aug}
    assert {"ours-cuda", "ours-cpu-1proc", "ours-cpu-workers", "reference-dl1", "reference-dlall",
            "tv2-cpu-dlall", "tv2-cuda-batch"} <= impls
    for ratio in result["suites"]["augment"]["ratios"]:
        assert {"ours", "baseline", "ratio"} <= set(ratio)
    # the bytes model is recorded even where the bandwidth figure needs a GPU
    for row in result["suites"]["roofline"]["rows"]:
        b = row["bytes"]
        assert b["per_image"]["median"] >= b["compulsory_per_image"] > 0


def test_bytes_model_counts_launched_passes():
    import numpy as np

    from bench import bytes_model
    from gpuaug import AugMix

    # depth 1, width 1: one op step and one fused mix (reads x and the chain, writes float32)
    m = AugMix(width=1, depth=1)
    t = bytes_model.trace(m, 4, 32, 32, seed=0)
    image = 4 * 32 * 32 * 3
    assert t["launches"]["op_apply"] == 1
    assert t["launches"]["fused"] == 1 and t["elementwise_launches_full_batch"] == 0
    assert np.isclose(t["bytes_fused"], image * (2 + 4))
    assert np.isclose(t["bytes_total"], t["bytes_op_kernels"] + t["bytes_fused"])
    assert t["bytes_op_kernels"] >= 2 * image  # the op kernel reads and writes the batch
    assert t["bytes_total"] >= t["compulsory_bytes_per_image"] * 4 >= image * 5
    # bytes scale with the image area (traced on a small stand-in)
    t2 = bytes_model.trace(m, 4, 64, 64, seed=0)
    assert np.isclose(t2["bytes_fused"], 4 * t["bytes_fused"], rtol=1e-3)


def test_bytes_model_counts_ipmix_patches_by_box_area():
    from bench import bytes_model
    from gpuaug import IPMix
    from gpuaug.mixing import MixingSet

    m = IPMix(k=2, t=2, patch_sizes=(4,))
    t = bytes_model.trace(m, 8, 32, 32, seed=1, mixing_set=MixingSet.fractals(4, 32, seed=0))
    image = 8 * 32 * 32 * 3
    # the final mix reads x and 2 chains and writes float32; patches touch at most 8 samples
    # x 4 steps x a 4x4 box (read chain + partner, write); at most one chain copy per chain
    assert t["elementwise_launches_full_batch"] == 0
    patches = t["bytes_fused"] - t["bytes_fused_copy"] - image * (1 + 2 + 4)
    assert 0 < patches <= 8 * 4 * 16 * 3 * 3
    assert t["bytes_fused_copy"] <= 2 * 2 * image


def test_chart_and_table_from_json(smoke, capsys):
    _, out = smoke
    assert bench.main(["chart", str(out / "smoke.json"), "--out", str(out / "again.png")]) == 0
    assert (out / "again.png").exists()
    assert bench.main(["table", str(out / "smoke.json")]) == 0
    assert "augment" in capsys.readouterr().out


def test_default_output_folder_is_untracked():
    import subprocess

    from bench import cli

    default = Path(cli._run_parser().parse_args([]).out)
    assert default == ROOT / "bench" / "out"
    probe = default / "cpu-2026-01-01.json"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=ROOT)
    assert ignored.returncode == 0, "bench/out/ must be git-ignored"
    assert (ROOT / "bench" / "results").is_dir()  # the committed results stay where they are


def _result(cuda: bool, size: str, load: float = 0.5) -> dict:
    rows = [{"name": "augment/augmix/ours-cuda/32px/b8", "impl": "ours-cuda", "status": "skipped",
             "reason": "no CUDA device visible to torch (CPU-only machine)"} if not cuda else
            {"name": "augment/augmix/ours-cuda/32px/b8", "impl": "ours-cuda", "status": "ok", "reason": None},
            {"name": "augment/augmix/ours-cpu-1proc/32px/b8", "impl": "ours-cpu-1proc", "status": "ok",
             "reason": None}]
    return {"size": size, "suites": {"augment": {"rows": rows}},
            "meta": {"device": {"cuda": cuda, "name": "x"}, "host": {"loadavg_at_start": [load], "cpu_cores_usable": 2}}}


def test_caveats_name_skipped_gpu_rows_and_smoke_timings():
    from bench.report import caveats

    cpu_smoke = caveats(_result(cuda=False, size="smoke"))
    assert len(cpu_smoke) == 2
    assert "1 GPU row(s) skipped (no CUDA device" in cpu_smoke[0] and "CPU implementations only" in cpu_smoke[0]
    assert "NOT figures" in cpu_smoke[1]
    assert caveats(_result(cuda=True, size="full")) == []
    assert caveats(_result(cuda=False, size="full"))[0].startswith("CPU-only machine")
    assert "load average 7.0" in caveats(_result(cuda=True, size="full", load=7.0))[0]


def test_printed_table_carries_the_caveats(smoke, capsys):
    import io

    from bench.report import print_table

    _, out = smoke
    result = json.loads((out / "smoke.json").read_text())
    buf = io.StringIO()
    print_table(result, buf)
    text = buf.getvalue()
    assert "CAVEAT: smoke size" in text and "NOT figures" in text
    if not result["meta"]["device"]["cuda"]:
        assert "CAVEAT: CPU-only machine" in text and "GPU row(s) skipped" in text
