"""``gpuaug corrupt``: regenerated corruptions in the layouts ``gpuaug eval --corruptions`` reads,
seeded per image (independent of the worker split), cached per unit, with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("imagecorruptions", reason="the optional extra gpuaug[corrupt] (imagecorruptions-imaug)")

from gpuaug import corrupt  # noqa: E402
from gpuaug.cli import main as cli_main  # noqa: E402
from gpuaug.train import synthetic  # noqa: E402

TWO = "gaussian_noise,contrast"


@pytest.fixture(scope="module")
def shapes32(tmp_path_factory):
    """A 3-class shapes set of 32 x 32 JPEGs (train/ + val/, 2 validation pictures a class)."""
    return synthetic.build(tmp_path_factory.mktemp("shapes32"), train_per_class=4, val_per_class=2, size=32,
                           classes=3, log=lambda *a: None)


def _quiet(*a, **k):
    pass


def test_folder_layout_manifest_and_notice(shapes32, tmp_path):
    out = tmp_path / "c"
    m = corrupt.corrupt_dataset(str(shapes32 / "val"), out, TWO, [1, 5], workers=1, cache=tmp_path / "cache",
                                log=_quiet, progress=False)
    classes = sorted(p.name for p in (shapes32 / "val").iterdir())
    for name in ("gaussian_noise", "contrast"):
        for s in (1, 5):
            for c in classes:
                assert sorted(p.name for p in (out / name / str(s) / c).iterdir()) == ["00000.png", "00001.png"]
    assert not (out / "fog").exists()
    saved = json.loads((out / corrupt.MANIFEST).read_text())
    assert saved == m and m["layout"] == "imagenet-c" and m["images"] == 6
    assert "NOT the released" in m["notice"] and "NOT the released" in (out / "README.txt").read_text()
    from gpuaug.train.evaluate import corruption_layout

    assert corruption_layout(out) == "imagenet-c"


def test_cifar_c_layout_from_a_folder_matches_the_png_files(shapes32, tmp_path):
    cache = tmp_path / "cache"
    corrupt.corrupt_dataset(str(shapes32), tmp_path / "png", "contrast", workers=1, cache=cache, log=_quiet,
                            progress=False)
    corrupt.corrupt_dataset(str(shapes32), tmp_path / "npy", "contrast", workers=1, cache=cache,
                            layout="cifar-c", log=_quiet, progress=False)
    from PIL import Image

    labels = np.load(tmp_path / "npy" / "labels.npy")
    arr = np.load(tmp_path / "npy" / "contrast.npy")
    assert arr.shape == (30, 32, 32, 3) and labels.tolist() == [0, 0, 1, 1, 2, 2] * 5
    files = [p for s in range(1, 6) for p in sorted((tmp_path / "png" / "contrast" / str(s)).rglob("*.png"))]
    assert np.array_equal(arr, np.stack([np.asarray(Image.open(p)) for p in files]))
    with pytest.raises(ValueError, match="cifar-c holds all five severities"):
        corrupt.corrupt_dataset(str(shapes32), tmp_path / "x", "contrast", [1, 2], workers=1, cache=cache,
                                layout="cifar-c", log=_quiet, progress=False)


def test_seeded_per_image_not_per_worker_chunk():
    """A worker's chunk boundaries do not change an image's corruption (same output for any
    worker count), and the noise differs between images."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    images[:] = images[0]  # the same picture four times
    for name in ("gaussian_noise", "impulse_noise", "glass_blur"):
        _, whole = corrupt._array_task((images, 0, name, 3, 7))
        _, tail = corrupt._array_task((images[2:], 2, name, 3, 7))
        assert np.array_equal(whole[2:], tail), name
        assert not np.array_equal(whole[0], whole[1]), name
        _, again = corrupt._array_task((images, 0, name, 3, 7))
        assert np.array_equal(whole, again), name


def test_units_are_cached_and_the_global_rng_is_restored(shapes32, tmp_path):
    lines = []
    kw = dict(workers=1, cache=tmp_path / "cache", log=lines.append, progress=False)
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    corrupt.corrupt_dataset(str(shapes32), tmp_path / "a", "contrast", [1], **kw)
    assert np.random.random() == expected  # in-process work leaves the caller's global RNG as it was
    corrupt.corrupt_dataset(str(shapes32), tmp_path / "b", "contrast,gaussian_noise", [1], **kw)
    corrupt.corrupt_dataset(str(shapes32), tmp_path / "c", "contrast,gaussian_noise", [1], **kw)
    counts = [ln for ln in lines if "units to compute" in ln]
    assert "(1 of 1 units" in counts[0] and "(1 of 2 units" in counts[1] and "(0 of 2 units" in counts[2]
    a = sorted(p.read_bytes() for p in (tmp_path / "a").rglob("*.png"))
    c = sorted(p.read_bytes() for p in (tmp_path / "c" / "contrast").rglob("*.png"))
    assert a == c


def test_cli_writes_and_eval_reads_it_as_regenerated(shapes32, tmp_path, capsys, monkeypatch):
    from gpuaug.train.cli import main_eval, main_train

    monkeypatch.setenv("GPUAUG_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main_train(["--data", str(shapes32), "--out", str(run), "--arch", "tiny", "--image-size", "32",
                       "--batch-size", "6", "--epochs", "1", "--lr", "0.05", "--workers", "0", "--device", "cpu",
                       "--method", "none", "--no-jsd", "--no-preview"]) == 0
    out = tmp_path / "c"
    assert cli_main(["corrupt", "--data", str(shapes32), "--out", str(out), "--corruptions", TWO,
                     "--workers", "1", "--layout", "cifar-c"]) == 0
    printed = capsys.readouterr()
    assert "NOT the released" in printed.out
    assert main_eval(["--checkpoint", str(run), "--data", str(shapes32), "--corruptions", str(out),
                      "--workers", "0", "--device", "cpu", "--json", str(tmp_path / "e.json")]) == 0
    res = json.loads((tmp_path / "e.json").read_text())["corruptions"]
    assert set(res["errors"]) == {"gaussian_noise", "contrast"} and len(res["errors"]["contrast"]) == 5
    assert "NOT the released" in res["regenerated"] and "mce" not in res
    assert "regenerated corruptions mean error" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--corruptions", "fogg"], "--corruptions: unknown corruption"),
    (["--severities", "0,6"], "severities must be among 1..5"),
    (["--severities", "x"], "--severities 'x'"),
    (["--workers", "0"], "--workers must be >= 1"),
    (["--image-size", "16"], "--image-size must be >= 32"),
])
def test_cli_bad_options_name_the_option(shapes32, tmp_path, capsys, argv, message):
    assert cli_main(["corrupt", "--data", str(shapes32), "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_small_images_and_missing_data_are_clear_errors(tmp_path, capsys):
    small = synthetic.build(tmp_path / "s", train_per_class=1, val_per_class=1, size=16, classes=2,
                            log=lambda *a: None)
    with pytest.raises(ValueError, match="smaller than the corruptions' 32x32 minimum; pass --image-size"):
        corrupt.corrupt_dataset(str(small), tmp_path / "o", "contrast", [1], workers=1, cache=tmp_path / "cache",
                                log=_quiet, progress=False)
    # --image-size resizes first, which makes the small set usable
    m = corrupt.corrupt_dataset(str(small), tmp_path / "o", "contrast", [1], workers=1, image_size=32,
                                cache=tmp_path / "cache", log=_quiet, progress=False)
    assert m["image_size"] == 32 and len(list((tmp_path / "o").rglob("*.png"))) == 2
    assert cli_main(["corrupt", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")]) == 2
    assert "--data" in capsys.readouterr().err


def test_missing_or_original_package_is_explained(monkeypatch):
    from importlib import metadata

    installed = {"imagecorruptions": "1.1.2"}

    def version(name):
        if name in installed:
            return installed[name]
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(corrupt.CorruptionsUnavailable, match="original imagecorruptions 1.1.2 .* pip uninstall"):
        corrupt.library_version()
    installed.clear()
    with pytest.raises(corrupt.CorruptionsUnavailable, match=r"gpuaug\[corrupt\]"):
        corrupt.library_version()
