"""Mixing sets: the pictures PixMix and IPMix mix into images, decoded once and kept dense.

A :class:`MixingSet` holds N pictures as one uint8 NHWC array of shape
(N, side, side, 3): a numpy array (``device="cpu"``), a pinned torch CPU tensor
(``"pinned"``) or a torch CUDA tensor (``"cuda:1"``; ``"cuda"`` means the *current*
device). A CUDA set belongs to that one device: using it from another device is refused
with a clear error (build one set per device, e.g. per rank). Each use draws a plan
(which picture, where to crop) with :meth:`MixingSet.sample_plan` and cuts the crops in
one batched indexing operation with :meth:`MixingSet.gather`.

Folder rule (:meth:`MixingSet.from_folder`): every file under the folder (recursively,
sorted) is decoded with Pillow, converted with ``.convert("RGB")`` (as torchvision's
ImageFolder loader does: alpha is dropped, grey is replicated), resized so its short side
is ``resize`` with Pillow's BILINEAR filter (torchvision's ``Resize(256)`` on PIL images,
which the papers apply before a random 224 crop; use ``resize=36`` for a 32 crop on
CIFAR), then centre-cropped to ``resize x resize`` so the set stacks densely. The papers
crop from the whole resized rectangle; a centre square loses the long side's margins.

Transform ``"pad_crop_flip"`` (:meth:`MixingSet.from_npy`, PixMix's 300K Random Images
mode): each draw crops from the picture zero-padded by 4 pixels on every side and mirrors
the crop left-right with probability 1/2 -- the official CIFAR code's
``RandomCrop(32, padding=4)`` then ``RandomHorizontalFlip()`` on that array. The offsets
and flips are drawn in the plan and applied by the same gather on every backend.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ._arrays import check_same_device, resolve_cuda_device

IMAGE_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
    ".pbm", ".pnm", ".tga", ".jfif",
})
SKIP_REASONS = ("not an image", "unreadable", "too small")
TRANSFORMS = (None, "pad_crop_flip")
PAD = 4  # "pad_crop_flip": zero padding per side (RandomCrop(32, padding=4))


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
        return host.to(f"cuda:{resolve_cuda_device(device)}")
    raise ValueError(f"device must be 'cpu', 'pinned', 'cuda' or 'cuda:N', got {device!r}")


def _crop_index(index, top, left, h: int, w: int, pad: int, flip, side: int):
    """Fancy-index arrays for the planned crops and, with padding, the (n, h, w) bool mask
    of crop pixels that fall in the zero border (None without padding). Crops start at
    (top, left) in padded coordinates; a flipped crop reads its columns right to left."""
    rows = top[:, None] - pad + np.arange(h)  # (n, h)
    steps = np.arange(w)
    if flip is not None:
        steps = np.where(np.asarray(flip, dtype=bool)[:, None], w - 1 - steps, steps)
    cols = left[:, None] - pad + steps  # (n, w)
    outside = None
    if pad:
        outside = (((rows < 0) | (rows >= side))[:, :, None] | ((cols < 0) | (cols >= side))[:, None, :])
        rows, cols = np.clip(rows, 0, side - 1), np.clip(cols, 0, side - 1)
    return (index[:, None, None], rows[:, :, None], cols[:, None, :]), outside


def _blank(crops, outside):
    """Zero the padding pixels of gathered crops (in place; ``outside`` on their device)."""
    if outside is not None:
        crops[outside] = 0
    return crops


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
        self._cupy_view = None  # a CUDA set as CuPy, converted once (see cupy_images)
        self.skipped = {r: list(v) for r, v in (skipped or {}).items()}
        self.source = source
        self.transform = None  # per-draw transform: None or "pad_crop_flip" (with_transform)

    # ------------------------------------------------------------ constructors

    @classmethod
    def from_array(cls, images, device: str | None = None, transform: str | None = None) -> "MixingSet":
        """Wrap a (N, S, S, 3) uint8 array or tensor; ``device`` moves a numpy array;
        ``transform``: None (plain crops) or "pad_crop_flip" (see the module notes)."""
        if isinstance(images, np.ndarray):
            images = _place(np.ascontiguousarray(images), device or "cpu")
        elif device is not None:
            raise ValueError("device= only applies to numpy input; move tensors yourself")
        return cls(images).with_transform(transform)

    @classmethod
    def from_npy(cls, path, transform: str | None = "pad_crop_flip", device: str = "cpu") -> "MixingSet":
        """Load a (N, S, S, 3) uint8 ``.npy`` array, e.g. PixMix's ``300K_random_images.npy``
        (N = 300,000, S = 32), with its official per-draw treatment ``"pad_crop_flip"``
        by default (``transform=None`` for plain crops)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"mixing array {str(path)!r} does not exist")
        try:
            images = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"mixing array {str(path)!r} is not a plain .npy array: {err}") from None
        if not isinstance(images, np.ndarray):
            raise ValueError(f"mixing array {str(path)!r} must be one .npy array, not an .npz archive")
        try:
            mixing = cls(_place(np.ascontiguousarray(images), device), source=str(path))
        except (TypeError, ValueError) as err:
            raise type(err)(f"mixing array {str(path)!r}: {err}") from None
        return mixing.with_transform(transform)

    def with_transform(self, transform: str | None) -> "MixingSet":
        """Set the per-draw transform (None or "pad_crop_flip") in place; returns self."""
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
        self.transform = transform
        return self

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
        loaded from the on-disk cache (``cache``: None for ``fractals/`` in the gpuaug
        cache, :mod:`gpuaug.data.cachedir`, default ``~/.cache/gpuaug/fractals``; a folder; False for none), with a progress
        bar on stderr while it renders. The pixels are the same either way."""
        from . import fractals

        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        on_cuda = device == "cuda" or str(device).startswith("cuda:")
        if on_cuda:
            import cupy
            import torch

            plan = fractals.sample_fractal_plan(count, np.random.default_rng(seed))
            with cupy.cuda.Device(resolve_cuda_device(device)):
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

    @property
    def device_index(self) -> int | None:
        """The CUDA device index of a CUDA set, else None."""
        if isinstance(self.images, np.ndarray) or not self.images.is_cuda:
            return None
        return int(self.images.device.index)

    def check_device(self, index: int | None = None) -> None:
        """ValueError unless this CUDA set lives on device ``index`` (default: the current
        device). A no-op for host sets, which any device may copy from."""
        owner = self.device_index
        if owner is not None:
            check_same_device(f"this mixing set ({self.device})", owner, index)

    def cupy_images(self):
        """The CUDA pictures as a CuPy array, converted once.

        Converting on every batch would call torch's ``__dlpack__`` with the caller's
        stream each time, and torch makes that stream wait on its own current stream: a
        DALI node's stream would wait on the training stream every batch. The pictures
        never change after construction, so one conversion (and one wait) is enough.
        """
        if self._cupy_view is None:
            import cupy

            with cupy.cuda.Device(self.device_index):
                view = cupy.from_dlpack(self.images)
                # the crop kernel reads a dense set: one copy, once, for a strided tensor
                self._cupy_view = view if view.flags.c_contiguous else cupy.ascontiguousarray(view)
        return self._cupy_view

    def __repr__(self) -> str:
        skipped = sum(len(v) for v in self.skipped.values())
        transform = f", transform {self.transform}" if self.transform else ""
        return (f"MixingSet({len(self)} pictures of {self.side}x{self.side} on {self.device}, "
                f"from {self.source}, {skipped} files skipped{transform})")

    def sample_plan(self, n: int, rng: np.random.Generator, out_h: int | None = None,
                    out_w: int | None = None) -> dict:
        """Pick ``n`` pictures (uniform, with replacement) and a uniform random
        ``out_h x out_w`` crop of each: dict of int64 arrays ``index``, ``top``, ``left``
        (plus the ints ``height``, ``width``). Default crop: the whole picture.

        With ``transform="pad_crop_flip"`` the crop is taken from the picture zero-padded
        by ``pad`` = 4 per side (``top``/``left`` in padded coordinates) and the plan adds
        a bool array ``flip`` (mirror the crop left-right, p = 1/2) and the int ``pad``."""
        pad = PAD if self.transform == "pad_crop_flip" else 0
        span = self.side + 2 * pad
        out_h = self.side if out_h is None else int(out_h)
        out_w = out_h if out_w is None else int(out_w)
        if not (1 <= out_h <= span and 1 <= out_w <= span):
            raise ValueError(f"crop {out_h}x{out_w} does not fit pictures of side {self.side}"
                             + (f" padded by {pad}" if pad else ""))
        plan = dict(
            index=rng.integers(0, len(self), n),
            top=rng.integers(0, span - out_h + 1, n),
            left=rng.integers(0, span - out_w + 1, n),
            height=out_h, width=out_w,
        )
        if pad:
            plan.update(flip=rng.random(n) < 0.5, pad=pad)
        return plan

    def gather(self, plan: dict, backend: str | None = None):
        """The planned crops as one (n, height, width, 3) uint8 batch, in one indexing
        operation.

        ``backend=None``: same kind and device as the set (numpy, or a torch tensor: a
        CPU tensor for a pinned set). ``"cpu"`` / ``"emulated"``: a numpy array (a set on a
        CUDA device is refused). ``"cuda"``: a CuPy array on the current device (host sets
        are cropped on the host, then copied; a CUDA set must live on the current device).
        """
        index, top, left = (np.asarray(plan[k], dtype=np.int64) for k in ("index", "top", "left"))
        h, w = int(plan["height"]), int(plan["width"])
        pad = int(plan.get("pad", 0))
        n = index.shape[0]
        if not (index.shape == top.shape == left.shape == (n,)):
            raise ValueError("plan index, top and left must be 1-d arrays of the same length")
        span = self.side + 2 * pad
        if n and (index.min() < 0 or index.max() >= len(self) or top.min() < 0
                  or left.min() < 0 or top.max() + h > span or left.max() + w > span):
            raise ValueError(f"plan out of range for {len(self)} pictures of side {self.side}")
        on_cuda = not isinstance(self.images, np.ndarray) and self.images.is_cuda
        if backend is None or not on_cuda:
            idx, outside = _crop_index(index, top, left, h, w, pad, plan.get("flip"), self.side)
        if backend is None:
            if isinstance(self.images, np.ndarray):
                return _blank(self.images[idx], outside)
            import torch

            dev = self.images.device
            out = self.images[tuple(torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in idx)]
            return _blank(out, None if outside is None else torch.from_numpy(outside).to(dev))
        if backend not in ("cpu", "emulated", "cuda"):
            raise ValueError(f"backend must be None, 'cpu', 'emulated' or 'cuda', got {backend!r}")
        if on_cuda:
            if backend != "cuda":
                raise ValueError(f"this mixing set is on {self.device}; backend {backend!r} needs a host set")
            self.check_device()
            import cupy

            from .executors.crops import gather_crops

            images = self.cupy_images()
            with cupy.cuda.Device(images.device.id):
                return gather_crops("cuda", images, index, top, left, plan.get("flip"), h, w, pad)
        host = self.images if isinstance(self.images, np.ndarray) else self.images.numpy()
        out = _blank(host[idx], outside)
        if backend == "cuda":
            import cupy

            return cupy.asarray(out)
        return out

    def sample(self, n: int, rng: np.random.Generator, out_h: int | None = None,
               out_w: int | None = None):
        """``gather(sample_plan(...))`` in one call."""
        return self.gather(self.sample_plan(n, rng, out_h, out_w))
