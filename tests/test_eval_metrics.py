"""Evaluation metrics on known small cases, and the corruption / subset suites on tiny
fake data sets laid out like CIFAR-10-C and ImageNet-R."""

import json

import numpy as np
import pytest
import torch

from gpuaug.train import evaluate
from gpuaug.train.cli import main_eval
from gpuaug.train.evaluate import ALEXNET_ERR, CORRUPTIONS, ce_and_mce, rms_calibration_error, topk_correct

from _eval_helpers import trained_tiny, val_arrays


def test_perfectly_calibrated_predictor_has_zero_rms_error():
    # confidence c on 100 predictions per bin, exactly round(100 c) of them correct
    conf, correct = [], []
    for c in (0.2, 0.5, 0.7, 0.9):
        conf += [c] * 100
        correct += [1] * int(round(100 * c)) + [0] * (100 - int(round(100 * c)))
    assert rms_calibration_error(conf, correct) == pytest.approx(0.0, abs=1e-12)


def test_rms_error_of_overconfident_predictor():
    # always 90% confident, right half the time: every bin's gap is |0.9 - 0.5| = 0.4; the
    # official form leaves the last of the 10 bins out of the sum (weights stay |b| / n)
    conf = np.full(1000, 0.9)
    correct = np.arange(1000) % 2
    assert rms_calibration_error(conf, correct, form="all-bins") == pytest.approx(0.4)
    assert rms_calibration_error(conf, correct) == pytest.approx(np.sqrt(0.9) * 0.4)


def test_rms_error_adaptive_bins_by_hand():
    # 250 predictions -> bins of 100, 150 (last takes the rest), sorted by confidence
    conf = np.concatenate([np.full(100, 0.6), np.full(150, 0.8)])
    correct = np.concatenate([np.ones(50), np.zeros(50), np.ones(150)])
    expected = np.sqrt(100 / 250 * (0.6 - 0.5) ** 2 + 150 / 250 * (0.8 - 1.0) ** 2)
    assert rms_calibration_error(conf[::-1], correct[::-1], form="all-bins") == pytest.approx(expected)
    # official: the last (most confident) bin is left out
    assert rms_calibration_error(conf[::-1], correct[::-1]) == pytest.approx(np.sqrt(100 / 250 * (0.6 - 0.5) ** 2))


def test_topk():
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]])
    labels = torch.tensor([2, 0])
    assert topk_correct(logits, labels, 1).tolist() == [False, True]
    assert topk_correct(logits, labels, 2).tolist() == [True, True]
    assert topk_correct(logits, labels, 5).tolist() == [True, True]  # k clipped to the class count


def test_mce_is_alexnet_normalised():
    errors = {c: [ALEXNET_ERR[c]] * 5 for c in CORRUPTIONS}
    ces, mce = ce_and_mce(errors)
    assert mce == pytest.approx(1.0) and all(v == pytest.approx(1.0) for v in ces.values())
    half = {c: [ALEXNET_ERR[c] / 2] * 5 for c in CORRUPTIONS}
    assert ce_and_mce(half)[1] == pytest.approx(0.5)
    assert len(ALEXNET_ERR) == 15


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_tiny(tmp_path_factory.mktemp("eval"))


def test_eval_clean_cifar_c_and_subset(trained, tmp_path, capsys):
    data, run = trained
    # CIFAR-C layout: <corruption>.npy with 5 severities of n images, labels.npy
    imgs, labels, classes = val_arrays(data)
    cc = tmp_path / "cifar-c"
    cc.mkdir()
    np.save(cc / "labels.npy", np.tile(labels, 5))
    np.save(cc / "gaussian_noise.npy", np.tile(imgs, (5, 1, 1, 1)))
    noisy = np.clip(np.tile(imgs, (5, 1, 1, 1)).astype(int) + np.random.default_rng(0).integers(-60, 60, (5 * len(imgs),) + imgs.shape[1:]), 0, 255).astype(np.uint8)
    np.save(cc / "shot_noise.npy", noisy)
    # ImageNet-R-like: a subset of the classes (2 of 4)
    sub = tmp_path / "subset"
    for c in classes[:2]:
        (sub / c).mkdir(parents=True)
        for p in sorted((data / "val" / c).iterdir()):
            (sub / c / p.name).write_bytes(p.read_bytes())
    out_json = tmp_path / "eval.json"
    assert main_eval(["--checkpoint", str(run), "--data", str(data), "--corruptions", str(cc),
                      "--imagenet-r", str(sub), "--batch-size", "8", "--workers", "0", "--device", "cpu",
                      "--json", str(out_json)]) == 0
    res = json.loads(out_json.read_text())
    printed = capsys.readouterr().out
    assert "clean top-1 error" in printed and "CIFAR-C mean error" in printed
    c = res["corruptions"]
    assert c["layout"] == "cifar-c" and set(c["errors"]) == {"gaussian_noise", "shot_noise"}
    # gaussian_noise.npy holds the clean images: its error equals the clean error at every severity
    assert c["errors"]["gaussian_noise"] == pytest.approx([res["clean"]["top1_error"]] * 5)
    assert c["mean_error"] == pytest.approx(np.mean([np.mean(v) for v in c["errors"].values()]))
    assert res["imagenet_r"]["classes"] == 2 and res["imagenet_r"]["n"] == 8
    # restricted to 2 classes the subset error is no worse than over all 4 on those images
    assert 0 <= res["imagenet_r"]["top1_error"] <= 1


def test_imagenet_c_layout_and_mce(trained, tmp_path):
    data, run = trained
    root = tmp_path / "imagenet-c"
    for corruption in ("gaussian_noise", "fog"):
        for s in range(1, 6):
            for c in sorted(p.name for p in (data / "val").iterdir()):
                dst = root / corruption / str(s) / c
                dst.mkdir(parents=True)
                for p in sorted((data / "val" / c).iterdir())[:2]:
                    (dst / p.name).write_bytes(p.read_bytes())
    assert evaluate.corruption_layout(root) == "imagenet-c"
    out_json = tmp_path / "e.json"
    assert main_eval(["--checkpoint", str(run / "checkpoint.pt"), "--corruptions", str(root), "--batch-size", "8",
                      "--workers", "0", "--device", "cpu", "--json", str(out_json)]) == 0
    c = json.loads(out_json.read_text())["corruptions"]
    for name in ("gaussian_noise", "fog"):
        assert c["ce"][name] == pytest.approx(np.mean(c["errors"][name]) / ALEXNET_ERR[name])
    assert c["mce"] == pytest.approx(np.mean(list(c["ce"].values())))
