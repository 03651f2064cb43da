"""PixMix's 300K Random Images mode: a (N, S, S, 3) uint8 .npy mixing set whose draws get
a pad-4 random crop and a random horizontal flip (``MixingSet.from_npy``, transform
"pad_crop_flip"), checked on a small generated array."""

import json

import numpy as np
import pytest

import gpuaug
from gpuaug.data import samples
from gpuaug.mixing import PAD, MixingSet
from gpuaug.train.cli import main_train

from _train_helpers import short_run, tiny_data

SIDE = 16


@pytest.fixture(scope="module")
def array():
    rng = np.random.default_rng(0)
    # no zero pixels, so a zero in a crop can only come from the padding
    return rng.integers(1, 256, size=(7, SIDE, SIDE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def npy(tmp_path_factory, array):
    path = tmp_path_factory.mktemp("random_images") / "300K_random_images.npy"
    np.save(path, array)
    return path


def expected_crops(array, plan):
    """Per draw: zero-pad by 4, crop at (top, left), mirror when flipped."""
    h, w = plan["height"], plan["width"]
    out = []
    for i, t, l, f in zip(plan["index"], plan["top"], plan["left"], plan["flip"]):
        padded = np.pad(array[i], ((PAD, PAD), (PAD, PAD), (0, 0)))
        crop = padded[t:t + h, l:l + w]
        out.append(crop[:, ::-1] if f else crop)
    return np.stack(out)


def test_from_npy_loads_with_the_transform(npy, array):
    mixing = MixingSet.from_npy(npy)
    assert mixing.transform == "pad_crop_flip" and len(mixing) == 7 and mixing.side == SIDE
    np.testing.assert_array_equal(mixing.images, array)
    assert "pad_crop_flip" in repr(mixing)
    assert MixingSet.from_npy(npy, transform=None).transform is None


def test_offsets_stay_in_the_padded_picture_and_flips_are_fair(npy):
    mixing = MixingSet.from_npy(npy)
    plan = mixing.sample_plan(4000, np.random.default_rng(1), SIDE, SIDE)
    assert plan["pad"] == PAD
    for key in ("top", "left"):  # uniform over every offset of the padded picture, 0..2 * PAD
        assert plan[key].min() == 0 and plan[key].max() == 2 * PAD
        assert len(np.unique(plan[key])) == 2 * PAD + 1
    assert 0.46 < plan["flip"].mean() < 0.54  # p = 1/2: 4000 draws, sd 0.008
    crops = mixing.gather(plan, "cpu")
    np.testing.assert_array_equal(crops, expected_crops(mixing.images, plan))
    # the padding shows as zero rows/columns exactly where a crop leaves the picture
    shifted = (plan["top"] != PAD) | (plan["left"] != PAD)
    assert ((crops == 0).any(axis=(1, 2, 3)) == shifted).all()


def test_plain_sets_are_unchanged(array):
    plain = MixingSet.from_array(array)
    plan = plain.sample_plan(50, np.random.default_rng(2), 8, 8)
    assert "flip" not in plan and "pad" not in plan and plan["top"].max() <= SIDE - 8
    with pytest.raises(ValueError, match="does not fit"):
        plain.sample_plan(1, np.random.default_rng(0), SIDE + 1)
    padded = MixingSet.from_array(array, transform="pad_crop_flip")
    padded.sample_plan(1, np.random.default_rng(0), SIDE + 2 * PAD)  # a crop up to the padded size fits
    with pytest.raises(ValueError, match="padded by 4"):
        padded.sample_plan(1, np.random.default_rng(0), SIDE + 2 * PAD + 1)


def test_torch_host_set_gathers_the_same_pixels(array):
    torch = pytest.importorskip("torch")
    plan = MixingSet.from_array(array, transform="pad_crop_flip").sample_plan(64, np.random.default_rng(3), 12)
    tensor_set = MixingSet.from_array(torch.from_numpy(array.copy()), transform="pad_crop_flip")
    want = expected_crops(array, plan)
    np.testing.assert_array_equal(tensor_set.gather(plan).numpy(), want)
    np.testing.assert_array_equal(tensor_set.gather(plan, "emulated"), want)


def test_pixmix_same_pixels_on_cpu_and_emulated_executors(npy):
    mixing = MixingSet.from_npy(npy)
    images = samples.batch(6, SIDE, seed=4)
    want = gpuaug.PixMix()(images, mixing=mixing, seed=9, executor="cpu")
    got = gpuaug.PixMix()(images, mixing=mixing, seed=9, executor="emulated")
    np.testing.assert_array_equal(got, want)


@pytest.mark.gpu
def test_cuda_gather_equals_numpy(array):
    cupy = pytest.importorskip("cupy")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    plan = MixingSet.from_array(array, transform="pad_crop_flip").sample_plan(64, np.random.default_rng(5), SIDE)
    want = expected_crops(array, plan)
    host_set = MixingSet.from_array(array, transform="pad_crop_flip")
    np.testing.assert_array_equal(cupy.asnumpy(host_set.gather(plan, "cuda")), want)
    device_set = MixingSet.from_array(array, device="cuda", transform="pad_crop_flip")
    np.testing.assert_array_equal(cupy.asnumpy(device_set.gather(plan, "cuda")), want)
    np.testing.assert_array_equal(device_set.gather(plan).cpu().numpy(), want)


def test_bad_arrays_are_named(tmp_path, array):
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        MixingSet.from_npy(tmp_path / "missing.npy")
    np.save(tmp_path / "float.npy", array.astype(np.float32))
    with pytest.raises(TypeError, match="float.npy.*uint8"):
        MixingSet.from_npy(tmp_path / "float.npy")
    np.save(tmp_path / "gray.npy", array[..., 0])
    with pytest.raises(ValueError, match="gray.npy.*shape"):
        MixingSet.from_npy(tmp_path / "gray.npy")
    np.savez(tmp_path / "archive.npz", a=array)
    with pytest.raises(ValueError, match="archive.npz"):
        MixingSet.from_npy(tmp_path / "archive.npz")
    with pytest.raises(ValueError, match="transform"):
        MixingSet.from_array(array, transform="flip")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("shapes"))


@pytest.mark.parametrize("loader", ["torch", "dali"])
def test_cifar_pixmix_recipe_trains_with_the_array(data, npy, tmp_path, loader):
    if loader == "dali":
        pytest.importorskip("nvidia.dali")
    out = tmp_path / "run"
    argv = short_run(data, out, "--recipe", "pipelines/cifar-pixmix.toml", "--mixing", str(npy),
                     "--arch", "tiny", "--epochs", "1", "--loader", loader)
    assert main_train(argv) == 0
    rec = json.loads((out / "train.jsonl").read_text().splitlines()[-1])
    assert rec["step"] == 4 and rec["train_loss"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "pixmix" and config["mixing"] == str(npy)


def test_trainer_refuses_an_array_smaller_than_the_images(data, tmp_path, array):
    small = tmp_path / "small.npy"
    np.save(small, array[:, :8, :8])
    with pytest.raises(SystemExit, match="smaller than --image-size"):
        main_train(short_run(data, tmp_path / "run", "--method", "pixmix", "--mixing", str(small)))
