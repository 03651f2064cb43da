"""Picture grids: labelled tiles of images, and the op gallery (every op at a few strengths)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import ops
from .data import samples

GALLERY_LEVELS = (1.0, 3.0, 6.0, 10.0)


def grid(tiles: list[list[np.ndarray]], row_labels: list[str], col_labels: list[str],
         captions: list[list[str]] | None = None, label_width: int = 110,
         header: int = 18) -> Image.Image:
    """Lay out rows of equal-size HWC uint8 tiles with row and column labels and optional
    per-tile captions (drawn on a white strip at the tile's bottom-left)."""
    th, tw = tiles[0][0].shape[:2]
    n_cols = max(len(r) for r in tiles)
    pad = 4
    width = label_width + n_cols * (tw + pad)
    height = header + len(tiles) * (th + pad)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for c, text in enumerate(col_labels):
        draw.text((label_width + c * (tw + pad) + 2, 3), text, fill=(0, 0, 0), font=font)
    for r, row in enumerate(tiles):
        y = header + r * (th + pad)
        draw.text((4, y + th // 2 - 6), row_labels[r], fill=(0, 0, 0), font=font)
        for c, tile in enumerate(row):
            x = label_width + c * (tw + pad)
            canvas.paste(Image.fromarray(tile), (x, y))
            caption = captions[r][c] if captions else ""
            if caption:
                box = draw.textbbox((x + 2, y + th - 14), caption, font=font)
                draw.rectangle(box, fill=(255, 255, 255))
                draw.text((x + 2, y + th - 14), caption, fill=(0, 0, 0), font=font)
    return canvas


def _caption(name: str, value: float) -> str:
    if not ops.OPS[name].uses_value:
        return ""
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def op_gallery(size: int = 128, executor: str = "auto", seed: int = 0) -> Image.Image:
    """Every op (rows) on the sample scene at levels 1, 3, 6, 10 (columns), one batch.

    Autocontrast is shown with IPMix's cutoff (the papers' AugMix/PixMix use cutoff 0).
    With executor "auto" the batch runs on the GPU when torch sees one, else on the CPU.
    """
    names = [n for n in ops.OP_NAMES if n != "identity"]
    scene = samples.scene(size, seed)
    ids = np.repeat(ops.op_ids(names), len(GALLERY_LEVELS))
    level = np.tile(np.asarray(GALLERY_LEVELS), len(names))
    values = ops.values_at_levels(ids, level, 1.0, size, size, autocontrast_cutoff="ipmix")
    batch = np.repeat(scene[None], ids.shape[0], axis=0)
    out = _run(batch, ids, values, executor)
    k = len(GALLERY_LEVELS)
    tiles = [[scene] + list(out[r * k:(r + 1) * k]) for r in range(len(names))]
    captions = [[""] + [_caption(name, v) for v in values[r * k:(r + 1) * k]]
                for r, name in enumerate(names)]
    cols = ["input"] + [f"level {lv:g}" for lv in GALLERY_LEVELS]
    return grid(tiles, names, cols, captions)


def _run(batch: np.ndarray, ids: np.ndarray, values: np.ndarray, executor: str) -> np.ndarray:
    if executor in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            out = ops.apply_batch(torch.from_numpy(batch).cuda(), ids, values, executor="cuda")
            return out.cpu().numpy()
        if executor == "cuda":
            raise RuntimeError("executor='cuda' was asked for but torch sees no CUDA device")
    return ops.apply_batch(batch, ids, values, executor="cpu")
