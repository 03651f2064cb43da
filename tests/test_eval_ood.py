"""AUROC on hand-worked cases and against scipy's Mann-Whitney U; OOD folder reading."""

import numpy as np
import pytest

from gpuaug.train.eval_ood import auroc, average_ranks, image_files, ood_dataset


def test_auroc_hand_cases():
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0        # separated
    assert auroc([0.1, 0.2], [0.9, 0.8]) == 0.0        # reversed
    assert auroc([0.5, 0.5], [0.5, 0.5]) == 0.5        # all tied: each pair counts 1/2
    # pos {0.3, 0.7}, neg {0.5, 0.7}: pairs (0.3,0.5) 0, (0.3,0.7) 0, (0.7,0.5) 1, (0.7,0.7) 1/2
    assert auroc([0.3, 0.7], [0.5, 0.7]) == pytest.approx(1.5 / 4)
    # pos {3, 1}, neg {2}: one of two pairs won
    assert auroc([3, 1], [2]) == 0.5


def test_average_ranks_ties():
    assert average_ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_auroc_equals_pairwise_definition_and_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    pos = np.round(rng.normal(0.6, 0.2, 300), 2)  # rounding makes many ties
    neg = np.round(rng.normal(0.5, 0.2, 200), 2)
    pairwise = ((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean()
    assert auroc(pos, neg) == pytest.approx(pairwise, abs=1e-12)
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    assert auroc(pos, neg) == pytest.approx(u / (len(pos) * len(neg)), abs=1e-12)


def test_auroc_rejects_empty_or_nan():
    with pytest.raises(ValueError, match="both classes"):
        auroc([], [0.5])
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan], [0.5])


def test_ood_folder_flat_and_nested_with_a_bad_file(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "x.png")
    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "a" / "y.jpg")
    (tmp_path / "a" / "broken.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in image_files(tmp_path)] == ["x.png", "broken.jpg", "y.jpg"]
    ds = ood_dataset(tmp_path, ["c0", "c1"])
    assert len(ds) == 2 and sum(len(v) for v in ds.skipped.values()) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no image files"):
        ood_dataset(tmp_path / "empty", ["c"])
    with pytest.raises(SystemExit, match="does not exist"):
        ood_dataset(tmp_path / "missing", ["c"])
