"""Find the samples of a data set and screen out files DALI cannot decode.

Three sources: an ImageFolder tree (class sub-folders, torchvision's class order: sorted
folder names), a file list with labels, and webdataset tar shards. Each scan returns a
:class:`Samples` whose ``skipped`` maps a reason to the paths skipped for it.

Skip policy (``validate=``):

* ``"decode"`` (default): the header checks below, then every file that passes them is
  decoded once, strictly ("undecodable"): libjpeg-turbo for JPEG with its warnings
  treated as errors, Pillow for the rest (see :mod:`gpuaug.data.decodecheck` for why and what
  it catches that Pillow misses, e.g. a JPEG whose body is scrambled). Runs in worker
  processes with a progress line on a TTY; verdicts (the header check's too) are cached
  per data root, keyed by (path, size, mtime, inode, ctime), so a data set is decoded once
  and a rescan of unchanged files only stats them (:mod:`gpuaug.data.checkcache` says where).
  ``gpuaug scan ROOT`` runs it ahead of time.
* ``"header"`` (fast: two small reads per file, but blind to corruption inside a file):
  zero-byte files ("empty"); a file whose extension or magic number is not an image DALI
  decodes ("not an image": torchvision's extensions .jpg .jpeg .png .ppm .bmp .pgm .tif
  .tiff .webp, checked by magic number); GIF ("unsupported format": DALI has no GIF
  decoder); a JPEG without its end-of-image marker in the last 1 KiB or a PNG without IEND
  ("truncated").
* ``"none"``: no checks; a bad file is then found and skipped when DALI fails on it
  (:mod:`gpuaug.loader`; a webdataset sample stops the epoch with an error).

Folder scans follow symbolic links to folders, each real folder once per class: a link
loop or a folder reached a second time within a class (or a link to the root) is not
entered and is counted as "repeated folder". Classes are walked independently, like
torchvision's ImageFolder: a link ``train/c1/alias -> ../c2`` gives c2's images twice,
labelled c1 (under ``c1/alias/``) and c2.

Grayscale, CMYK and 16-bit JPEG/PNG, palette and RGBA PNG, BMP, TIFF and WebP all decode
to RGB in DALI (alpha dropped; 16-bit scaled to 8 bits, where Pillow's convert clips).
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from .imagesize import too_large

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SKIP_REASONS = ("empty", "not an image", "unsupported format", "truncated", "undecodable", "too large",
                "repeated folder", "no label")
VALIDATE = ("decode", "header", "none")


@dataclass
class Samples:
    """Encoded samples to read: ``files`` with int ``labels`` (or tar ``shards``)."""

    files: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    empty_classes: list = field(default_factory=list)
    shards: list = field(default_factory=list)  # webdataset: [(tar path, [sample, ...])]
    details: dict = field(default_factory=dict)  # skipped path -> the decoder's message

    def __len__(self) -> int:
        return len(self.labels)

    def skip(self, reason: str, path, detail: str | None = None) -> None:
        self.skipped.setdefault(reason, []).append(str(path))
        if detail:
            self.details[str(path)] = detail

    def skipped_summary(self, files_only: bool = False) -> str:
        return ", ".join(f"{r}: {len(self.skipped[r])}" for r in SKIP_REASONS
                         if r in self.skipped and not (files_only and r == "repeated folder"))


def printable(path) -> str:
    """``path`` as text every output stream takes: a file name that is not valid UTF-8
    (held by Python as surrogate escapes) shows its odd bytes as ``\\xNN``."""
    text = os.fsdecode(path)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


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


def _check_header(path) -> str | None:
    path = Path(path)
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
    if reason is None and too_large(path):  # the size policy: gpuaug.data.imagesize
        return "too large"
    return reason


def check_file(path, validate: str = "decode") -> str | None:
    """The skip reason for one file under the ``validate`` policy, or None."""
    return _check_all([Path(path)], validate, workers=1)[0][0]


def decoder_tag() -> str:
    """Which decoder defines "undecodable" here (see :mod:`gpuaug.data.decodecheck`)."""
    import importlib.util

    try:
        strict = importlib.util.find_spec("nvidia.nvimgcodec") is not None
    except (ImportError, ValueError):
        strict = False
    return "libjpeg-turbo-strict+pillow" if strict else "pillow"


def _check_all(paths, validate: str, workers: int | None, cache_root=None) -> list:
    """``(reason, detail)`` per path under the ``validate`` policy (reason None: keep).

    With ``cache_root``, verdicts are cached per file version (:mod:`gpuaug.data.checkcache`):
    an unchanged file costs one ``stat``. They are saved even when the check is
    interrupted (Ctrl-C), so a rerun continues where it stopped."""
    if validate not in VALIDATE:
        raise ValueError(f"validate must be one of {VALIDATE}, got {validate!r}")
    if validate == "none":
        return [(None, None)] * len(paths)
    from . import decodecheck

    cache = None
    if cache_root is not None:
        from .checkcache import DecodeCache, file_signature

        cache = DecodeCache(cache_root, decoder_tag())
    results: list = [None] * len(paths)
    todo = []  # (index, cache key, file signature): passed the header check, to decode
    try:
        for i, path in enumerate(paths):
            key = sig = hit = None
            if cache is not None:
                key, sig = cache.key(path), file_signature(path)
                hit = cache.get(key, sig)
            if hit is None:
                hit = (_check_header(path), False, None)
                if cache is not None:
                    cache.put(key, sig, hit[0])
            reason, decoded, verdict = hit
            if reason or validate == "header":
                results[i] = (reason, None)
            elif decoded:
                results[i] = ("undecodable" if verdict else None, verdict)
            else:
                todo.append((i, key, sig))

        def decoded_one(k: int, verdict) -> None:
            i, key, sig = todo[k]
            results[i] = ("undecodable" if verdict else None, verdict)
            if cache is not None:
                cache.put(key, sig, None, True, verdict)

        if todo:
            decodecheck.check_items([(paths[i], 0, -1) for i, _, _ in todo], workers, on_verdict=decoded_one)
    finally:
        if cache is not None:
            cache.save()
    return results


def walk_files(folder, samples: Samples | None = None) -> list[Path]:
    """Every file under ``folder`` in torchvision's order (folders sorted by path, then
    names), following folder symlinks but entering each real folder once: a repeat (a
    link loop, or two links to one folder) is skipped as "repeated folder" in ``samples``."""
    return [Path(p) for p in _walk_into(Path(folder), set(), samples)]


def _walk_into(top: Path, seen: set, samples) -> list[str]:
    """The files under ``top`` as ``str(top / ...)`` (built as strings: a million Path
    objects would cost more than the cached scan itself)."""
    found, stack = [], [str(top)]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:
            if samples is not None:
                samples.skip("repeated folder", folder)
            continue
        seen.add(real)
        files, dirs = [], []
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                (dirs if entry.is_dir() else files).append(entry.name)
            except OSError:
                files.append(entry.name)
        found.append((folder, sorted(files)))
        stack.extend(os.path.join(folder, d) for d in sorted(dirs, reverse=True))
    found.sort()
    paths = []
    for folder, names in found:
        prefix = os.path.join(folder, "")
        paths += [prefix + name for name in names]
    return paths


def find_classes(root) -> list[str]:
    """Class names as torchvision's ImageFolder orders them: sorted sub-folder names."""
    return sorted(e.name for e in os.scandir(root) if e.is_dir())


def scan_image_folder(root, validate: str = "decode", workers: int | None = None, cache: bool = True) -> Samples:
    """Every file under ``root/<class>/`` (recursively, sorted), labelled by class index.
    ``cache=False``: do not read or write the decode-validation cache."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist or is not a folder")
    classes = find_classes(root)
    if not classes:
        raise ValueError(f"image folder {str(root)!r} has no class sub-folders (expected root/<class>/<image>)")
    paths, labels = [], []
    samples = Samples(classes=classes)
    for index, name in enumerate(classes):
        # each class is walked on its own, as torchvision's ImageFolder does: a link from one
        # class folder into another reads that folder's images under both classes
        found = _walk_into(root / name, {os.path.realpath(root)}, samples)
        paths += found
        labels += [index] * len(found)
    checked = _check_all(paths, validate, workers, cache_root=root if cache else None)
    for p, label, (reason, detail) in zip(paths, labels, checked):
        if reason:
            samples.skip(reason, p, detail)
        else:
            samples.files.append(str(p))
            samples.labels.append(label)
    found = set(samples.labels)
    samples.empty_classes = [c for i, c in enumerate(classes) if i not in found]
    if not samples.files:
        raise ValueError(f"no images found in {str(root)!r}: {len(classes)} class folders, "
                         f"{len(paths)} files, skipped {samples.skipped_summary() or 'none'}")
    return samples


def read_file_list(source, labels=None, root=None, validate: str = "decode",
                   workers: int | None = None, cache: bool = True) -> Samples:
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
        for number, line in enumerate(os.fsdecode(list_path.read_bytes()).splitlines(), 1):  # names as on disk
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
    cache_root = None
    if cache and paths:
        cache_root = base if base is not None else os.path.commonpath([os.path.abspath(p.parent) for p in paths])
    checked = _check_all(paths, validate, workers, cache_root=cache_root)
    for p, label, (reason, detail) in zip(paths, labels, checked):
        if reason is None and validate != "none" and not p.is_file():
            reason = "undecodable"
        if reason:
            samples.skip(reason, p, detail)
        else:
            samples.files.append(str(p))
            samples.labels.append(label)
    if not samples.files:
        raise ValueError(f"no images found in {where}: {len(paths)} entries, "
                         f"skipped {samples.skipped_summary() or 'none'}")
    return samples


# ------------------------------------------------------------------ webdataset


def scan_webdataset(shards, image_ext=("jpg", "jpeg", "png"), label_ext: str = "cls",
                     validate: str = "decode", workers: int | None = None) -> Samples:
    """Index tar shards: a sample is the members sharing a key (the name up to the first
    dot of the basename); it needs one image component and an integer ``label_ext``.

    Samples without label ("no label") or with a bad image (the policy as for files; the
    decode check reads the image out of the tar, and is not cached) are left out of the
    index files the loader writes.
    """
    if validate not in VALIDATE:
        raise ValueError(f"validate must be one of {VALIDATE}, got {validate!r}")
    shards = [shards] if isinstance(shards, (str, os.PathLike)) else list(shards)
    if not shards:
        raise ValueError("no webdataset shards given")
    image_ext = tuple(e.lower().lstrip(".") for e in image_ext)
    samples = Samples()
    pending = []  # (kept list, sample): passed the header check, to decode
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
                lab = comps[label_ext]
                raw.seek(lab.offset_data)
                text = raw.read(lab.size).decode("utf-8", "replace").strip()
                if reason is None and not text.lstrip("-").isdigit():
                    reason = "no label"
                if reason:
                    samples.skip(reason, name)
                    continue
                kept.append(dict(key=name, target=int(text), tar=tar_path,
                                 image=(image[0], m.offset_data, m.size, m.name),
                                 label=(label_ext, lab.offset_data, lab.size, lab.name)))
                if validate == "decode":
                    pending.append((kept, kept[-1]))
        samples.shards.append((tar_path, kept))
    if pending:
        from . import decodecheck

        verdicts = decodecheck.check_items([(s["tar"], s["image"][1], s["image"][2]) for _, s in pending], workers)
        for (kept, s), verdict in zip(pending, verdicts):
            if verdict:
                kept.remove(s)
                samples.skip("undecodable", s["key"], verdict)
    for _, kept in samples.shards:
        kept.sort(key=lambda s: s["image"][1])
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
