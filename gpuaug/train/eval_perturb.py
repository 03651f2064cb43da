"""Prediction consistency on ImageNet-P / CIFAR-10/100-P (Hendrycks & Dietterich, 2019):
flip probability (FP), mean flip rate (mFR) and mean top-5 distance (mT5D).

For a perturbation p with videos x^(i) of frames x_1..x_n (m videos):

* FP_p = 1/(m (n-1)) sum_i sum_{j=2..n} 1[f(x_j) != f(x_{j-1})]  (consecutive frames);
  for the noise perturbations (name containing "noise": gaussian_noise, shot_noise,
  speckle_noise), whose frames are independent draws, each frame is compared with the
  first: 1[f(x_j) != f(x_1)].
* T5D_p: the same comparisons with the top-5 distance between the class rankings of the
  two frames: with c_0..c_4 the reference frame's top-5 classes in order and r_k the
  0-based rank of c_k in the other frame, d = sum_k |k - min(r_k, 5)| (the paper's
  distance restricted to the top 5).
* ImageNet-P: the paper's mFR divides FP_p by AlexNet's FP_p. AlexNet's per-perturbation
  flip probabilities are not published in the sources available to this project (the
  official hendrycks/robustness ImageNet-P/test.py prints raw flip probabilities, and its
  README lists only normalised mFRs), so ImageNet-P is reported UN-normalised: the mean
  flip probability (and mean T5D) over the 10 benchmark perturbations, per-perturbation
  values alongside. CIFAR-P: mFR is the plain
  mean of FP_p (no AlexNet normalisation), as the CIFAR papers report it.
* The benchmark sets differ: ImageNet-P averages gaussian_noise, shot_noise, motion_blur,
  zoom_blur, snow, brightness, translate, rotate, tilt, scale; CIFAR-P averages the same
  with spatter in place of snow, as the official cifar-p-eval.py does. Held-out
  perturbations present in the folder are reported per perturbation only; the result's
  ``averaged_over`` lists what the mean covers.

Layouts read (one video = a sequence of frames of the same image):

* CIFAR-10/100-P: ``<root>/<perturbation>.npy``, uint8 (videos, frames, H, W, 3).
* ImageNet-P: ``<root>/<perturbation>/<wnid>/<video>`` where each video is the released
  ``.mp4`` (decoded with PyAV, the optional ``video`` extra: ``pip install 'gpuaug[video]'``),
  an ``.npy`` array (frames, H, W, 3) uint8, or a folder of frame images sorted by name.
  Videos are read lazily, a few at a time.

Frames are resized (short side) and centre-cropped to the model's input size when they
differ from it. Labels are not needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import distributed
from .eval_pixels import Normalized, fit_frames, unit_nchw
from .video import ENCODED_EXTENSIONS, read_frames, require_av

# The 10 benchmark perturbations of ImageNet-P (Hendrycks & Dietterich, 2019; the tables of
# PixMix and Dynamic Mixup) and its held-out ones.
PERTURBATIONS = ("gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow", "brightness", "translate",
                 "rotate", "tilt", "scale")
EXTRA_PERTURBATIONS = ("speckle_noise", "gaussian_blur", "spatter", "shear")
# CIFAR-10/100-P's 10 as the official hendrycks/robustness cifar-p-eval.py averages them:
# spatter in place of snow (snow is held out there with speckle_noise, gaussian_blur, shear).
CIFAR_P_PERTURBATIONS = ("gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "spatter", "brightness",
                         "translate", "rotate", "tilt", "scale")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp")


def benchmark_perturbations(layout: str) -> tuple:
    """The 10 perturbations the mFR / mean FP averages for a ``p_layout`` result."""
    return CIFAR_P_PERTURBATIONS if layout == "cifar-p" else PERTURBATIONS


def compares_to_first(perturbation: str) -> bool:
    """Noise perturbations: every frame is compared with the first, not the previous."""
    return "noise" in perturbation


def _reference(n_frames: int, to_first: bool) -> np.ndarray:
    return np.zeros(n_frames - 1, np.int64) if to_first else np.arange(n_frames - 1)


def flip_probability(preds, to_first: bool = False) -> np.ndarray:
    """Per-video flip probability from top-1 predictions ``preds`` (videos, frames)."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] < 2:
        raise ValueError(f"flip probability needs (videos, frames >= 2) predictions, got shape {preds.shape}")
    ref = preds[:, _reference(preds.shape[1], to_first)]
    return (preds[:, 1:] != ref).mean(axis=1)


def top5_distance(logits: torch.Tensor, to_first: bool = False) -> np.ndarray:
    """Per-video mean top-5 distance from ``logits`` (videos, frames, classes)."""
    v, t, c = logits.shape
    ranks = logits.argsort(dim=2, descending=True, stable=True).argsort(dim=2)  # rank of each class
    ref = torch.as_tensor(_reference(t, to_first), device=logits.device)
    k = min(5, c)
    top_ref = logits[:, ref].argsort(dim=2, descending=True, stable=True)[..., :k]  # (v, t-1, k)
    r = ranks[:, 1:].gather(2, top_ref).clamp(max=5)
    dist = (r - torch.arange(k, device=logits.device)).abs().sum(dim=2).float()
    return dist.mean(dim=1).cpu().numpy()


# ----------------------------------------------------------------------------- layouts
def p_layout(root) -> str:
    root = Path(root)
    names = PERTURBATIONS + EXTRA_PERTURBATIONS  # CIFAR-P's 10 are among these too
    if any((root / f"{p}.npy").is_file() for p in names):
        return "cifar-p"
    if any((root / p).is_dir() for p in names):
        return "imagenet-p"
    raise SystemExit(f"error: {root} is neither a CIFAR-P folder (<perturbation>.npy of shape (videos, frames, "
                     f"H, W, 3)) nor an ImageNet-P folder (<perturbation>/<wnid>/<video>); perturbations: "
                     f"{', '.join(names)}")


def _video_paths(folder: Path) -> list[Path]:
    videos = sorted(v for wnid in sorted(folder.iterdir()) if wnid.is_dir() for v in wnid.iterdir())
    encoded = [v for v in videos if v.suffix.lower() in ENCODED_EXTENSIONS]
    if encoded:
        require_av(encoded[0])  # without PyAV: the install hint before any video of this perturbation is read
    videos = [v for v in videos if v.suffix == ".npy" or v.is_dir() or v.suffix.lower() in ENCODED_EXTENSIONS]
    if not videos:
        raise SystemExit(f"error: {folder} has no videos (<wnid>/<video>.mp4, <wnid>/<video>.npy or "
                         "<wnid>/<video>/ frame folders)")
    return videos


def _read_video(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        arr = np.load(path)
    elif path.suffix.lower() in ENCODED_EXTENSIONS:
        arr = read_frames(path)
    else:
        from PIL import Image

        frames = sorted(f for f in path.iterdir() if f.suffix.lower() in FRAME_EXTENSIONS)
        if not frames:
            raise SystemExit(f"error: video folder {path} has no frame images")
        arr = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in frames])
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) < 2:
        raise SystemExit(f"error: video {path}: expected >= 2 uint8 frames (frames, H, W, 3), got "
                         f"{arr.dtype} {arr.shape}")
    return arr


def _chunks(root: Path, layout: str, name: str, per_chunk: int, d):
    """This rank's videos of one perturbation as uint8 arrays (videos, frames, H, W, 3)."""
    if layout == "cifar-p":
        arr = np.load(root / f"{name}.npy", mmap_mode="r")
        if arr.ndim != 5 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or arr.shape[1] < 2:
            raise SystemExit(f"error: {root / name}.npy: expected uint8 (videos, frames >= 2, H, W, 3), got "
                             f"{arr.dtype} {arr.shape}")
        index = np.arange(len(arr))[d.rank::d.world]
        for s in range(0, len(index), per_chunk):
            yield np.asarray(arr[index[s:s + per_chunk]])
    else:
        videos = _video_paths(root / name)[d.rank::d.world]
        for s in range(0, len(videos), per_chunk):
            clips = [_read_video(v) for v in videos[s:s + per_chunk]]
            if len({c.shape for c in clips}) != 1:
                raise SystemExit(f"error: videos in {root / name} differ in shape: {sorted({c.shape for c in clips})}")
            yield np.stack(clips)


@torch.no_grad()
def evaluate_perturbations(model, root, cfg, d, norm, amp_dtype=None, log=print, baseline: dict | None = None) -> dict:
    """FP and T5D per perturbation found under ``root``, with mFR / mean FP and mT5D;
    ``baseline`` ({perturbation: flip probability}, e.g. AlexNet's) turns ImageNet-P's
    mean FP into the paper's mFR: FR_p = FP_p / baseline_p, averaged."""
    root = Path(root)
    layout = p_layout(root)
    net = Normalized(model, *norm).to(d.device).eval()
    bench = benchmark_perturbations(layout)
    names = [p for p in bench + tuple(p for p in PERTURBATIONS + EXTRA_PERTURBATIONS if p not in bench)
             if (root / f"{p}.npy").is_file() or (root / p).is_dir()]
    fp, t5d = {}, {}
    for name in names:
        to_first = compares_to_first(name)
        flips, dists = [], []
        for i, clips in enumerate(_chunks(root, layout, name, max(1, cfg.batch_size // 8), d)):
            if cfg.limit_batches is not None and i >= cfg.limit_batches:
                break
            v, t = clips.shape[:2]
            frames = fit_frames(clips.reshape((v * t,) + clips.shape[2:]), cfg.image_size)
            logits = []
            for s in range(0, len(frames), cfg.batch_size):
                x = unit_nchw(torch.from_numpy(frames[s:s + cfg.batch_size]).to(d.device))
                with torch.autocast(d.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits.append(net(x).float())
            logits = torch.cat(logits).view(v, t, -1)
            flips.append(flip_probability(logits.argmax(2).cpu().numpy(), to_first))
            dists.append(top5_distance(logits, to_first))
        parts = distributed.gather_objects((flips, dists), d)
        flips = np.concatenate([f for p in parts for f in p[0]]) if any(p[0] for p in parts) else np.zeros(0)
        dists = np.concatenate([f for p in parts for f in p[1]]) if any(p[1] for p in parts) else np.zeros(0)
        if len(flips):
            fp[name], t5d[name] = float(flips.mean()), float(dists.mean())
            log(f"  {name:<16} FP {100 * fp[name]:6.2f}%  T5D {t5d[name]:.3f}  ({len(flips)} videos)")
    averaged = [p for p in fp if p in bench]
    mean_fp = float(np.mean([fp[p] for p in averaged])) if averaged else None
    mean_t5d = float(np.mean([t5d[p] for p in averaged])) if averaged else None
    out = {"layout": layout, "flip_probability": fp, "top5_distance": t5d, "averaged_over": averaged,
           "mean_flip_probability": mean_fp, "mean_top5_distance": mean_t5d}
    if layout == "cifar-p":
        out["mfr"] = mean_fp  # CIFAR-P: plain mean of the flip probabilities
    elif baseline:
        missing = [p for p in averaged if p not in baseline]
        if missing:
            raise SystemExit(f"error: the flip-probability baseline has no value for {missing}")
        out["flip_rate"] = {p: fp[p] / float(baseline[p]) for p in averaged}
        out["mfr"] = float(np.mean(list(out["flip_rate"].values()))) if averaged else None
        out["note"] = "mFR normalised by the user-supplied baseline flip probabilities"
    else:
        out["mfr"] = None
        out["note"] = ("not AlexNet-normalised: AlexNet's ImageNet-P flip probabilities are not available to this "
                       "project; mean_flip_probability is the un-normalised mean FP")
    return out


def read_baseline(path) -> dict:
    """{perturbation: flip probability in (0, 1]} from a JSON file."""
    import json

    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: cannot read the flip-probability baseline {path}: {err}") from None
    if not isinstance(values, dict) or not all(isinstance(v, (int, float)) and 0 < v <= 1 for v in values.values()):
        raise SystemExit(f"error: {path} must hold a JSON object {{perturbation: flip probability in (0, 1]}}")
    return {str(k): float(v) for k, v in values.items()}


def table_rows(res: dict, label: str) -> list:
    rows = []
    if res.get("mean_flip_probability") is None:
        return rows
    if res["layout"] == "cifar-p":
        rows.append((f"{label} mFR (mean flip probability)", 100 * res["mfr"]))
    elif res.get("mfr") is not None:
        rows.append((f"{label} mFR (baseline = 100)", 100 * res["mfr"]))
    else:
        rows.append((f"{label} mean FP (not AlexNet-normalised)", 100 * res["mean_flip_probability"]))
    rows.append((f"{label} mT5D (mean top-5 distance, not %)", res["mean_top5_distance"]))
    return rows
