"""Fault injection on real training runs (CPU, tiny model, built-in shapes): kill -9 at
chosen and random points, SIGTERM/SIGINT sent to the whole process group (as Slurm,
systemd and Ctrl-C do) with a DataLoader worker running, a full disk, a read-only disk.
After each: no torn or stray file, a metrics log with exactly one line per epoch, and a
resumed run ending bit-identical to one that never stopped. Also: an uncaught error, or
a DDP peer killed, ends the process (no hang on a worker at exit); files deleted or broken
between a stop and ``--resume``, a DALI load-time skip before the stop, and a batch whose
files all fail do not stop a run or change a resumed one."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import socket
import threading
import warnings
from pathlib import Path

import pytest
import torch

from gpuaug.train import checkpoint
from gpuaug.train.cli import main_train

from _train_helpers import short_run, tiny_data

EPOCHS = 2
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("shapes"))


def _args(data, out, *extra):
    return short_run(data, out, "--method", "augmix", "--epochs", str(EPOCHS), *extra)


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    """The weights and log of the run that never stopped."""
    out = tmp_path_factory.mktemp("straight")
    assert main_train(_args(data, out)) == 0
    return torch.load(out / "model.pt", weights_only=True)["model"], _log(out)


def _log(out):
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def _finish(data, out):
    """Continue a stopped or killed run to the end (from scratch if it died before its
    first checkpoint), as an operator would."""
    resume = ["--resume"] if (out / "checkpoint.pt").exists() else []
    assert main_train(_args(data, out, *resume)) == 0


def _check(out, straight):
    weights, log = straight
    assert not list(out.glob("*.tmp")), "temporary files left behind"
    got = torch.load(out / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(got[k], weights[k]) for k in weights)
    mine = _log(out)
    assert [r["epoch"] for r in mine] == list(range(1, EPOCHS + 1))
    for key in ("train_loss", "val_top1", "step"):
        assert [r[key] for r in mine] == [r[key] for r in log], key


class _Run:
    """``python -m gpuaug.train`` in a new session (its own process group, as under setsid)."""

    def __init__(self, args, prelude: str = "", env: dict | None = None):
        # The same intra-op thread count as this process, whose runs it is compared with
        # (importing FFCV at collection sets torch's threads to 1 in-process; the bits of a
        # CPU step depend on the thread count).
        code = (f"import sys, torch; torch.set_num_threads({torch.get_num_threads()}); {prelude}\n"
                "from gpuaug.train.cli import main; sys.exit(main(sys.argv[1:]))")
        self.proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                     env=None if env is None else dict(os.environ, **env))
        self.lines, self.cond = [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 120) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: sum(text in s for s in self.lines) >= count or self.proc.poll() is not None,
                                    timeout)
        assert ok and self.proc.poll() is None, f"run ended or stalled before {text!r}:\n{self.output}"

    def signal_group(self, sig) -> None:
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout: float = 120) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"still running after {timeout} s:\n{self.output}") from None
        self.proc.stdout.close()
        return rc

    @property
    def output(self) -> str:
        return "".join(self.lines)


# Each step waits a little after printing its progress line, so a signal sent on seeing a
# line lands inside the run (a tiny run is otherwise over in a fraction of a second).
_SLOW_STEPS = """
import time
from gpuaug._progress import EpochBar as Progress
_update = Progress.update
def _slow_update(self, *a, **k):
    _update(self, *a, **k)
    time.sleep(0.2)
Progress.update = _slow_update
"""


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"])
def test_group_signal_stops_gracefully(data, tmp_path, straight, sig, status):
    out = tmp_path / "run"
    run = _Run(_args(data, out, "--workers", "1"), prelude=_SLOW_STEPS)  # a DataLoader worker gets it too
    run.wait_for("epoch 1/2 [", count=1)  # the first step is done
    run.signal_group(sig)
    assert run.finish() == status, run.output
    assert "Traceback" not in run.output
    assert "stopped at epoch" in run.output or "stopped after epoch" in run.output
    state = checkpoint.read(out / "checkpoint.pt")
    assert state["step"] >= 1
    _finish(data, out)
    _check(out, straight)


# kill -9 right before or after the N-th file replacement of the run (config.json, then per
# epoch checkpoint + log, then model.pt): inside every write window, chosen at random.
_KILL_AT = """
import os, signal
from gpuaug.train import outputs
_real, _n = outputs.os.replace, [0]
def _replace(src, dst, N={n}, after={after}):
    _n[0] += 1
    if _n[0] == N and not after:
        os.kill(os.getpid(), signal.SIGKILL)
    _real(src, dst)
    if _n[0] == N and after:
        os.kill(os.getpid(), signal.SIGKILL)
outputs.os.replace = _replace
"""


@pytest.mark.parametrize("trial", range(3))
def test_kill9_at_random_points(data, tmp_path, straight, trial):
    rnd = random.Random(1000 + trial)
    n, after = rnd.randint(1, 2 + 2 * EPOCHS), rnd.random() < 0.5
    out = tmp_path / "run"
    run = _Run(_args(data, out), prelude=_KILL_AT.format(n=n, after=after))
    assert run.finish() == -signal.SIGKILL, run.output
    if not after:
        assert list(out.glob("*.tmp")), "the kill should have left a temporary file"
    if (out / "checkpoint.pt").exists():
        checkpoint.read(out / "checkpoint.pt")  # never torn
    _finish(data, out)
    _check(out, straight)


def test_kill9_mid_step(data, tmp_path, straight):
    out = tmp_path / "run"
    run = _Run(_args(data, out, "--workers", "1"), prelude=_SLOW_STEPS)
    run.wait_for("epoch 2/2 [", count=random.Random(7).randint(1, 3))
    run.signal_group(signal.SIGKILL)
    assert run.finish() == -signal.SIGKILL
    assert [r["epoch"] for r in _log(out)] == [1]
    _finish(data, out)
    _check(out, straight)


def _mounted_tmpfs(where: Path, options: str) -> bool:
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


def test_disk_full_is_one_line_and_keeps_the_checkpoint(data, tmp_path):
    mnt = tmp_path / "mnt"
    if not _mounted_tmpfs(mnt, "size=1000k"):  # room for one checkpoint (~0.6 MB), not two
        pytest.skip("cannot mount a tmpfs here (test_file_size_limit covers the same path)")
    try:
        out = mnt / "run"
        with pytest.raises(SystemExit) as err:
            main_train(_args(data, out))
        msg = str(err.value)
        assert msg.startswith("error: cannot write") and "checkpoint.pt" in msg and "disk is full" in msg
        assert "\n" not in msg and "inline_container" not in msg
        assert checkpoint.read(out / "checkpoint.pt")["epoch"] == 1  # the last good one
        assert [r["epoch"] for r in _log(out)] == [1]
        assert not list(out.glob("*.tmp"))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_file_size_limit_is_one_line(data, tmp_path):
    out = tmp_path / "run"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then the write fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, hard))  # below one checkpoint
    try:
        with pytest.raises(SystemExit, match=r"^error: cannot write \S*checkpoint.pt: ") as err:
            main_train(_args(data, out))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert "\n" not in str(err.value)
    assert not (out / "checkpoint.pt").exists() and not list(out.glob("*.tmp"))


def test_read_only_out_is_one_line(data, tmp_path):
    mnt = tmp_path / "ro"
    if not _mounted_tmpfs(mnt, "size=64k,ro"):
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        with pytest.raises(SystemExit, match=r"^error: cannot write \S*ro/run: the file system is read-only"):
            main_train(_args(data, mnt / "run"))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ------------------------------------------------------------------ no hang at exit
# The first step fails in the main process while a DataLoader worker (which ignores
# SIGTERM) is alive: the process must still exit, with the error.
_FAIL_FIRST_STEP = """
from gpuaug.train.schedule import Schedule
def _apply(self, optimizer, step):
    raise RuntimeError("injected failure")
Schedule.apply = _apply
"""


def test_uncaught_error_with_a_worker_alive_exits(data, tmp_path):
    run = _Run(_args(data, tmp_path / "run", "--workers", "1"), prelude=_FAIL_FIRST_STEP)
    assert run.finish(timeout=90) == 1, run.output
    assert "injected failure" in run.output


def test_ddp_survivor_of_a_killed_rank_exits(data, tmp_path):
    """Two gloo ranks by hand (as a scheduler starts them); rank 1 is SIGKILLed mid-epoch."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runs = [_Run(_args(data, tmp_path / "run", "--workers", "1", "--epochs", "50"), prelude=_SLOW_STEPS,
                 env=dict(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(port), OMP_NUM_THREADS="1"))
            for r in range(2)]
    runs[0].wait_for("epoch 1/50 [")
    runs[1].signal_group(signal.SIGKILL)
    assert runs[1].finish() == -signal.SIGKILL
    rc = runs[0].finish(timeout=90)
    assert rc not in (0, 143), runs[0].output  # an error, not a clean stop
    assert "Connection" in runs[0].output or "peer" in runs[0].output


# ------------------------------------------------------------------ data that changes under a run
def test_resume_after_files_vanish_or_break(tmp_path, capsys):
    from gpuaug.train.data import BadSampleWarning

    root = tiny_data(tmp_path / "d")
    out = tmp_path / "run"
    assert main_train(_args(root, out, "--stop-after-steps", "2")) == 143
    files = sorted((root / "train").rglob("*.jpg"))
    files[0].unlink()
    files[1].write_bytes(b"not a picture")
    with pytest.warns(BadSampleWarning):
        assert main_train(_args(root, out, "--resume")) == 0
    text = capsys.readouterr().out
    assert "checkpoint's list of 32 training files; 2 of them, now missing or failing the scan, are skipped" in text
    assert "skipped at load time so far: " in text
    assert checkpoint.read(out / "checkpoint.pt")["fingerprint"]["train_images"] == 32


def test_dali_resume_is_exact_after_a_load_time_skip(tmp_path):
    pytest.importorskip("nvidia.dali")
    root = tiny_data(tmp_path / "d")
    bad = sorted((root / "train").rglob("*.jpg"))[5]
    bad.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9")  # DALI's decoder refuses it

    def run(out, *extra):
        return main_train(_args(root, out, "--loader", "dali", "--validate", "none", *extra))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run(tmp_path / "straight") == 0
        assert run(tmp_path / "split", "--stop-after-steps", "4") == 143  # after epoch 1, which skipped it
        assert run(tmp_path / "split", "--resume") == 0
    a, b = (torch.load(tmp_path / name / "model.pt", weights_only=True)["model"] for name in ("straight", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _log(tmp_path / "split")[-1]["val_loss"] == _log(tmp_path / "straight")[-1]["val_loss"]


def test_a_batch_whose_files_all_fail_is_skipped(tmp_path, capsys):
    from gpuaug.train.data import BadSampleWarning

    root = tiny_data(tmp_path / "d", per_class=2, val=1)
    sorted((root / "train").rglob("*.jpg"))[3].write_bytes(b"not a picture")
    with pytest.warns(BadSampleWarning, match="every file of a batch failed"):
        rc = main_train(_args(root, tmp_path / "run", "--batch-size", "1", "--validate", "none", "--epochs", "1"))
    assert rc == 0
    assert "steps skipped so far: 1 (every file of a batch failed to load)" in capsys.readouterr().out
    assert _log(tmp_path / "run")[0]["step"] == 7  # 8 batches, one empty
