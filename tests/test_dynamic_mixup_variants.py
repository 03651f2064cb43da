"""Dynamic Mixup's variants: single-sample JSD (``jsd_views=1``) from the method through
the loss and the trainer, and the ``independent_m2`` plan. (The distribution of
``independent_m2`` against the reference is in test_methods_vs_reference.py, its pixels
on both executors in test_methods_backends.py.)"""

import json
import math

import numpy as np
import pytest
import torch

import gpuaug
from gpuaug import reference
from gpuaug.data import samples
from gpuaug.train.cli import main_train
from gpuaug.train.losses import jsd_loss

from _train_helpers import short_run, tiny_data


@pytest.fixture(scope="module")
def images():
    return samples.batch(4, 16, seed=2)


def test_single_sample_views_are_clean_and_one_draw(images):
    method = gpuaug.DynamicMixup(jsd_views=1)
    views = method.views(images, seed=5, executor="cpu")
    assert len(views) == 2
    np.testing.assert_array_equal(views[0], images.astype(np.float32) / 255)
    # the one augmented view is the first plan drawn from the seed, as a plain call
    np.testing.assert_array_equal(views[1], method(images, seed=5, executor="cpu"))
    assert len(gpuaug.DynamicMixup().views(images, seed=5, executor="cpu")) == 3


@pytest.mark.parametrize("bad", [0, 3, True, 1.5])
def test_jsd_views_is_checked(bad):
    with pytest.raises(ValueError, match="jsd_views"):
        gpuaug.DynamicMixup(jsd_views=bad)


def test_independent_m2_is_checked_and_planned(images):
    with pytest.raises(TypeError, match="independent_m2"):
        gpuaug.DynamicMixup(independent_m2="yes")
    rng = np.random.default_rng(0)
    plan = gpuaug.DynamicMixup().plan(2000, 16, 16, rng)
    np.testing.assert_array_equal(plan.m2, np.float32(1) - plan.m1)
    plan = gpuaug.DynamicMixup(independent_m2=True, alpha=1.0).plan(2000, 16, 16, rng)
    assert plan.m1.dtype == plan.m2.dtype == np.float32
    # two independent U(0, 1) (Beta(1, 1)) draws: correlation ~ 0, and m1 + m2 spreads over (0, 2)
    assert abs(np.corrcoef(plan.m1, plan.m2)[0, 1]) < 0.1
    assert (plan.m1 + plan.m2 > 1.5).mean() > 0.05


def test_jsd_views_does_not_change_the_plan():
    a = gpuaug.DynamicMixup().plan(8, 16, 16, np.random.default_rng(3))
    b = gpuaug.DynamicMixup(jsd_views=1).plan(8, 16, 16, np.random.default_rng(3))
    for field in ("ops", "values", "m1", "m2"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_two_way_jsd_loss_matches_hand_computation():
    torch.manual_seed(0)
    logits = torch.randn(4, 3)  # clean (2 rows), aug (2 rows)
    y = torch.tensor([0, 2])
    loss, parts = jsd_loss(logits, y, jsd_lambda=12, views=1)

    def softmax(v):
        e = np.exp(v - v.max())
        return e / e.sum()

    p = [np.stack([softmax(r) for r in logits[s * 2:(s + 1) * 2].numpy().astype(np.float64)]) for s in range(2)]
    m = (p[0] + p[1]) / 2
    js = sum(np.mean(np.sum(q * (np.log(q) - np.log(m)), axis=1)) for q in p) / 2
    ce = -np.mean(np.log(p[0][np.arange(2), y.numpy()]))
    assert parts["js"].item() == pytest.approx(js, rel=1e-5)
    assert loss.item() == pytest.approx(ce + 12 * js, rel=1e-5)
    # two disjoint one-hot predictions: JS = log 2 (the two-distribution maximum)
    far = torch.tensor([[50.0, 0.0], [0.0, 50.0]])
    assert jsd_loss(far, torch.tensor([0]), views=1)[1]["js"].item() == pytest.approx(math.log(2), rel=1e-4)


def test_jsd_loss_checks_the_split_count():
    with pytest.raises(ValueError, match="2 equal splits"):
        jsd_loss(torch.zeros(3, 4), torch.zeros(1, dtype=torch.long), views=1)
    with pytest.raises(ValueError, match="views"):
        jsd_loss(torch.zeros(4, 4), torch.zeros(2, dtype=torch.long), views=0)


def test_reference_views_single_sample():
    img = samples.scene(16, seed=1)
    out = reference.views(reference.dynamic_mixup, img, rng=np.random.default_rng(0), jsd_views=1)
    assert len(out) == 2 and out[1].shape == (16, 16, 3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("shapes"))


@pytest.mark.parametrize("loader", ["torch", "dali"])
def test_trainer_runs_single_sample_jsd(data, tmp_path, loader):
    if loader == "dali":
        pytest.importorskip("nvidia.dali")
    out = tmp_path / "run"
    argv = short_run(data, out, "--method", "dynamic-mixup", "--jsd", "--settings",
                     json.dumps({"jsd_views": 1, "independent_m2": True}), "--loader", loader)
    if loader == "torch":
        argv.remove("--no-preview")
    assert main_train(argv) == 0
    rec = json.loads((out / "train.jsonl").read_text().splitlines()[-1])
    assert rec["step"] == 4 and rec["train_loss"] > 0 and 0 <= rec["train_js"] <= math.log(2) + 1e-6
    config = json.loads((out / "config.json").read_text())
    assert config["method_settings"]["jsd_views"] == 1
    if loader == "torch":
        from PIL import Image

        with Image.open(out / "preview.png") as img:  # gallery.grid: 110 px labels + 2 x (16 + 4)
            assert img.width == 110 + 2 * (16 + 4)
