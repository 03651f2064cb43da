"""Find the samples of a data set and screen out files DALI cannot decode.

Three sources: an ImageFolder tree (class sub-folders, torchvision's class order: sorted
folder names), a file list with labels, and webdataset tar shards. Each scan returns a
:class:`Samples` whose ``skipped`` maps a reason to the paths skipped for it.

Skip policy (``validate=``):

* ``"header"`` (default, fast: two small reads per file): zero-byte files ("empty"); a
  file whose extension or magic number is not an image DALI decodes ("not an image":
  torchvision's extensions .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp, checked by
  magic number); GIF ("unsupported format": DALI has no GIF decoder); a JPEG without its
  end-of-image marker in the last 1 KiB or a PNG without IEND ("truncated").
* ``"decode"``: the header checks, then a full Pillow decode ("undecodable") -- catches
  corruption inside otherwise well-formed files, at the cost of decoding everything once.
* ``"none"``: no checks; a bad file then stops the DALI pipeline with an error.

Grayscale, CMYK and 16-bit JPEG/PNG, palette and RGBA PNG, BMP, TIFF and WebP all decode
to RGB in DALI (alpha dropped; 16-bit scaled to 8 bits, where Pillow's convert clips).
"""

from __future__ import annotations

import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .imagesize import too_large

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SKIP_REASONS = ("empty", "not an image", "unsupported format", "truncated", "undecodable", "too large", "no label")
VALIDATE = ("header", "decode", "none")


@dataclass
class Samples:
    """Encoded samples to read: ``files`` with int ``labels`` (or tar ``shards``)."""

    files: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    empty_classes: list = field(default_factory=list)
    shards: list = field(default_factory=list)  # webdataset: [(tar path, [sample, ...])]

    def __len__(self) -> int:
        return len(self.labels)

    def skip(self, reason: str, path) -> None:
        self.skipped.setdefault(reason, []).append(str(path))

    def skipped_summary(self) -> str:
        return ", ".join(f"{r}: {len(self.skipped[r])}" for r in SKIP_REASONS if r in self.skipped)


def _kind(head: bytes) -> str | None:
    """Image format from the first bytes, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if len(head) > 2 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "pnm"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def check_bytes(head: bytes, tail: bytes, size: int) -> str | None:
    """The header-level skip reason for a file (None: looks decodable)."""
    if size == 0:
        return "empty"
    kind = _kind(head)
    if kind is None:
        return "not an image"
    if kind == "gif":
        return "unsupported format"
    if kind == "jpeg" and b"\xff\xd9" not in tail:
        return "truncated"
    if kind == "png" and b"IEND" not in tail[-64:]:
        return "truncated"
    return None


def _read_ends(f, offset: int, size: int) -> tuple[bytes, bytes]:
    f.seek(offset)
    head = f.read(min(size, 16))
    f.seek(offset + max(0, size - 1024))
    return head, f.read(min(size, 1024))


def _decodes(data_or_path) -> bool:
    import io

    from PIL import Image

    try:
        src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
        with Image.open(src) as img:
            img.draft(None, None)
            img.load()
        return True
    except Image.DecompressionBombError:
        return True  # huge but well formed: DALI has no pixel limit
    except Exception:  # noqa: BLE001 -- any decoder failure means "skip"
        return False


def check_file(path, validate: str = "header") -> str | None:
    """The skip reason for one file under the ``validate`` policy, or None."""
    path = Path(path)
    if validate == "none":
        return None
    if path.suffix.lower() == ".gif":
        return "unsupported format"
    if path.suffix.lower() not in IMG_EXTENSIONS:
        return "not an image"
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head, tail = _read_ends(f, 0, size)
    except OSError:
        return "undecodable"
    reason = check_bytes(head, tail, size)
    if reason is None and too_large(path):  # the size policy: gpuaug.imagesize
        return "too large"
    if reason is None and validate == "decode" and not _decodes(path):
        return "undecodable"
    return reason


def _check_all(paths, validate: str, workers: int | None) -> list:
    if validate not in VALIDATE:
        raise ValueError(f"validate must be one of {VALIDATE}, got {validate!r}")
    if validate == "none":
        return [None] * len(paths)
    with ThreadPoolExecutor(workers or min(16, 4 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(lambda p: check_file(p, validate), paths, chunksize=64))


def find_classes(root) -> list[str]:
    """Class names as torchvision's ImageFolder orders them: sorted sub-folder names."""
    return sorted(e.name for e in os.scandir(root) if e.is_dir())


def scan_image_folder(root, validate: str = "header", workers: int | None = None) -> Samples:
    """Every file under ``root/<class>/`` (recursively, sorted), labelled by class index."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist or is not a folder")
    classes = find_classes(root)
    if not classes:
        raise ValueError(f"image folder {str(root)!r} has no class sub-folders (expected root/<class>/<image>)")
    paths, labels = [], []
    for index, name in enumerate(classes):
        for dirpath, dirnames, filenames in sorted(os.walk(root / name, followlinks=True)):
            dirnames.sort()
            for fname in sorted(filenames):
                paths.append(Path(dirpath) / fname)
                labels.append(index)
    samples = Samples(classes=classes)
    for p, label, reason in zip(paths, labels, _check_all(paths, validate, workers)):
        if reason:
            samples.skip(reason, p)
        else:
            samples.files.append(str(p))
            samples.labels.append(label)
    found = set(samples.labels)
    samples.empty_classes = [c for i, c in enumerate(classes) if i not in found]
    if not samples.files:
        raise ValueError(f"no images found in {str(root)!r}: {len(classes)} class folders, "
                         f"{len(paths)} files, skipped {samples.skipped_summary() or 'none'}")
    return samples


def read_file_list(source, labels=None, root=None, validate: str = "header",
                   workers: int | None = None) -> Samples:
    """Samples from a text file of ``<path> <int label>`` lines (paths relative to
    ``root``, default the list's folder; '#' starts a comment) or from a list of paths
    plus ``labels``."""
    if isinstance(source, (str, os.PathLike)):
        if labels is not None:
            raise ValueError("labels= only applies to a list of paths, not a list file")
        list_path = Path(source)
        if not list_path.is_file():
            raise FileNotFoundError(f"file list {str(list_path)!r} does not exist")
        base = Path(root) if root is not None else list_path.parent
        paths, labels = [], []
        for number, line in enumerate(list_path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{str(list_path)!r} line {number}: expected '<path> <int label>', got {line!r}")
            paths.append(base / parts[0])
            labels.append(int(parts[1]))
        where = str(list_path)
    else:
        base = Path(root) if root is not None else None
        paths = [base / p if base is not None else Path(p) for p in source]
        labels = list(range(len(paths))) if labels is None else [int(v) for v in labels]
        if len(labels) != len(paths):
            raise ValueError(f"got {len(paths)} paths but {len(labels)} labels")
        where = "the file list"
    if any(v < 0 for v in labels):
        raise ValueError(f"labels in {where} must be >= 0")
    samples = Samples()
    for p, label, reason in zip(paths, labels, _check_all(paths, validate, workers)):
        if reason is None and validate != "none" and not p.is_file():
            reason = "undecodable"
        if reason:
            samples.skip(reason, p)
        else:
            samples.files.append(str(p))
            samples.labels.append(label)
    if not samples.files:
        raise ValueError(f"no images found in {where}: {len(paths)} entries, "
                         f"skipped {samples.skipped_summary() or 'none'}")
    return samples


# ------------------------------------------------------------------ webdataset


def scan_webdataset(shards, image_ext=("jpg", "jpeg", "png"), label_ext: str = "cls",
                     validate: str = "header") -> Samples:
    """Index tar shards: a sample is the members sharing a key (the name up to the first
    dot of the basename); it needs one image component and an integer ``label_ext``.

    Samples without label ("no label") or with a bad image (header policy, as for files;
    ``"decode"`` decodes in memory) are left out of the index files the loader writes.
    """
    if validate not in VALIDATE:
        raise ValueError(f"validate must be one of {VALIDATE}, got {validate!r}")
    shards = [shards] if isinstance(shards, (str, os.PathLike)) else list(shards)
    if not shards:
        raise ValueError("no webdataset shards given")
    image_ext = tuple(e.lower().lstrip(".") for e in image_ext)
    samples = Samples()
    for tar_path in map(str, shards):
        if not os.path.isfile(tar_path):
            raise FileNotFoundError(f"webdataset shard {tar_path!r} does not exist")
        groups: dict[str, dict] = {}
        with tarfile.open(tar_path) as tar, open(tar_path, "rb") as raw:
            for m in tar:
                if not m.isfile():
                    continue
                folder, base = os.path.split(m.name)
                if base.startswith(".") or "." not in base:
                    continue
                stem, ext = base.split(".", 1)
                groups.setdefault(os.path.join(folder, stem), {})[ext] = m
            kept = []
            for key, comps in groups.items():
                name = f"{tar_path}:{key}"
                image = next(((e, comps[e]) for e in comps if e.lower() in image_ext), None)
                if image is None:
                    samples.skip("not an image", name)
                    continue
                if label_ext not in comps:
                    samples.skip("no label", name)
                    continue
                m = image[1]
                reason = None
                if validate != "none":
                    head, tail = _read_ends(raw, m.offset_data, m.size)
                    reason = check_bytes(head, tail, m.size)
                    if reason is None and validate == "decode":
                        raw.seek(m.offset_data)
                        reason = None if _decodes(raw.read(m.size)) else "undecodable"
                lab = comps[label_ext]
                raw.seek(lab.offset_data)
                text = raw.read(lab.size).decode("utf-8", "replace").strip()
                if reason is None and not text.lstrip("-").isdigit():
                    reason = "no label"
                if reason:
                    samples.skip(reason, name)
                    continue
                kept.append(dict(key=name, target=int(text),
                                 image=(image[0], m.offset_data, m.size, m.name),
                                 label=(label_ext, lab.offset_data, lab.size, lab.name)))
        kept.sort(key=lambda s: s["image"][1])
        samples.shards.append((tar_path, kept))
        samples.files += [s["key"] for s in kept]
        samples.labels += [s["target"] for s in kept]
    if not samples.labels:
        raise ValueError(f"no images found in the webdataset shards {shards[:3]}"
                         f"{'...' if len(shards) > 3 else ''}: skipped {samples.skipped_summary() or 'none'}")
    return samples


def write_wds_index(kept: list, path) -> None:
    """A DALI webdataset index (v1.2) listing the samples in ``kept``: image
    component first, then the label."""
    lines = [f"v1.2 {len(kept)}"]
    for s in kept:
        lines.append(" ".join(f"{ext} {off} {size} {name}" for ext, off, size, name in (s["image"], s["label"])))
    Path(path).write_text("\n".join(lines) + "\n")
