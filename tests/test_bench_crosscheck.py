"""``python -m bench.crosscheck``: structure only. The authors' repositories are not here
(no network), so stand-ins with their interfaces check the harness's plumbing: the
module-level argparse of ``cifar.py``, the ``IMAGE_SIZE`` globals, loading
``src/noisy_mixup.py`` without its package, and the CUDA / numpy-1.x shims."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import crosscheck  # noqa: E402

FAKE_PIXMIX = {
    "pixmix_utils.py": "IMAGE_SIZE = 32\n",
    "cifar.py": """
import argparse
import torch
import pixmix_utils as utils
parser = argparse.ArgumentParser()
parser.add_argument('--data-path', required=True)
parser.add_argument('--mixing-set', required=True)
parser.add_argument('--k', type=int, default=4)
parser.add_argument('--beta', type=int, default=3)
parser.add_argument('--aug-severity', type=int, default=3)
parser.add_argument('--all-ops', action='store_true')
args = parser.parse_args()

def pixmix(orig, mixing_pic, preprocess):
    assert args.all_ops and args.k == 4 and args.beta == 3 and args.aug_severity == 3
    assert orig.size == mixing_pic.size == (utils.IMAGE_SIZE, utils.IMAGE_SIZE)
    mixed = 0.5 * preprocess['tensorize'](orig) + 0.5 * preprocess['tensorize'](mixing_pic)
    return preprocess['normalize'](torch.clip(mixed, 0, 1))
""",
}
FAKE_NOISYMIX = {
    "augmentations.py": "IMAGE_SIZE = 32\n",
    "aug_utils.py": """
import augmentations

def aug(image, preprocess, args):
    assert image.size == (augmentations.IMAGE_SIZE, augmentations.IMAGE_SIZE)
    assert (args.mixture_width, args.mixture_depth, args.aug_severity) == (3, -1, 3)
    return preprocess(image) * 0.9
""",
    "src/__init__.py": "raise ImportError('the data code of the package needs a module that is not installed')\n",
    "src/noisy_mixup.py": """
import numpy as np
import torch

def do_noisy_mixup(x, y, jsd=0, alpha=0.0, add_noise_level=0.0, mult_noise_level=0.0, sparse_level=0.0):
    lam = np.random.beta(alpha, alpha)
    q = np.int(x.shape[0] / 3)
    index = torch.randperm(q).cuda()
    with torch.cuda.device(0):
        for s in range(3):
            part = x[s * q:(s + 1) * q]
            noise = torch.cuda.FloatTensor(part.shape).normal_()
            x[s * q:(s + 1) * q] = lam * part + (1 - lam) * part[index] + add_noise_level * 0.01 * noise
    return x, y, y[index], lam

def mixup_criterion(criterion, pred, y_a, y_b, lam):
    return lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b)
""",
}


def _write(root: Path, files: dict) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_arms_that_need_a_checkout_are_refused_without_it(tmp_path):
    with pytest.raises(SystemExit, match="--pixmix-repo"):
        crosscheck.main(["--arms", "none,pixmix-authors", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--noisymix-repo"):
        crosscheck.main(["--arms", "augmix-authors", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="unknown"):
        crosscheck.main(["--arms", "pixmix-author", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--seeds"):
        crosscheck.main(["--arms", "none", "--seeds", "0,x", "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())  # refused before anything was built or written
    assert crosscheck.mixing_size(48) == 52  # the trainer's pool on the shapes set


@pytest.mark.slow
def test_every_arm_trains_and_evaluates(tmp_path):
    from gpuaug.train import synthetic

    data = synthetic.build(tmp_path / "data", train_per_class=11, val_per_class=3, size=32, classes=3)
    out = tmp_path / "out"
    code = crosscheck.main(["--data", str(data), "--corruptions", "gaussian_noise", "--epochs", "1", "--seeds", "0",
                            "--out", str(out), "--pixmix-repo", str(_write(tmp_path / "pixmix", FAKE_PIXMIX)),
                            "--noisymix-repo", str(_write(tmp_path / "noisymix", FAKE_NOISYMIX))])
    assert code == 0
    for arm in crosscheck.ARMS:
        result = json.loads((out / f"{arm}-seed0.json").read_text())
        assert result["arm"] == arm and result["epochs"] == 1
        assert set(result["corruption_errors"]) == {"gaussian_noise"}
        assert len(result["corruption_errors"]["gaussian_noise"]) == 5
        assert 0 <= result["clean_error"] <= 1 and len(result["epochs_log"]) == 1
    table = (out / "crosscheck.md").read_text()
    assert all(f"| {arm} |" in table for arm in crosscheck.ARMS)
    combined = json.loads((out / "crosscheck.json").read_text())
    assert combined["schema"] == crosscheck.SCHEMA and len(combined["runs"]) == len(crosscheck.ARMS)
    # the per-draw comparison with the (stand-in) authors' code ran first, in its own process
    methods = {row["method"] for row in combined["distributions"]}
    assert methods == {"pixmix", "noisymix (feature step)"}
    assert all(0 <= row["ks_p"] <= 1 for row in combined["distributions"])
    assert "| KS p |" in table


@pytest.mark.slow
def test_a_failing_arm_fails_the_run(tmp_path):
    from gpuaug.train import synthetic

    data = synthetic.build(tmp_path / "data", train_per_class=11, val_per_class=3, size=32, classes=3)
    broken = dict(FAKE_PIXMIX, **{"cifar.py": FAKE_PIXMIX["cifar.py"] + "\nraise RuntimeError('broken checkout')\n"})
    code = crosscheck.main(["--arms", "pixmix-authors", "--data", str(data), "--corruptions", "gaussian_noise",
                            "--epochs", "1", "--seeds", "0", "--out", str(tmp_path / "out"),
                            "--pixmix-repo", str(_write(tmp_path / "pixmix", broken))])
    assert code == 1
