"""DALI nodes and loaders on the GPU (run with -m gpu; skipped without DALI or CUDA)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

dali = pytest.importorskip("nvidia.dali")
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)

import gpuaug  # noqa: E402
from gpuaug import dali as gdali  # noqa: E402
from gpuaug.mixing import MixingSet  # noqa: E402
from gpuaug.tolerance import mismatch  # noqa: E402

from imagegen import natural  # noqa: E402


def test_gpu_node_matches_cpu_executor():
    from nvidia.dali import fn
    from nvidia.dali.pipeline import Pipeline

    batch = np.stack([natural(32, 32, i) for i in range(4)])
    mixing = MixingSet.from_array(np.stack([natural(40, 40, 50 + i) for i in range(3)]), device="cuda")
    pipe = Pipeline(batch_size=4, num_threads=2, device_id=0, seed=3)
    with pipe:
        x = fn.external_source(source=iter([batch]), layout="HWC", batch=True, cycle=False).gpu()
        pipe.set_outputs(gdali.ipmix(x, mixing=mixing))
    (out,) = pipe.run()
    got = np.stack([np.asarray(t) for t in out.as_cpu()])
    host = MixingSet.from_array(mixing.images.cpu().numpy())
    want = gpuaug.IPMix()(batch, mixing=host, seed=gdali.stream_rng(3, 0), executor="cpu")
    # IPMix's multiplicative mixing takes a float64 pow: held to gpuaug.tolerance's bound
    assert mismatch(got, want, "ipmix") is None, mismatch(got, want, "ipmix")


def test_gpu_loader(clean_tree):
    root, files = clean_tree
    loader = gpuaug.ImageFolderLoader(root, 8, augment=gpuaug.AugMix(), jsd=True, image_size=64,
                                      cifar=False, device="cuda", memory_format="channels_last")
    seen = 0
    for (clean, a1, a2), labels in loader:
        assert clean.is_cuda and labels.is_cuda and a1.shape[1:] == (3, 64, 64)
        assert a2.is_contiguous(memory_format=torch.channels_last)
        seen += len(labels)
    assert seen == len(files)
