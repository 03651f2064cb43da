"""A PNG chart of a bench result, drawn with Pillow (no plotting library needed).

One panel per figure group: augment (per image size; images/s, log scale, median bar with
a min..max whisker), roofline (fraction of copy bandwidth, or on CPU-only results the
traced MB per image against the compulsory minimum), loader and train (images/s).
Skipped rows are listed under their panel with the reason.
"""

from __future__ import annotations

import math
from pathlib import Path

WIDTH = 1200
LABEL_W = 380
BAR_H = 18
PAD = 14
COLORS = {
    "ours": (31, 119, 180), "reference": (214, 39, 40), "tv": (255, 127, 14), "synthetic": (44, 160, 44),
    "ffcv": (148, 103, 189), "cpu": (140, 86, 75), "other": (127, 127, 127),
}


def _color(impl: str):
    if impl.startswith("ours"):
        return COLORS["cpu"] if "cpu" in impl else COLORS["ours"]
    for key in ("reference", "tv", "synthetic", "ffcv"):
        if impl.startswith(key) or key in impl:
            return COLORS[key]
    return COLORS["other"]


def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _panel(title, items, unit, log=True, notes=(), ref_line=None):
    """items: (label, value, lo, hi, color). Returns a PIL image."""
    from PIL import Image, ImageDraw

    font, small, big = _font(13), _font(11), _font(16)
    notes = [n[i:i + 165] for n in notes for i in range(0, max(len(n), 1), 165)]
    height = PAD * 3 + 24 + max(1, len(items)) * (BAR_H + 6) + 30 + len(notes) * 15
    img = Image.new("RGB", (WIDTH, height), "white")
    d = ImageDraw.Draw(img)
    d.text((PAD, PAD), title, fill="black", font=big)
    x0, x1 = LABEL_W, WIDTH - 120
    top = PAD * 2 + 24
    values = [v for _, v, lo, hi, _ in items for v in (v, lo, hi) if v is not None and v > 0]
    if not items or not values:
        d.text((x0, top), "no measured rows", fill=(120, 120, 120), font=font)
    else:
        vmax = max(values + ([ref_line] if ref_line else []))
        vmin = min(values)
        if log:
            lo_e = math.floor(math.log10(vmin))
            hi_e = math.ceil(math.log10(vmax)) if vmax > vmin else lo_e + 1
            hi_e = max(hi_e, lo_e + 1)

            def pos(v):
                return x0 + (math.log10(max(v, 10 ** lo_e)) - lo_e) / (hi_e - lo_e) * (x1 - x0)
            ticks = [10 ** e for e in range(lo_e, hi_e + 1)]
        else:
            hi_v = vmax * 1.05

            def pos(v):
                return x0 + v / hi_v * (x1 - x0)
            ticks = [hi_v * k / 5 for k in range(6)]
        bottom = top + len(items) * (BAR_H + 6)
        for t in ticks:
            x = pos(t)
            d.line([(x, top - 4), (x, bottom)], fill=(225, 225, 225))
            d.text((x - 12, bottom + 4), _tick(t), fill=(90, 90, 90), font=small)
        d.text((x1 + 10, bottom + 4), unit, fill=(90, 90, 90), font=small)
        if ref_line:
            x = pos(ref_line)
            d.line([(x, top - 4), (x, bottom)], fill=(200, 0, 0), width=2)
        for i, (label, v, lo, hi, color) in enumerate(items):
            y = top + i * (BAR_H + 6)
            d.text((PAD, y + 2), label[:58], fill="black", font=font)
            d.rectangle([x0, y, max(x0 + 1, pos(v)), y + BAR_H], fill=color)
            if lo is not None and hi is not None:
                d.line([(pos(lo), y + BAR_H / 2), (pos(hi), y + BAR_H / 2)], fill="black", width=1)
                for e in (lo, hi):
                    d.line([(pos(e), y + 4), (pos(e), y + BAR_H - 4)], fill="black")
            d.text((max(x0 + 1, pos(v), pos(hi) if hi is not None else 0) + 6, y + 2), _tick(v),
                   fill="black", font=small)
    y = height - PAD - len(notes) * 15
    for n in notes:
        d.text((PAD, y), n, fill=(110, 110, 110), font=small)
        y += 15
    return img


def _tick(v):
    if v >= 1e6:
        return f"{v / 1e6:.3g}M"
    if v >= 1e3:
        return f"{v / 1e3:.3g}k"
    if v >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


def _skip_notes(rows):
    reasons = {}
    for r in rows:
        if r.get("status") != "ok":
            reasons.setdefault(f"{r['status']}: {r.get('reason')}", []).append(r.get("impl") or r.get("name"))
    return [f"{k}  [{', '.join(sorted(set(v)))}; {len(v)} row(s)]" for k, v in reasons.items()]


def _throughput_items(rows, label):
    items = []
    for r in rows:
        if r.get("status") == "ok":
            t = r["throughput"]
            items.append((label(r), t["median"], t["min"], t["max"], _color(r["impl"])))
    return items


def panels(result: dict):
    meta = result.get("meta", {})
    dev = meta.get("device", {}).get("name")
    host = meta.get("host", {})
    tag = f"{dev} / {host.get('cpu_cores_usable')} cores, {result.get('size')}, {meta.get('date', '')[:10]}"
    out = []
    suites = result.get("suites", {})
    if "augment" in suites:
        rows = suites["augment"]["rows"]
        for size in sorted({r.get("image_size") for r in rows if r.get("image_size")}, reverse=True):
            sub = [r for r in rows if r.get("image_size") == size]
            items = _throughput_items(sub, lambda r: f"{r['method']}  {r['impl']}" + (f" b{r['batch']}" if r.get("batch") else ""))
            out.append(_panel(f"Augmentation only, {size}x{size}: images/s ({tag})", items, "images/s",
                              notes=_skip_notes(sub)))
    if "roofline" in suites:
        body = suites["roofline"]
        rows = body["rows"]
        measured = [r for r in rows if r.get("status") == "ok"]
        bw = body.get("copy_bandwidth", {})
        if measured:
            items = [(f"{r['method']} {r['image_size']}px b{r['batch']}", r["fraction_of_copy_bw"]["median"],
                      r["fraction_of_copy_bw"]["min"], r["fraction_of_copy_bw"]["max"], COLORS["ours"])
                     for r in measured]
            out.append(_panel(f"Roofline: traced bytes / time as a fraction of copy bandwidth "
                              f"({bw.get('GBps', {}).get('median', 0):.0f} GB/s)", items, "fraction", log=False,
                              notes=_skip_notes(rows), ref_line=1.0))
        items = []
        for r in rows:
            b = r.get("bytes")
            if b:
                per = b["per_image"]
                items.append((f"{r['method']} {r['image_size']}px traced", per["median"] / 1e6, per["min"] / 1e6,
                              per["max"] / 1e6, COLORS["ours"]))
                items.append((f"{r['method']} {r['image_size']}px compulsory", b["compulsory_per_image"] / 1e6,
                              None, None, COLORS["other"]))
        if items:
            out.append(_panel("Bytes moved per image by the cuda path (traced from the plan) vs a fused minimum",
                              items, "MB/image", notes=[] if measured else _skip_notes(rows)))
    for suite, title in (("loader", "Loader end to end"), ("train", "ResNet-50 training step")):
        if suite in suites:
            rows = suites[suite]["rows"]
            items = _throughput_items(rows, lambda r: f"{r['method']}  {r['impl']}")
            ratios = [f"{q['ours_impl']} / {q['baseline_impl']}: {q['ratio']:.3g}x"
                      for q in suites[suite].get("ratios") or []]
            out.append(_panel(f"{title}: images/s ({tag})", items, "images/s",
                              notes=ratios + _skip_notes(rows)))
    return out


def draw(result: dict, path) -> Path:
    """Draw every panel of ``result`` into one PNG at ``path``; returns the path."""
    return save_stacked(panels(result) or [_panel("no suites in this result", [], "")], path)


def save_stacked(parts, path) -> Path:
    """Save panels (PIL images) one under the other as one PNG at ``path``."""
    from PIL import Image

    img = Image.new("RGB", (WIDTH, sum(p.height for p in parts)), "white")
    y = 0
    for p in parts:
        img.paste(p, (0, y))
        y += p.height
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
