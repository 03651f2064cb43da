"""The crop kernel (kernels/crop.cu) that gathers a CUDA mixing set's crops, on the
emulator and the recording backend: the same bytes as the host set's fancy indexing."""

import numpy as np
import pytest

from gpuaug.executors import crops, recording
from gpuaug.mixing import MixingSet


def _host_and_kernel(transform, n=7, side=12, crop=(9, 9), seed=0):
    rng = np.random.default_rng(seed)
    mixing = MixingSet.from_array(rng.integers(0, 256, (5, side, side, 3), dtype=np.uint8), transform=transform)
    plan = mixing.sample_plan(n, rng, *crop)
    want = mixing.gather(plan, "emulated")
    index, top, left = (np.asarray(plan[k], np.int64) for k in ("index", "top", "left"))
    got = crops.gather_crops("emulated", mixing.images, index, top, left, plan.get("flip"),
                             crop[0], crop[1], int(plan.get("pad", 0)))
    return got, want, plan


@pytest.mark.parametrize("transform", [None, "pad_crop_flip"])
def test_crop_kernel_equals_host_gather(transform):
    for seed in range(4):
        got, want, plan = _host_and_kernel(transform, seed=seed)
        assert got.shape == want.shape and np.array_equal(got, want)
    if transform:  # the border and the flips were exercised
        assert plan["pad"] == 4 and plan["flip"].any() and not plan["flip"].all()


def test_crop_kernel_non_square_crop_and_empty_batch():
    got, want, _ = _host_and_kernel(None, crop=(5, 11), side=11)
    assert np.array_equal(got, want)
    got, want, _ = _host_and_kernel(None, n=0)
    assert got.shape == want.shape == (0, 9, 9, 3)


def test_recorded_gather_is_one_upload_and_one_launch():
    mixing = MixingSet.from_array(np.zeros((4, 16, 16, 3), np.uint8))
    plan = mixing.sample_plan(6, np.random.default_rng(1), 12, 12)
    with recording.session() as rec:
        out = crops.DeviceMixingSet(mixing).gather(plan)
    s = rec.summary()
    assert out.shape == (6, 12, 12, 3)
    assert (s["launches"], s["uploads"], s["pageable_uploads"]) == (1, 1, 0)
    assert s["kernels"]["gpuaug_gather_crops"]["bytes"] == 2 * 6 * 12 * 12 * 3
