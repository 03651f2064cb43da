"""Mixing sets: the pictures PixMix and IPMix mix into images, decoded once and kept dense.

A :class:`MixingSet` holds N pictures as one uint8 NHWC array of shape
(N, side, side, 3): a numpy array (``device="cpu"``), a pinned torch CPU tensor
(``"pinned"``) or a torch CUDA tensor (``"cuda"``, ``"cuda:1"``). Each use draws a plan
(which picture, where to crop) with :meth:`MixingSet.sample_plan` and cuts the crops in
one batched indexing operation with :meth:`MixingSet.gather`.

Folder rule (:meth:`MixingSet.from_folder`): every file under the folder (recursively,
sorted) is decoded with Pillow, converted with ``.convert("RGB")`` (as torchvision's
ImageFolder loader does: alpha is dropped, grey is replicated), resized so its short side
is ``resize`` with Pillow's BILINEAR filter (torchvision's ``Resize(256)`` on PIL images,
which the papers apply before a random 224 crop; use ``resize=36`` for a 32 crop on
CIFAR), then centre-cropped to ``resize x resize`` so the set stacks densely. The papers
crop from the whole resized rectangle; a centre square loses the long side's margins.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
    ".pbm", ".pnm", ".tga", ".jfif",
})
SKIP_REASONS = ("not an image", "unreadable", "too small")


def resize_short_side(img, size: int):
    """A PIL image resized (BILINEAR) so its short side is ``size``, then centre-cropped
    to ``size x size`` (torchvision's Resize and CenterCrop rounding)."""
    from PIL import Image

    w, h = img.size
    if w <= h:
        ow, oh = size, int(size * h / w)
    else:
        ow, oh = int(size * w / h), size
    if (ow, oh) != (w, h):
        img = img.resize((ow, oh), Image.BILINEAR)
    left = int(round((ow - size) / 2.0))
    top = int(round((oh - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def _load_one(path: Path, resize: int, min_size: int):
    """(array, None) for a usable picture, else (None, skip reason)."""
    from PIL import Image, UnidentifiedImageError

    claims_image = path.suffix.lower() in IMAGE_SUFFIXES
    try:
        with Image.open(path) as img:
            img.load()
            if min(img.size) < min_size:
                return None, "too small"
            rgb = img.convert("RGB")
    except UnidentifiedImageError:
        return None, "unreadable" if claims_image else "not an image"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None, "unreadable"
    return np.asarray(resize_short_side(rgb, resize), dtype=np.uint8), None


def _place(array: np.ndarray, device: str):
    """Put a host uint8 array where ``device`` says: numpy, pinned torch, or CUDA torch."""
    if device == "cpu":
        return array
    import torch

    host = torch.from_numpy(array)
    if device == "pinned":
        try:
            return host.pin_memory()
        except RuntimeError as err:
            raise RuntimeError(f"device='pinned' needs a CUDA-capable torch and driver: {err}") from err
    if device == "cuda" or device.startswith("cuda:"):
        return host.to(device)
    raise ValueError(f"device must be 'cpu', 'pinned', 'cuda' or 'cuda:N', got {device!r}")


class MixingSet:
    """N mixing pictures of side ``side`` as one dense uint8 NHWC array.

    ``skipped`` maps a reason ("not an image", "unreadable", "too small") to the files
    skipped for it (empty unless built from a folder).
    """

    def __init__(self, images, skipped: dict | None = None, source: str = "array"):
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[3] != 3 or shape[0] < 1 or shape[1] != shape[2] or shape[1] < 1:
            raise ValueError(f"mixing pictures must be a non-empty (N, S, S, 3) batch, got shape {shape}")
        if str(images.dtype).replace("torch.", "") != "uint8":
            raise TypeError(f"mixing pictures must be uint8, got {images.dtype}")
        self.images = images
        self.skipped = {r: list(v) for r, v in (skipped or {}).items()}
        self.source = source

    # ------------------------------------------------------------ constructors

    @classmethod
    def from_array(cls, images, device: str | None = None) -> "MixingSet":
        """Wrap a (N, S, S, 3) uint8 array or tensor; ``device`` moves a numpy array."""
        if isinstance(images, np.ndarray):
            images = _place(np.ascontiguousarray(images), device or "cpu")
        elif device is not None:
            raise ValueError("device= only applies to numpy input; move tensors yourself")
        return cls(images)

    @classmethod
    def from_folder(cls, path, resize: int = 256, device: str = "cpu",
                    max_images: int | None = None, min_size: int = 16,
                    workers: int | None = None) -> "MixingSet":
        """Decode every picture under ``path`` (recursively; see the module notes).

        Files that are not images, cannot be decoded or whose short side is below
        ``min_size`` are skipped and listed in ``skipped`` (with a warning giving the
        counts). FileNotFoundError / NotADirectoryError for a missing folder; ValueError
        when it has no files or no usable picture, naming the folder and the counts.
        """
        folder = Path(path)
        if not folder.exists():
            raise FileNotFoundError(f"mixing set folder {str(folder)!r} does not exist")
        if not folder.is_dir():
            raise NotADirectoryError(f"mixing set path {str(folder)!r} is not a folder")
        if isinstance(resize, bool) or not isinstance(resize, (int, np.integer)) or resize < 1:
            raise ValueError(f"resize must be a positive integer, got {resize!r}")
        if max_images is not None and max_images < 1:
            raise ValueError(f"max_images must be >= 1 or None, got {max_images!r}")
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
            raise ValueError(f"mixing set folder {str(folder)!r} contains no files")
        workers = workers or min(8, os.cpu_count() or 1)
        pictures: list[np.ndarray] = []
        skipped: dict[str, list[str]] = {}
        chunk = max(64, 4 * workers)
        with ThreadPoolExecutor(workers) as pool:
            for start in range(0, len(files), chunk):
                part = files[start:start + chunk]
                for f, (arr, reason) in zip(part, pool.map(lambda p: _load_one(p, resize, min_size), part)):
                    if arr is None:
                        skipped.setdefault(reason, []).append(str(f))
                    elif max_images is None or len(pictures) < max_images:
                        pictures.append(arr)
                if max_images is not None and len(pictures) >= max_images:
                    break
        skipped = {r: skipped[r] for r in SKIP_REASONS if r in skipped}
        counts = ", ".join(f"{reason}: {len(v)}" for reason, v in skipped.items())
        if not pictures:
            raise ValueError(
                f"mixing set folder {str(folder)!r} has no usable picture: {len(files)} files, "
                f"skipped {counts} (minimum short side {min_size} px)"
            )
        if skipped:
            warnings.warn(f"mixing set {str(folder)!r}: using {len(pictures)} pictures, skipped {counts}",
                          stacklevel=2)
        return cls(_place(np.stack(pictures), device), skipped, source=str(folder))

    @classmethod
    def fractals(cls, count: int, size: int = 256, seed: int = 0, device: str = "cpu",
                 batch: int = 64, cache=None) -> "MixingSet":
        """``count`` procedural fractals (see :mod:`gpuaug.fractals`) of side ``size``,
        rendered by the CUDA kernels for a CUDA ``device``, else on the CPU once and then
        loaded from the on-disk cache (``cache``: None for ``$GPUAUG_CACHE/fractals``,
        default ``~/.cache/gpuaug/fractals``; a folder; False for none), with a progress
        bar on stderr while it renders. The pixels are the same either way."""
        from . import fractals

        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        on_cuda = device == "cuda" or str(device).startswith("cuda:")
        if on_cuda:
            import cupy
            import torch

            plan = fractals.sample_fractal_plan(count, np.random.default_rng(seed))
            with cupy.cuda.Device(torch.device(device).index or 0):
                parts = [fractals.render_fractals_xp(plan.take(slice(s, s + batch)), size, "cuda")
                         for s in range(0, count, batch)]
                return cls(torch.from_dlpack(cupy.concatenate(parts)), source=f"fractals(seed={seed})")
        images = fractals.fractal_images(count, size, seed, cache=cache)
        return cls(_place(images, device), source=f"fractals(seed={seed})")

    # ------------------------------------------------------------ use

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def side(self) -> int:
        return int(self.images.shape[1])

    @property
    def device(self) -> str:
        """Where the pictures live: "cpu", "pinned" or a torch CUDA device like "cuda:0"."""
        if isinstance(self.images, np.ndarray):
            return "cpu"
        if self.images.is_cuda:
            return str(self.images.device)
        return "pinned" if self.images.is_pinned() else "cpu"

    def __repr__(self) -> str:
        skipped = sum(len(v) for v in self.skipped.values())
        return (f"MixingSet({len(self)} pictures of {self.side}x{self.side} on {self.device}, "
                f"from {self.source}, {skipped} files skipped)")

    def sample_plan(self, n: int, rng: np.random.Generator, out_h: int | None = None,
                    out_w: int | None = None) -> dict:
        """Pick ``n`` pictures (uniform, with replacement) and a uniform random
        ``out_h x out_w`` crop of each: dict of int64 arrays ``index``, ``top``, ``left``
        (plus the ints ``height``, ``width``). Default crop: the whole picture."""
        out_h = self.side if out_h is None else int(out_h)
        out_w = out_h if out_w is None else int(out_w)
        if not (1 <= out_h <= self.side and 1 <= out_w <= self.side):
            raise ValueError(f"crop {out_h}x{out_w} does not fit pictures of side {self.side}")
        return dict(
            index=rng.integers(0, len(self), n),
            top=rng.integers(0, self.side - out_h + 1, n),
            left=rng.integers(0, self.side - out_w + 1, n),
            height=out_h, width=out_w,
        )

    def gather(self, plan: dict, backend: str | None = None):
        """The planned crops as one (n, height, width, 3) uint8 batch, in one indexing
        operation.

        ``backend=None``: same kind and device as the set (numpy, or a torch tensor: a
        CPU tensor for a pinned set). ``"cpu"`` / ``"emulated"``: a numpy array (a set on a
        CUDA device is refused). ``"cuda"``: a CuPy array on the current device (host sets
        are cropped on the host, then copied).
        """
        index, top, left = (np.asarray(plan[k], dtype=np.int64) for k in ("index", "top", "left"))
        h, w = int(plan["height"]), int(plan["width"])
        n = index.shape[0]
        if not (index.shape == top.shape == left.shape == (n,)):
            raise ValueError("plan index, top and left must be 1-d arrays of the same length")
        if n and (index.min() < 0 or index.max() >= len(self) or top.min() < 0
                  or left.min() < 0 or top.max() + h > self.side or left.max() + w > self.side):
            raise ValueError(f"plan out of range for {len(self)} pictures of side {self.side}")
        rows = top[:, None] + np.arange(h)  # (n, h)
        cols = left[:, None] + np.arange(w)  # (n, w)
        idx = (index[:, None, None], rows[:, :, None], cols[:, None, :])
        on_cuda = not isinstance(self.images, np.ndarray) and self.images.is_cuda
        if backend is None:
            if isinstance(self.images, np.ndarray):
                return self.images[idx]
            import torch

            dev = self.images.device
            return self.images[tuple(torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in idx)]
        if backend not in ("cpu", "emulated", "cuda"):
            raise ValueError(f"backend must be None, 'cpu', 'emulated' or 'cuda', got {backend!r}")
        if on_cuda:
            if backend != "cuda":
                raise ValueError(f"this mixing set is on {self.device}; backend {backend!r} needs a host set")
            import cupy

            from ._arrays import to_cupy

            images = to_cupy(self.images)
            with cupy.cuda.Device(images.device.id):
                return images[tuple(cupy.asarray(a) for a in idx)]
        host = self.images if isinstance(self.images, np.ndarray) else self.images.numpy()
        out = host[idx]
        if backend == "cuda":
            import cupy

            return cupy.asarray(out)
        return out

    def sample(self, n: int, rng: np.random.Generator, out_h: int | None = None,
               out_w: int | None = None):
        """``gather(sample_plan(...))`` in one call."""
        return self.gather(self.sample_plan(n, rng, out_h, out_w))
