"""Error messages of `gpuaug preview/gallery/fractals/demo` name the option at fault and
what it should hold (an input-image folder is not called a mixing set)."""

import pytest

from gpuaug import cli


def _err(capsys, *argv) -> str:
    assert cli.main(list(argv)) == 2
    return capsys.readouterr().err


def _preview(tmp_path, *extra):
    return ("preview", "--method", "ipmix", "--size", "16", "--count", "1", "--draws", "1",
            "--executor", "cpu", "--out", str(tmp_path / "p.png"), *extra)


def test_missing_or_unusable_folders_name_their_option(tmp_path, capsys):
    err = _err(capsys, *_preview(tmp_path, "--images", "/nope"))
    assert "--images: input image folder '/nope' does not exist" in err and "mixing set" not in err
    err = _err(capsys, *_preview(tmp_path, "--mixing", "/nope"))
    assert "--mixing: mixing picture folder '/nope' does not exist" in err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a picture")
    err = _err(capsys, *_preview(tmp_path, "--images", str(junk)))
    assert "--images: input image folder" in err and "no usable picture" in err
    err = _err(capsys, *_preview(tmp_path, "--mixing", str(junk / "notes.txt")))
    assert "--mixing: mixing picture path" in err and "is not a folder" in err


def test_settings_errors_name_settings(tmp_path, capsys):
    assert "--settings '{k: 2}' is not valid JSON" in _err(capsys, *_preview(tmp_path, "--settings", "{k: 2}"))
    assert "must be a JSON object" in _err(capsys, *_preview(tmp_path, "--settings", "[2]"))
    err = _err(capsys, *_preview(tmp_path, "--settings", '{"k": 0}'))
    assert err.startswith("error: --settings") and "k" in err


def test_out_in_the_way_names_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _err(capsys, "preview", "--method", "augmix", "--executor", "cpu", "--out", str(blocker / "p.png"))
    assert "--out" in err and "a file is in the way" in err
    err = _err(capsys, "gallery", "--executor", "cpu", "--out", str(tmp_path))
    assert "--out" in err and "is a folder" in err
    err = _err(capsys, "fractals", "--executor", "cpu", "--count", "1", "--out", str(blocker))
    assert "--out" in err and "a file is in the way" in err


def test_negative_seed_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["fractals", "--out", str(tmp_path), "--seed", "-1"])
    assert exc.value.code == 2 and "--seed: must be >= 0" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["fractals", "gallery"])
def test_cuda_executor_without_a_gpu_says_so(tmp_path, command):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(SystemExit, match="--executor cuda was asked for but torch sees no CUDA device"):
        cli.main([command, "--executor", "cuda", "--size", "8", "--out", str(tmp_path / "o.png")])
