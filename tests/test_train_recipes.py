"""Every recipe in pipelines/ parses, names a known method with valid settings, and
resolves to trainer settings; command-line options override recipe values."""

from pathlib import Path

import pytest

from gpuaug.methods import make_method
from gpuaug.train.cli import build_parser, resolve_train_args
from gpuaug.train.models import ARCHS
from gpuaug.train.recipes import load_recipe
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
