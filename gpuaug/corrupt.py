"""Regenerated common corruptions of any validation set: ``gpuaug corrupt --data VAL --out DIR``
and :func:`corrupt_dataset`.

The corruptions are Hendrycks & Dietterich's (2019) 15 ImageNet-C / CIFAR-10-C corruptions
(optionally also their 4 held-out ones) at severities 1-5, computed by the maintained
``imagecorruptions-imaug`` package (Apache-2.0; the optional extra ``gpuaug[corrupt]``), a
fork of bethgelab's ``imagecorruptions`` that runs on numpy 2, scikit-image >= 0.19, SciPy's
current namespaces and setuptools without ``pkg_resources`` (the original 1.1.2 fails on each).

These are *regenerated* corruptions: they make models trained on the same data comparable
with each other, but they are not the released ImageNet-C / CIFAR-10-C files, so numbers
on them are not the papers' benchmark numbers (and no AlexNet-normalised mCE is reported).

Output, in the layouts ``gpuaug eval --corruptions`` reads:

* an ImageFolder split (or the ``val/`` of a data root, or the built-in shapes set):
  ``DIR/<corruption>/<severity>/<class>/<image>.png`` (ImageNet-C's layout, lossless PNG);
* a CIFAR-10/100 python folder (its test split): ``DIR/<corruption>.npy`` (severity 1 first)
  and ``DIR/labels.npy`` (CIFAR-10-C's layout).

Each (data, corruption, severity, version) unit is computed once, in worker processes, into
the gpuaug cache (:mod:`gpuaug.data.cachedir`, subfolder ``corruptions/``) and then linked (or
copied) into ``DIR``. Randomness is seeded per (seed, corruption, severity, image), so the
output does not depend on the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

# Bump when the output of a unit changes for the same inputs (seeding, file format, layout).
VERSION = 1
PACKAGE = "imagecorruptions-imaug"
MANIFEST = "gpuaug-corruptions.json"
NOTICE = ("regenerated corruptions (Hendrycks & Dietterich's definitions, computed by {pkg} {ver}): "
          "comparable across models evaluated on the same data, NOT the released ImageNet-C / CIFAR-10-C "
          "benchmark numbers")
SEVERITIES = (1, 2, 3, 4, 5)
CHUNK = 64  # images per worker task
MIN_SIDE = 32  # imagecorruptions' own limit


class CorruptionsUnavailable(RuntimeError):
    """The optional corruption package is missing or is the unmaintained original."""


def library_version() -> str:
    """The installed ``imagecorruptions-imaug`` version, or a clear error when it is missing."""
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        pass
    try:
        old = metadata.version("imagecorruptions")
    except metadata.PackageNotFoundError:
        old = None
    hint = "pip install 'gpuaug[corrupt]' (or: pip install imagecorruptions-imaug)"
    if old is not None:
        raise CorruptionsUnavailable(
            f"the original imagecorruptions {old} is installed; it does not run on current numpy / scikit-image "
            f"/ setuptools (pkg_resources, np.float_, gaussian(multichannel=)). Replace it: pip uninstall "
            f"imagecorruptions && {hint}")
    raise CorruptionsUnavailable(f"gpuaug corrupt needs the optional package {PACKAGE}: {hint}")


def corruption_names(which: str = "common") -> list[str]:
    """``common``: the 15 benchmark corruptions; ``all``: plus the 4 held-out ones; or a
    comma list of names."""
    from .train.evaluate import CORRUPTIONS, EXTRA_CORRUPTIONS

    if which == "common":
        return list(CORRUPTIONS)
    if which == "all":
        return list(CORRUPTIONS + EXTRA_CORRUPTIONS)
    names = [n.strip() for n in which.split(",") if n.strip()]
    known = CORRUPTIONS + EXTRA_CORRUPTIONS
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"--corruptions: unknown corruption(s) {unknown or which!r}; use common, all or a comma "
                         f"list of {', '.join(known)}")
    return names


# ----------------------------------------------------------------------------- the source data
def load_source(data: str | None, log=print):
    """(kind, dataset) of ``--data``: "arrays" for CIFAR (its test split), "folder" for an
    ImageFolder split, a data root's val/ split, or the built-in shapes set (None)."""
    from .train.data import image_folder, load_split, resolve_data

    if data is not None:
        root = Path(data).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"--data {data}: no such folder")
        is_root = (root / "train").is_dir() or any((root / s).is_dir() for s in ("cifar-10-batches-py",
                                                                                   "cifar-100-python"))
        is_cifar = (root / "data_batch_1").exists() or ((root / "meta").exists() and (root / "train").is_file())
        if not (is_root or is_cifar):
            return "folder", image_folder(root)
    spec = resolve_data(data, log=log)
    ds = load_split(spec, train=False)
    if ds is None:
        raise FileNotFoundError(f"--data {data}: no validation split (val/) to corrupt")
    return ("arrays" if ds.arrays is not None else "folder"), ds


def _as_arrays(ds, image_size: int | None):
    """A folder split loaded into one uint8 array (every image the same size)."""
    from .train.data import Dataset

    images = [_load_rgb(p, image_size) for p in ds.paths]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"--layout cifar-c: the images of {ds.root} have {len(shapes)} different sizes "
                         f"({sorted(shapes)[:3]} ...); pass --image-size to crop them to one")
    return Dataset("arrays", ds.root, ds.classes, ds.labels, arrays=np.stack(images))


def data_key(kind: str, ds) -> str:
    """A fingerprint of the source images: their bytes for arrays; path, size and mtime of
    each file for folders (re-hashing ImageNet's files on every call would cost minutes)."""
    h = hashlib.sha256()
    h.update(kind.encode())
    h.update(np.asarray(ds.labels, np.int64).tobytes())
    if ds.arrays is not None:
        h.update(str(ds.arrays.shape).encode())
        h.update(np.ascontiguousarray(ds.arrays).tobytes())
    else:
        for p in ds.paths:
            st = os.stat(p)
            h.update(f"{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _relative_names(ds) -> list[str]:
    """<class>/<path under the class folder>.png for each file, checked for collisions."""
    root = Path(ds.root)
    names = []
    for p in ds.paths:
        rel = Path(os.path.relpath(p, root))
        names.append(str(rel.with_suffix(".png")))
    if len(set(names)) != len(names):
        seen, dup = set(), []
        for n in names:
            (dup.append(n) if n in seen else seen.add(n))
        raise ValueError(f"--data {ds.root}: files that differ only in their extension would both be written "
                         f"as {dup[:3]}; rename them")
    return names


# ----------------------------------------------------------------------------- workers
def _image_seed(seed: int, corruption: str, severity: int, index: int) -> int:
    name = int.from_bytes(hashlib.sha256(corruption.encode()).digest()[:4], "little")
    return int(np.random.SeedSequence([seed, name, severity, index]).generate_state(1)[0])


def _corrupt_one(image: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
    from imagecorruptions import corrupt

    # Most corruptions draw from numpy's global RNG; impulse_noise and glass_blur take a seed.
    np.random.seed(seed)
    kwargs = {"seed": seed} if corruption in ("impulse_noise", "glass_blur") else {}
    out = corrupt(np.ascontiguousarray(image), severity=severity, corruption_name=corruption, **kwargs)
    if out.shape != image.shape:  # a few corruptions return a float map of another size on odd inputs
        raise RuntimeError(f"{corruption} severity {severity} returned shape {out.shape} for an image of "
                           f"shape {image.shape}")
    return out


def _load_rgb(path: str, image_size: int | None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
    if image_size:
        from .train.data import prepare

        return prepare(img, image_size, train=False, crop="rrc", rng=None)
    return np.asarray(img)


def _check_side(image: np.ndarray, where: str) -> None:
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"{where}: {image.shape[1]}x{image.shape[0]} is smaller than the corruptions' "
                         f"{MIN_SIDE}x{MIN_SIDE} minimum; pass --image-size (>= {MIN_SIDE}) to resize first")


def _folder_task(task) -> int:
    """Corrupt files ``paths`` into ``out/<name>`` (PNG); returns the count."""
    from PIL import Image

    paths, names, start, corruption, severity, seed, out, image_size = task
    for k, (path, name) in enumerate(zip(paths, names)):
        image = _load_rgb(path, image_size)
        _check_side(image, path)
        result = _corrupt_one(image, corruption, severity, _image_seed(seed, corruption, severity, start + k))
        target = Path(out) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result).save(target)
    return len(paths)


def _array_task(task) -> tuple[int, np.ndarray]:
    images, start, corruption, severity, seed = task
    out = np.empty_like(images)
    for k, image in enumerate(images):
        out[k] = _corrupt_one(image, corruption, severity, _image_seed(seed, corruption, severity, start + k))
    return start, out


def _worker_init() -> None:
    # Each worker runs one image at a time; BLAS / OpenCV threads would only compete.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # noqa: BLE001 - only a speed hint
        pass


class _InProcess:
    """The part of ProcessPoolExecutor used here, run in the calling process."""

    def map(self, fn, tasks):
        return map(fn, tasks)

    def shutdown(self, wait=True, cancel_futures=False):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ----------------------------------------------------------------------------- the units
def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished unit into place (another process finishing first is fine)."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (else copy) every file of ``src`` into ``dst``."""
    for path in sorted(src.rglob("*")):
        if path.is_dir():
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)


def corrupt_dataset(data: str | None, out: str | os.PathLike, corruptions: str | list[str] = "common",
                    severities=SEVERITIES, workers: int | None = None, seed: int = 0,
                    image_size: int | None = None, layout: str = "auto", cache: str | os.PathLike | None = None,
                    log=print, progress: bool = True) -> dict:
    """Write the corrupted copies of the validation set ``data`` (see the module notes) to
    ``out``; returns the manifest (also written to ``out/gpuaug-corruptions.json``).

    ``data``: an ImageFolder split, a data root with ``val/``, a CIFAR-10/100 python folder,
    or None for the built-in shapes set. ``workers``: 1 runs in this process; more start
    "spawn" worker processes, which re-import a calling script's main module, so a script
    that asks for several needs the usual ``if __name__ == "__main__":`` guard. ``image_size``: resize the short side to
    ``image_size * 256 / 224`` and centre-crop ``image_size`` first (ImageNet-C's
    preprocessing at 224; folders only). ``layout``: "auto" (CIFAR-C for arrays, ImageNet-C for
    folders), or "cifar-c" to write a folder's images as arrays too (they must share one size;
    labels are the indices of the sorted class folders, as training numbers them): the
    evaluation then reads no files. ``cache``: the cache root (default: gpuaug's).
    """
    from ._progress import Progress
    from .data.cachedir import cache_root

    version = library_version()
    names = corruption_names(corruptions) if isinstance(corruptions, str) else list(corruptions)
    severities = [int(s) for s in severities]
    if not severities or any(s not in SEVERITIES for s in severities):
        raise ValueError(f"severities must be among 1..5, got {severities}")
    if image_size is not None and image_size < MIN_SIDE:
        raise ValueError(f"--image-size must be >= {MIN_SIDE} (the corruptions' minimum side), got {image_size}")
    if layout not in ("auto", "imagenet-c", "cifar-c"):
        raise ValueError(f"--layout must be auto, imagenet-c or cifar-c, got {layout!r}")
    if layout == "cifar-c" and sorted(severities) != list(SEVERITIES):
        raise ValueError(f"--layout cifar-c holds all five severities in each <corruption>.npy; got {severities} "
                         "(use the imagenet-c layout for a subset)")
    kind, ds = load_source(data, log=log)
    requested_size = image_size
    if kind == "arrays" and sorted(severities) != list(SEVERITIES):
        raise ValueError(f"--severities {','.join(map(str, severities))}: CIFAR data is written in the CIFAR-C layout, "
                         "which holds all five severities")
    if kind == "arrays" and layout == "imagenet-c":
        raise ValueError("--layout imagenet-c: CIFAR arrays are written in the CIFAR-C layout only")
    if layout == "cifar-c" and kind == "folder":
        ds = _as_arrays(ds, image_size)
        kind = "arrays"
        image_size = None  # applied while loading
    if kind == "arrays" and image_size is not None:
        raise ValueError("--image-size applies to image folders; CIFAR arrays are corrupted at their 32x32")
    if kind == "arrays":
        _check_side(ds.arrays[0], f"--data {data}")
    workers = max(1, workers if workers is not None else min(8, os.cpu_count() or 1))
    key = data_key(kind, ds)
    base = Path(cache) if cache is not None else cache_root()
    store = base / "corruptions" / f"v{VERSION}-{PACKAGE}-{version}-{kind}-{key}-seed{seed}-size{image_size or 0}"
    store.mkdir(parents=True, exist_ok=True)

    def unit(c, s):
        return store / c / (f"{s}.npy" if kind == "arrays" else str(s))

    todo = [(c, s) for c in names for s in severities if not unit(c, s).exists()]
    n = len(ds)
    log(f"corrupting {n} images x {len(names)} corruptions x {len(severities)} severities "
        f"({len(todo)} of {len(names) * len(severities)} units to compute, {workers} worker(s))")
    log("note: " + NOTICE.format(pkg=PACKAGE, ver=version))
    if todo:
        rel = _relative_names(ds) if kind == "folder" else None
        bar = Progress(len(todo) * n, "corrupting") if progress else None
        if workers == 1:  # in this process (numpy's global RNG, which the corruptions seed, is restored after)
            pool, state = _InProcess(), np.random.get_state()
        else:  # "spawn": no state (CUDA, threads) inherited from the caller
            pool, state = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                              initializer=_worker_init), None
        with pool:
            try:
                for c, s in todo:
                    (store / c).mkdir(parents=True, exist_ok=True)
                    if kind == "arrays":
                        tasks = [(ds.arrays[i:i + CHUNK], i, c, s, seed) for i in range(0, n, CHUNK)]
                        result = np.empty_like(ds.arrays)
                        for start, part in pool.map(_array_task, tasks):
                            result[start:start + len(part)] = part
                            bar and bar.update(len(part))
                        fd, tmp = tempfile.mkstemp(prefix=f"{s}.", suffix=".npy.tmp", dir=store / c)
                        with os.fdopen(fd, "wb") as f:
                            np.save(f, result)
                        _publish(Path(tmp), unit(c, s))
                    else:
                        tmp = Path(tempfile.mkdtemp(prefix=f"{s}.tmp-", dir=store / c))
                        tasks = [(ds.paths[i:i + CHUNK], rel[i:i + CHUNK], i, c, s, seed, str(tmp), image_size)
                                 for i in range(0, n, CHUNK)]
                        for count in pool.map(_folder_task, tasks):
                            bar and bar.update(count)
                        _publish(tmp, unit(c, s))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                bar and bar.close()
                if state is not None:
                    np.random.set_state(state)
    manifest = {"notice": NOTICE.format(pkg=PACKAGE, ver=version), "package": PACKAGE, "package_version": version,
                "gpuaug_corruptions_version": VERSION, "source": str(ds.root), "kind": kind, "data_key": key,
                "images": n, "corruptions": names, "severities": severities, "seed": seed,
                "image_size": requested_size, "layout": "cifar-c" if kind == "arrays" else "imagenet-c"}
    _assemble(Path(out), kind, ds, names, severities, unit, manifest)
    log(f"wrote {out} ({manifest['layout']} layout; evaluate with: gpuaug eval --checkpoint RUN --corruptions {out})")
    return manifest


def _assemble(out: Path, kind: str, ds, names, severities, unit, manifest: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if kind == "arrays":
        for c in names:
            parts = [np.load(unit(c, s)) for s in severities]
            np.save(out / f"{c}.npy", np.concatenate(parts))
        np.save(out / "labels.npy", np.tile(np.asarray(ds.labels, np.int64), len(severities)))
    else:
        for c in names:
            for s in severities:
                dst = out / c / str(s)
                if dst.exists():
                    shutil.rmtree(dst)
                _link_tree(unit(c, s), dst)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "README.txt").write_text(manifest["notice"] + ".\n")


# ----------------------------------------------------------------------------- command line
def add_subparser(sub) -> None:
    p = sub.add_parser("corrupt", help="write regenerated ImageNet-C / CIFAR-C style corruptions of a "
                                       "validation set (not the released benchmarks)",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", help="an ImageFolder split (<class>/<image>), a data root with val/, or a CIFAR-10/100 "
                                  "python folder (its test split); default: the built-in shapes set")
    p.add_argument("--out", required=True, help="folder to write the corrupted set into")
    p.add_argument("--corruptions", default="common", help="common (the 15 benchmark ones, default), all (plus "
                                                           "the 4 held-out ones) or a comma list of names")
    p.add_argument("--severities", default="1,2,3,4,5", help="comma list among 1..5 (default all five)")
    p.add_argument("--workers", type=int, help="worker processes (default: the CPU count, at most 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the corruptions (default 0)")
    p.add_argument("--image-size", type=int, help="resize the short side to N*256/224 and centre-crop N first "
                                                  "(ImageNet-C: 224); default: images as they are")
    p.add_argument("--layout", choices=("auto", "imagenet-c", "cifar-c"), default="auto",
                   help="auto: CIFAR-C (<c>.npy + labels.npy) for CIFAR data, ImageNet-C (<c>/<severity>/<class>/) "
                        "for image folders; cifar-c: arrays for a folder too (one image size; evaluation reads "
                        "no files)")
    p.set_defaults(run=run)


def run(args) -> int:
    try:
        severities = [int(s) for s in args.severities.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--severities {args.severities!r}: expected a comma list of integers 1..5") from None
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    try:
        corrupt_dataset(args.data, args.out, args.corruptions, severities, workers=args.workers, seed=args.seed,
                        image_size=args.image_size, layout=args.layout)
    except CorruptionsUnavailable as err:
        raise ValueError(str(err)) from None
    return 0
