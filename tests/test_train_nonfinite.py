"""The training step reads the non-finite-loss flag every FINITE_CHECK_EVERY steps (and at
the end of an epoch, before a checkpoint), not every step: no per-step host sync."""

import pytest
import torch

from gpuaug.train import loop
from gpuaug.train.cli import main_train

from _train_helpers import short_run, tiny_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("shapes"))


@pytest.fixture
def reads(monkeypatch):
    """Count the host reads of the flag; check every 3 steps."""
    count = []
    real = loop._raise_if_nonfinite

    def counting(first_bad, schedule):
        count.append(int(first_bad))
        return real(first_bad, schedule)

    monkeypatch.setattr(loop, "FINITE_CHECK_EVERY", 3)
    monkeypatch.setattr(loop, "_raise_if_nonfinite", counting)
    return count


def test_finite_run_reads_the_flag_every_k_steps(data, tmp_path, reads):
    assert main_train(short_run(data, tmp_path / "run", "--method", "none")) == 0
    assert reads == [-1, -1]  # 4 steps: after step 3 and at the end of the epoch


def test_nonfinite_loss_stops_the_run_naming_the_first_bad_step(data, tmp_path, reads, monkeypatch):
    real_ce = loop.cross_entropy
    calls = []

    def nan_at_second_step(logits, targets, smoothing):
        calls.append(1)
        loss = real_ce(logits, targets, smoothing)
        return loss * torch.nan if len(calls) == 2 else loss

    monkeypatch.setattr(loop, "cross_entropy", nan_at_second_step)
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=r"loss became non-finite at step 1 \(lr"):
        main_train(short_run(data, out, "--method", "none"))
    assert reads == [1] and len(calls) == 3  # noticed at the first read, after step 3
    assert not (out / "checkpoint.pt").exists()
