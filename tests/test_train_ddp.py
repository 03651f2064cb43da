"""Two-process DDP (gloo on the CPU) through torchrun: shards, reduced metrics, rank 0 writes."""

import json
import os
import subprocess
import sys

import torch

from _train_helpers import short_run, tiny_data


def test_two_process_gloo_run(tmp_path):
    data = tiny_data(tmp_path / "shapes")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "gpuaug.train", "train", *short_run(data, out, "--method", "augmix", "--jsd", "--epochs", "2")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 rank(s)" in proc.stdout
    assert proc.stdout.count("validation accuracy by epoch") == 1  # only rank 0 prints the summary
    lines = [json.loads(l) for l in (out / "train.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2]  # rank 0 alone writes: one line per epoch
    assert lines[-1]["step"] == 4  # 32 images / 2 ranks / batch 8 = 2 steps per epoch
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["fingerprint"]["world_size"] == 2
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tmp") == []
