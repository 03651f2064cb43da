"""Every ```python block of README.md runs as written, each in a fresh interpreter in a
temporary folder holding small generated data.

Markers: an HTML comment on the line just before a block's opening fence, holding
space-separated tokens, changes how it runs:

* ``<!-- gpu -->``: needs a CUDA device; runs under ``-m gpu`` (skipped without a GPU).
  Unmarked blocks run with ``CUDA_VISIBLE_DEVICES=""``: they must work on a CPU-only machine.
* ``<!-- requires=ffcv -->`` (comma-separated modules): skipped when one is not importable.
* ``<!-- skip -->``: never run (say why in the text around it).

Tokens combine: ``<!-- gpu requires=ffcv -->``. The data a block may use, prepared in
its working folder: ``data/train`` and ``data/val`` (ImageFolder trees: 2 classes of 20
small JPEGs each), ``data/cifar/cifar-10-batches-py`` (CIFAR-10 python files: 5 x 8
training and 8 test images) and, when FFCV is importable, ``train.beton``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cifarfiles import write_cifar10
from conftest import _jpeg
from imagegen import natural

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TOKENS = ("gpu", "skip", "requires")
TIMEOUT_S = 600


def readme_snippets(text: str) -> list[dict]:
    """``[{line, code, tokens}]`` for each ```python block (line: of the opening fence)."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        if re.fullmatch(r"```python\s*", lines[i]):
            start, j = i, i + 1
            while j < len(lines) and not re.fullmatch(r"```\s*", lines[j]):
                j += 1
            if j == len(lines):
                raise ValueError(f"README.md line {start + 1}: ```python block is never closed")
            marker = re.fullmatch(r"\s*<!--(.*)-->\s*", lines[start - 1]) if start else None
            tokens = marker.group(1).split() if marker else []
            out.append(dict(line=start + 1, code="\n".join(lines[start + 1:j]) + "\n", tokens=tokens))
            i = j
        i += 1
    return out


SNIPPETS = readme_snippets(README.read_text())


def _params() -> list:
    return [pytest.param(s, id=f"line{s['line']}", marks=[pytest.mark.gpu] if "gpu" in s["tokens"] else [])
            for s in SNIPPETS]


def test_readme_has_snippets_with_known_markers():
    assert len(SNIPPETS) >= 3
    for s in SNIPPETS:
        unknown = [t for t in s["tokens"] if t.split("=", 1)[0] not in TOKENS]
        assert not unknown, f"README.md line {s['line']}: unknown snippet marker tokens {unknown} (known: {TOKENS})"


def _write_tree(root: Path, per_class: int = 20) -> None:
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i:03d}.jpg").write_bytes(_jpeg(natural(32, 40, 100 * c + i)))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    _write_tree(root / "data" / "train")
    _write_tree(root / "data" / "val", per_class=4)
    write_cifar10(root / "data" / "cifar", per_batch=8, test=8)
    if importlib.util.find_spec("ffcv") is not None:
        from gpuaug.ffcv import write_dataset

        write_dataset(str(root / "train.beton"), [(natural(32, 32, i), i % 2) for i in range(16)])
    return root


@pytest.mark.parametrize("snippet", _params())
def test_readme_snippet_runs(snippet, workdir):
    tokens = snippet["tokens"]
    if "skip" in tokens:
        pytest.skip("marked <!-- skip --> in README.md")
    for t in tokens:
        if t.startswith("requires="):
            missing = [m for m in t.split("=", 1)[1].split(",") if importlib.util.find_spec(m) is None]
            if missing:
                pytest.skip(f"needs {', '.join(missing)}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [os.environ.get("PYTHONPATH", "")]),
               GPUAUG_CACHE_DIR=str(workdir / "cache"), MPLBACKEND="Agg")
    if "gpu" in tokens:
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA device")
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""  # proves the block runs on a CPU-only machine
    script = workdir / f"snippet_line{snippet['line']}.py"
    script.write_text(snippet["code"])
    try:
        done = subprocess.run([sys.executable, script.name], cwd=workdir, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"README.md line {snippet['line']}: the snippet ran past {TIMEOUT_S} s")
    assert done.returncode == 0, (f"README.md line {snippet['line']}: the snippet failed:\n{snippet['code']}\n"
                                  f"--- stderr ---\n{done.stderr[-4000:]}")
