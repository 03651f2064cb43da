"""``gpuaug eval`` end to end on tiny generated data: CIFAR-P and ImageNet-P flip rates,
PGD / FGSM error, OOD AUROC and CIFAR-10-C-Bar, through the real command line."""

import importlib.util
import json

import numpy as np
import pytest
from PIL import Image

from gpuaug.train.cli import main_eval
from gpuaug.train.eval_perturb import PERTURBATIONS

from _eval_helpers import trained_tiny, val_arrays


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data, out = trained_tiny(tmp_path_factory.mktemp("eval-suites"))
    return (data, out) + val_arrays(data)


def _videos(imgs):
    """(videos, 6 frames, H, W, 3) per perturbation: brightness = a still video (no flips),
    translate = the image rolled by a pixel per frame, gaussian_noise = independent noise."""
    rng = np.random.default_rng(0)
    still = np.repeat(imgs[:, None], 6, axis=1)
    rolled = np.stack([np.roll(imgs, 3 * t, axis=2) for t in range(6)], axis=1)
    noisy = np.clip(still.astype(int) + rng.integers(-90, 90, still.shape), 0, 255).astype(np.uint8)
    return {"brightness": still, "translate": rolled, "gaussian_noise": noisy}


def test_all_new_suites_through_the_cli(trained, tmp_path, capsys):
    data, run, imgs, labels, classes = trained
    videos = _videos(imgs)
    # CIFAR-P layout
    cp = tmp_path / "cifar-p"
    cp.mkdir()
    for name, v in videos.items():
        np.save(cp / f"{name}.npy", v)
    # ImageNet-P layout, the same videos: .npy videos, and frame folders for one perturbation
    ip = tmp_path / "imagenet-p"
    for name, v in videos.items():
        for i, clip in enumerate(v):
            folder = ip / name / classes[labels[i]]
            folder.mkdir(parents=True, exist_ok=True)
            if name == "translate":
                (folder / f"v{i:02d}").mkdir()
                for t, frame in enumerate(clip):
                    Image.fromarray(frame).save(folder / f"v{i:02d}" / f"{t:03d}.png")
            else:
                np.save(folder / f"v{i:02d}.npy", clip)
    # OOD: a flat folder of noise pictures, and a class-folder copy of the validation set
    flat = tmp_path / "noise"
    flat.mkdir()
    rng = np.random.default_rng(1)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(flat / f"{i}.png")
    copy = tmp_path / "copy"
    for c in classes:
        (copy / c).mkdir(parents=True)
        for p in sorted((data / "val" / c).iterdir()):
            (copy / c / p.name).write_bytes(p.read_bytes())
    # CIFAR-10-C-Bar: the clean images as one corruption, noisy ones as another
    cb = tmp_path / "cifar-10-c-bar"
    cb.mkdir()
    np.save(cb / "labels.npy", np.tile(labels, 5))
    np.save(cb / "blue_noise_sample.npy", np.tile(imgs, (5, 1, 1, 1)))
    tiled = np.tile(imgs, (5, 1, 1, 1)).astype(int)
    np.save(cb / "ripple.npy", np.clip(tiled + rng.integers(-60, 60, tiled.shape), 0, 255).astype(np.uint8))
    out_json = tmp_path / "eval.json"
    assert main_eval(["--checkpoint", str(run), "--data", str(data), "--cifar-p", str(cp), "--imagenet-p", str(ip),
                      "--pgd", "--pgd-eps", "8/255", "--pgd-steps", "5", "--pgd-step-size", "2/255", "--fgsm",
                      "--ood", str(flat), str(copy), "--corruptions-bar", str(cb),
                      "--batch-size", "8", "--workers", "0", "--device", "cpu", "--json", str(out_json)]) == 0
    res = json.loads(out_json.read_text())
    printed = capsys.readouterr().out
    for row in ("CIFAR-P mFR", "ImageNet-P mean FP (not AlexNet-normalised)", "PGD error (ε=8/255, 5 steps, authors)",
                "FGSM error (ε=4/255)", "OOD AUROC noise", "OOD AUROC mean", "CIFAR-10-C-Bar mean error"):
        assert row in printed, row

    # -P: a still video never flips; both layouts give the same numbers for the same videos
    c, i = res["cifar_p"], res["imagenet_p"]
    assert c["layout"] == "cifar-p" and i["layout"] == "imagenet-p"
    assert c["flip_probability"]["brightness"] == 0 and c["top5_distance"]["brightness"] == 0
    assert set(c["flip_probability"]) == set(videos) and all(0 <= v <= 1 for v in c["flip_probability"].values())
    assert c["flip_probability"] == pytest.approx(i["flip_probability"])
    assert c["top5_distance"] == pytest.approx(i["top5_distance"])
    assert c["mfr"] == pytest.approx(np.mean([c["flip_probability"][p] for p in videos if p in PERTURBATIONS]))
    assert i["mfr"] is None and "not AlexNet-normalised" in i["note"]

    # attacks: on the clean images, float32; the clean error matches the clean suite's
    a = res["adversarial"]
    assert a["n"] == len(labels) and a["clean_error"] == pytest.approx(res["clean"]["top1_error"])
    assert a["pgd"]["error"] >= a["clean_error"] and a["pgd"]["error"] > 0
    assert a["pgd"]["eps"] == pytest.approx(8 / 255) and a["pgd"]["steps"] == 5
    assert a["fgsm"]["eps"] == pytest.approx(4 / 255) and a["fgsm"]["error"] >= 0

    # OOD: the copy of the validation set is indistinguishable (AUROC exactly 1/2)
    o = res["ood"]
    assert o["n_in"] == len(labels) and set(o["sets"]) == {"noise", "copy"}
    assert o["sets"]["copy"]["auroc"] == pytest.approx(0.5) and o["sets"]["noise"]["n"] == 12
    assert 0 <= o["sets"]["noise"]["auroc"] <= 1
    assert o["mean_auroc"] == pytest.approx(np.mean([v["auroc"] for v in o["sets"].values()]))

    # C-Bar: the clean array's error is the clean error at every severity
    b = res["corruptions_bar"]
    assert set(b["errors"]) == {"blue_noise_sample", "ripple"}
    assert b["errors"]["blue_noise_sample"] == pytest.approx([res["clean"]["top1_error"]] * 5)
    assert b["mean_error"] == pytest.approx(np.mean([np.mean(v) for v in b["errors"].values()]))


def test_bad_inputs_are_refused_with_a_reason(trained, tmp_path):
    _, run, *_ = trained
    base = ["--checkpoint", str(run), "--workers", "0", "--device", "cpu", "--json", str(tmp_path / "e.json")]
    mp4 = tmp_path / "ip" / "brightness" / "n0001"
    mp4.mkdir(parents=True)
    (mp4 / "v.mp4").write_bytes(b"\x00")
    have_av = importlib.util.find_spec("av") is not None
    with pytest.raises(SystemExit, match="cannot decode the video" if have_av else "pip install av"):
        main_eval(base + ["--imagenet-p", str(tmp_path / "ip")])
    (tmp_path / "nothing").mkdir()
    with pytest.raises(SystemExit, match="neither a CIFAR-P"):
        main_eval(base + ["--cifar-p", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit, match="C-Bar"):
        main_eval(base + ["--corruptions-bar", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit):
        main_eval(base + ["--pgd", "--pgd-eps", "3"])  # argparse: not in (0, 1]


def test_imagenet_p_mp4_through_the_cli(trained, tmp_path):
    """The released layout, <perturbation>/<wnid>/<name>.mp4, read through ``gpuaug eval
    --imagenet-p``: the same numbers as CIFAR-P arrays of the frames a decoder returns."""
    pytest.importorskip("av")
    from _video_helpers import decoded, write_mp4

    _, run, imgs, labels, classes = trained
    ip, cp = tmp_path / "imagenet-p", tmp_path / "cifar-p"
    cp.mkdir()
    for name, v in _videos(imgs).items():
        frames = []
        for i, clip in enumerate(v):
            mp4 = ip / name / classes[labels[i]] / f"{name}_{i:02d}.mp4"
            write_mp4(mp4, clip)
            frames.append(decoded(mp4))
        np.save(cp / f"{name}.npy", np.stack(frames))
    out_json = tmp_path / "eval.json"
    assert main_eval(["--checkpoint", str(run), "--imagenet-p", str(ip), "--cifar-p", str(cp), "--batch-size", "8",
                      "--workers", "0", "--device", "cpu", "--json", str(out_json)]) == 0
    res = json.loads(out_json.read_text())
    i, c = res["imagenet_p"], res["cifar_p"]
    assert i["layout"] == "imagenet-p" and set(i["flip_probability"]) == {"brightness", "translate", "gaussian_noise"}
    assert i["flip_probability"] == c["flip_probability"]
    assert i["top5_distance"] == pytest.approx(c["top5_distance"])
    assert i["mean_flip_probability"] == pytest.approx(c["mfr"])
