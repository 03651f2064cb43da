"""``python -m bench --suite robustness``: structure only (errors and timings are measured,
never asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import robustness  # noqa: E402
from bench.cli import main as bench_main  # noqa: E402


def _fake_result() -> dict:
    runs = []
    for seed in (0, 1):
        for method, err in (("none", 0.5), ("augmix", 0.3), ("pixmix", 0.6)):
            e = err + 0.01 * seed
            runs.append({"method": method, "seed": seed, "clean_error": e - 0.1, "clean_calibration": 0.1,
                         "mean_corruption_error": e, "errors": {"fog": [e] * 5, "contrast": [e] * 5},
                         "train": {"wall_s": 10.0, "cpu_s": 15.0}, "eval": {"wall_s": 2.0, "cpu_s": 3.0}})
    methods = ["none", "augmix", "pixmix"]
    return {"schema": robustness.SCHEMA, "size": "default", "wall_s": 60.0, "cpu_s": 90.0,
            "meta": {"host": {"cpu_model": "x", "cpu_cores_usable": 2}, "device": {"name": "cpu"}},
            "uptime_at_start": "load average: 1.0", "uptime_at_end": "load average: 2.0",
            "settings": {"seeds": [0, 1], "epochs": 6,
                         "methods": {m: {"jsd": m == "augmix"} for m in methods}},
            "corruptions": {"notice": "regenerated corruptions (...): NOT the released ones", "images": 300,
                            "corruptions": ["fog", "contrast"], "severities": [1, 2, 3, 4, 5]},
            "runs": runs, "summary": robustness.summarize(runs, methods)}


def test_summary_pairs_seeds_with_the_baseline():
    s = _fake_result()["summary"]
    assert "vs_none" not in s["none"]
    assert s["augmix"]["vs_none"]["mean"] == pytest.approx(-0.2) and s["augmix"]["beats_none"] == "2/2"
    assert s["pixmix"]["vs_none"]["mean"] == pytest.approx(0.1) and s["pixmix"]["beats_none"] == "0/2"
    assert s["augmix"]["mean_corruption_error"]["n"] == 2
    assert s["augmix"]["gap"]["mean"] == pytest.approx(0.1)
    assert set(s["augmix"]["per_corruption"]) == {"fog", "contrast"}


def test_table_chart_and_the_bench_subcommands(tmp_path, capsys):
    result = _fake_result()
    text = robustness.table(result)
    assert text.splitlines()[0].startswith("| method | JSD | clean error %")
    assert "| augmix | yes |" in text and "NOT the released" in text and "load average: 1.0" in text
    assert "| fog |" in text
    path = tmp_path / "r.json"
    path.write_text(json.dumps(result))
    assert bench_main(["table", str(path)]) == 0
    assert "| pixmix | no |" in capsys.readouterr().out
    assert bench_main(["chart", str(path)]) == 0
    assert path.with_suffix(".png").stat().st_size > 1000


def test_a_partial_result_says_so():
    result = _fake_result()
    result["complete"] = False
    result["settings"]["seeds"] = [0, 1, 2]
    result["settings"]["methods_requested"] = ["none", "augmix", "pixmix"]
    text = robustness.table(result)
    assert "**Partial: 6 of 9 runs finished**" in text and "over 2 seed(s) (0, 1)" in text


def test_methods_take_their_papers_cifar_settings():
    args, info = robustness.method_args("none")
    assert args == ["--method", "none", "--no-jsd"] and not info["jsd"]
    args, info = robustness.method_args("augmix")
    assert "--jsd" in args and args[args.index("--jsd-lambda") + 1] == "12"
    assert json.loads(args[args.index("--settings") + 1])["severity"] == 3
    args, info = robustness.method_args("pixmix")
    assert "--no-jsd" in args and info["recipe"] == "pipelines/cifar-pixmix.toml"
    for m in robustness.METHODS:
        robustness.method_args(m)
    with pytest.raises(ValueError, match="--methods: unknown"):
        robustness.run("smoke", methods=["augmixx"])


@pytest.mark.slow
def test_smoke_size_writes_json_table_and_chart(tmp_path):
    """One method at the smoke size: the whole path (corrupt, train and eval subprocesses)."""
    code = bench_main(["--suite", "robustness", "--size", "smoke", "--methods", "none", "--out", str(tmp_path),
                       "--name", "r", "--quiet"])
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["schema"] == robustness.SCHEMA and result["size"] == "smoke"
    (run,) = result["runs"]
    assert run["method"] == "none" and set(run["errors"]) == {"gaussian_noise", "contrast"}
    assert all(len(v) == 5 for v in run["errors"].values())
    assert {"wall_s", "cpu_s"} <= set(run["train"]) and "uptime_at_start" in result
    assert "NOT the released" in result["corruptions"]["notice"]
    assert (tmp_path / "r.md").read_text().startswith("| method |")
    assert (tmp_path / "r.png").stat().st_size > 1000
