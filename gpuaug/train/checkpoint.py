"""Checkpoints: written atomically, checked completely before anything is loaded.

A checkpoint is one ``torch.save`` file (``<out>/checkpoint.pt``) holding a format tag,
the run's fingerprint (what must match to continue it: architecture, classes, method,
JSD, batch size, world size, image size, seed, steps per epoch), the model (unwrapped:
no DDP/compile prefixes), optimiser, AMP scaler, the schedule's global step, and the
position: ``epoch`` and ``batch`` (the next batch to train; 0 at an epoch boundary).

Writing: serialised in memory, then to a temporary file in the same folder, fsynced and
``os.replace``-d over the old one (:func:`gpuaug.train.outputs.save_torch`), so a crash
or a full disk leaves either the old or the new file, never a torn one. Loading: the file is read with ``weights_only=True`` (no code runs),
its format, fingerprint, and every model/optimiser tensor shape are checked against the
live run, and only then are the states loaded; on any mismatch a :class:`CheckpointError`
says what differs and nothing has been changed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .outputs import save_torch

FORMAT = "gpuaug-train-checkpoint-v1"
NAME = "checkpoint.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: corrupt, of another format, or of another run."""


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP and torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def save(path: Path | str, *, model, optimizer, scaler, step: int, epoch: int, batch: int,
         fingerprint: dict, extra: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT,
        "fingerprint": dict(fingerprint),
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "step": int(step), "epoch": int(epoch), "batch": int(batch),
        "extra": dict(extra or {}),
    }
    save_torch(path, state)
    return path


def read(path: Path | str) -> dict:
    """The checkpoint's contents, or CheckpointError if it is unreadable or not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, garbage, or pickled code
        raise CheckpointError(f"{path} is corrupt or not a gpuaug checkpoint "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a {FORMAT} file (found {found!r})")
    for key in ("fingerprint", "model", "optimizer", "scaler", "step", "epoch", "batch"):
        if key not in state:
            raise CheckpointError(f"{path} lacks {key!r}: corrupt or from another version")
    return state


def _check_tensors(what: str, saved: dict, live: dict, path) -> None:
    missing = sorted(set(live) - set(saved))
    unexpected = sorted(set(saved) - set(live))
    if missing or unexpected:
        raise CheckpointError(f"{path}: {what} does not match this run "
                              f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                              f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})")
    for k, v in live.items():
        s = saved[k]
        if not isinstance(s, torch.Tensor) or tuple(s.shape) != tuple(v.shape):
            raise CheckpointError(f"{path}: {what} {k!r} has shape "
                                  f"{tuple(getattr(s, 'shape', ()))}, this run needs {tuple(v.shape)}")


def _check_optimizer(saved: dict, optimizer, path) -> None:
    live = optimizer.state_dict()
    if not isinstance(saved, dict) or "param_groups" not in saved or "state" not in saved:
        raise CheckpointError(f"{path}: optimiser state is malformed")
    if [len(g["params"]) for g in saved["param_groups"]] != [len(g["params"]) for g in live["param_groups"]]:
        raise CheckpointError(f"{path}: optimiser parameter groups differ from this run's")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    ids = [i for g in saved["param_groups"] for i in g["params"]]
    for pid, p in zip(ids, params):
        for name, t in saved["state"].get(pid, {}).items():
            if isinstance(t, torch.Tensor) and t.dim() > 0 and tuple(t.shape) != tuple(p.shape):
                raise CheckpointError(f"{path}: optimiser state {name!r} has shape {tuple(t.shape)}, "
                                      f"the parameter has {tuple(p.shape)}")


def changed_settings(saved: dict | None, live: dict) -> list[str]:
    """Settings that differ between a checkpoint's run and this one ("name: checkpoint X,
    this run Y"); empty when the checkpoint predates recorded settings, and a setting it
    predates is not compared."""
    if not saved:
        return []
    return [f"{k}: checkpoint {saved[k]!r}, this run {v!r}" for k, v in live.items() if k in saved and saved[k] != v]


def load(path: Path | str, *, model, optimizer, scaler, fingerprint: dict, state: dict | None = None) -> dict:
    """Validate everything, then restore model, optimiser and scaler in place; returns
    {"step", "epoch", "batch", "extra"}. Raises CheckpointError before changing anything.
    ``state``: the file's contents when already :func:`read`."""
    state = read(path) if state is None else state
    saved_fp = state["fingerprint"]
    diffs = [f"{k}: checkpoint {saved_fp.get(k)!r}, this run {v!r}"
             for k, v in fingerprint.items() if saved_fp.get(k) != v]
    if diffs:
        raise CheckpointError(f"{path} belongs to a different run; refusing to resume:\n  " + "\n  ".join(diffs))
    net = unwrap(model)
    _check_tensors("model", state["model"], net.state_dict(), path)
    _check_optimizer(state["optimizer"], optimizer, path)
    if scaler is not None and scaler.is_enabled() and not state["scaler"]:
        raise CheckpointError(f"{path}: this run uses a float16 grad scaler, the checkpoint has none")
    net.load_state_dict(state["model"], strict=True)
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    return {k: state[k] for k in ("step", "epoch", "batch", "extra")}
