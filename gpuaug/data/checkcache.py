"""On-disk cache of validation verdicts, one file per data root.

Location: ``$GPUAUG_CACHE_DIR/validate/`` if set, else ``$XDG_CACHE_HOME/gpuaug/validate/``,
else ``~/.cache/gpuaug/validate/``; one JSON file per data root (named by a hash of its
real path). An entry is keyed by the file's path relative to the root and holds its size,
mtime, inode and ctime (ns) with the header check's verdict and, once the file was
decoded, the decode verdict (:class:`DecodeCache` gives the layout): a changed file, or
one replaced by a copy with the same size and mtime (``cp -p``, ``rsync -t``, tar), is
checked again; an unchanged one is not even opened. The verdicts hold for one decoder and one pixel limit (:mod:`gpuaug.data.imagesize`):
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


def cache_file(root) -> Path:
    """The cache file of the data root ``root`` (named by a hash of its real path)."""
    return cache_dir() / f"{hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:24]}.json"


def file_signature(path) -> str | None:
    """What identifies a file's version: ``"size mtime_ns inode ctime_ns"`` (None: gone)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino} {st.st_ctime_ns}"


class DecodeCache:
    """Verdicts of the header check and of :func:`gpuaug.data.decodecheck.check_items` for files
    under ``root``, valid for one ``decoder`` tag and pixel limit (else everything is
    checked again).

    An entry is ``"<file_signature> h"`` (passed the header check, not decoded yet) or
    ``"<file_signature> d"`` (decodes) for the usual good file -- one string, quick to
    load for a million files -- and ``[file_signature, header reason, decode verdict]``
    for a skipped one (one of the two set)."""

    def __init__(self, root, decoder: str, max_pixels: int | None = None):
        from .imagesize import max_pixels as current_limit

        real = os.path.realpath(root)
        self.root, self.decoder = real, decoder
        self.max_pixels = current_limit() if max_pixels is None else int(max_pixels)
        self.base = os.path.abspath(root)
        self._prefixes = (os.path.join(os.fspath(root), ""), os.path.join(self.base, ""))
        self.path = cache_file(real)
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
        path = os.fspath(path)
        for prefix in self._prefixes:  # the paths a scan builds: no need to resolve them
            if path.startswith(prefix) and "/." not in path and "//" not in path:
                return path[len(prefix):]
        return os.path.relpath(os.path.abspath(path), self.base)

    def get(self, key: str, signature: str | None) -> tuple | None:
        """``(header reason, decoded, decode verdict)`` cached for the file version
        ``signature`` (:func:`file_signature`), or None (unknown, changed, or malformed)."""
        entry = self.entries.get(key)
        if signature is None or entry is None:
            return None
        if type(entry) is str:
            if entry[:-2] == signature and entry[-2:] in (" h", " d"):
                return None, entry[-1] == "d", None
            return None
        if type(entry) is list and len(entry) == 3 and entry[0] == signature:
            header, verdict = entry[1:]
            if isinstance(header, str) and verdict is None:
                return header, False, None
            if header is None and isinstance(verdict, str):
                return None, True, verdict
        return None

    def put(self, key: str, signature: str | None, header: str | None, decoded: bool = False,
            verdict: str | None = None) -> None:
        """Record a verdict for the file version ``signature`` (taken before checking it)."""
        if signature is None:
            return
        if header is None and verdict is None:
            self.new[key] = f"{signature} {'d' if decoded else 'h'}"
        else:
            self.new[key] = [signature, header, None if header else verdict]

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
