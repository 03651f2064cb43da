"""Checkpoints: resuming gives the parameters of the run that never stopped; a corrupt or
incompatible checkpoint is refused before anything is loaded."""

import pytest
import torch

from gpuaug.train import checkpoint
from gpuaug.train.cli import main_train
from gpuaug.train.models import build_model

from _train_helpers import short_run, tiny_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("shapes"))


def _weights(out):
    return torch.load(out / "model.pt", weights_only=True)["model"]


def _args(data, out, method="noisymix"):
    return short_run(data, out, "--method", method, "--jsd", "--epochs", "2")


@pytest.mark.parametrize("stop_at", [6, 4], ids=["mid-epoch", "epoch-boundary"])
def test_resume_equals_uninterrupted_run(data, tmp_path, stop_at):
    straight = tmp_path / "straight"
    assert main_train(_args(data, straight)) == 0
    split = tmp_path / "split"
    assert main_train(_args(data, split) + ["--stop-after-steps", str(stop_at)]) == 143
    assert not (split / "model.pt").exists()
    state = checkpoint.read(split / "checkpoint.pt")
    assert state["step"] == stop_at and (state["epoch"], state["batch"]) == divmod(stop_at, 4)
    assert main_train(_args(data, split) + ["--resume"]) == 0
    a, b = _weights(straight), _weights(split)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_corrupt_checkpoint_is_refused(data, tmp_path):
    out = tmp_path / "run"
    assert main_train(_args(data, out, "augmix")) == 0
    path = out / "checkpoint.pt"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])  # truncated
    with pytest.raises(SystemExit, match="corrupt"):
        main_train(_args(data, out, "augmix") + ["--resume"])
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SystemExit, match="corrupt"):
        main_train(_args(data, out, "augmix") + ["--resume"])


def test_incompatible_checkpoint_is_refused(data, tmp_path):
    out = tmp_path / "run"
    assert main_train(_args(data, out, "augmix")) == 0
    with pytest.raises(SystemExit, match="different run") as err:
        main_train(_args(data, out, "augmix") + ["--resume", "--batch-size", "4"])
    assert "batch_size" in str(err.value)
    with pytest.raises(SystemExit, match="no checkpoint"):
        main_train(_args(data, tmp_path / "empty", "augmix") + ["--resume"])


def test_shape_mismatch_leaves_the_model_untouched(tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny", 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fp = {"arch": "tiny"}
    checkpoint.save(tmp_path / "c.pt", model=model, optimizer=opt, scaler=None, step=3, epoch=1, batch=0,
                    fingerprint=fp)
    other = build_model("tiny", 5)
    other_opt = torch.optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(checkpoint.CheckpointError, match="shape"):
        checkpoint.load(tmp_path / "c.pt", model=other, optimizer=other_opt, scaler=None, fingerprint=fp)
    for k, v in other.state_dict().items():
        assert torch.equal(v, before[k])
    # and a matching model loads: step/epoch/batch come back
    same = build_model("tiny", 4)
    where = checkpoint.load(tmp_path / "c.pt", model=same, optimizer=torch.optim.SGD(same.parameters(), lr=0.1,
                            momentum=0.9), scaler=None, fingerprint=fp)
    assert (where["step"], where["epoch"], where["batch"]) == (3, 1, 0)
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), model.state_dict().values()))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = build_model("tiny", 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = checkpoint.save(tmp_path / "c.pt", model=model, optimizer=opt, scaler=None, step=1, epoch=0, batch=1,
                           fingerprint={})
    good = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        checkpoint.save(path, model=model, optimizer=opt, scaler=None, step=2, epoch=0, batch=2, fingerprint={})
    assert path.read_bytes() == good  # the old checkpoint survives
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind
