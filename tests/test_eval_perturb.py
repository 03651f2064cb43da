"""Flip probability and top-5 distance on hand-worked prediction sequences."""

import numpy as np
import pytest
import torch

from gpuaug.train.eval_perturb import compares_to_first, flip_probability, top5_distance


def test_flip_probability_consecutive_and_to_first():
    preds = np.array([[0, 0, 1, 1, 0],    # consecutive flips: 2 of 4; vs first: 2 of 4 (frames 3, 4 differ)
                      [2, 2, 2, 2, 2],    # none
                      [0, 1, 0, 1, 0]])   # consecutive 4 of 4; vs first: 2 of 4
    assert flip_probability(preds).tolist() == [0.5, 0.0, 1.0]
    assert flip_probability(preds, to_first=True).tolist() == [0.5, 0.0, 0.5]


def test_noise_perturbations_compare_to_the_first_frame():
    assert all(compares_to_first(p) for p in ("gaussian_noise", "shot_noise", "speckle_noise"))
    assert not compares_to_first("brightness") and not compares_to_first("translate")


def test_flip_probability_needs_two_frames():
    with pytest.raises(ValueError):
        flip_probability(np.zeros((3, 1)))


def _logits(order, classes=8):
    """Logits whose ranking is ``order`` (best first)."""
    out = torch.zeros(classes)
    for r, c in enumerate(order):
        out[c] = classes - r
    return out


def test_top5_distance_hand_cases():
    a = _logits([0, 1, 2, 3, 4, 5, 6, 7])
    same = _logits([0, 1, 2, 3, 4, 7, 6, 5])      # top 5 unchanged (order below the top 5 ignored)
    swap = _logits([1, 0, 2, 3, 4, 5, 6, 7])      # classes 0 and 1 swap: |0-1| + |1-0| = 2
    out = _logits([5, 0, 1, 2, 3, 4, 6, 7])       # a new class on top: each of 0..4 moves down one, 4 -> rank 5
    v = torch.stack([torch.stack([a, same]), torch.stack([a, swap]), torch.stack([a, out])])
    assert top5_distance(v).tolist() == [0.0, 2.0, 5.0]
    far = _logits([7, 6, 5, 4, 3, 2, 1, 0])        # ranks of 0..4 become 7, 6, 5, 4, 3 -> min(r, 5)
    expected = sum(abs(k - min(r, 5)) for k, r in zip(range(5), (7, 6, 5, 4, 3)))
    assert top5_distance(torch.stack([a, far])[None]).tolist() == [float(expected)]


def test_top5_distance_reference_frame():
    a, b = _logits([0, 1, 2, 3, 4, 5]), _logits([1, 0, 2, 3, 4, 5])
    v = torch.stack([a, b, b])[None]                 # frames a, b, b
    assert top5_distance(v).tolist() == [1.0]                 # (2 + 0) / 2 consecutive
    assert top5_distance(v, to_first=True).tolist() == [2.0]  # (2 + 2) / 2 against the first


def _imagenet_p(root, rng):
    for name in ("brightness", "gaussian_noise"):
        for v in range(3):
            folder = root / name / f"n{v:08d}"
            folder.mkdir(parents=True)
            np.save(folder / "v.npy", rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8))


def test_imagenet_p_baseline_normalisation(tmp_path):
    import json
    from types import SimpleNamespace

    from gpuaug.train.distributed import Dist
    from gpuaug.train.eval_perturb import evaluate_perturbations, read_baseline

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10)).eval()
    _imagenet_p(tmp_path / "p", np.random.default_rng(0))
    cfg = SimpleNamespace(batch_size=8, image_size=8, limit_batches=None)
    norm = ((0.5,) * 3, (0.5,) * 3)
    plain = evaluate_perturbations(model, tmp_path / "p", cfg, Dist(), norm, log=lambda *a: None)
    assert plain["mfr"] is None and plain["mean_flip_probability"] is not None
    (tmp_path / "base.json").write_text(json.dumps({"brightness": 0.5, "gaussian_noise": 0.25}))
    res = evaluate_perturbations(model, tmp_path / "p", cfg, Dist(), norm, log=lambda *a: None,
                                 baseline=read_baseline(tmp_path / "base.json"))
    fp = res["flip_probability"]
    assert res["mfr"] == pytest.approx((fp["brightness"] / 0.5 + fp["gaussian_noise"] / 0.25) / 2)
    (tmp_path / "bad.json").write_text(json.dumps({"brightness": 0.5}))
    with pytest.raises(SystemExit, match="no value for"):
        evaluate_perturbations(model, tmp_path / "p", cfg, Dist(), norm, log=lambda *a: None,
                               baseline=read_baseline(tmp_path / "bad.json"))
    (tmp_path / "worse.json").write_text("[1, 2]")
    with pytest.raises(SystemExit, match="JSON object"):
        read_baseline(tmp_path / "worse.json")


# ----------------------------------------------------------------------------- encoded videos
class _ChannelMean(torch.nn.Module):
    """Class = the dominant colour channel (0 red, 1 green, 2 blue): lossy coding keeps it."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


_COLOURS = {"r": (200, 30, 30), "g": (30, 200, 30), "b": (30, 30, 200)}


def _solid(sequence, h=16, w=24):
    """Frames of solid colours, e.g. "rrgg" (uint8 (frames, h, w, 3)), with a little texture."""
    ramp = np.arange(w, dtype=np.uint8)[None, :, None]
    return np.stack([np.broadcast_to(np.array(_COLOURS[c], np.uint8) + ramp, (h, w, 3)) for c in sequence])


def _evaluate(root, size=8):
    from types import SimpleNamespace

    from gpuaug.train.distributed import Dist
    from gpuaug.train.eval_perturb import evaluate_perturbations

    cfg = SimpleNamespace(batch_size=16, image_size=size, limit_batches=None)
    return evaluate_perturbations(_ChannelMean().eval(), root, cfg, Dist(), ((0.0,) * 3, (1.0,) * 3),
                                  log=lambda *a: None)


def test_mp4_videos_match_their_decoded_frames(tmp_path):
    """.mp4 videos (16x24 frames, resized and cropped to 8x8 by the frame path) give the
    flip probabilities the colour sequences imply, and the same numbers as .npy arrays of the
    very frames a decoder returns for them."""
    pytest.importorskip("av")
    from _video_helpers import decoded, write_mp4

    # brightness: still videos; translate: consecutive flips; gaussian_noise: flips vs the first frame
    sequences = {"brightness": ["rrrrrr", "gggggg"], "translate": ["rrggbb", "rgrgrg"],
                 "gaussian_noise": ["rgrbrr", "bbbbbr"]}
    expected = {"brightness": 0.0, "translate": (2 / 5 + 5 / 5) / 2, "gaussian_noise": (2 / 5 + 1 / 5) / 2}
    for name, seqs in sequences.items():
        for i, seq in enumerate(seqs):
            mp4 = tmp_path / "mp4" / name / f"n{i:08d}" / f"{name}_{i}.mp4"
            write_mp4(mp4, _solid(seq))
            frames = decoded(mp4)
            assert frames.shape == (6, 16, 24, 3)
            (tmp_path / "npy" / name / f"n{i:08d}").mkdir(parents=True)
            np.save(tmp_path / "npy" / name / f"n{i:08d}" / f"{name}_{i}.npy", frames)
    from_mp4, from_npy = _evaluate(tmp_path / "mp4"), _evaluate(tmp_path / "npy")
    assert from_mp4["flip_probability"] == pytest.approx(expected)
    assert from_mp4["flip_probability"] == from_npy["flip_probability"]
    assert from_mp4["top5_distance"] == from_npy["top5_distance"]
    assert from_mp4["top5_distance"]["brightness"] == 0 and from_mp4["top5_distance"]["translate"] > 0
    assert from_mp4["mean_flip_probability"] == pytest.approx(np.mean(list(expected.values())))


def test_mp4_without_pyav_names_the_install(tmp_path, monkeypatch):
    import sys

    folder = tmp_path / "p" / "brightness" / "n00000001"
    folder.mkdir(parents=True)
    (folder / "v.mp4").write_bytes(b"\x00")
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    with pytest.raises(SystemExit, match=r"pip install av .*gpuaug\[video\].*ffmpeg -i") as err:
        _evaluate(tmp_path / "p")
    assert "v.mp4" in str(err.value)


def test_undecodable_mp4_is_named(tmp_path):
    pytest.importorskip("av")
    folder = tmp_path / "p" / "brightness" / "n00000001"
    folder.mkdir(parents=True)
    (folder / "broken.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(SystemExit, match="cannot decode the video .*broken.mp4"):
        _evaluate(tmp_path / "p")
