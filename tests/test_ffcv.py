"""gpuaug.ffcv: write a tiny .beton and load it through FFCV with our module at the end (CPU).

Skipped when FFCV is not installed (``pip install -e '.[ffcv]'`` after
``apt-get install libopencv-dev libturbojpeg0-dev pkg-config``).
"""

import warnings

import numpy as np
import pytest
import torch

import gpuaug
import gpuaug.ffcv as gf
import gpuaug.torch as gt

if not gf.available():
    pytest.skip(f"FFCV is not importable: {gf.INSTALL_HINT}", allow_module_level=True)

from ffcv.fields.decoders import SimpleRGBImageDecoder  # noqa: E402
from ffcv.loader import Loader, OrderOption  # noqa: E402
from ffcv.transforms import ToDevice, ToTensor, ToTorchImage  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    # numba (used by FFCV's JIT pipeline) raises a KeyError in a dispatcher finalizer at exit
    "ignore::pytest.PytestUnraisableExceptionWarning")

N, SIDE, CLASSES = 12, 32, 5
CPU = torch.device("cpu")


class TinyDataset:
    """N generated RGB images (uint8 HxWx3) with integer labels."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        ramp = np.linspace(0, 255, SIDE, dtype=np.float32)
        base = (ramp[None, :, None] + ramp[:, None, None] * np.array([0.2, 0.6, 1.0])) / 2
        noise = rng.integers(-40, 40, size=(N, SIDE, SIDE, 3))
        self.images = np.clip(base[None] + noise, 0, 255).astype(np.uint8)
        self.labels = np.arange(N) % CLASSES

    def __len__(self):
        return N

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


@pytest.fixture(scope="module", autouse=True)
def _collect_numba_dispatchers():
    yield
    import gc

    gc.collect()  # run numba's finalizers here, under the filter above, not at interpreter exit


@pytest.fixture(scope="module")
def beton(tmp_path_factory):
    data = TinyDataset()
    path = gf.write_dataset(tmp_path_factory.mktemp("ffcv") / "tiny.beton", data, write_mode="raw",
                            max_resolution=None)
    return path, data


def load(path, image_ops, batch_size=4):
    loader = Loader(path, batch_size=batch_size, num_workers=1, order=OrderOption.SEQUENTIAL, drop_last=False,
                    pipelines={"image": image_ops, "label": gf.label_pipeline(CPU)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # FFCV: "a torch module on the CPU is slow"
        return list(loader)


def test_augment_at_the_end_of_an_ffcv_pipeline_equals_the_method(beton):
    path, data = beton
    aug = gt.Augment(gpuaug.AugMix(), seed=0, layout="NCHW")
    ops = [SimpleRGBImageDecoder(), ToTensor(), ToDevice(CPU), ToTorchImage(channels_last=True), aug]
    batches = load(path, ops)
    assert [len(y) for _, y in batches] == [4, 4, 4]
    g = np.random.default_rng(0)
    for b, (x, y) in enumerate(batches):
        assert x.dtype == torch.float32 and x.shape == (4, 3, SIDE, SIDE)
        assert x.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(y.long(), torch.from_numpy(data.labels[4 * b:4 * b + 4]))
        want = gpuaug.AugMix()(data.images[4 * b:4 * b + 4], seed=g)
        np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), want)


def test_train_and_val_pipelines(beton):
    path, _ = beton
    train = load(path, gf.train_pipeline(gpuaug.AugMix(), CPU, 16, seed=1, views=True, normalize=True))
    for (clean, a1, a2), y in train:
        for t in (clean, a1, a2):
            assert t.shape == (4, 3, 16, 16) and t.dtype == torch.float32
            assert t.is_contiguous(memory_format=torch.channels_last) and torch.isfinite(t).all()
        assert not torch.equal(a1, a2) and y.shape == (4,)
    val = load(path, gf.val_pipeline("cpu", 16, dtype=torch.float16))
    for x, _ in val:
        assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float16 and 0 <= x.min() and x.max() <= 1


def test_decode_pipeline_and_mixbatch_in_the_loop(beton):
    path, _ = beton
    mix = gt.MixBatch(gpuaug.CutMix(), CLASSES, seed=0)
    for x, y in load(path, gf.decode_pipeline(CPU, 16, flip=False)):
        assert x.dtype == torch.uint8 and x.shape == (4, 3, 16, 16)
        images, targets = mix(x, y)
        assert images.shape == (4, 3, 16, 16) and targets.shape == (4, CLASSES)
        torch.testing.assert_close(targets.sum(1), torch.ones(4))


def test_write_dataset_rejects_non_rgb(tmp_path):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        gf.write_dataset(tmp_path / "bad.beton", [(np.zeros((8, 8), np.uint8), 0)])
