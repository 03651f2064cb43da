"""Where gpuaug keeps what it computes once: the built-in shapes set, rendered fractals,
decode-validation verdicts.

``$GPUAUG_CACHE_DIR`` if set (``$GPUAUG_CACHE`` is read too, its older name), else
``$XDG_CACHE_HOME/gpuaug``, else ``~/.cache/gpuaug``. Each user of the cache takes a
subfolder of its own.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The gpuaug cache folder (see the module notes); not created here."""
    chosen = os.environ.get("GPUAUG_CACHE_DIR") or os.environ.get("GPUAUG_CACHE")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gpuaug"
