"""Procedural fractals: plan determinism, structure, cpu twin vs the CUDA kernels
(emulated on the CPU), NVRTC compile and the PNG writer."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpuaug import fractals as F

KERNEL = Path(__file__).resolve().parents[1] / "kernels" / "fractals.cu"


def _structure(img: np.ndarray) -> tuple[float, float, float]:
    """(largest channel std, edge density, neighbour correlation) of an HWC uint8 image."""
    f = img.astype(np.float64)
    std = float(f.std(axis=(0, 1)).max())
    gx = np.abs(np.diff(f, axis=1))[:-1].max(-1)
    gy = np.abs(np.diff(f, axis=0))[:, :-1].max(-1)
    edges = float(((gx > 8) | (gy > 8)).mean())
    a, b = f[:, :-1].ravel(), f[:, 1:].ravel()
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
    return std, edges, corr


def _is_structured(img: np.ndarray) -> bool:
    std, edges, corr = _structure(img)
    return std > 5 and 0.02 < edges < 0.95 and corr > 0.2


@pytest.fixture(scope="module")
def plan():
    return F.sample_fractal_plan(12, np.random.default_rng(2024))


def test_structure_checker_rejects_blank_and_noise():
    assert not _is_structured(np.full((48, 48, 3), 90, np.uint8))
    assert not _is_structured(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8))
    ramp = np.broadcast_to(np.linspace(0, 255, 48).astype(np.uint8)[None, :, None], (48, 48, 3))
    assert not _is_structured(np.ascontiguousarray(ramp))  # smooth: no edges


def test_fractals_are_structured(plan):
    assert set(plan.kind.tolist()) == {F.IFS, F.ESCAPE}
    imgs = F.render_fractals_cpu(plan, 48)
    assert imgs.shape == (12, 48, 48, 3) and imgs.dtype == np.uint8
    for i, img in enumerate(imgs):
        assert _is_structured(img), (i, int(plan.kind[i]), _structure(img))


def test_plan_fields_and_ranges(plan):
    ifs = plan.kind == F.IFS
    assert ((plan.ifs_n_maps[ifs] >= 2) & (plan.ifs_n_maps[ifs] <= F.MAX_MAPS)).all()
    lin = plan.ifs_maps[ifs][..., :4].reshape(-1, 2, 2)
    assert (np.linalg.svd(lin, compute_uv=False) < 1).all()  # contractive
    cum = plan.ifs_cum[ifs]
    assert (np.diff(cum, axis=1) >= 0).all() and (cum[:, -1] == 2.0).all()
    esc = ~ifs
    assert set(plan.esc_power[esc].tolist()) <= {2, 3}
    assert (plan.esc_max_iter[esc] >= 64).all() and (plan.esc_span[esc] > 0).all()
    assert set(plan.trap_kind[esc].tolist()) <= {F.TRAP_POINT, F.TRAP_LINE, F.TRAP_CIRCLE}
    assert plan.palette.shape == (12, 256, 3) and plan.palette.dtype == np.uint8
    assert len(plan.take(slice(2, 5))) == 3


def test_deterministic_and_seed_dependent():
    a = F.render_fractals_cpu(F.sample_fractal_plan(4, np.random.default_rng(7)), 32)
    b = F.render_fractals_cpu(F.sample_fractal_plan(4, np.random.default_rng(7)), 32)
    c = F.render_fractals_cpu(F.sample_fractal_plan(4, np.random.default_rng(8)), 32)
    np.testing.assert_array_equal(a, b)
    assert all((a[i] != c[i]).any() for i in range(4))


def test_rendering_is_independent_of_batching(plan):
    full = F.render_fractals_cpu(plan, 24)
    parts = np.concatenate([F.render_fractals_cpu(plan.take(slice(s, s + 5)), 24) for s in (0, 5, 10)])
    np.testing.assert_array_equal(full, parts)


def test_nvrtc_compile_without_warnings():
    pytest.importorskip("cupy_backends.cuda.libs.nvrtc")
    from gpuaug.executors.launch import compile_check

    assert compile_check(KERNEL) == ""


@pytest.mark.skipif(shutil.which("g++") is None, reason="the emulated backend needs g++")
@pytest.mark.parametrize("size", [32, 33, 48])
def test_emulated_kernels_match_cpu_twin(plan, size):
    expected = F.render_fractals_cpu(plan, size)
    got = F.render_fractals_xp(plan, size, "emulated")
    np.testing.assert_array_equal(got, expected)


@pytest.mark.gpu
def test_cuda_kernels_match_cpu_twin(plan):
    got = F.render_fractals_xp(plan, 64, "cuda").get()
    np.testing.assert_array_equal(got, F.render_fractals_cpu(plan, 64))


def test_write_fractal_pngs(tmp_path):
    paths = F.write_fractal_pngs(tmp_path / "out", count=3, size=32, seed=5, executor="cpu", batch=2)
    assert [p.name for p in paths] == ["fractal_00000.png", "fractal_00001.png", "fractal_00002.png"]
    expected = F.render_fractals_cpu(F.sample_fractal_plan(3, np.random.default_rng(5)), 32)
    for p, e in zip(paths, expected):
        with Image.open(p) as img:
            np.testing.assert_array_equal(np.asarray(img), e)


def test_bad_arguments(plan):
    with pytest.raises(ValueError, match="count"):
        F.sample_fractal_plan(-1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="size"):
        F.render_fractals_cpu(plan, 0)
    with pytest.raises(ValueError, match="backend"):
        F.render_fractals_xp(plan, 8, "opencl")
    assert F.render_fractals_cpu(F.sample_fractal_plan(0, np.random.default_rng(0)), 8).shape == (0, 8, 8, 3)


def test_rendering_is_independent_of_threads_and_flushes(plan, monkeypatch):
    one = F.render_fractals_cpu(plan, 40, workers=1)
    np.testing.assert_array_equal(one, F.render_fractals_cpu(plan, 40, workers=3))
    monkeypatch.setattr(F.cpu, "_HITS_PER_FLUSH", 5000)  # IFS histogram added to in many parts
    np.testing.assert_array_equal(one, F.render_fractals_cpu(plan, 40))


@pytest.fixture
def count_renders(monkeypatch):
    """Counts calls of the CPU renderer (cache misses)."""
    calls = []
    real = F.render_fractals_cpu

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(F.cpu, "render_fractals_cpu", counting)
    return calls


def test_cache_hit_loads_same_pixels_without_rendering(tmp_path, count_renders):
    first = F.fractal_images(5, 24, seed=3, cache=tmp_path, progress=False)
    assert len(count_renders) == 1
    assert [p.name for p in tmp_path.iterdir()] == [F.cache_file(5, 24, 3, tmp_path).name]
    again = F.fractal_images(5, 24, seed=3, cache=tmp_path, progress=False)
    assert len(count_renders) == 1  # loaded, not rendered
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(first, F.render_fractals_cpu(
        F.sample_fractal_plan(5, np.random.default_rng(3)), 24))


def test_changed_key_renders_again(tmp_path, count_renders, monkeypatch):
    F.fractal_images(4, 24, seed=1, cache=tmp_path, progress=False)
    for kwargs in (dict(count=5, size=24, seed=1), dict(count=4, size=20, seed=1),
                   dict(count=4, size=24, seed=2)):
        F.fractal_images(**kwargs, cache=tmp_path, progress=False)
    assert len(count_renders) == 4
    monkeypatch.setattr(F.cache, "GENERATOR_VERSION", F.GENERATOR_VERSION + 1)
    F.fractal_images(4, 24, seed=1, cache=tmp_path, progress=False)
    assert len(count_renders) == 5
    assert len(list(tmp_path.iterdir())) == 5


def test_cache_location_and_opt_out(tmp_path, count_renders, monkeypatch):
    monkeypatch.setenv("GPUAUG_CACHE_DIR", str(tmp_path / "env"))
    F.fractal_images(2, 16, seed=0, progress=False)
    assert F.cache_file(2, 16, 0).parent == tmp_path / "env" / "fractals"
    assert F.cache_file(2, 16, 0).is_file()
    F.fractal_images(2, 16, seed=9, cache=False, progress=False)
    F.fractal_images(2, 16, seed=9, cache=False, progress=False)
    assert len(count_renders) == 3
    assert not F.cache_file(2, 16, 9).exists()


def test_bad_cache_file_is_rendered_again(tmp_path, count_renders):
    path = F.cache_file(3, 16, 0, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an array")
    with pytest.warns(UserWarning, match="unreadable"):
        imgs = F.fractal_images(3, 16, seed=0, cache=tmp_path, progress=False)
    assert len(count_renders) == 1 and imgs.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(np.load(path), imgs)  # replaced by a good file
    np.save(path, imgs[:2])
    with pytest.warns(UserWarning, match="not uint8"):
        F.fractal_images(3, 16, seed=0, cache=tmp_path, progress=False)
    assert len(count_renders) == 2
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_mixing_set_fractals_uses_the_cache(tmp_path, count_renders):
    from gpuaug.mixing import MixingSet

    a = MixingSet.fractals(3, size=16, seed=2, cache=tmp_path)
    b = MixingSet.fractals(3, size=16, seed=2, cache=tmp_path)
    assert len(count_renders) == 1
    np.testing.assert_array_equal(a.images, b.images)


def test_progress_bar(capsys):
    F.fractal_images(3, 16, seed=0, cache=False, progress=True)
    err = capsys.readouterr().err
    assert "rendering 3 fractals of 16x16" in err and "3/3" in err
    F.fractal_images(3, 16, seed=0, cache=False)  # fast: no bar
    assert capsys.readouterr().err == ""
