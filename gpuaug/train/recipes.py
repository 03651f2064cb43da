"""Run recipes: TOML files (``pipelines/*.toml``) with a ``[train]`` table (trainer
settings, the same names as the command-line options with ``_`` for ``-``) and a
``[method]`` table (``name`` plus the method's config fields).

Command-line options given explicitly override the recipe; the recipe overrides the
built-in defaults.
"""

from __future__ import annotations

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
    "dataset",
}


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
