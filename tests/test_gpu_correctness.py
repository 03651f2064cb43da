"""The GPU path's device, stream and memory rules, checked on the CPU with small fakes.

What needs a real device (and a second one) is in ``test_multi_gpu.py`` (``-m gpu``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpuaug
from gpuaug import _arrays
from gpuaug.tolerance import POW_F32_ULPS, mismatch, pow_atol


# -- item 1: label bounds without numpy's min(initial=) --------------------------------------

class _NoInitial(np.ndarray):
    """Labels whose min/max have CuPy 14's signature (no ``initial``)."""

    def min(self, axis=None, out=None, keepdims=False):
        return np.ndarray.min(self, axis, out, keepdims)

    def max(self, axis=None, out=None, keepdims=False):
        return np.ndarray.max(self, axis, out, keepdims)


@pytest.mark.parametrize("method", [gpuaug.Mixup(), gpuaug.CutMix()])
def test_label_mixing_checks_labels_without_min_initial(method):
    images = np.zeros((4, 8, 8, 3), np.uint8)
    labels = np.array([0, 1, 2, 1]).view(_NoInitial)
    _, targets = method(images, labels, 3, seed=0)
    assert targets.shape == (4, 3)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2"):
        method(images, np.array([0, 1, 3, 1]).view(_NoInitial), 3, seed=0)


# -- item 6: torch's stream wrapped without the deprecated ExternalStream ----------------------

class _ProtocolStream:
    """A torch stream as CuPy sees it: the CUDA stream protocol and ``cuda_stream``."""

    def __init__(self, handle):
        self.cuda_stream = handle

    def __cuda_stream__(self):
        return (0, self.cuda_stream)


def test_cupy_stream_uses_the_stream_protocol_without_a_warning():
    pytest.importorskip("cupy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ExternalStream's DeprecationWarning would fail here
        stream = _arrays.cupy_stream(_ProtocolStream(0x1234), 0)
    assert stream.ptr == 0x1234


def test_cupy_stream_falls_back_to_external_stream_for_older_torch():
    pytest.importorskip("cupy")

    class Old:
        cuda_stream = 0x5678

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        stream = _arrays.cupy_stream(Old(), 1)
    assert stream.ptr == 0x5678 and stream.device_id == 1


# -- item 7: the stated pow tolerance ---------------------------------------------------------

def test_tolerance_is_exact_for_methods_without_pow():
    want = np.linspace(0, 1, 1000, dtype=np.float32)
    got = want.copy()
    assert mismatch(got, want, "augmix") is None
    got[3] = np.nextafter(got[3], np.float32(2))
    assert pow_atol("augmix") == 0.0 and "must be exact" in mismatch(got, want, "augmix")


def test_tolerance_for_pow_methods():
    want = np.linspace(0, 1, 4000, dtype=np.float32)
    got = want.copy()
    got[10] += np.float32(POW_F32_ULPS * 2.0 ** -23)
    assert mismatch(got, want, "pixmix") is None
    got[10] = want[10] + np.float32(1e-5)  # far past a few ulps
    assert "allowed for pixmix" in mismatch(got, want, "pixmix")
    ip = want.copy()
    ip[7] += np.float32(1 / 255)  # one uint8 level inside the IPMix patch
    assert mismatch(ip, want, "ipmix") is None and mismatch(ip, want, "pixmix") is not None
    many = want + np.float32(2.0 ** -23)  # every element off: more than the allowed fraction
    assert mismatch(many, want, "pixmix") is not None
