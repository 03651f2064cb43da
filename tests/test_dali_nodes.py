"""gpuaug.dali nodes in CPU DALI pipelines agree with the direct cpu executor."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nvidia.dali")
from nvidia.dali import fn  # noqa: E402
from nvidia.dali.pipeline import Pipeline  # noqa: E402

import gpuaug  # noqa: E402
from gpuaug import dali as gdali  # noqa: E402
from gpuaug.mixing import MixingSet  # noqa: E402

from imagegen import natural  # noqa: E402

N = 4


def _batches(count, h=24, w=24):
    return [np.stack([natural(h, w, 10 * b + i) for i in range(N)]) for b in range(count)]


def _run(build, batches, seed=7, num_outputs=1):
    """Run a one-input CPU pipeline over ``batches``; outputs per batch as numpy stacks."""
    pipe = Pipeline(batch_size=N, num_threads=1, device_id=None, seed=seed, prefetch_queue_depth=1)
    with pipe:
        images = fn.external_source(source=iter(batches), layout="HWC", batch=True, cycle=False)
        out = build(images)
        pipe.set_outputs(*(out if isinstance(out, tuple) else (out,)))
    result = []
    for _ in batches:
        outs = pipe.run()
        result.append([np.stack([np.asarray(t) for t in o]) for o in outs])
    return result


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_augmix_node_matches_direct_executor():
    batches = _batches(2)
    got = _run(lambda x: gdali.augmix(x, severity=3), batches)
    rng = gdali.stream_rng(7, 0)
    for b, batch in enumerate(batches):
        _same(got[b][0], gpuaug.AugMix(severity=3)(batch, seed=rng, executor="cpu"))


@pytest.mark.parametrize("name", ["pixmix", "ipmix"])
def test_mixing_nodes_match_direct_executor(name):
    mixing = MixingSet.from_array(np.stack([natural(40, 40, 100 + i) for i in range(5)]))
    batches = _batches(2)
    node = getattr(gdali, name)
    got = _run(lambda x: node(x, mixing=mixing, seed=11, shard_id=1), batches)
    method = gpuaug.PixMix() if name == "pixmix" else gpuaug.IPMix()
    rng = gdali.stream_rng(11, 1)
    for b, batch in enumerate(batches):
        _same(got[b][0], method(batch, mixing=mixing, seed=rng, executor="cpu"))


def test_views_node_matches_direct_views():
    batches = _batches(1)
    got = _run(lambda x: gdali.views(x, gpuaug.DynamicMixup()), batches)
    want = gpuaug.DynamicMixup().views(batches[0], seed=gdali.stream_rng(7, 0), executor="cpu")
    assert len(got[0]) == 3
    for g, w in zip(got[0], want):
        _same(g, w)


def test_seed_and_shard_change_the_stream():
    batches = _batches(1)
    a = _run(lambda x: gdali.dynamic_mixup(x), batches, seed=1)[0][0]
    b = _run(lambda x: gdali.dynamic_mixup(x), batches, seed=1)[0][0]
    c = _run(lambda x: gdali.dynamic_mixup(x, shard_id=1), batches, seed=1)[0][0]
    _same(a, b)
    assert not np.array_equal(a, c)


def test_mixing_pictures_from_the_pipeline():
    batches = _batches(1)
    pics = _batches(1, 24, 24)[0][::-1].copy()

    def build(x):
        pool = fn.external_source(source=iter([pics]), layout="HWC", batch=True, cycle=False)
        return gdali.pixmix(x, mixing=pool)

    out = _run(build, batches)[0][0]
    assert out.shape == (N, 24, 24, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


def test_bad_inputs_are_explained():
    ragged = [[natural(20, 20, 0), natural(24, 24, 1), natural(20, 20, 2), natural(20, 20, 3)]]
    with pytest.raises(RuntimeError, match="batch-dense"):
        _run(lambda x: gdali.augmix(x), ragged)
    with pytest.raises(ValueError, match="needs mixing"):
        _run(lambda x: gdali.augment(x, gpuaug.PixMix()), _batches(1))
    with pytest.raises(TypeError, match="gpuaug method"):
        _run(lambda x: gdali.augment(x, "augmix"), _batches(1))
