"""Run recipes: TOML files (``pipelines/*.toml``) with a ``[train]`` table (trainer
settings, the same names as the command-line options with ``_`` for ``-``) and a
``[method]`` table (``name`` plus the method's config fields).

Command-line options given explicitly override the recipe; the recipe overrides the
data-set defaults (CIFAR, the built-in shapes set), which override the built-in defaults.
Each recipe value carries its source in a trailing comment ([P] paper, [C] official code,
[A] assumption, ...); :func:`print_config` (``gpuaug train --recipe X --print-config``)
shows every resolved value with where it came from.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TRAIN_KEYS = {
    "arch", "epochs", "batch_size", "lr", "schedule", "warmup_epochs", "milestones", "gamma", "min_lr",
    "weight_decay", "momentum", "nesterov", "no_bn_decay", "label_smoothing", "jsd", "jsd_lambda",
    "image_size", "crop", "pretrained", "drop", "amp", "channels_last", "compile", "fractals", "mixing",
    "dataset", "normalization",
}


def recipe_path(recipe: str) -> Path:
    """``--recipe`` as given: a file, or the name of a ``pipelines/*.toml`` recipe; an
    unknown name is an error listing the available recipes."""
    path = Path(recipe).expanduser()
    if path.is_file():
        return path
    shipped = Path(__file__).resolve().parents[2] / "pipelines"
    for candidate in (shipped / recipe, shipped / f"{recipe}.toml"):
        if candidate.is_file():
            return candidate
    names = sorted(p.stem for p in shipped.glob("*.toml")) if shipped.is_dir() else []
    raise SystemExit(f"error: --recipe {recipe}: no such file or recipe; available recipes: "
                     f"{', '.join(names) if names else 'none found'} (in {shipped})")


def load_recipe(path: str | Path) -> dict:
    """{"train": {...}, "method": {"name": ..., **settings}} from a recipe file, checked for
    unknown keys (a typo in a recipe must not be silently ignored)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SystemExit(f"error: recipe {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise SystemExit(f"error: recipe {path} is not valid TOML: {err}") from None
    unknown_tables = set(data) - {"train", "method", "recipe"}
    if unknown_tables:
        raise SystemExit(f"error: recipe {path}: unknown tables {sorted(unknown_tables)}")
    train = dict(data.get("train", {}))
    unknown = set(train) - TRAIN_KEYS
    if unknown:
        raise SystemExit(f"error: recipe {path}: unknown [train] keys {sorted(unknown)}; known: {sorted(TRAIN_KEYS)}")
    method = dict(data.get("method", {}))
    if method and "name" not in method:
        raise SystemExit(f"error: recipe {path}: [method] needs a name")
    return {"train": train, "method": method, "recipe": dict(data.get("recipe", {}))}


_TABLE = re.compile(r"^\s*\[(\w+)\]\s*(#.*)?$")
_VALUE = re.compile(r"^\s*(\w+)\s*=[^#]*#\s*(.*\S)\s*$")


def recipe_comments(path: str | Path) -> dict:
    """{(table, key): the comment after the value} of a recipe file (its source tags)."""
    comments, table = {}, None
    for line in Path(path).read_text().splitlines():
        m = _TABLE.match(line)
        if m:
            table = m.group(1)
            continue
        m = _VALUE.match(line)
        if m and table:
            comments[(table, m.group(1))] = m.group(2)
    return comments


def config_sources(args, cfg) -> list[tuple[str, object, str]]:
    """(name, value, source) for every resolved trainer setting of ``cfg`` (from
    :func:`gpuaug.train.cli.resolve_train_args`) and every method setting, where source is
    "command line", "recipe <tag>", "data-set default (...)", "built-in default" or "derived"."""
    from ..methods import make_method
    from .defaults import CIFAR_DEFAULTS, DEFAULTS, SYNTHETIC_DEFAULTS

    dataset_name, dataset = None, {}
    if args.data is None:
        dataset_name, dataset = "built-in shapes set", SYNTHETIC_DEFAULTS
    else:
        from .data import resolve_data

        if resolve_data(args.data, log=lambda *a, **k: None)["kind"] == "cifar":
            dataset_name, dataset = "CIFAR", CIFAR_DEFAULTS
    recipe, tags = {"train": {}, "method": {}}, {}
    if args.recipe:
        path = recipe_path(args.recipe)
        recipe, tags = load_recipe(path), recipe_comments(path)
    explicit = {k for k, v in vars(args).items() if v is not None}

    def tag(table, key):
        return f"recipe {tags[(table, key)]}" if (table, key) in tags else "recipe (no source comment)"

    rows = []
    for key in DEFAULTS:
        value = getattr(cfg, key)
        if key in explicit:
            source = "command line"
        elif key == "method" and recipe["method"]:
            source = "recipe ([method] name)"
        elif key in recipe["train"]:
            source = tag("train", key)
        elif key in dataset:
            source = f"data-set default ({dataset_name})"
        else:
            source = "built-in default"
        if not source.startswith(("command", "recipe")) and value != {**DEFAULTS, **dataset}.get(key):
            source = "derived (from the settings above)"
        rows.append((key, value, source))
    if cfg.method not in (None, "none"):
        cli_settings = set()
        if args.settings:
            import json

            cli_settings = set(json.loads(args.settings))
        method = make_method(cfg.method, **cfg.method_settings)
        fields = method.config() if hasattr(method, "config") else dict(cfg.method_settings)
        for key, value in fields.items():
            if key in cli_settings:
                source = "command line (--settings)"
            elif key in cfg.method_settings:
                source = tag("method", key)
            else:
                source = f"built-in default ({type(method).__name__})"
            rows.append((f"method.{key}", value, source))
    return rows


def print_config(args, cfg, out=print) -> None:
    """Print each resolved setting with its source (``gpuaug train --print-config``)."""
    rows = config_sources(args, cfg)
    width = max(len(name) for name, _, _ in rows)
    vwidth = min(28, max(len(repr(value)) for _, value, _ in rows))
    out(f"resolved settings{f' for recipe {args.recipe}' if args.recipe else ''} "
        "(precedence: command line > recipe > data-set default > built-in default):")
    for name, value, source in rows:
        out(f"  {name:<{width}}  {value!r:<{vwidth}}  {source}")
