"""The command line: every subcommand writes what it says, bad input exits with a message."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gpuaug import cli


def test_gallery_writes_a_grid_of_every_op(tmp_path):
    out = tmp_path / "ops.png"
    assert cli.main(["gallery", "--out", str(out), "--size", "32", "--executor", "cpu"]) == 0
    img = Image.open(out)
    assert img.mode == "RGB" and img.height > 17 * 32  # one row per op


@pytest.mark.parametrize("method", cli.PREVIEW_METHODS)
def test_preview_every_method(tmp_path, method):
    out = tmp_path / f"{method}.png"
    assert cli.main(["preview", "--method", method, "--size", "32", "--count", "2", "--draws", "3",
                     "--executor", "cpu", "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape[0] > 2 * 32 and grid.shape[1] > 4 * 32


def test_preview_reads_image_and_mixing_folders(tmp_path):
    images, mixing = tmp_path / "images", tmp_path / "mixing"
    images.mkdir()
    mixing.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(images / f"{i}.jpg")
        Image.fromarray(rng.integers(0, 255, (60, 60, 3), dtype=np.uint8)).save(mixing / f"{i}.png")
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "grid.png"
    code = cli.main(["preview", "--method", "ipmix", "--images", str(images), "--mixing", str(mixing),
                     "--size", "32", "--settings", '{"k": 2, "t": 2}', "--executor", "cpu", "--out", str(out)])
    assert code == 0 and out.exists()


def test_fractals_writes_pngs(tmp_path):
    assert cli.main(["fractals", "--out", str(tmp_path), "--count", "3", "--size", "32", "--executor", "cpu"]) == 0
    files = sorted(tmp_path.glob("fractal_*.png"))
    assert len(files) == 3 and Image.open(files[0]).size == (32, 32)


def test_bad_input_exits_with_a_message(tmp_path, capsys):
    assert cli.main(["preview", "--method", "pixmix", "--images", str(tmp_path / "missing"), "--size", "32",
                     "--executor", "cpu", "--out", str(tmp_path / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["preview", "--method", "pixmix", "--settings", '{"beta": -1}', "--size", "32",
                     "--executor", "cpu", "--out", str(tmp_path / "x.png")]) == 2
    assert "beta" in capsys.readouterr().err
    assert cli.main(["preview", "--method", "augmix", "--settings", '{"nonsense": 1}', "--size", "32",
                     "--executor", "cpu", "--out", str(tmp_path / "x.png")]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_console_script_runs_as_module(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gpuaug", "gallery", "--out", str(tmp_path / "g.png"),
                             "--size", "24", "--executor", "cpu"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
