"""The trainer's command line and outputs: numbers checked at parse time, resume refuses
changed settings, the metrics log holds each epoch exactly once, outputs are atomic, and
a file that fails at train time is skipped and counted."""

import json
import os
import signal

import pytest

from gpuaug.train import checkpoint, outputs
from gpuaug.train.cli import _load_for_eval, build_eval_parser, build_parser, main_train

from _train_helpers import short_run, tiny_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("shapes"))


def _log(out):
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def _run(data, out, *extra):
    return main_train(short_run(data, out, "--method", "augmix", "--epochs", "2", *extra))


# ------------------------------------------------------------------ parse-time checks
@pytest.mark.parametrize("option,value", [
    ("--epochs", "0"), ("--epochs", "-1"), ("--batch-size", "0"), ("--image-size", "0"), ("--image-size", "4"),
    ("--workers", "-1"), ("--label-smoothing", "2"), ("--label-smoothing", "1"), ("--warmup-epochs", "-1"),
    ("--lr", "0"), ("--lr", "nan"), ("--weight-decay", "-1e-4"), ("--momentum", "1.5"), ("--fractals", "0"),
    ("--eval-every", "0"), ("--milestones", "30,-1"), ("--jsd-lambda", "-1"), ("--drop", "1"), ("--epochs", "x"),
    ("--seed", "-1"), ("--seed", "99999999999999999999999"),
])
def test_bad_numbers_are_refused_naming_the_option(option, value, capsys):
    with pytest.raises(SystemExit) as err:
        build_parser().parse_args([option, value])
    assert err.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


@pytest.mark.parametrize("option,value", [("--batch-size", "0"), ("--workers", "-2"), ("--limit-batches", "0")])
def test_eval_numbers_are_checked(option, value, capsys):
    with pytest.raises(SystemExit):
        build_eval_parser().parse_args(["--checkpoint", "x", option, value])
    assert f"argument {option}" in capsys.readouterr().err


def test_every_option_has_help_and_bn_decay_reads_well():
    for parser in (build_parser(), build_eval_parser()):
        for action in parser._actions:
            if action.option_strings and action.dest not in ("help", "stop_after_steps"):
                assert action.help, action.option_strings
    text = build_parser().format_help()
    assert "--no-no-bn-decay" not in text and "shapes 48" in text
    assert build_parser().parse_args(["--no-bn-decay"]).bn_decay is False  # the old spelling still works


@pytest.mark.parametrize("extra,message", [
    (["--settings", "[1]"], "--settings must be a JSON object"),
    (["--settings", '{"severity": 99}'], "severity must be in 1..10, got 99"),
    (["--gamma", "1e308", "--schedule", "step", "--milestones", "0"], "beyond float32's range"),
])
def test_bad_settings_are_one_line(data, tmp_path, extra, message):
    with pytest.raises(SystemExit) as err:
        main_train(short_run(data, tmp_path / "r", "--method", "augmix", *extra))
    assert str(err.value).startswith("error: ") and message in str(err.value) and "\n" not in str(err.value)


def test_the_largest_seed_trains(data, tmp_path):
    assert main_train(short_run(data, tmp_path / "r", "--method", "augmix", "--seed", str(2**63 - 1))) == 0


def test_eval_on_an_unwritable_path_is_one_line_naming_it(data, tmp_path, monkeypatch):
    import errno
    import tempfile

    from gpuaug.train.cli import main_eval

    out = tmp_path / "run"
    assert _run(data, out, "--epochs", "1") == 0

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)  # as on a read-only folder (the tests run as root)
    with pytest.raises(SystemExit) as err:
        main_eval(["--checkpoint", str(out), "--data", str(data), "--device", "cpu", "--workers", "0"])
    msg = str(err.value)
    assert msg.startswith(f"error: cannot write {out / 'eval.json'}: Permission denied") and "--json" in msg


def test_unknown_recipe_lists_the_recipes(data, tmp_path):
    with pytest.raises(SystemExit, match="available recipes: .*cifar-augmix"):
        main_train(short_run(data, tmp_path / "r", "--recipe", "cifar-augmx"))


def test_recipe_values_are_checked_too(data, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text("[train]\nepochs = 0\n")
    with pytest.raises(SystemExit, match=r"recipe .*r.toml: epochs must be >= 1, got 0"):
        main_train(short_run(data, tmp_path / "r", "--recipe", str(recipe)))


def test_too_small_data_suggests_batch_size(data, tmp_path):
    with pytest.raises(SystemExit, match="--batch-size"):
        main_train(short_run(data, tmp_path / "r", "--batch-size", "64"))


# ------------------------------------------------------------------ resume and settings
def test_resume_refuses_changed_settings_unless_allowed(data, tmp_path):
    out = tmp_path / "run"
    assert _run(data, out, "--stop-after-steps", "2") == 143
    config = (out / "config.json").read_bytes()
    with pytest.raises(SystemExit, match="--allow-changed-settings") as err:
        _run(data, out, "--resume", "--lr", "0.01", "--label-smoothing", "0.1")
    assert "lr: checkpoint 0.05, this run 0.01" in str(err.value) and "label_smoothing" in str(err.value)
    assert (out / "config.json").read_bytes() == config  # not rewritten
    assert _run(data, out, "--resume") == 0  # same settings: fine, config.json kept as it was
    assert (out / "config.json").read_bytes() == config


def test_resume_refuses_other_data_unless_allowed(data, tmp_path):
    import shutil

    other = tmp_path / "copy"
    shutil.copytree(data, other)  # the same shape: the fingerprint alone does not tell
    out = tmp_path / "run"
    assert _run(data, out, "--stop-after-steps", "2") == 143
    with pytest.raises(SystemExit, match=r"other settings:\n  data: checkpoint .*, this run '.*copy'"):
        _run(other, out, "--resume")
    assert _run(other, out, "--resume", "--allow-changed-settings") == 0
    assert json.loads((out / "config.json").read_text())["data"] == str(other)  # config.json stays true


def test_resume_refuses_another_loader(data, tmp_path):
    pytest.importorskip("nvidia.dali")
    out = tmp_path / "run"
    assert _run(data, out, "--stop-after-steps", "2", "--loader", "torch") == 143
    with pytest.raises(SystemExit, match="loader: checkpoint 'torch', this run 'dali'"):
        _run(data, out, "--resume", "--loader", "dali")


def test_allowed_changes_are_recorded(data, tmp_path):
    out = tmp_path / "run"
    assert _run(data, out, "--stop-after-steps", "2") == 143
    assert _run(data, out, "--resume", "--lr", "0.01", "--allow-changed-settings") == 0
    changes = json.loads((out / "config.json").read_text())["changed_on_resume"]
    assert changes[0]["epoch"] == 1 and "lr" in changes[0]["changes"][0]


# ------------------------------------------------------------------ the metrics log
def test_stop_on_an_epochs_last_batch_logs_that_epoch(data, tmp_path):
    out = tmp_path / "run"
    assert _run(data, out, "--stop-after-steps", "4") == 143  # 4 steps per epoch
    log = _log(out)
    assert [r["epoch"] for r in log] == [1] and "val_top1" in log[0]
    assert _run(data, out, "--resume") == 0
    assert [r["epoch"] for r in _log(out)] == [1, 2]


def test_kill_between_checkpoint_and_log_neither_loses_nor_repeats(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = outputs.write_log

    class Killed(BaseException):
        pass

    def killed(path, records):
        if len(records) == 1 and "epoch" in records[0]:
            raise Killed  # as if killed right after the epoch's checkpoint
        return real(path, records)

    monkeypatch.setattr(outputs, "write_log", killed)
    with pytest.raises(Killed):
        _run(data, out)
    assert checkpoint.read(out / "checkpoint.pt")["epoch"] == 1
    monkeypatch.setattr(outputs, "write_log", real)
    assert _run(data, out, "--resume") == 0
    assert [r["epoch"] for r in _log(out)] == [1, 2]


def test_mid_epoch_resume_logs_the_whole_epoch(data, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _run(data, straight) == 0
    assert _run(data, split, "--stop-after-steps", "6") == 143
    assert [r["epoch"] for r in _log(split)] == [1]
    assert _run(data, split, "--resume") == 0
    a, b = _log(straight), _log(split)
    assert [r["epoch"] for r in b] == [1, 2] and b[1]["resumed_at_batch"] == 2 and "partial" not in b[1]
    for key in ("train_loss", "train_top1", "val_top1", "val_loss", "lr", "step"):
        assert [r[key] for r in a] == [r[key] for r in b], key


def test_overwrite_starts_a_fresh_log(data, tmp_path):
    out = tmp_path / "run"
    assert _run(data, out) == 0
    (out / "checkpoint.pt.abc123.tmp").write_bytes(b"orphan")
    assert _run(data, out, "--overwrite", "--stop-after-steps", "2") == 143
    assert not (out / "train.jsonl").exists() and not (out / "model.pt").exists()
    assert not list(out.glob("*.tmp"))


# ------------------------------------------------------------------ atomic outputs
def test_eval_prefers_a_valid_checkpoint_over_a_torn_model(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(data, out) == 0
    blob = (out / "model.pt").read_bytes()
    (out / "model.pt").write_bytes(blob[: len(blob) // 2])
    arch, classes, state, size, crop, normalization = _load_for_eval(str(out))
    assert arch == "tiny" and len(classes) == 4
    assert "using" in capsys.readouterr().out


def test_write_atomic_keeps_the_old_file_on_a_write_error(tmp_path, monkeypatch):
    path = outputs.write_atomic(tmp_path / "config.json", "old")

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as err:
        outputs.write_atomic(path, "new")
    assert err.value.filename == str(path)
    monkeypatch.undo()
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["config.json"]
    msg = outputs.describe_os_error(err.value)
    assert "config.json" in msg and "disk is full" in msg and "\n" not in msg


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = outputs.write_atomic(tmp_path / "train.jsonl", "{}\n")
        outputs.write_atomic(path, "{}\n{}\n")  # a replacement too
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "train.jsonl"]


# ------------------------------------------------------------------ bad files at train time
def _bad_jpeg(good: bytes) -> bytes:
    return good[:20] + bytes(range(256)) * 8 + b"\xff\xd9"  # header and end marker, garbage between


def test_bad_files_met_at_train_time_are_skipped_and_counted(tmp_path, monkeypatch):
    from PIL import Image

    from gpuaug.train.data import BadSampleWarning, TorchLoader, image_folder

    root = tiny_data(tmp_path / "d", per_class=4, val=1)
    files = sorted((root / "train").rglob("*.jpg"))
    files[0].write_bytes(_bad_jpeg(files[0].read_bytes()))
    ds = image_folder(root / "train", validate="header")  # the header check lets it through
    assert str(files[0]) in ds.paths
    files[1].unlink()  # deleted after the scan
    big = files[2]
    Image.new("RGB", (40, 40)).save(big, format="JPEG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 is over the limit, 16x16 is not
    loader = TorchLoader(ds, 8, image_size=16, num_workers=0, crop="pad")
    with pytest.warns(BadSampleWarning) as caught:
        n = sum(labels.shape[0] for _, labels in loader)
    assert n == len(ds) - 3
    assert {r: len(f) for r, f in loader.bad_files.items()} == {"undecodable": 1, "missing": 1, "too large": 1}
    texts = " ".join(str(w.message) for w in caught)
    assert "rescan" in texts and str(files[1]) in texts


def test_validate_option_reaches_the_scan(tmp_path):
    root = tiny_data(tmp_path / "d", per_class=4, val=1)
    bad = sorted((root / "train").rglob("*.jpg"))[0]
    bad.write_bytes(_bad_jpeg(bad.read_bytes()))
    from gpuaug.train.data import load_split, resolve_data

    spec = resolve_data(str(root))
    assert str(bad) in load_split(spec, True, validate="header").paths
    assert str(bad) not in load_split(spec, True, validate="decode").paths


def test_images_over_the_pixel_limit_are_skipped_at_scan_time(tmp_path, monkeypatch):
    from PIL import Image

    from gpuaug.train.data import image_folder

    root = tiny_data(tmp_path / "d", per_class=4, val=1)
    big = sorted((root / "train").rglob("*.jpg"))[0]
    Image.new("RGB", (40, 40)).save(big, format="JPEG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for validate in ("header", "decode"):
        ds = image_folder(root / "train", validate=validate)
        assert ds.skipped == {"too large": [str(big)]} and str(big) not in ds.paths


def test_dali_failure_names_the_file_and_the_remedy_that_helps(tmp_path):
    from gpuaug.loader.loadfail import explain

    kept, gone = tmp_path / "a.jpg", tmp_path / "b.jpg"
    kept.write_bytes(b"x")
    msg = explain(3, f"Critical error ... could not open {gone}", [kept, gone], "header")
    assert str(gone) in msg and "deleted" in msg and "validate='decode'" not in msg
    msg = explain(3, f"Critical error ... nvjpeg failed on {kept}", [kept], "header")
    assert str(kept) in msg and "validate='decode'" in msg
    assert "re-encode" in explain(3, f"Critical error {kept}", [kept], "decode")


def test_a_second_signal_aborts_at_once():
    import subprocess
    import sys

    code = ("import os, signal, time\nfrom gpuaug.train.signals import GracefulStop\n"
            "with GracefulStop() as stop:\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    time.sleep(0.1)\n"
            "    assert stop.flag and stop.exit_status == 130\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(30)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGTERM, r.stderr
    assert "received SIGINT" in r.stderr


def test_data_without_val_says_validation_is_skipped(tmp_path, capsys):
    import shutil

    root = tiny_data(tmp_path / "d", per_class=4, val=1)
    shutil.rmtree(root / "val")
    assert main_train(short_run(root, tmp_path / "run", "--method", "none", "--batch-size", "4")) == 0
    text = capsys.readouterr().out
    assert "validation is skipped" in text
    suggestion = next(line for line in text.splitlines() if line.startswith("evaluate with:"))
    assert f"--data {root}" not in suggestion and "val/" in suggestion


def test_permission_errors_are_one_line_naming_the_path():
    import errno

    msg = outputs.describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/data/x"))
    assert msg.startswith("error: permission denied: /data/x") and "\n" not in msg
    assert outputs.describe_os_error(OSError(errno.EIO, "I/O error", "/x")) is None


@pytest.mark.parametrize("loader", ["torch", "dali"])
def test_training_survives_a_bad_file_that_passed_the_scan(tmp_path, capsys, loader):
    from gpuaug.train.data import BadSampleWarning

    if loader == "dali":
        pytest.importorskip("nvidia.dali")
    root = tiny_data(tmp_path / "d", per_class=4, val=1)
    bad = sorted((root / "train").rglob("*.jpg"))[0]
    bad.write_bytes(_bad_jpeg(bad.read_bytes()) if loader == "torch" else
                    b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9")  # DALI's decoder refuses it
    with pytest.warns(BadSampleWarning, match="undecodable"):
        rc = main_train(short_run(root, tmp_path / "run", "--method", "augmix", "--batch-size", "4",
                                  "--validate", "header", "--loader", loader, "--epochs", "2"))
    out = capsys.readouterr().out
    assert rc == 0 and out.count("skipped at load time so far: undecodable: 1") == 2
    assert [r["epoch"] for r in _log(tmp_path / "run")] == [1, 2]


def test_ctrl_c_before_the_loop_exits_130_without_a_traceback(data, tmp_path, monkeypatch):
    from gpuaug.train import loop

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "resolve_data", interrupted)
    assert main_train(short_run(data, tmp_path / "run")) == 130


def test_sample_list_round_trips_odd_names(tmp_path):
    import io

    import torch

    from gpuaug.train import samplelist

    root = tmp_path / "train"
    files = [str(root / "a" / "1.jpg"), str(root / "b" / os.fsdecode(b"caf\xe9.jpg")), "/elsewhere/x.jpg"]
    packed = samplelist.pack(root, files, [0, 1, 1])
    buf = io.BytesIO()
    torch.save(packed, buf)
    buf.seek(0)
    assert samplelist.unpack(torch.load(buf, weights_only=True), root) == (files, [0, 1, 1])
    (root / "a").mkdir(parents=True)
    open(files[0], "w").close()
    gone, added = samplelist.reconcile(files, [str(root / "a" / "2.jpg")], {"empty": [files[0]]})
    assert gone == {files[0]: "empty", files[1]: "missing", files[2]: "missing"} and added == 1
