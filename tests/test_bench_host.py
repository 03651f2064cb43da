"""The host suite (``python -m bench --suite host``) and the recording backend behind it:
structure and counts only, never a timing value."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

bench = pytest.importorskip("bench")

HOST_KEYS = {"method", "batch", "image_size", "host_ms_per_batch", "launches", "uploads", "syncs",
             "bytes_per_image", "min_bytes_per_image", "host_ceiling_img_s", "dali_gil_ms_per_batch"}


def test_host_suite_smoke_writes_every_method(tmp_path):
    code = bench.main(["run", "--suite", "host", "--size", "smoke", "--out", str(tmp_path), "--name", "host",
                       "--quiet"])
    result = json.loads((tmp_path / "host.json").read_text())
    assert code == 0
    rows = result["suites"]["host"]["rows"]
    assert {r["method"] for r in rows} == {"augmix", "pixmix", "ipmix", "dynamic_mixup", "noisymix"}
    for r in rows:
        assert r["status"] == "ok", f"{r['name']}: {r.get('reason')}\n{r.get('traceback', '')}"
        assert HOST_KEYS <= set(r), HOST_KEYS - set(r)
        assert r["launches"] >= 1 and r["uploads"] >= 1 and r["syncs"] >= 0
        assert r["bytes_per_image"] >= r["min_bytes_per_image"] > 0
    assert next(r for r in rows if r["method"] == "noisymix")["views"] is True


def test_recording_counts_one_augmix_step():
    from gpuaug import AugMix
    from gpuaug.executors import recording
    from gpuaug.executors.backend import get_backend

    # width 1, depth 1, an op that needs no histogram: one apply launch and the fused mix
    m = AugMix(width=1, depth=1, op_list=("rotate",))
    n, h, w = 4, 16, 20
    plan = m.plan(n, h, w, np.random.default_rng(0))
    with recording.session() as rec:
        out = m.execute(plan, recording.device_images(n, h, w), None, get_backend("recording"))
    s = rec.summary()
    assert isinstance(out, recording.RecArray) and out.shape == (n, h, w, 3) and out.dtype == np.float32
    assert s["kernels"]["gpuaug_apply"]["launches"] == 1
    assert s["kernels"]["gpuaug_weighted_mix"]["launches"] == 1
    image = n * h * w * 3
    assert s["kernels"]["gpuaug_apply"]["bytes"] == 2 * image  # read + write every sample once
    assert s["kernels"]["gpuaug_weighted_mix"]["bytes"] == 2 * image + 4 * image
    assert s["syncs"] == 0


def test_recording_checks_kernel_arguments():
    from gpuaug.executors import recording
    from gpuaug.executors.launch import get_kernel

    k = get_kernel("mix", "gpuaug_dynamic_mix", "recording")
    x = recording.device_images(2, 4, 4)
    with recording.session():
        with pytest.raises(TypeError, match="needs dtype"):
            k((1, 2), 256, (x, x, recording.RecArray((2,), np.float64), recording.RecArray((2,), np.float32), 48,
                            recording.RecArray((2, 4, 4, 3), np.float32)))
        with pytest.raises(TypeError, match="must be a"):
            k((1, 2), 256, (np.zeros((2, 4, 4, 3), np.uint8), x, recording.RecArray((2,), np.float32),
                            recording.RecArray((2,), np.float32), 48,
                            recording.RecArray((2, 4, 4, 3), np.float32)))


def test_recording_needs_a_session():
    from gpuaug.executors import recording

    with pytest.raises(RuntimeError, match="session"):
        recording.xp.zeros((4,), np.uint8)
