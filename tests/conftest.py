"""Fixtures for the loader / DALI tests: generated ImageFolder trees of real files."""

from __future__ import annotations

import io
import os

import pytest
from imagegen import natural

# (class, name, (h, w)): good RGB JPEGs of several sizes
GOOD = [("ant", f"a{i}.jpg", (24 + 3 * i, 40 - 2 * i)) for i in range(7)] + \
       [("bee", f"b{i}.JPEG", (36, 36 + i)) for i in range(6)] + \
       [("cat", f"c{i}.jpeg", (30 + i, 28)) for i in range(8)] + \
       [("cat", "sub/deep.jpg", (32, 32))]


def _jpeg(arr, **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def write_clean_tree(root, good=GOOD):
    """A tree of good JPEGs; returns {relative path: class name}."""
    out = {}
    for seed, (cls, name, (h, w)) in enumerate(good):
        path = os.path.join(root, cls, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(_jpeg(natural(h, w, seed)))
        out[os.path.join(cls, name)] = cls
    return out


def write_odd_files(root):
    """Odd but decodable files (kept) and bad files (skipped); returns (kept, {reason: [rel]})."""
    from PIL import Image

    img = natural(40, 52, 99)
    odd = os.path.join(root, "dog")
    os.makedirs(odd, exist_ok=True)
    os.makedirs(os.path.join(root, "empty_class"), exist_ok=True)
    kept = {}

    def save(name, pil, **kw):
        pil.save(os.path.join(odd, name), **kw)
        kept[os.path.join("dog", name)] = "dog"

    save("gray.jpg", Image.fromarray(img).convert("L"))
    save("cmyk.jpg", Image.fromarray(img).convert("CMYK"))
    save("rgba.png", Image.fromarray(img).convert("RGBA"))
    save("palette.png", Image.fromarray(img).convert("P"))
    save("tiny.jpg", Image.fromarray(img[:5, :6]))
    save("huge.jpg", Image.fromarray(natural(1200, 1600, 5)), quality=70)
    good = _jpeg(img)
    bad = {"empty": ["empty.jpg"], "not an image": ["notes.txt", "fake.jpg"],
           "unsupported format": ["anim.gif"], "truncated": ["trunc.jpg", "trunc.png"]}
    files = {"empty.jpg": b"", "notes.txt": b"not a picture\n", "fake.jpg": b"hello world, not a jpeg",
             "trunc.jpg": good[: len(good) // 2]}
    for name, data in files.items():
        with open(os.path.join(odd, name), "wb") as f:
            f.write(data)
    Image.fromarray(img).save(os.path.join(odd, "anim.gif"))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    with open(os.path.join(odd, "trunc.png"), "wb") as f:
        f.write(buf.getvalue()[:-40])
    return kept, {r: [os.path.join("dog", n) for n in v] for r, v in bad.items()}


@pytest.fixture(scope="session", autouse=True)
def _private_validation_cache(tmp_path_factory):
    """Keep the loaders' decode-validation cache out of the user's ~/.cache."""
    old = os.environ.get("GPUAUG_CACHE_DIR")
    os.environ["GPUAUG_CACHE_DIR"] = str(tmp_path_factory.mktemp("gpuaug-cache"))
    yield
    if old is None:
        os.environ.pop("GPUAUG_CACHE_DIR", None)
    else:
        os.environ["GPUAUG_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def clean_tree(tmp_path_factory):
    """(root, {relative path: class}) of 22 good JPEGs in 3 classes."""
    root = tmp_path_factory.mktemp("clean")
    return str(root), write_clean_tree(str(root))


@pytest.fixture(scope="session")
def odd_tree(tmp_path_factory):
    """(root, kept {rel: class}, skipped {reason: [rel]}): good JPEGs, odd decodable files,
    bad files and an empty class folder."""
    root = tmp_path_factory.mktemp("odd")
    kept = write_clean_tree(str(root))
    more, bad = write_odd_files(str(root))
    kept.update(more)
    return str(root), kept, bad

