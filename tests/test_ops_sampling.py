"""sample_values draws each op's parameter as the papers' code does, and the op lists.

level ~ U(0.1, severity); int_param(l, m) = int(l*m/10); float_param(l, m) = l*m/10;
signed ops flip their sign with probability 1/2. All draws use fixed seeds, so the
statistical checks are deterministic (their thresholds are loose: p > 1e-4).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gpuaug import ops

N = 4000
H, W = 60, 300  # distinct sides: translate_x must use W, translate_y H
SEVERITIES = list(range(1, 11))


def draw(name: str, severity, n: int = N, mode: str = "none", seed: int = 0, h: int = H, w: int = W):
    ids = np.full(n, ops.OP_IDS[name], dtype=np.int32)
    rng = np.random.default_rng([seed, ops.OP_IDS[name], int(severity * 10)])
    v = ops.sample_values(ids, severity, rng, h, w, autocontrast_cutoff=mode)
    assert v.dtype == np.float64 and v.shape == (n,)
    return v


def int_probs(severity: float, m: float) -> dict[int, float]:
    """P(int(l*m/10) = k) for l ~ U(0.1, severity)."""
    lo, hi = 0.1, float(severity)
    probs = {}
    for k in range(int(lo * m / 10), int(hi * m / 10) + 1):
        a = max(lo, k * 10 / m)
        b = min(hi, (k + 1) * 10 / m)
        if b > a:
            probs[k] = (b - a) / (hi - lo)
    return probs


def assert_int_distribution(k: np.ndarray, severity, m, what):
    """Counts of int_param values match the uniform-level prediction (chi-square)."""
    probs = int_probs(severity, m)
    assert np.all(k == np.trunc(k)), f"{what}: non-integer parameter"
    assert set(np.unique(k).astype(int)) <= set(probs), (
        f"{what}: values {sorted(set(np.unique(k).astype(int)) - set(probs))} outside {sorted(probs)}")
    keys = sorted(probs)
    expected = np.array([probs[q] for q in keys]) * len(k)
    observed = np.array([(k == q).sum() for q in keys])
    big = expected >= 5  # pool tiny cells
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    if keep.sum() >= 2:
        p = stats.chisquare(obs[keep], exp[keep] * obs[keep].sum() / exp[keep].sum()).pvalue
        assert p > 1e-4, f"{what}: chi-square p={p:.2e}; observed {dict(zip(keys, observed))}"


def assert_uniform_level(level: np.ndarray, severity, what):
    assert level.min() >= 0.1 - 1e-9 and level.max() <= severity + 1e-9, (
        f"{what}: recovered level in [{level.min()}, {level.max()}], expected [0.1, {severity}]")
    p = stats.kstest(level, "uniform", args=(0.1, severity - 0.1)).pvalue
    assert p > 1e-4, f"{what}: levels not U(0.1, {severity}) (KS p={p:.2e})"


def assert_fair_signs(v: np.ndarray, what):
    nz = v[v != 0]
    if nz.size < 50:
        return
    p = stats.binomtest(int((nz > 0).sum()), int(nz.size), 0.5).pvalue
    assert p > 1e-4, f"{what}: {(nz > 0).mean():.3f} positive of {nz.size} (expected ~1/2)"


# ---------------------------------------------------------------- per op

@pytest.mark.parametrize("severity", SEVERITIES)
def test_posterize_bits(severity):
    v = draw("posterize", severity)
    assert v.min() >= 4 - int(severity * 4 / 10) and v.max() <= 4
    assert_int_distribution(4 - v, severity, 4, f"posterize s={severity}")


@pytest.mark.parametrize("severity", SEVERITIES)
def test_solarize_threshold(severity):
    v = draw("solarize", severity)
    assert v.min() >= 256 - int(severity * 256 / 10) and v.max() <= 256 - int(0.1 * 256 / 10)
    assert_int_distribution(256 - v, severity, 256, f"solarize s={severity}")


@pytest.mark.parametrize("severity", SEVERITIES)
def test_rotate_degrees(severity):
    v = draw("rotate", severity)
    assert np.abs(v).max() <= int(severity * 3)
    assert_int_distribution(np.abs(v), severity, 30, f"rotate s={severity}")
    assert_fair_signs(v, f"rotate s={severity}")


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", ["shear_x", "shear_y"])
def test_shear_factor(name, severity):
    v = draw(name, severity)
    assert np.abs(v).max() <= severity * 0.03 + 1e-12 and np.abs(v).min() >= 0.1 * 0.03 - 1e-12
    assert_uniform_level(np.abs(v) * 10 / 0.3, severity, f"{name} s={severity}")
    assert_fair_signs(v, f"{name} s={severity}")


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name,side", [("translate_x", W), ("translate_y", H)])
def test_translate_pixels_use_their_own_side(name, side, severity):
    v = draw(name, severity)
    bound = int(severity * (side / 3) / 10)
    assert np.abs(v).max() <= bound, f"{name}: |t| up to {np.abs(v).max()}, bound int(l*({side}/3)/10) = {bound}"
    assert_int_distribution(np.abs(v), severity, side / 3, f"{name} s={severity}")
    assert_fair_signs(v, f"{name} s={severity}")


def test_translate_follows_image_size():
    # a square image gives the same range for both axes; a tall one swaps them
    for h, w in [(32, 32), (300, 60), (37, 61)]:
        for name, side in [("translate_x", w), ("translate_y", h)]:
            v = draw(name, 10, h=h, w=w)
            bound = int(10 * (side / 3) / 10)
            assert bound - 1 <= np.abs(v).max() <= bound, f"{name} {h}x{w}: max |t| {np.abs(v).max()}, bound {bound}"


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", ["color", "contrast", "brightness", "sharpness"])
def test_enhance_factor(name, severity):
    v = draw(name, severity)
    assert v.min() >= 0.1 * 0.18 + 0.1 - 1e-12 and v.max() <= severity * 0.18 + 0.1 + 1e-12
    assert_uniform_level((v - 0.1) * 10 / 1.8, severity, f"{name} s={severity}")


@pytest.mark.parametrize("severity", SEVERITIES)
def test_autocontrast_cutoff_modes(severity):
    assert np.all(draw("autocontrast", severity, mode="none") == 0)
    v = draw("autocontrast", severity, mode="ipmix")
    assert v.min() >= 10 - severity - 1e-12 and v.max() <= 9.9 + 1e-12
    assert_uniform_level(10 - v, severity, f"autocontrast ipmix s={severity}")


@pytest.mark.parametrize("mode", ["none", "ipmix"])
def test_parameterless_ops_get_zero(mode):
    for name in ("identity", "equalize", "mirror", "flip", "invert"):
        assert np.all(draw(name, 7, n=200, mode=mode) == 0), name


def test_fractional_severity_and_numpy_scalars():
    v = draw("shear_x", 2.5)
    assert np.abs(v).max() <= 2.5 * 0.03
    for s in (np.int64(3), np.float32(3.0), 3.0):
        assert draw("rotate", s, n=50).shape == (50,)


def test_mixed_ids_in_one_call():
    """Each position gets its own op's parameter; every op's draw stays in range."""
    rng = np.random.default_rng(5)
    ids = rng.integers(0, len(ops.OP_NAMES), size=5000).astype(np.int32)
    v = ops.sample_values(ids, 10, rng, H, W, autocontrast_cutoff="ipmix")
    for name, op_id in ops.OP_IDS.items():
        sel = v[ids == op_id]
        assert sel.size > 100
        if not ops.OPS[name].uses_value:
            assert np.all(sel == 0), name
        else:
            assert np.all((sel >= ops.OPS[name].low) & (sel <= ops.OPS[name].high)), name
    ops.check_values(ids, v)  # every sampled value is accepted by apply_batch


def test_same_seed_same_values_and_empty():
    ids = ops.op_ids(ops.ALL_OPS * 3)
    a = ops.sample_values(ids, 4, np.random.default_rng(9), 32, 32)
    b = ops.sample_values(ids, 4, np.random.default_rng(9), 32, 32)
    assert np.array_equal(a, b)
    assert ops.sample_values(np.array([], dtype=np.int32), 3, np.random.default_rng(), 32, 32).shape == (0,)


@pytest.mark.parametrize("bad", [0, 0.99, 10.01, 11, -1, math.nan])
def test_bad_severity_value(bad):
    with pytest.raises(ValueError, match="severity"):
        ops.sample_values(np.zeros(2, dtype=np.int32), bad, np.random.default_rng(), 32, 32)


@pytest.mark.parametrize("bad", [True, "3", None, [3]])
def test_bad_severity_type(bad):
    with pytest.raises(TypeError, match="severity"):
        ops.sample_values(np.zeros(2, dtype=np.int32), bad, np.random.default_rng(), 32, 32)


def test_bad_autocontrast_mode():
    with pytest.raises(ValueError, match="autocontrast_cutoff"):
        draw("autocontrast", 3, n=3, mode="pixmix")


# ---------------------------------------------------------------- op lists

def test_op_catalogue():
    assert len(ops.OP_NAMES) == len(set(ops.OP_NAMES)) == 18
    assert [ops.OP_IDS[n] for n in ops.OP_NAMES] == list(range(len(ops.OP_NAMES)))
    assert ops.OP_NAMES[0] == "identity"


def test_augmix_ops():
    assert ops.AUGMIX_OPS == (
        "autocontrast", "equalize", "posterize", "rotate", "solarize",
        "shear_x", "shear_y", "translate_x", "translate_y",
    )


def test_all_ops():
    assert len(ops.ALL_OPS) == 13
    assert ops.ALL_OPS[:9] == ops.AUGMIX_OPS
    assert set(ops.ALL_OPS) - set(ops.AUGMIX_OPS) == {"color", "contrast", "brightness", "sharpness"}


def test_ipmix_ops():
    assert set(ops.IPMIX_OPS) == (set(ops.AUGMIX_OPS) - {"autocontrast"}) | {"mirror", "invert"}
    assert len(ops.IPMIX_OPS) == 10


def test_dynmix_ops():
    assert set(ops.DYNMIX_OPS) == {
        "mirror", "flip", "rotate", "translate_x", "translate_y", "shear_x", "shear_y",
        "autocontrast", "equalize", "solarize", "posterize",
    }


@pytest.mark.parametrize("name", ["augmix", "all", "ipmix", "dynmix"])
def test_named_lists_resolve(name):
    lst = ops.resolve_op_list(name)
    assert lst == ops.OP_LISTS[name]
    assert len(lst) == len(set(lst)) and set(lst) <= set(ops.OP_NAMES)
    assert "identity" not in lst and "downscale" not in lst


def test_resolve_sequence():
    assert ops.resolve_op_list(["rotate", "invert"]) == ("rotate", "invert")
    assert ops.resolve_op_list(("equalize",)) == ("equalize",)


def test_resolve_errors():
    with pytest.raises(ValueError, match="'augmax'"):
        ops.resolve_op_list("augmax")
    with pytest.raises(ValueError, match="empty"):
        ops.resolve_op_list([])
    with pytest.raises(ValueError, match="'rotat'"):
        ops.resolve_op_list(["rotate", "rotat"])
    with pytest.raises(ValueError, match="unknown op id 99"):
        ops.op_ids([99])
    with pytest.raises(ValueError, match="unknown op id -1"):
        ops.op_ids([-1])
