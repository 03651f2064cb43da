"""WebDatasetLoader on tar shards written with Python's tarfile (CPU DALI)."""

from __future__ import annotations

import io
import tarfile
import warnings

import pytest

pytest.importorskip("nvidia.dali")
torch = pytest.importorskip("torch")

from gpuaug.loader import WebDatasetLoader  # noqa: E402

from imagegen import natural  # noqa: E402

CPU = dict(device="cpu", num_threads=1, image_size=32)


def _add(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _jpeg(seed, h=30, w=36):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(natural(h, w, seed)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Three shards, 19 good samples (label = global id), plus bad and unlabelled ones."""
    root = tmp_path_factory.mktemp("wds")
    paths, sid = [], 0
    for s, count in enumerate([7, 5, 7]):
        path = root / f"shard-{s:02d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(count):
                key = f"s{s}/{i:04d}"
                _add(tar, f"{key}.jpg", _jpeg(sid))
                _add(tar, f"{key}.cls", f"{sid}\n".encode())
                sid += 1
            _add(tar, f"s{s}/bad.jpg", _jpeg(0)[:200])
            _add(tar, f"s{s}/bad.cls", b"999")
            _add(tar, f"s{s}/nolabel.jpg", _jpeg(1))
        paths.append(str(path))
    return paths, sid


def _ids(loader):
    out = []
    for images, labels in loader:
        assert images.shape[1:] == (3, 32, 32) and images.dtype == torch.float32
        out += labels.tolist()
    return out


def test_webdataset_skips_and_labels(shards):
    paths, n = shards
    with pytest.warns(UserWarning, match=r"skipped 6 files \(truncated: 3, no label: 3\)"):
        loader = WebDatasetLoader(paths, 4, train=False, **CPU)
    assert len(loader.samples) == n and len(loader) == -(-n // 4)
    assert _ids(loader) == list(range(n))  # validation: tar order


@pytest.mark.parametrize("ranks", [1, 2])
def test_webdataset_epochs_cover_each_sample_once(shards, ranks):
    paths, n = shards
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaders = [WebDatasetLoader(paths, 3, shard=(r, ranks), seed=5, **CPU) for r in range(ranks)]
    orders = []
    for _ in range(2):
        seen = [_ids(ld) for ld in loaders]
        assert len({len(ld) for ld in loaders}) == 1
        assert sorted(sum(seen, [])) == list(range(n))
        orders.append(seen)
    assert orders[0] != orders[1]
