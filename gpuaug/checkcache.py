"""On-disk cache of decode-validation verdicts, one file per data root.

Location: ``$GPUAUG_CACHE_DIR/validate/`` if set, else ``$XDG_CACHE_HOME/gpuaug/validate/``,
else ``~/.cache/gpuaug/validate/``; one JSON file per data root (named by a hash of its
real path). An entry is keyed by the file's path relative to the root and holds its size and mtime
(ns) with the verdict, so a changed or replaced file is decoded again. Writes go to a
temporary file in the same folder and are renamed into place (atomic), merged with what
another run wrote meanwhile: concurrent runs never leave a broken cache. An unreadable or
unwritable cache is ignored (the check then simply runs again next time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

FORMAT = 1
log = logging.getLogger("gpuaug.validate")


def cache_dir() -> Path:
    """The folder holding the validation caches (see the module notes)."""
    from .cachedir import cache_root

    return cache_root() / "validate"


class DecodeCache:
    """Verdicts of :func:`gpuaug.decodecheck.check_items` for files under ``root``,
    valid for one ``decoder`` tag (a different decoder decodes everything again)."""

    def __init__(self, root, decoder: str):
        real = os.path.realpath(root)
        self.root, self.decoder, self.base = real, decoder, os.path.abspath(root)
        self.path = cache_dir() / f"{hashlib.sha256(real.encode()).hexdigest()[:24]}.json"
        self.entries = self._load()
        self.new: dict = {}

    def _load(self) -> dict:
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("decoder") != self.decoder:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    @staticmethod
    def _stat(path):
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns

    def _key(self, path) -> str:
        return os.path.relpath(os.path.abspath(path), self.base)

    def lookup(self, path):
        """``(True, verdict)`` when ``path`` is cached unchanged, else ``(False, None)``."""
        entry = self.entries.get(self._key(path))
        try:
            if entry and list(self._stat(path)) == entry[:2]:
                return True, entry[2]
        except OSError:
            pass
        return False, None

    def store(self, path, verdict) -> None:
        try:
            self.new[self._key(path)] = [*self._stat(path), verdict]
        except OSError:
            pass

    def save(self) -> None:
        """Merge the new verdicts into the cache file (atomic replace)."""
        if not self.new:
            return
        entries = self._load()  # what other runs wrote since we read it
        entries.update(self.new)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump({"format": FORMAT, "decoder": self.decoder, "root": self.root,
                               "entries": entries}, f)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as err:
            log.debug("gpuaug: could not write the validation cache %s: %s", self.path, err)
            return
        self.entries, self.new = entries, {}
