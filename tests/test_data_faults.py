"""Data-file faults of issue 21: decompression bombs on the DALI load path (item 4), file
names that are not UTF-8 (6), the scan cache (8, 9), ``gpuaug scan`` numbers and Ctrl-C
(10) and the decode workers' isolation (S3). A class-stealing symlink (7) is tested with
the other symlink cases in test_loader_dropin.py."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from gpuaug.data import checkcache, datafiles, decodecheck
from gpuaug.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
NOT_UTF8 = b"odd\xff\xfename"  # a file name that is not UTF-8 (Latin-1, say)


@pytest.fixture
def root(clean_tree, tmp_path):
    """A private copy of the 22-file tree."""
    shutil.copytree(clean_tree[0], tmp_path / "data")
    return str(tmp_path / "data")


def _same_size_undecodable(data: bytes) -> bytes:
    """``data`` (a JPEG) with its entropy-coded body scrambled: same size, header and end
    marker intact, so only a decode finds it."""
    sos = data.index(b"\xff\xda")
    body = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    noise = np.random.default_rng(0).integers(0, 255, len(data) - 2 - body, dtype=np.uint8)
    return data[:body] + noise.tobytes() + b"\xff\xd9"


# ------------------------------------------------------------------ item 8: the scan cache


@pytest.mark.parametrize("validate", ["header", "decode"])
def test_a_cached_rescan_neither_opens_nor_decodes_unchanged_files(root, monkeypatch, validate):
    first = datafiles.scan_image_folder(root, validate=validate)
    headers, decodes = [], []
    real_header, real_items = datafiles._check_header, decodecheck.check_items
    monkeypatch.setattr(datafiles, "_check_header", lambda p: headers.append(p) or real_header(p))
    monkeypatch.setattr(decodecheck, "check_items", lambda items, *a, **k: decodes.append(items) or
                        real_items(items, *a, **k))
    again = datafiles.scan_image_folder(root, validate=validate)
    assert again.files == first.files and headers == [] and decodes == []
    changed = Path(root, "bee", "b0.JPEG")
    changed.write_bytes(b"")
    third = datafiles.scan_image_folder(root, validate=validate)
    assert [str(p) for p in headers] == [str(changed)] and third.skipped == {"empty": [str(changed)]}


# ------------------------------------------------------------------ item 9: cache robustness


def test_malformed_cache_entries_are_misses(root):
    from gpuaug.data.imagesize import max_pixels

    good = datafiles.scan_image_folder(root, validate="decode", cache=False)
    names = sorted(os.path.relpath(p, root) for p in good.files)

    def sig(i):  # as gpuaug.data.checkcache.file_signature writes it
        st = os.stat(os.path.join(root, names[i]))
        return f"{st.st_size} {st.st_mtime_ns} {st.st_ino} {st.st_ctime_ns}"

    junk = [5, None, "x", {"a": 1}, [], [1, 2], [0, 0, 0, 0, None, True, None], ["a"] * 7, "", sig(8),
            sig(9) + " x", [sig(10), 3, None], [sig(11), None, None], [sig(12), "empty", "also bad"],
            [sig(13), None, ["not", "text"]], [sig(14), None], sig(15).split() + [None, True, None]]
    path = checkcache.DecodeCache(root, datafiles.decoder_tag()).path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": checkcache.FORMAT, "decoder": datafiles.decoder_tag(),
                                "max_pixels": max_pixels(), "entries": dict(zip(names, junk))}))
    samples = datafiles.scan_image_folder(root, validate="decode")  # no crash: the junk is checked again
    assert samples.files == good.files and samples.skipped == {}
    assert len(json.loads(path.read_text())["entries"]) == len(names)  # and replaced


@pytest.mark.parametrize("how", ["rewritten in place", "replaced by a new file"])
def test_a_file_replaced_with_the_same_size_and_mtime_is_checked_again(root, how):
    path = Path(root, "ant", "a3.jpg")
    assert datafiles.scan_image_folder(root).skipped == {}
    st = path.stat()
    bad = _same_size_undecodable(path.read_bytes())
    assert len(bad) == st.st_size
    if how == "rewritten in place":  # cp -p onto the file: same inode, new ctime
        path.write_bytes(bad)
    else:  # rsync -t, tar: a new file renamed over it
        path.with_suffix(".new").write_bytes(bad)
        os.replace(path.with_suffix(".new"), path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert list(datafiles.scan_image_folder(root).skipped) == ["undecodable"]


# ------------------------------------------------------------------ item 10: gpuaug scan


def test_scan_refuses_a_worker_count_below_one(root, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(["scan", root, "--workers", "-3"])
    assert stop.value.code == 2 and "argument --workers: must be >= 1, got -3" in capsys.readouterr().err
    with pytest.raises(ValueError, match="workers must be a positive number"):
        decodecheck.check_items([(os.path.join(root, "ant", "a0.jpg"), 0, -1)], workers=-3)


def test_ctrl_c_during_scan_exits_130_and_keeps_the_finished_verdicts(root, monkeypatch, capsys):
    arrived = []
    real_advance = decodecheck._Progress.advance

    def advance(self, n=1):
        real_advance(self, n)
        arrived.append(n)
        if len(arrived) == 3:  # a real SIGINT, as Ctrl-C sends, once three files are decoded
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(decodecheck._Progress, "advance", advance)
    assert cli_main(["scan", root, "--workers", "1"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "kept in the validation cache" in err and "Traceback" not in err
    cache = checkcache.DecodeCache(root, datafiles.decoder_tag())
    decoded = [k for k in cache.entries if cache.get(k, checkcache.file_signature(os.path.join(root, k)))[1]]
    assert len(decoded) >= 3  # (all 22 if the workers finish before the signal is handled)
    monkeypatch.setattr(decodecheck._Progress, "advance", real_advance)
    decodes = []
    real_items = decodecheck.check_items
    monkeypatch.setattr(decodecheck, "check_items", lambda items, *a, **k: decodes.append(list(items)) or
                        real_items(items, *a, **k))
    assert cli_main(["scan", root]) == 0  # the rerun decodes only the rest
    assert sum(map(len, decodes)) == 22 - len(decoded)


# ------------------------------------------------------------------ item 6: names that are not UTF-8


def _odd_tree(root) -> tuple[bytes, bytes]:
    """A good JPEG and an empty file with names that are not UTF-8, in class ``ant``."""
    ant = os.fsencode(os.path.join(root, "ant"))
    good, empty = ant + b"/" + NOT_UTF8 + b".jpg", ant + b"/" + NOT_UTF8 + b"-empty.jpg"
    shutil.copyfile(os.path.join(root, "ant", "a0.jpg"), good)
    open(empty, "wb").close()
    return good, empty


def test_scan_reports_names_that_are_not_utf8_under_a_strict_utf8_locale(root):
    _odd_tree(root)
    env = dict(os.environ, LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8:strict", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "gpuaug.cli", "scan", root, "--validate", "header"],
                          capture_output=True, env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = proc.stdout.decode()
    assert "23 usable images" in out and "empty: 1" in out and "odd\\xff\\xfename-empty.jpg" in out


def test_the_command_line_prints_paths_that_are_not_utf8_under_a_strict_utf8_locale(tmp_path):
    out = os.fsencode(tmp_path) + b"/" + NOT_UTF8  # e.g. gpuaug train --data/--out such a folder
    env = dict(os.environ, LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8:strict", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "gpuaug.cli", "fractals", "--out", out, "--count", "1",
                           "--size", "16", "--executor", "cpu"], capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"wrote 1 fractals to " in proc.stdout and os.listdir(out) == [b"fractal_00000.png"]


def test_the_trainer_logs_names_that_are_not_utf8_under_a_strict_utf8_locale(tmp_path, monkeypatch):
    from _train_helpers import short_run, tiny_data

    from gpuaug.train.cli import main_train

    data = tiny_data(tmp_path / "d", per_class=4, val=1)
    cls = sorted((data / "train").iterdir())[0]
    open(os.fsencode(cls) + b"/" + NOT_UTF8 + b".jpg", "wb").close()  # empty: skipped, and logged
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", stdout)
    run = short_run(data, tmp_path / "out", "--loader", "torch", "--validate", "header", "--method", "none")
    assert main_train(run) == 0
    assert b"empty (e.g. " in stdout.buffer.getvalue() and b"odd\\xff\\xfename.jpg" in stdout.buffer.getvalue()


@pytest.mark.parametrize("kind", ["folder", "file list"])
def test_dali_loader_reads_names_that_are_not_utf8(root, tmp_path, kind):
    pytest.importorskip("nvidia.dali")
    from gpuaug.loader import FileListLoader, ImageFolderLoader

    good, _ = _odd_tree(root)
    cpu = dict(device="cpu", num_threads=1, image_size=32, validate="header", train=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the empty file's skip
        if kind == "folder":
            loader = ImageFolderLoader(root, 8, **cpu)
        else:
            files = datafiles.walk_files(root)
            loader = FileListLoader([str(f) for f in files], 8, labels=list(range(len(files))), **cpu)
    assert os.fsdecode(good) in loader.samples.files
    labels = [int(v) for _, y in loader for v in y]
    assert labels == loader.samples.labels  # every sample once, in order


def test_a_list_file_may_name_files_whose_names_are_not_utf8(root, tmp_path):
    good, _ = _odd_tree(root)
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"ant/a1.jpg 0\n" + os.fsencode(os.path.relpath(os.fsdecode(good), root)) + b" 1\n")
    samples = datafiles.read_file_list(listing, root=root, validate="header")
    assert samples.files == [os.path.join(root, "ant", "a1.jpg"), os.fsdecode(good)] and samples.labels == [0, 1]


def test_dali_loader_skips_a_deleted_file_whose_name_is_not_utf8(root):
    pytest.importorskip("nvidia.dali")
    from gpuaug.loader import ImageFolderLoader
    from gpuaug.loader.loadfail import BadSampleWarning

    good, empty = _odd_tree(root)
    os.unlink(empty)
    loader = ImageFolderLoader(root, 8, device="cpu", num_threads=1, image_size=32, validate="header", train=False)
    os.unlink(good)  # DALI's error then names it in bytes that are not UTF-8
    with pytest.warns(BadSampleWarning, match="deleted or moved after the scan"):
        labels = [int(v) for _, y in loader for v in y]
    assert len(labels) == 22 and loader.bad_files == {"missing": [os.fsdecode(good)]}


# ------------------------------------------------------------------ item 4: bombs on the DALI load path


@pytest.mark.parametrize("train,device", [(True, "cpu"), (False, "cpu"),
                                          pytest.param(True, "cuda", marks=pytest.mark.gpu)])
def test_dali_loader_skips_an_image_over_the_pixel_limit_at_load_time(root, monkeypatch, train, device):
    pytest.importorskip("nvidia.dali")
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from PIL import Image

    from gpuaug.loader import FileListLoader
    from gpuaug.loader.loadfail import BadSampleWarning

    files = [str(f) for f in datafiles.walk_files(root)]
    bomb = files[5]
    loader = FileListLoader(files, 4, validate="none", seed=1, device=device, num_threads=1, image_size=32,
                            train=train)  # no scan: met at load time (as a file replaced after the scan)
    Image.new("RGB", (50, 50)).save(bomb, format="PNG")  # 2500 pixels, the others at most 1476
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    with pytest.warns(BadSampleWarning, match=r"over Pillow's limit of 2000 pixels, not decoded"):
        labels = sorted(int(v) for _, y in loader for v in y)
    assert labels == [i for i in range(len(files)) if i != 5]
    assert loader.bad_files == {"too large": [bomb]}


# ------------------------------------------------------------------ S3: isolated decode workers


def test_decode_workers_do_not_import_modules_from_the_current_folder(root, tmp_path, monkeypatch):
    """A json.py lying in the folder a scan runs from is not run by the workers (PYTHONPATH=.
    from the checkout, as the tests run, included)."""
    planted = tmp_path / "here"
    planted.mkdir()
    marker = tmp_path / "planted-ran"
    (planted / "json.py").write_text(f"open({str(marker)!r}, 'w').close()\nfrom _json_real import *\n")
    monkeypatch.chdir(planted)
    items = [(os.path.join(root, "ant", f"a{i}.jpg"), 0, -1) for i in range(2)]
    try:
        verdicts = decodecheck.check_items(items, workers=2)
    except RuntimeError:
        verdicts = None  # the old workers die importing it
    assert not marker.exists() and verdicts == [None, None]


def test_decode_workers_import_gpuaug_from_an_uninstalled_checkout(root, tmp_path):
    """Run from a checkout with PYTHONPATH=. (not installed): the workers import that
    checkout's gpuaug, not the installed one, and not the current folder's modules."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "gpuaug", checkout / "gpuaug", ignore=shutil.ignore_patterns("__pycache__"))
    imported = tmp_path / "imported"
    with open(checkout / "gpuaug" / "__init__.py", "a") as f:
        f.write(f"\nopen({str(imported)!r}, 'a').write(__file__ + '\\n')\n")
    script = ("import os, sys; from gpuaug.data import decodecheck; os.chdir(sys.argv[1]); "
              "print(decodecheck.check_items([(sys.argv[2], 0, -1)], workers=1))")
    env = dict(os.environ, PYTHONPATH=".")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path), os.path.join(root, "ant", "a0.jpg")],
                          cwd=checkout, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[None]", proc.stderr
    lines = imported.read_text().splitlines()
    assert len(lines) == 2 and all(line == str(checkout / "gpuaug" / "__init__.py") for line in lines)
