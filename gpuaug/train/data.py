"""Where the trainer gets its batches: one factory, :func:`make_loader`.

Two implementations yield the same structure, ``(images, labels)`` or
``((clean, aug1, aug2), labels)`` with images float NCHW (normalised with the run's
mean/std, :mod:`gpuaug.normalization`; channels_last memory) on the training device and labels int64:

* ``--loader dali``: :class:`gpuaug.loader.ImageFolderLoader` (DALI decode + gpuaug kernels
  on the GPU), used by ``--loader auto`` for ImageFolder data when that module is present;
* ``--loader torch``: the CPU path in this file -- Pillow decode and crop in DataLoader
  worker processes, then the gpuaug method applied batch-wise on the uint8 NHWC batch with
  the CPU executor, then normalisation. It is slower than the GPU path (augmentation costs
  CPU time per image), but complete and exact: it is what runs on machines without a GPU,
  for CIFAR's pickle layout, and in the tests.

Every random choice of the torch path (order, crops, flips, the method's plan) comes from
a seed derived from (seed, epoch, batch index, rank), so a run is reproducible whatever the
number of workers, and a resumed run continues the same stream from a given batch.

Data sets (``--data``): an ImageFolder root with ``train/`` and ``val/`` class folders
(ImageNet layout), a CIFAR-10 (``cifar-10-batches-py``) or CIFAR-100 (``cifar-100-python``)
folder as downloaded from the authors' site (read from its pickles by :mod:`gpuaug.data.cifarfile`'s
restricted unpickler, never downloaded), or
nothing: the built-in shapes set (:mod:`gpuaug.train.synthetic`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..normalization import IMAGENET_MEAN as MEAN, IMAGENET_STD as STD, mean_std
from ..data.imagesize import TOO_LARGE, max_pixels
from ..loader.loadfail import MISSING, UNDECODABLE, BadSampleWarning  # shared with the DALI loader
from .signals import blocked, stop_at_exit, worker_init


class ImageTooLarge(ValueError):
    pass


class LeftOut(OSError):
    """A file the loader was told to skip (:meth:`TorchLoader.leave_out`); ``reason`` says why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"left out: {reason} (found so when the run was resumed, or earlier)")
        self.path, self.reason = path, reason


def _bad_file_errors() -> tuple:
    from PIL import Image

    # OSError covers UnidentifiedImageError, truncated data and a deleted file
    return (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


BAD_FILE_ERRORS = _bad_file_errors()


def load_failure(err: BaseException) -> str:
    """The skip reason for an exception raised while loading a file."""
    from PIL import Image

    if isinstance(err, LeftOut):
        return err.reason
    if isinstance(err, FileNotFoundError):
        return MISSING
    if isinstance(err, (ImageTooLarge, Image.DecompressionBombError)):
        return TOO_LARGE
    return UNDECODABLE


# ----------------------------------------------------------------------------- data sets
@dataclass
class Dataset:
    """A split: either file paths (``paths``) or in-memory uint8 HWC images (``arrays``)."""

    kind: str                    # "folder" | "cifar10" | "cifar100"
    root: str
    classes: list
    labels: np.ndarray
    paths: list | None = None
    arrays: np.ndarray | None = None
    skipped: dict = field(default_factory=dict)  # reason -> skipped files (folders only)
    left_out: dict = field(default_factory=dict)  # path -> reason: skipped without reading (folders only)

    def __len__(self):
        return len(self.labels)

    def load(self, i: int):
        """HWC uint8 image ``i`` (a PIL image for files, a numpy array for CIFAR)."""
        if self.arrays is not None:
            return self.arrays[i]
        if self.paths[i] in self.left_out:
            raise LeftOut(self.paths[i], self.left_out[self.paths[i]])
        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below decides
            with Image.open(self.paths[i]) as img:
                limit = max_pixels()
                if limit and img.width * img.height > limit:
                    raise ImageTooLarge(f"{img.width}x{img.height} is over {limit} pixels")
                return img.convert("RGB")


def image_folder(folder: Path, classes: list[str] | None = None, validate: str | None = None) -> Dataset:
    """ImageFolder: <folder>/<class>/<image>, classes sorted by name, with the DALI loader's
    skip policy (:func:`gpuaug.data.datafiles.scan_image_folder`: empty, non-image and truncated
    files are skipped and counted in ``skipped``); ``classes`` pins the class list (and
    indices) to another split's, e.g. validation to training; ``validate`` (decode | header |
    none) is the scan's check, None for the scan's default."""
    from ..data.datafiles import scan_image_folder

    try:
        samples = scan_image_folder(folder, **({} if validate is None else {"validate": validate}))
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    classes = classes or samples.classes
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in samples.classes if c not in index]
    if unknown:
        raise SystemExit(f"error: class folder(s) {unknown} of {folder} are not among the training classes")
    labels = [index[samples.classes[label]] for label in samples.labels]
    return Dataset("folder", str(folder), list(classes), np.asarray(labels, np.int64), paths=samples.files,
                   skipped=samples.skipped)


def cifar(folder: Path, train: bool) -> Dataset:
    """CIFAR-10/100 from the python-pickle layout (``data_batch_1..5``/``test_batch`` or
    ``train``/``test`` + ``meta``), read by :mod:`gpuaug.data.cifarfile` (no code from the data runs)."""
    from ..data.cifarfile import CifarFileError, load_split as load_cifar

    try:
        split = load_cifar(folder, train)
    except (CifarFileError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    return Dataset(split.kind, split.root, split.classes, split.labels, arrays=split.images)


def resolve_data(data: str | None, out_dir: str | None = None, seed: int = 0, log=print) -> dict:
    """What ``--data`` names: {"kind", "train_root"/"val_root" or "root"}."""
    if data is None:
        from . import synthetic

        root = synthetic.build(train_per_class=synthetic.TRAIN_PER_CLASS, val_per_class=synthetic.VAL_PER_CLASS,
                               size=synthetic.SIZE, log=log)
        return {"kind": "folder", "train": root / "train", "val": root / "val", "synthetic": True}
    root = Path(data).expanduser()
    for sub in ("cifar-10-batches-py", "cifar-100-python"):
        if (root / sub).is_dir():
            root = root / sub
    if (root / "data_batch_1").exists() or ((root / "meta").exists() and (root / "train").is_file()):
        return {"kind": "cifar", "root": root}
    if (root / "train").is_dir():
        val = next((root / v for v in ("val", "validation", "test") if (root / v).is_dir()), None)
        return {"kind": "folder", "train": root / "train", "val": val}
    if root.is_dir():
        raise SystemExit(f"error: {root} has neither train/ (ImageFolder) nor CIFAR pickles")
    raise SystemExit(f"error: --data {data}: no such folder")


def load_split(spec: dict, train: bool, classes: list | None = None, validate: str | None = None) -> Dataset | None:
    if spec["kind"] == "cifar":
        return cifar(spec["root"], train)
    folder = spec["train"] if train else spec["val"]
    return None if folder is None else image_folder(folder, classes, validate)


# ----------------------------------------------------------------------------- crops
def random_resized_crop_box(w, h, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """(left, top, width, height): area fraction ~ U(scale), log aspect ~ U(log ratio), up to
    10 tries, else the centre crop of the closest allowed aspect (the usual Inception crop)."""
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1)), cw, ch
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def prepare(img, size: int, train: bool, crop: str, rng) -> np.ndarray:
    """One image -> HWC uint8 ``size x size``.

    train & "rrc": random resized crop + horizontal flip (ImageNet); train & "pad": random
    ``size`` crop of the image zero-padded by size/8 + flip (CIFAR's RandomCrop(32, 4)).
    Evaluation: "rrc" resizes the short side to size * 256 / 224 and centre-crops; "pad"
    resizes the short side to ``size`` and centre-crops (identity for CIFAR)."""
    from PIL import Image

    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    if train and crop == "rrc":
        left, top, cw, ch = random_resized_crop_box(img.width, img.height, rng)
        img = img.resize((size, size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
        arr = np.asarray(img)
    else:
        short = size if crop == "pad" else int(size * 256 / 224)
        if min(img.size) != short:
            w, h = img.size
            nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
            img = img.resize((nw, nh), Image.BILINEAR)
        left, top = int(round((img.width - size) / 2)), int(round((img.height - size) / 2))
        arr = np.asarray(img.crop((left, top, left + size, top + size)))
        if train:  # "pad"
            p = size // 8
            padded = np.zeros((size + 2 * p, size + 2 * p, 3), np.uint8)
            padded[p:p + size, p:p + size] = arr
            y, x = (int(v) for v in rng.integers(0, 2 * p + 1, size=2))
            arr = padded[y:y + size, x:x + size]
    if train and rng.random() < 0.5:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)


def normalise(x: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """float NHWC in [0, 1] -> normalised NCHW view with channels_last memory."""
    mean = torch.tensor(mean, dtype=x.dtype, device=x.device)
    std = torch.tensor(std, dtype=x.dtype, device=x.device)
    return ((x - mean) / std).permute(0, 3, 1, 2)


def denormalise(x: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """Normalised NCHW -> float NHWC in [0, 1] (for previews)."""
    mean = torch.tensor(mean, device=x.device)
    std = torch.tensor(std, device=x.device)
    return (x.float().permute(0, 2, 3, 1) * std + mean).clamp(0, 1)


# ----------------------------------------------------------------------------- torch path
def batch_seed(seed: int, epoch: int, batch: int, rank: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, batch, rank, 0x5EED]))


class _Batches(torch.utils.data.Dataset):
    """Batch ``b`` of the current epoch, fully prepared (runs in DataLoader workers)."""

    def __init__(self, loader: "TorchLoader", epoch: int, start: int):
        self.l, self.epoch, self.start = loader, epoch, start
        self.index = loader.epoch_indices(epoch)

    def __len__(self):
        return len(self.l) - self.start

    def __getitem__(self, i):
        l, b = self.l, self.start + i
        rng = batch_seed(l.seed, self.epoch, b, l.rank)
        idx = self.index[b * l.batch_size:(b + 1) * l.batch_size]
        pics, keep, bad = [], [], []
        for j in idx:
            try:
                pics.append(prepare(l.dataset.load(int(j)), l.image_size, l.train, l.crop, rng))
                keep.append(j)
            except Exception as err:  # noqa: BLE001 -- Pillow raises many kinds for a bad file
                if l.dataset.paths is None or not isinstance(err, BAD_FILE_ERRORS):
                    raise
                bad.append((l.dataset.paths[int(j)], load_failure(err), f"{type(err).__name__}: {err}"))
        labels = torch.from_numpy(l.dataset.labels[np.asarray(keep, dtype=np.int64)])
        if not pics:  # every file failed: an empty batch, which the loader counts and the trainer skips
            views = [torch.zeros((0, l.image_size, l.image_size, 3))] * (3 if l.jsd else 1)
            views = [normalise(v, l.mean, l.std) for v in views]
            return (tuple(views) if l.jsd else views[0]), labels, bad
        x = torch.from_numpy(np.stack(pics))
        if l.augment is None:
            views = [x.float() / 255]
        else:
            mixing = l.mixing if getattr(l.augment, "needs_mixing", False) else None
            if l.jsd:
                views = list(l.augment.views(x, mixing=mixing, seed=rng, executor="cpu"))
            else:
                views = [l.augment(x, mixing=mixing, seed=rng, executor="cpu")]
        if l.jsd and l.augment is None:
            views = views * 3
        views = [normalise(v, l.mean, l.std) for v in views]
        return (tuple(views) if l.jsd else views[0]), labels, bad


class TorchLoader:
    """The CPU loader (see the module notes): same iteration contract as
    ``gpuaug.loader.ImageFolderLoader``, plus ``start_at(batch)`` for mid-epoch resume.
    Files that fail to load are skipped and counted (``bad_files``); a batch whose files
    all fail is yielded empty (0 images, so batch indices stay put) and counted in
    ``empty_batches``: the trainer skips that step."""

    def __init__(self, dataset: Dataset, batch_size: int, augment=None, mixing=None, jsd: bool = False,
                 train: bool = True, image_size: int = 224, device="cpu", num_workers: int = 2,
                 seed: int = 0, shard=(0, 1), drop_last: bool | None = None, crop: str = "rrc",
                 mean=MEAN, std=STD):
        self.dataset, self.batch_size, self.augment, self.mixing = dataset, int(batch_size), augment, mixing
        self.jsd, self.train, self.image_size = bool(jsd), bool(train), int(image_size)
        self.device, self.num_workers, self.seed = torch.device(device), int(num_workers), int(seed)
        self.rank, self.world = shard
        self.drop_last = train if drop_last is None else drop_last
        self.crop = crop
        self.mean, self.std = tuple(mean), tuple(std)
        self.classes = dataset.classes
        self.skipped = dataset.skipped
        self.epoch, self._start = 0, 0
        self.bad_files: dict = {}  # reason -> files skipped at load time (after the scan)
        self.empty_batches = 0  # batches yielded empty because every file of them failed to load
        self._skip_epochs: dict = {}  # path -> the epoch it was first skipped in (-1: left out from the start)

    @property
    def load_skip_state(self) -> dict:
        """Path -> [reason, epoch] of the files skipped at load time (for checkpoints)."""
        return {p: [r, self._skip_epochs.get(p, -1)] for r, ps in self.bad_files.items() for p in ps}

    def leave_out(self, skips: dict) -> None:
        """Skip these files (path -> (reason, epoch)) without reading them, counted as
        skipped at load time when met (a resumed run's)."""
        for path, (reason, epoch) in skips.items():
            self.dataset.left_out[path] = reason
            self._skip_epochs.setdefault(path, int(epoch))

    def _skip(self, path: str, reason: str, detail: str) -> None:
        files = self.bad_files.setdefault(reason, [])
        if path not in files:
            files.append(path)
            self._skip_epochs.setdefault(path, self.epoch)
            hint = {MISSING: "deleted or moved after the scan; restore it or restart to rescan",
                    TOO_LARGE: f"over Pillow's limit of {max_pixels()} pixels"}.get(
                reason, "does not decode; rescan with --validate decode to skip it up front")
            warnings.warn(f"skipped {path}: {reason} ({detail}); {hint}", BadSampleWarning, stacklevel=3)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """This rank's sample order: a permutation shared by all ranks (training), dealt
        round-robin; evaluation keeps the file order and ranks take disjoint strides."""
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch, 0xDA7A]).permutation(n) if self.train else np.arange(n)
        if self.train and self.world > 1:
            order = order[: n - n % self.world]  # equal shards
        return order[self.rank::self.world]

    def __len__(self):
        n = len(self.epoch_indices(self.epoch))
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._start = int(epoch), 0

    def start_at(self, batch: int) -> None:
        """Begin the current epoch's next iteration at batch ``batch`` (resume)."""
        self._start = int(batch)

    def __iter__(self):
        pin = self.device.type == "cuda"
        data = _Batches(self, self.epoch, self._start)
        self._start = 0
        dl = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=self.num_workers,
                                         pin_memory=pin, persistent_workers=False,
                                         prefetch_factor=2 if self.num_workers else None,
                                         worker_init_fn=worker_init if self.num_workers else None)
        with blocked():  # workers start here; they ignore SIGTERM/SIGINT (see .signals)
            batches = iter(dl)
        if self.num_workers:
            stop_at_exit(batches)  # so an uncaught error cannot leave the process waiting on them
        for images, labels, bad in batches:
            for path, reason, detail in bad:
                self._skip(path, reason, detail)
            if labels.shape[0] == 0:
                self.empty_batches += 1
                warnings.warn(f"every file of a batch failed to load ({', '.join(p for p, _, _ in bad)}): the "
                              f"batch is empty ({self.empty_batches} so far)", BadSampleWarning, stacklevel=2)
            if isinstance(images, (tuple, list)):
                images = tuple(v.to(self.device, non_blocking=True) for v in images)
            else:
                images = images.to(self.device, non_blocking=True)
            yield images, labels.to(self.device, non_blocking=True)


# ----------------------------------------------------------------------------- the factory
def dali_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("gpuaug.loader") is not None


def make_loader(args, train: bool, samples=None):
    """The loader for ``args`` (the trainer's resolved settings): ``args.data_spec`` (from
    :func:`resolve_data`), ``args.loader`` ("auto" | "dali" | "torch"), ``args.augment``
    (a method or None), ``args.mixing``, ``args.jsd``, ``args.batch_size``,
    ``args.image_size``, ``args.device``, ``args.workers``, ``args.seed``, ``args.shard``
    ((rank, world)), ``args.crop``, ``args.amp_dtype`` (the DALI loader's output dtype),
    ``args.normalization`` (a :mod:`gpuaug.normalization` name; default ImageNet's);
    ``args.classes`` pins the validation class list. ``samples`` (a
    :class:`gpuaug.data.datafiles.Samples`: files, labels, classes, skipped) replaces the scan of
    an ImageFolder split (a resumed run's saved list, :mod:`gpuaug.train.samplelist`).
    Returns None when there is no validation split."""
    spec = args.data_spec
    augment = args.augment if train else None
    jsd = bool(args.jsd) and train
    mean, std = mean_std(getattr(args, "normalization", None))
    use_dali = args.loader == "dali" or (args.loader == "auto" and spec["kind"] == "folder" and dali_available()
                                        and str(args.device).startswith("cuda"))
    if use_dali:
        if spec["kind"] != "folder":
            raise SystemExit("error: --loader dali reads ImageFolder layouts; use --loader torch for CIFAR")
        if not dali_available():
            raise SystemExit("error: --loader dali needs gpuaug.loader, which this installation lacks")
        folder = spec["train"] if train else spec["val"]
        if folder is None:
            return None
        from ..loader import DaliLoader, ImageFolderLoader

        mixing = args.mixing if augment is not None and getattr(augment, "needs_mixing", False) else None
        # The loader hands out the dtype the model computes in (AMP's, else float32).
        dtype = {torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(getattr(args, "amp_dtype", None), "float32")
        kind, source, more = ((ImageFolderLoader, str(folder), {}) if samples is None
                              else (DaliLoader, samples, {"root": str(folder)}))
        return kind(source, batch_size=args.batch_size, augment=augment, mixing=mixing,
                    jsd=jsd, train=train, image_size=args.image_size, device=str(args.device),
                    num_threads=args.workers, seed=args.seed, shard=tuple(args.shard),
                    drop_last=train, dtype=dtype, mean=mean, std=std, cifar=args.crop == "pad",
                    memory_format="channels_last", **more,
                    **({} if getattr(args, "validate", None) is None else {"validate": args.validate}))
    if samples is not None:
        folder = spec["train"] if train else spec["val"]
        dataset = Dataset("folder", str(folder), list(samples.classes), np.asarray(samples.labels, np.int64),
                          paths=list(samples.files), skipped=dict(samples.skipped))
    else:
        dataset = load_split(spec, train, None if train else getattr(args, "classes", None),
                             getattr(args, "validate", None))
    if dataset is None:
        return None
    return TorchLoader(dataset, args.batch_size, augment=augment, mixing=args.mixing, jsd=jsd, train=train,
                       image_size=args.image_size, device=args.device, num_workers=args.workers,
                       seed=args.seed, shard=tuple(args.shard), drop_last=train, crop=args.crop,
                       mean=mean, std=std)
