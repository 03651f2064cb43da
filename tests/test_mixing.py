"""Mixing sets: folder loading (skips by reason, RGB conversion, resize rule), errors,
crop plans and batched gathering."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from gpuaug.mixing import MixingSet, resize_short_side


def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
    return np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path):
    """A folder with usable pictures of several modes and every kind of bad file."""
    d = tmp_path / "mix"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(_pattern(40, 60, 0)).save(d / "a_rgb.png")
    Image.fromarray(_pattern(50, 30, 1)).save(d / "b_photo.jpg", quality=95)
    rgba = np.dstack([_pattern(32, 32, 2), np.full((32, 32), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(d / "c_rgba.png")
    Image.fromarray(_pattern(24, 24, 3)[..., 0], "L").save(d / "sub" / "d_gray.png")
    (d / "notes.txt").write_text("not a picture\n")
    buf = io.BytesIO()
    Image.fromarray(_pattern(64, 64, 4)).save(buf, "JPEG")
    (d / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (d / "empty.png").write_bytes(b"")
    Image.fromarray(_pattern(8, 8, 5)).save(d / "tiny.png")
    return d


def test_folder_counts_skips_by_reason(folder):
    with pytest.warns(UserWarning, match="skipped"):
        ms = MixingSet.from_folder(folder, resize=20)
    assert len(ms) == 4 and ms.side == 20 and ms.device == "cpu"
    assert ms.images.dtype == np.uint8 and ms.images.shape == (4, 20, 20, 3)
    names = {r: sorted(p.rsplit("/", 1)[-1] for p in v) for r, v in ms.skipped.items()}
    assert names == {
        "not an image": ["notes.txt"],
        "unreadable": ["empty.png", "truncated.jpg"],
        "too small": ["tiny.png"],
    }


def test_folder_rgb_conversion_and_resize_rule(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ms = MixingSet.from_folder(folder, resize=20)
    # sorted order: a_rgb.png, b_photo.jpg, c_rgba.png, sub/d_gray.png
    for i, name in enumerate(["a_rgb.png", "b_photo.jpg", "c_rgba.png", "sub/d_gray.png"]):
        with Image.open(folder / name) as img:
            expected = np.asarray(resize_short_side(img.convert("RGB"), 20))
        np.testing.assert_array_equal(ms.images[i], expected)
    gray = ms.images[3]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_resize_short_side_rule():
    img = Image.fromarray(_pattern(40, 60, 0))  # w=60, h=40 -> short side 40
    out = resize_short_side(img, 20)
    assert out.size == (20, 20)
    wide = img.resize((30, 20), Image.BILINEAR)  # int(20 * 60 / 40) = 30
    np.testing.assert_array_equal(np.asarray(out), np.asarray(wide)[:, 5:25])
    same = Image.fromarray(_pattern(20, 26, 1))  # short side already 20: crop only
    np.testing.assert_array_equal(np.asarray(resize_short_side(same, 20)), _pattern(20, 26, 1)[:, 3:23])


def test_max_images(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ms = MixingSet.from_folder(folder, resize=16, max_images=2)
    assert len(ms) == 2


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        MixingSet.from_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="contains no files"):
        MixingSet.from_folder(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.txt").write_text("x")
    Image.fromarray(_pattern(4, 4, 0)).save(bad / "t.png")
    with pytest.raises(ValueError, match=r"no usable picture: 2 files.*not an image: 1.*too small: 1"):
        MixingSet.from_folder(bad)
    with pytest.raises(NotADirectoryError):
        MixingSet.from_folder(bad / "x.txt")


def test_plan_determinism_and_gather_matches_slicing():
    imgs = np.stack([_pattern(32, 32, s) for s in range(5)])
    ms = MixingSet.from_array(imgs)
    p1 = ms.sample_plan(16, np.random.default_rng(3), 12, 9)
    p2 = ms.sample_plan(16, np.random.default_rng(3), 12, 9)
    for k in ("index", "top", "left"):
        np.testing.assert_array_equal(p1[k], p2[k])
    assert p1["top"].max() <= 20 and p1["left"].max() <= 23
    out = ms.gather(p1)
    assert out.shape == (16, 12, 9, 3) and out.dtype == np.uint8
    for i in range(16):
        t, l = p1["top"][i], p1["left"][i]
        np.testing.assert_array_equal(out[i], imgs[p1["index"][i], t:t + 12, l:l + 9])
    with pytest.raises(ValueError, match="does not fit"):
        ms.sample_plan(2, np.random.default_rng(0), 33)


def test_gather_torch_cpu_tensor():
    torch = pytest.importorskip("torch")
    imgs = np.stack([_pattern(16, 16, s) for s in range(3)])
    ms = MixingSet(torch.from_numpy(imgs))
    plan = ms.sample_plan(6, np.random.default_rng(0), 8)
    out = ms.gather(plan)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (6, 8, 8, 3)
    np.testing.assert_array_equal(out.numpy(), MixingSet(imgs).gather(plan))
    for backend in ("cpu", "emulated"):  # method code asks for its backend's arrays
        got = ms.gather(plan, backend)
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, out.numpy())
    with pytest.raises(ValueError, match="backend"):
        ms.gather(plan, "opencl")


def test_from_array_validates():
    with pytest.raises(ValueError, match="S, S, 3"):
        MixingSet.from_array(np.zeros((2, 8, 9, 3), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        MixingSet.from_array(np.zeros((2, 8, 8, 3), np.float32))


def test_fractal_set_cpu():
    ms = MixingSet.fractals(3, size=24, seed=1)
    assert ms.images.shape == (3, 24, 24, 3) and ms.images.dtype == np.uint8
    np.testing.assert_array_equal(ms.images, MixingSet.fractals(3, size=24, seed=1).images)


@pytest.mark.gpu
def test_cuda_and_pinned_sets_match_cpu():
    torch = pytest.importorskip("torch")
    imgs = np.stack([_pattern(16, 16, s) for s in range(3)])
    plan = MixingSet(imgs).sample_plan(5, np.random.default_rng(1), 7, 9)
    expected = MixingSet(imgs).gather(plan)
    for device in ("cuda", "pinned"):
        ms = MixingSet.from_array(imgs, device=device)
        assert ms.device == ("cuda:0" if device == "cuda" else "pinned")
        out = ms.gather(plan)
        assert isinstance(out, torch.Tensor)
        np.testing.assert_array_equal(out.cpu().numpy(), expected)
        np.testing.assert_array_equal(ms.gather(plan, "cuda").get(), expected)
    np.testing.assert_array_equal(MixingSet(imgs).gather(plan, "cuda").get(), expected)
    gpu = MixingSet.fractals(3, size=32, seed=4, device="cuda")
    assert gpu.images.is_cuda
    np.testing.assert_array_equal(gpu.images.cpu().numpy(), MixingSet.fractals(3, size=32, seed=4).images)
