"""Execution backends: an array module plus the image-op executor that works on it.

Method code is written once against a backend: image-level ops go through
``backend.apply_ops`` and the float mixing through :mod:`.mixops` (a numpy twin on
``cpu``, fused kernels of ``kernels/mix.cu`` on ``cuda`` and ``emulated``).

* ``cpu``: numpy + the numpy executor.
* ``cuda``: CuPy + the CUDA kernels.
* ``emulated``: numpy + the CUDA kernels run by the CPU emulator (tests of the CUDA path
  on machines without a GPU).
* ``recording``: the cuda executor's host side with device work only recorded
  (:mod:`.recording`; the host-cost benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

BACKENDS = ("cpu", "cuda", "emulated", "recording")


@dataclass(frozen=True)
class Backend:
    name: str
    xp: object  # numpy or cupy
    apply_ops: Callable  # (uint8 NHWC array, int32 ids, float64 values) -> array
    fused: Callable | None = None  # (mixops name, args) -> result; tracing backends only

    @property
    def on_device(self) -> bool:
        return self.name == "cuda"

    def asarray(self, host_array):
        """Move a small host array (plan data) to this backend."""
        return self.xp.asarray(host_array)


def get_backend(name: str) -> Backend:
    if name == "cpu":
        from . import cpu

        return Backend("cpu", np, cpu.apply_ops)
    if name == "cuda":
        import cupy

        from . import cuda

        return Backend("cuda", cupy, lambda x, ids, v: cuda.apply_ops_xp(x, ids, v, "cuda"))
    if name == "emulated":
        from . import cuda

        return Backend("emulated", np, lambda x, ids, v: cuda.apply_ops_xp(x, ids, v, "emulated"))
    if name == "recording":
        from . import cuda, recording

        return Backend("recording", recording.xp, lambda x, ids, v: cuda.apply_ops_xp(x, ids, v, "recording"))
    raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
