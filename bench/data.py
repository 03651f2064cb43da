"""Inputs of the benchmarks: image batches, mixing sets, generated ImageNet-like JPEGs.

Everything is generated (no downloads) and deterministic for a seed.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

# The five methods of the AugMix family the benchmarks cover, with their reference calls.
METHODS = ("augmix", "pixmix", "ipmix", "dynamic-mixup", "noisymix")
# NoisyMix's data side is AugMix (clean, aug1, aug2) views for JSD; it is benchmarked as
# views on every side (ours: Method.views, reference: reference.views(augmix, ...)).
VIEWS_METHODS = ("noisymix",)


def image_pool(count: int, size: int, seed: int = 0) -> np.ndarray:
    """``count`` distinct procedural scenes (gpuaug.data.samples) as (count, size, size, 3) uint8."""
    from gpuaug.data import samples

    return np.ascontiguousarray(samples.batch(count, size, seed))


def tile_batch(pool: np.ndarray, n: int) -> np.ndarray:
    """A batch of ``n`` images cycling through ``pool`` (dense, C-contiguous)."""
    idx = np.arange(n) % pool.shape[0]
    return np.ascontiguousarray(pool[idx])


def mixing_set(size: int, count: int, device: str = "cpu", seed: int = 0):
    """Procedural fractals as a MixingSet with side ``size`` (crops of the images' size are
    drawn per image), on the CPU or on a CUDA device (rendered there)."""
    from gpuaug.mixing import MixingSet

    side = max(size, int(round(size * 256 / 224)))
    return MixingSet.fractals(count, size=side, seed=seed, device=device)


def reference_kwargs(name: str, method) -> dict:
    """Keyword arguments of the gpuaug.reference function equal to ``method``'s config."""
    from gpuaug.reference import OPS_DYNAMIC_MIXUP_IMAGENET

    if getattr(method, "op_list", None) is not None:
        raise ValueError("benchmarks use the methods' default op lists")
    if name in ("augmix", "noisymix"):
        return dict(width=method.width, depth=method.depth, severity=method.severity,
                    alpha=method.alpha, all_ops=method.all_ops)
    if name == "pixmix":
        return dict(k=method.k, beta=method.beta, severity=method.severity, all_ops=method.all_ops)
    if name == "ipmix":
        return dict(k=method.k, t=method.t, beta=method.beta, severity=method.severity,
                    patch_sizes=method.patch_sizes, all_ops=method.all_ops,
                    augment_partner=method.augment_partner)
    if name == "dynamic-mixup":
        kw = dict(alpha=method.alpha, severity=method.severity)
        if method.downscale:
            kw["ops"] = OPS_DYNAMIC_MIXUP_IMAGENET
        return kw
    raise ValueError(f"no reference mapping for {name!r}")


def reference_function(name: str):
    from gpuaug import reference

    return {"augmix": reference.augmix, "noisymix": reference.augmix, "pixmix": reference.pixmix,
            "ipmix": reference.ipmix, "dynamic-mixup": reference.dynamic_mixup}[name]


# ---------------------------------------------------------------- JPEG folders

def _jpeg_picture(rng: np.random.Generator, width: int, height: int, seed: int) -> np.ndarray:
    """A scene with photo-like texture (grain at two scales) so JPEG sizes resemble
    ImageNet's (~100-150 kB at 500x375, quality 90)."""
    from PIL import Image

    from gpuaug.data import samples

    side = max(width, height)
    img = samples.scene(side, seed).astype(np.float32)
    top = int(rng.integers(0, side - height + 1))
    left = int(rng.integers(0, side - width + 1))
    img = img[top:top + height, left:left + width]
    coarse = rng.normal(0, 10, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    coarse = np.asarray(Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.BILINEAR), dtype=np.float32) - 128
    fine = rng.normal(0, 7, size=(height, width, 1)).astype(np.float32)
    return np.clip(img + coarse + fine, 0, 255).astype(np.uint8)


def jpeg_folder(root, count: int, classes: int = 10, width: int = 500, height: int = 375,
                quality: int = 90, seed: int = 0) -> dict:
    """An ImageFolder tree ``root/class_XX/img_XXXXX.jpg`` of ``count`` generated JPEGs
    (reused when ``root/manifest.json`` says it was made with the same settings).
    Returns the manifest (count, classes, size, quality, total and mean bytes)."""
    from PIL import Image

    root = Path(root)
    settings = dict(count=count, classes=classes, width=width, height=height, quality=quality, seed=seed)
    manifest = root / "manifest.json"
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
            if {k: old.get(k) for k in settings} == settings:
                return old
        except (OSError, ValueError):
            pass
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        folder = root / f"class_{i % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        # ImageNet's typical sizes: landscape 500x375 most often, some portrait.
        w, h = (width, height) if rng.uniform() < 0.75 else (height, width)
        buf = io.BytesIO()
        Image.fromarray(_jpeg_picture(rng, w, h, seed + i)).save(buf, format="JPEG", quality=quality)
        (folder / f"img_{i:05d}.jpg").write_bytes(buf.getvalue())
        total += buf.tell()
    info = dict(settings, total_bytes=total, mean_bytes=total / max(count, 1))
    manifest.write_text(json.dumps(info, indent=1))
    return info
