"""Every recipe in pipelines/ parses, names a known method with valid settings, and
resolves to trainer settings; command-line options override recipe values."""

import re
from pathlib import Path

import pytest

from gpuaug.methods import make_method
from gpuaug.train.cli import build_parser, main_train, resolve_train_args
from gpuaug.train.models import ARCHS
from gpuaug.train.recipes import load_recipe, recipe_comments
from gpuaug.train.schedule import Schedule

RECIPES = sorted((Path(__file__).parent.parent / "pipelines").glob("*.toml"))


def test_recipes_exist_for_every_method_and_dataset():
    names = {p.stem for p in RECIPES}
    for method in ("augmix", "pixmix", "ipmix", "noisymix", "dynamic-mixup"):
        assert {f"cifar-{method}", f"imagenet-{method}"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_is_valid(path):
    recipe = load_recipe(path)
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in recipe["method"].items() if k != "name"}
    make_method(recipe["method"]["name"], **settings)
    cfg = resolve_train_args(build_parser().parse_args(["--recipe", str(path), "--out", "/tmp/unused"]))
    assert cfg.arch in ARCHS and cfg.method == recipe["method"]["name"]
    Schedule(cfg.schedule, cfg.lr, cfg.epochs, 100, cfg.warmup_epochs, cfg.milestones, cfg.gamma)
    text = path.read_text()
    assert text.count("#") >= len(recipe["train"])  # every value carries a source comment


def test_command_line_overrides_recipe():
    path = next(p for p in RECIPES if p.stem == "cifar-augmix")
    cfg = resolve_train_args(build_parser().parse_args(
        ["--recipe", str(path), "--epochs", "3", "--settings", '{"severity": 1}', "--out", "/tmp/unused"]))
    assert cfg.epochs == 3 and cfg.method_settings["severity"] == 1 and cfg.lr == 0.1


def test_unknown_recipe_key_is_an_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochz = 3\n")
    with pytest.raises(SystemExit, match="epochz"):
        load_recipe(bad)


# -- source tags and the values checked against the official scripts -------------------------
TAG = re.compile(r"\[(P|C|A|D|G)\]")


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_value_carries_a_source_tag(path):
    recipe, comments = load_recipe(path), recipe_comments(path)
    for table in ("train", "method"):
        for key in recipe[table]:
            if key == "name":
                continue
            assert TAG.search(comments.get((table, key), "")), f"{path.name}: [{table}] {key} has no source tag"


def _recipe(name):
    return load_recipe(next(p for p in RECIPES if p.stem == name))


def test_values_fixed_against_the_official_scripts():
    r = _recipe("cifar-noisymix")
    assert (r["train"]["schedule"], r["train"]["min_lr"], r["train"]["nesterov"]) == ("cosine", 1e-6, True)
    assert "milestones" not in r["train"]
    assert (r["method"]["add_noise_level"], r["method"]["mult_noise_level"], r["method"]["sparse_level"]) == (0.5, 0.5, 0.65)
    r = _recipe("imagenet-noisymix")
    assert (r["train"]["epochs"], r["train"]["schedule"], r["train"]["nesterov"]) == (200, "cosine", True)
    assert r["method"]["severity"] == 3
    tags = recipe_comments(next(p for p in RECIPES if p.stem == "imagenet-noisymix"))
    for key in ("mix_alpha", "add_noise_level", "mult_noise_level", "sparse_level"):
        assert tags[("method", key)].startswith("[A] no ImageNet source")
    assert _recipe("imagenet-pixmix")["train"]["weight_decay"] == 5e-4
    r = _recipe("imagenet-ipmix")["train"]
    assert (r["batch_size"], r["weight_decay"]) == (128, 5e-4)
    r = _recipe("cifar-ipmix")["train"]
    assert (r["arch"], r["drop"]) == ("wrn40_4", 0.3)
    assert "hard-coded" in recipe_comments(next(p for p in RECIPES if p.stem == "cifar-augmix"))[("method", "alpha")]
    assert _recipe("imagenet-augmix")["train"]["warmup_epochs"] == 5
    # NoisyMix imagenet.py at HEAD: --train-batch-size 256 (166 was its first commit's)
    assert _recipe("imagenet-noisymix")["train"]["batch_size"] == 256
    # PixMix cifar.py at HEAD defaults to WRN-40-4 with dropout 0.3: the comments say so
    pixmix = recipe_comments(next(p for p in RECIPES if p.stem == "cifar-pixmix"))
    assert "--widen-factor 4" in pixmix[("train", "arch")] and "--droprate 0.3" in pixmix[("train", "drop")]
    # Dynamic Mixup follows Goyal et al. as AugMix's 180-epoch ImageNet run: x0.1 at epochs // 3, 2 * (epochs // 3)
    dyn, augmix = _recipe("imagenet-dynamic-mixup")["train"], _recipe("imagenet-augmix")["train"]
    assert dyn["epochs"] == augmix["epochs"] == 180
    assert dyn["milestones"] == augmix["milestones"] == [dyn["epochs"] // 3, 2 * (dyn["epochs"] // 3)]
    assert dyn["warmup_epochs"] == augmix["warmup_epochs"] == 5
    for p in RECIPES:
        train = load_recipe(p)["train"]
        if train["schedule"] == "cosine" and "dynamic" not in p.stem:
            assert train["min_lr"] in (1e-6, 5e-7), p.stem  # the official floor (pixmix ImageNet: x 256 / 512)


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_normalisation_follows_the_official_scripts(path):
    cfg = resolve_train_args(build_parser().parse_args(["--recipe", str(path), "--out", "/tmp/unused"]))
    assert cfg.normalization == ("half" if path.stem.startswith("cifar-") else "imagenet")


def test_print_config_shows_each_value_with_its_source(capsys):
    path = next(p for p in RECIPES if p.stem == "cifar-noisymix")
    assert main_train(["--recipe", str(path), "--print-config", "--epochs", "7", "--settings", '{"severity": 2}']) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "recipe [C] get_lr" in lines["min_lr"] and "1e-06" in lines["min_lr"]
    assert "7" in lines["epochs"] and "command line" in lines["epochs"]
    assert "command line (--settings)" in lines["method.severity"]
    assert "recipe [C] README --add_noise_level 0.5" in lines["method.add_noise_level"]
    assert "built-in default" in lines["label_smoothing"]
    assert "data-set default" in lines["warmup_epochs"]  # no --data: the built-in shapes set's
    assert "recipe [C] Normalize([0.5] * 3" in lines["normalization"]


def test_print_config_takes_a_recipe_name_as_training_does(capsys):
    assert main_train(["--recipe", "imagenet-ipmix", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "for recipe imagenet-ipmix" in out and "weight_decay" in out and "0.0005" in out


def test_cosine_schedule_is_the_official_per_step_annealing_with_its_floor():
    """The official scripts' LambdaLR(get_lr(step, total, 1, 1e-6 / lr)), stepped every batch:
    lr(step) = 1e-6 + (lr - 1e-6) * (1 + cos(pi * step / total)) / 2."""
    import math

    lr, epochs, per_epoch = 0.1, 3, 7
    schedule = Schedule("cosine", lr, epochs, per_epoch, min_lr=1e-6)
    total = epochs * per_epoch
    for step in range(total + 1):
        factor = 1e-6 / lr + (1 - 1e-6 / lr) * 0.5 * (1 + math.cos(step / total * math.pi))
        assert schedule.lr(step) == pytest.approx(lr * factor, rel=1e-12, abs=1e-15)
    assert schedule.lr(total) == pytest.approx(1e-6)
