"""On-disk cache of validation verdicts, one file per data root.

Location: ``$GPUAUG_CACHE_DIR/validate/`` if set, else ``$XDG_CACHE_HOME/gpuaug/validate/``,
else ``~/.cache/gpuaug/validate/``; one JSON file per data root (named by a hash of its
real path). An entry is keyed by the file's path relative to the root and holds its size,
mtime, inode and ctime (ns) with the header check's verdict and, once the file was
decoded, the decode verdict: a changed file, or one replaced by a copy with the same size
and mtime (``cp -p``, ``rsync -t``, tar), is checked again; an unchanged one is not even
opened. The verdicts hold for one decoder and one pixel limit (:mod:`gpuaug.imagesize`):
a cache written under others is not used. Writes go to a temporary file in the same folder
and are renamed into place (atomic), merged with what another run wrote meanwhile:
concurrent runs never leave a broken cache. An unreadable or unwritable cache, or a
malformed entry in it, is ignored (the check then simply runs again for those files).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

FORMAT = 2
log = logging.getLogger("gpuaug.validate")


def cache_dir() -> Path:
    """The folder holding the validation caches (see the module notes)."""
    from .cachedir import cache_root

    return cache_root() / "validate"


def file_signature(path) -> list | None:
    """What identifies a file's version: ``[size, mtime_ns, inode, ctime_ns]`` (None: gone)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


class DecodeCache:
    """Verdicts of the header check and of :func:`gpuaug.decodecheck.check_items` for files
    under ``root``, valid for one ``decoder`` tag and pixel limit (else everything is
    checked again).

    An entry is ``[*file_signature, header reason or None, decoded (bool), decode verdict
    or None]``."""

    def __init__(self, root, decoder: str, max_pixels: int | None = None):
        from .imagesize import max_pixels as current_limit

        real = os.path.realpath(root)
        self.root, self.decoder = real, decoder
        self.max_pixels = current_limit() if max_pixels is None else int(max_pixels)
        self.base = os.path.abspath(root)
        self._prefix = os.path.join(self.base, "")
        self.path = cache_dir() / f"{hashlib.sha256(os.fsencode(real)).hexdigest()[:24]}.json"
        self.entries = self._load()
        self.new: dict = {}

    def _load(self) -> dict:
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or [data.get(k) for k in ("format", "decoder", "max_pixels")] != \
                [FORMAT, self.decoder, self.max_pixels]:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def key(self, path) -> str:
        """The entry name of ``path``: its path relative to the root."""
        path = os.path.abspath(path)
        return path[len(self._prefix):] if path.startswith(self._prefix) else os.path.relpath(path, self.base)

    def get(self, key: str, signature) -> tuple | None:
        """``(header reason, decoded, decode verdict)`` cached for the file version
        ``signature`` (:func:`file_signature`), or None (unknown, changed, or malformed)."""
        entry = self.entries.get(key)
        if signature is None or type(entry) is not list or len(entry) != 7 or entry[:4] != signature:
            return None
        header, decoded, verdict = entry[4:]
        if not (header is None or isinstance(header, str)) or type(decoded) is not bool or \
                not (verdict is None or isinstance(verdict, str)):
            return None
        return header, decoded, verdict

    def put(self, key: str, signature, header: str | None, decoded: bool = False, verdict: str | None = None):
        """Record a verdict for the file version ``signature`` (taken before checking it)."""
        if signature is not None:
            self.new[key] = [*signature, header, bool(decoded), verdict]

    def lookup(self, path):
        """``(True, decode verdict)`` when ``path`` is cached unchanged and was decoded,
        else ``(False, None)``."""
        hit = self.get(self.key(path), file_signature(path))
        return (True, hit[2]) if hit is not None and hit[1] else (False, None)

    def store(self, path, verdict) -> None:
        """Record the decode verdict of a file that passed the header check."""
        self.put(self.key(path), file_signature(path), None, True, verdict)

    def save(self) -> None:
        """Merge the new verdicts into the cache file (atomic replace)."""
        new = dict(self.new)  # a copy: verdicts may still arrive from another thread
        if not new:
            return
        entries = self._load()  # what other runs wrote since we read it
        entries.update(new)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump({"format": FORMAT, "decoder": self.decoder, "max_pixels": self.max_pixels,
                               "root": self.root, "entries": entries}, f)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as err:
            log.debug("gpuaug: could not write the validation cache %s: %s", self.path, err)
            return
        self.entries = entries
        for k in new:
            if self.new.get(k) is new[k]:
                del self.new[k]
