"""Output files are strict JSON: an undefined metric (NaN) or an infinite one is written as
null, which every parser reads (Python's own NaN / Infinity tokens are not JSON)."""

from __future__ import annotations

import json

import numpy as np

from gpuaug.train import outputs


def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_become_null_at_any_depth():
    record = {"loss": 0.5, "calib": float("nan"), "nested": {"x": [1.0, float("inf"), np.float64("-inf")]},
              "pair": (float("nan"), 2), "n": 3, "name": "a"}
    back = _strict(outputs.json_text(record, indent=1))
    assert back == {"loss": 0.5, "calib": None, "nested": {"x": [1.0, None, None]}, "pair": [None, 2],
                    "n": 3, "name": "a"}


def test_the_metrics_log_round_trips_as_strict_json(tmp_path):
    path = tmp_path / "train.jsonl"
    outputs.write_log(path, [{"epoch": 1, "val_rms_calibration_error": float("nan")}, {"epoch": 2, "x": 0.25}])
    lines = path.read_text().splitlines()
    assert [_strict(line) for line in lines] == [{"epoch": 1, "val_rms_calibration_error": None},
                                                  {"epoch": 2, "x": 0.25}]
    assert outputs.read_log(path) == [{"epoch": 1, "val_rms_calibration_error": None}, {"epoch": 2, "x": 0.25}]
