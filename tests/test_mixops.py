"""The fused mixing kernels (kernels/mix.cu) against their numpy twin (executors.mixops).

emulated == cpu bit for bit on random inputs and edge cases; ``-m gpu``: cuda == cpu,
exact except where a float64 power is taken (an ulp of pow may differ between libraries).
"""

import numpy as np
import pytest

from gpuaug.executors import mixops
from gpuaug.executors.backend import get_backend

CPU = get_backend("cpu")


def images(rng, n, h, w, zeros=0.0):
    x = rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)
    if zeros:
        x[rng.uniform(size=x.shape) < zeros] = 0
    x[..., 0, 0] = 255
    return x


def same(got, want):
    got = got if isinstance(got, np.ndarray) else got.get()
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype == np.float32:
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    else:
        np.testing.assert_array_equal(got, want)


def close(got, want, atol):
    got = got if isinstance(got, np.ndarray) else got.get()
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=0, atol=atol)
    assert np.sum(got != want) <= max(1, 1e-3 * got.size)


# ---------------------------------------------------------------- cases: (name, kwargs builder)

def weighted_cases(rng):
    for n, h, w, k in ((5, 7, 9, 3), (1, 1, 1, 1), (4, 3, 2, 5), (3, 6, 6, 0)):
        x = images(rng, n, h, w)
        chains = [images(rng, n, h, w) for _ in range(k)]
        if k > 1:
            chains[1] = x  # a chain that is the input itself
        weights = rng.dirichlet(np.ones(max(k, 1)), size=n)[:, :k].astype(np.float32)
        if k:
            weights[0, :] = 0
            weights[-1, 0] = 1
        skip = rng.uniform(size=n).astype(np.float32)
        skip[0], skip[-1] = 0, 1
        yield {"images": x, "chains": chains, "weights": weights, "skip": skip}


def pixmix_cases(rng):
    for n, h, w, k in ((6, 5, 7, 4), (1, 1, 1, 2), (4, 3, 3, 1), (3, 4, 4, 0)):
        start = images(rng, n, h, w, zeros=0.2)
        picture = images(rng, n, h, w, zeros=0.2)
        augmented = [images(rng, n, h, w, zeros=0.2) for _ in range(k)]
        rounds = rng.integers(0, k + 1, size=n)
        rounds[0], rounds[-1] = 0, k
        is_aug = rng.uniform(size=(n, k)) < 0.5
        mult = rng.uniform(size=(n, k)) < 0.6
        a = rng.uniform(0, 2, size=(n, k)).astype(np.float32)
        b = rng.uniform(-1, 1, size=(n, k)).astype(np.float32)
        if k:
            a[0, 0], b[0, 0], a[-1, -1], b[-1, -1] = 0, -1, 2, 1  # extremes
            mult[-1, :] = True
        yield {"start": start, "picture": picture, "augmented": augmented, "partner_is_aug": is_aug,
               "rounds": rounds, "multiplicative": mult, "a": a, "b": b}


def ipmix_cases(rng):
    for n, h, w in ((8, 9, 11), (1, 1, 1), (6, 16, 5)):
        top = rng.integers(0, h, size=n)
        left = rng.integers(0, w, size=n)
        bh = rng.integers(0, h - top + 1)
        bw = rng.integers(0, w - left + 1)
        box = np.stack([top, left, bh, bw], axis=1)
        box[0] = (0, 0, h, w)                       # the whole image
        if n > 2:
            box[1] = (h - 1, w - 1, 1, 1)           # bottom-right corner
            box[2] = (0, 0, 0, 0)                   # empty
        op = np.arange(n) % 4
        yield {"chain": images(rng, n, h, w, zeros=0.2), "picture": images(rng, n, h, w),
               "augmented": images(rng, n, h, w, zeros=0.2), "partner_is_picture": rng.uniform(size=n) < 0.5,
               "box": box, "op": op, "a": rng.uniform(0, 2, size=n).astype(np.float32),
               "b": rng.uniform(-1, 1, size=n).astype(np.float32),
               "threshold": rng.uniform(size=n).astype(np.float32),
               "seed": rng.integers(0, 2 ** 32, size=n, dtype=np.uint32)}


def dynamic_cases(rng):
    for n, h, w in ((5, 6, 7), (1, 1, 1), (3, 2, 9)):
        m1 = rng.uniform(size=n).astype(np.float32)
        m1[0], m1[-1] = 0, 1
        yield {"x1": images(rng, n, h, w), "x2": images(rng, n, h, w), "m1": m1}
        # independent m2 (coefficients sum to m1 + m2, up to 2: the clip is exercised)
        m2 = rng.uniform(size=n).astype(np.float32)
        m2[0] = 1
        yield {"x1": images(rng, n, h, w), "x2": images(rng, n, h, w), "m1": m1, "m2": m2}


CASES = {"weighted_mix": weighted_cases, "pixmix_rounds": pixmix_cases,
         "ipmix_patch": ipmix_cases, "dynamic_mix": dynamic_cases}
POWER = {"pixmix_rounds", "ipmix_patch"}


def on(backend, kw):
    return {k: (backend.asarray(v) if isinstance(v, np.ndarray) and v.ndim == 4 else
                [backend.asarray(c) for c in v] if isinstance(v, list) else v) for k, v in kw.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_emulated_equals_numpy(name):
    emu = get_backend("emulated")
    for i, kw in enumerate(CASES[name](np.random.default_rng(7))):
        want = getattr(mixops, name)(CPU, **kw)
        got = getattr(mixops, name)(emu, **kw)
        same(got, want)


def test_ipmix_patch_touches_only_the_box_and_not_the_input():
    rng = np.random.default_rng(3)
    for backend in (CPU, get_backend("emulated")):
        for kw in ipmix_cases(rng):
            before = kw["chain"].copy()
            out = mixops.ipmix_patch(backend, **kw)
            np.testing.assert_array_equal(kw["chain"], before)
            n, h, w, _ = before.shape
            ys, xs = np.mgrid[0:h, 0:w]
            for s, (top, left, bh, bw) in enumerate(kw["box"]):
                inside = (ys >= top) & (ys < top + bh) & (xs >= left) & (xs < left + bw)
                np.testing.assert_array_equal(out[s][~inside], before[s][~inside])


def test_ipmix_patch_inplace_reuses_the_buffer():
    kw = next(ipmix_cases(np.random.default_rng(4)))
    for backend in (CPU, get_backend("emulated")):
        chain = kw["chain"].copy()
        out = mixops.ipmix_patch(backend, **{**kw, "chain": chain}, inplace=True)
        assert out is chain


def test_weighted_mix_matches_the_formula():
    kw = next(weighted_cases(np.random.default_rng(1)))
    got = mixops.weighted_mix(CPU, **kw)
    w, m = kw["weights"].astype(np.float64), kw["skip"].astype(np.float64)[:, None, None, None]
    mix = sum(w[:, j, None, None, None] * kw["chains"][j] / 255 for j in range(w.shape[1]))
    np.testing.assert_allclose(got, (1 - m) * kw["images"] / 255 + m * mix, atol=1e-6)


def test_pixmix_rounds_zero_rounds_is_the_start():
    kw = next(pixmix_cases(np.random.default_rng(2)))
    kw["rounds"] = np.zeros_like(kw["rounds"])
    for backend in (CPU, get_backend("emulated")):
        same(mixops.pixmix_rounds(backend, **kw), kw["start"].astype(np.float32) / np.float32(255))


def test_bad_arguments_are_refused():
    kw = next(pixmix_cases(np.random.default_rng(2)))
    with pytest.raises(ValueError, match="rounds"):
        mixops.pixmix_rounds(CPU, **{**kw, "rounds": kw["rounds"] + 10})
    kw = next(ipmix_cases(np.random.default_rng(2)))
    box = kw["box"].copy()
    box[0] = (1, 0, kw["chain"].shape[1], 1)
    with pytest.raises(ValueError, match="inside the image"):
        mixops.ipmix_patch(CPU, **{**kw, "box": box})
    with pytest.raises(ValueError, match="uint8"):
        mixops.dynamic_mix(CPU, np.zeros((1, 2, 2, 3), np.float32), np.zeros((1, 2, 2, 3), np.uint8), [0.5])


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_equals_numpy(name):
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception:
        pytest.skip("needs a CUDA device")
    cuda = get_backend("cuda")
    for kw in CASES[name](np.random.default_rng(8)):
        want = getattr(mixops, name)(CPU, **kw)
        got = getattr(mixops, name)(cuda, **on(cuda, kw))
        if name in POWER:
            close(got, want, 1e-6 if want.dtype == np.float32 else 1)
        else:
            same(got, want)
