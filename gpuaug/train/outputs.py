"""Run outputs written so that a crash, a kill or a full disk never leaves a torn file.

Every file of a run folder (checkpoint, ``model.pt``, ``config.json``, ``train.jsonl``,
``preview.png``) is written whole to a temporary ``<name>.<random>.tmp`` in the same
folder, flushed and fsynced, renamed over the old file, and the folder is fsynced: a
reader sees the old file or the new one. The file gets the mode a plain ``open()`` would
give it (0666 less the umask), not the temporary's private 0600. Temporaries orphaned by a kill are removed when
the next run starts (:func:`remove_stale_temps`). An ``OSError`` from a write carries the
final path, so disk-full and read-only errors can be reported as one line
(:func:`describe_os_error`).
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import tempfile
from pathlib import Path

# The files a run writes (temporaries of these are ours to clean up).
OUTPUT_NAMES = ("checkpoint.pt", "model.pt", "config.json", "train.jsonl", "preview.png")
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it (os.umask sets it: racy with threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path | str, data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` (bytes, or text as UTF-8) atomically and durably."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes it 0600
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(f.fileno(), view):]
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    _fsync_dir(path.parent)
    return path


def save_torch(path: Path | str, obj) -> Path:
    """``torch.save(obj)`` atomically (serialised in memory first, so a full disk is an
    ``OSError`` naming ``path``, not a torn zip or torch's ``inline_container`` message)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_atomic(path, buf.getbuffer())


def remove_stale_temps(folder: Path | str) -> list[str]:
    """Delete ``<output>.*.tmp`` files left in ``folder`` by a killed run; returns their names."""
    folder = Path(folder)
    removed = []
    for name in OUTPUT_NAMES:
        for tmp in folder.glob(f"{name}.*.tmp"):
            try:
                tmp.unlink()
                removed.append(tmp.name)
            except FileNotFoundError:
                pass
    return removed


def _finite_or_none(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def json_text(obj, **kwargs) -> str:
    """``obj`` as strict JSON for an output file: a float that is not finite (a metric that is
    undefined, e.g. the official RMS calibration error under 200 predictions) becomes
    ``null``, so that every JSON parser reads the file, not only Python's."""
    return json.dumps(_finite_or_none(obj), allow_nan=False, **kwargs)


def write_log(path: Path | str, records: list[dict]) -> Path:
    """The metrics log: one JSON line per record (:func:`json_text`), the whole file
    replaced atomically."""
    return write_atomic(path, "".join(json_text(r) + "\n" for r in records))


def read_log(path: Path | str) -> list[dict]:
    """The records of a metrics log (an unparsable line ends it: nothing after is trusted)."""
    records = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return records
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def describe_os_error(err: OSError) -> str | None:
    """One line for a disk error we can explain (disk full, quota, read-only file system,
    file-size limit, no permission), naming the path; None for other errors."""
    if err.errno not in WRITE_ERRNOS:
        return None
    where = f" {err.filename}" if err.filename else ""
    if err.errno in (errno.EACCES, errno.EPERM):  # may be a read (e.g. of --data) as well as a write
        return f"error: permission denied:{where} ({err.strerror}); check the folder's permissions or choose another --out"
    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EROFS: "the file system is read-only", errno.EFBIG: "the file is over the size limit"}[err.errno]
    return f"error: cannot write{where}: {what} ({err.strerror}); free space or choose a writable --out"
