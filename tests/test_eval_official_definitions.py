"""``gpuaug eval``'s numbers follow the official evaluation code by default: each test
writes the official formula independently (from its definition in the papers' code) and
compares on fixed inputs; the other forms stay available by name."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gpuaug.train.cli import build_eval_parser, main_eval
from gpuaug.train.distributed import Dist
from gpuaug.train.eval_adversarial import pgd
from gpuaug.train.eval_perturb import benchmark_perturbations, evaluate_perturbations
from gpuaug.train.eval_pixels import Normalized
from gpuaug.train.evaluate import rms_calibration_error

from _eval_helpers import trained_tiny, val_arrays


def _refuse_non_json(name):
    raise AssertionError(f"eval.json holds {name}, which is not JSON")


# ----------------------------------------------------------------------------- calibration
def calib_err_official(confidence, correct, beta=100):
    """The papers' calib_err (AugMix/PixMix calibration_tools.py, p = '2'): sort by
    confidence, bins of beta with the remainder in the last, the sum over
    range(len(bins) - 1) -- every bin but the last -- weighted by |bin| / n."""
    order = np.argsort(confidence)
    conf, corr = np.asarray(confidence)[order], np.asarray(correct, float)[order]
    n = len(conf)
    edges = [[i * beta, (i + 1) * beta] for i in range(n // beta)]
    edges[-1][1] = n
    err = 0.0
    for i in range(len(edges) - 1):
        lo, hi = edges[i]
        err += (hi - lo) / n * (conf[lo:hi].mean() - corr[lo:hi].mean()) ** 2
    return math.sqrt(err)


def calib_err_all_bins(confidence, correct, beta=100):
    order = np.argsort(confidence)
    conf, corr = np.asarray(confidence)[order], np.asarray(correct, float)[order]
    n = len(conf)
    starts = list(range(0, (n // beta) * beta, beta))
    ends = starts[1:] + [n]
    return math.sqrt(sum((e - s) / n * (conf[s:e].mean() - corr[s:e].mean()) ** 2 for s, e in zip(starts, ends)))


def _predictions(n, seed, top_bin_wrong=False):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.1, 1.0, n)  # distinct values: no ties for the sort to order
    correct = rng.random(n) < conf  # calibrated on average
    if top_bin_wrong:
        correct[np.argsort(conf)[-(100 + n % 100):]] = False  # the most confident bin all wrong
    return conf, correct


@pytest.mark.parametrize("n,seed,top_bin_wrong", [(10_000, 0, False), (1_234, 1, False), (1_234, 2, True),
                                                  (250, 3, False)])
def test_rms_calibration_error_is_the_official_calib_err_by_default(n, seed, top_bin_wrong):
    conf, correct = _predictions(n, seed, top_bin_wrong)
    official = calib_err_official(conf, correct)
    assert rms_calibration_error(conf, correct) == pytest.approx(official, rel=1e-12, abs=1e-15)
    assert rms_calibration_error(conf, correct, form="official") == pytest.approx(official, rel=1e-12, abs=1e-15)
    all_bins = rms_calibration_error(conf, correct, form="all-bins")
    assert all_bins == pytest.approx(calib_err_all_bins(conf, correct), rel=1e-12)
    if top_bin_wrong:
        assert all_bins > official + 0.05  # the dropped bin is where the miscalibration is


def test_rms_calibration_error_undefined_below_two_bins():
    conf, correct = _predictions(150, 4)
    assert math.isnan(rms_calibration_error(conf, correct))  # the official sum has no bin left
    assert rms_calibration_error(conf, correct, form="all-bins") == pytest.approx(calib_err_all_bins(conf, correct))
    with pytest.raises(ValueError, match="all-bins"):
        rms_calibration_error(conf, correct, form="every")


# ----------------------------------------------------------------------------- CIFAR-P
def flip_prob_official(preds, noise):
    """cifar-p-eval.py's flip_prob at difficulty 1: per video the mean of prediction changes,
    against the previous frame, or the first for the noise perturbations; mean over videos."""
    total = 0.0
    for video in preds:
        ref, flips = video[0], []
        for p in video[1:]:
            flips.append(int(p != ref))
            if not noise:
                ref = p
        total += np.mean(flips) / len(preds)
    return total


# hendrycks/robustness ImageNet-P/cifar-p-eval.py: the perturbations its mean flip probability averages
CIFAR_P_EVAL_LIST = ["gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "spatter", "brightness",
                     "translate", "rotate", "tilt", "scale"]


def test_cifar_p_mfr_averages_the_official_perturbation_list(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10)).eval()
    rng = np.random.default_rng(0)
    videos = {name: rng.integers(0, 256, (6, 5, 8, 8, 3), dtype=np.uint8)
              for name in ("gaussian_noise", "brightness", "spatter")}
    videos["snow"] = np.repeat(videos["brightness"][:, :1], 5, axis=1)  # still videos: never flip
    for name, v in videos.items():
        np.save(tmp_path / f"{name}.npy", v)
    cfg = SimpleNamespace(batch_size=16, image_size=8, limit_batches=None)
    res = evaluate_perturbations(model, tmp_path, cfg, Dist(), ((0.5,) * 3, (0.5,) * 3), log=lambda *a: None)

    fps = []
    for name in CIFAR_P_EVAL_LIST:
        if name in videos:
            x = torch.from_numpy(videos[name].astype(np.float32) / 255).permute(0, 1, 4, 2, 3).reshape(-1, 3, 8, 8)
            with torch.no_grad():
                preds = model((x - 0.5) / 0.5).argmax(1).view(6, 5).numpy()
            fps.append(flip_prob_official(preds, "noise" in name))
    assert res["averaged_over"] == [p for p in CIFAR_P_EVAL_LIST if p in videos]
    assert res["mfr"] == pytest.approx(np.mean(fps), abs=1e-12)
    assert res["flip_probability"]["snow"] == 0  # reported, not averaged
    assert "snow" in benchmark_perturbations("imagenet-p") and "spatter" not in benchmark_perturbations("imagenet-p")
    assert list(benchmark_perturbations("cifar-p")) == CIFAR_P_EVAL_LIST


# ----------------------------------------------------------------------------- PGD
def pgd_authors(net, x, y, delta0, eps, steps, step_size):
    """PixMix/IPMix cifar.py's PGD (in [0, 1] pixels): the random start is added in place
    to the tensor the projection is centred on, so the ball is around x + delta0."""
    bx = x.clone()
    adv = bx  # .detach() shares storage: the in-place add below moves bx too
    adv += delta0
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(net(adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + step_size * grad.sign()
        adv = torch.min(torch.max(adv, bx - eps), bx + eps).clamp(0, 1)
    return adv


def _net_and_data():
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(32, 4)).eval()
    net = Normalized(cnn, (0.5,) * 3, (0.5,) * 3).eval()
    x = torch.rand(16, 3, 8, 8)
    x[:2] = 0.0  # pixels at the bounds: the unclipped random start reaches outside [0, 1]
    return net, x, net(x).argmax(1).detach()


def test_pgd_default_is_the_authors_attack_as_run():
    net, x, y = _net_and_data()
    eps, steps, step = 2 / 255, 20, 0.5 / 255
    adv = pgd(net, x, y, eps=eps, steps=steps, step_size=step, generator=torch.Generator().manual_seed(3))
    delta0 = (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(3)) - 1) * eps  # the same draw
    ref = pgd_authors(net, x, y, delta0, eps, steps, step)
    assert torch.allclose(adv, ref, atol=1e-6)
    dist = (adv - x).abs().amax()
    assert eps + 1e-6 < dist <= 2 * eps + 1e-6  # beyond the eps-ball around x, within 2 eps
    assert (adv - (x + delta0)).abs().amax() <= eps + 1e-6


def test_pgd_strict_form_keeps_the_eps_ball_around_the_clean_image():
    net, x, y = _net_and_data()
    eps = 2 / 255
    adv = pgd(net, x, y, eps=eps, steps=20, step_size=0.5 / 255, generator=torch.Generator().manual_seed(3),
              form="strict")
    assert (adv - x).abs().amax() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with pytest.raises(ValueError, match="strict"):
        pgd(net, x, y, form="madry")


# ----------------------------------------------------------------------------- the report
def test_eval_defaults_are_official_and_named_in_the_report(tmp_path_factory, capsys):
    args = build_eval_parser().parse_args(["--checkpoint", "x"])
    assert (args.amp, args.calibration, args.pgd_form) == ("none", "official", "authors")
    root = tmp_path_factory.mktemp("defs")
    data, run = trained_tiny(root)
    imgs, labels, _ = val_arrays(data)
    # CIFAR-C with a benchmark corruption and a held-out one: the headline means cover the former
    cc = root / "cifar-c"
    cc.mkdir()
    reps = 13  # 208 images per severity: enough for two calibration bins
    np.save(cc / "labels.npy", np.tile(labels, 5 * reps))
    np.save(cc / "gaussian_noise.npy", np.tile(imgs, (5 * reps, 1, 1, 1)))
    noisy = np.tile(imgs, (5 * reps, 1, 1, 1)).astype(int) + np.random.default_rng(0).integers(
        -90, 90, (5 * reps * len(imgs),) + imgs.shape[1:])
    np.save(cc / "speckle_noise.npy", np.clip(noisy, 0, 255).astype(np.uint8))
    out = root / "eval.json"
    common = ["--checkpoint", str(run), "--data", str(data), "--batch-size", "64", "--workers", "0",
              "--device", "cpu", "--json", str(out)]
    assert main_eval(common + ["--corruptions", str(cc), "--pgd", "--pgd-steps", "2"]) == 0
    res = json.loads(out.read_text(), parse_constant=_refuse_non_json)  # strict JSON: no NaN / Infinity
    printed = capsys.readouterr().out
    d = res["definitions"]
    assert d["calibration"].startswith("official:") and d["precision"].startswith("float32")
    assert d["pgd"].startswith("authors:") and res["adversarial"]["pgd"]["form"] == "authors"
    for text in ("definitions:", "official: RMS", "float32", "authors: PixMix/IPMix",
                 "CIFAR-C mean error (1 benchmark corruptions)", "corruption RMS calibration error (1 benchmark"):
        assert text in printed, text
    c = res["corruptions"]
    assert c["averaged_over"] == ["gaussian_noise"] and set(c["errors"]) == {"gaussian_noise", "speckle_noise"}
    assert c["mean_rms_calibration_error"] == pytest.approx(np.mean(c["rms_calibration_error"]["gaussian_noise"]))
    assert res["clean"]["rms_calibration_error"] is None  # 16 clean predictions: under two bins (NaN -> null)
    assert any(line.startswith("clean RMS calibration error") and line.split()[-1] == "n/a"
               for line in printed.splitlines())

    assert main_eval(common + ["--calibration", "all-bins", "--amp", "bf16", "--pgd", "--pgd-form", "strict",
                               "--pgd-steps", "1"]) == 0
    res = json.loads(out.read_text())
    d = res["definitions"]
    assert d["calibration"].startswith("all-bins:") and d["pgd"].startswith("strict:")
    assert d["precision"].startswith("bfloat16 autocast") and res["adversarial"]["pgd"]["form"] == "strict"
    assert 0 <= res["clean"]["rms_calibration_error"] <= 1
