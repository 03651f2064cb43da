"""Benchmark 3: loaders end to end on generated ImageNet-like JPEGs (about 500x375,
quality 90; :func:`bench.data.jpeg_folder`): decode + random resized crop + flip +
method + normalise, images/s and CPU use.

* ``ours-dali-cuda``  gpuaug.loader.ImageFolderLoader(device="cuda"): DALI decodes on the
                      GPU ("mixed"), the method runs as our CUDA kernels.
* ``ours-dali-cpu``   the same loader with device="cpu" (a CPU-only DALI pipeline + our cpu
                      executor); shown so CPU-only machines measure our path too.
* ``tv-reference``    torchvision ImageFolder (PIL decode, RandomResizedCrop, flip) + the
                      gpuaug.reference method + normalise, DataLoader with one worker per
                      core (pinned memory and a copy to the GPU when there is one).
* ``ffcv-ours``       FFCV (.beton written from the same JPEGs) ending in our torch module
                      (gpuaug.ffcv.train_pipeline), where FFCV is installed.

One timed run = ``batches_per_run`` batches from a long-lived iterator (a new epoch starts
when one ends, as in training); CPU use is measured over each run (see common.CpuMonitor).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import augment, common, data

IMPLS = ("ours-dali-cuda", "ours-dali-cpu", "tv-reference", "ffcv-ours")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def loader_class():
    """gpuaug's ImageFolderLoader, or (None, reason)."""
    try:
        from gpuaug.loader import ImageFolderLoader

        return ImageFolderLoader, None
    except ImportError as err:
        import gpuaug

        cls = getattr(gpuaug, "ImageFolderLoader", None)
        if cls is not None:
            return cls, None
        return None, f"loader not available (gpuaug.loader: {err})"


def ours_loader(root, batch, method, jsd, size, device, threads, mixing, seed=0, dtype=None):
    cls, reason = loader_class()
    if cls is None:
        raise RuntimeError(reason)
    kw = dict(augment=method, jsd=jsd, train=True, image_size=size, device=device, num_threads=threads, seed=seed,
              memory_format="channels_last")  # the fast path, as measured before the default became contiguous
    if method is not None and method.needs_mixing:
        kw["mixing"] = mixing
    if dtype is not None:
        kw["dtype"] = dtype
    return cls(str(root), batch, **kw)


class ReferenceTransform:
    """PIL image -> RandomResizedCrop + flip (torchvision) -> gpuaug.reference method ->
    normalised float32 CHW tensor (a triple of them for JSD views)."""

    def __init__(self, name, kwargs, size, mixing_set, views):
        self.name, self.kwargs, self.size, self.mixing, self.views = name, kwargs, size, mixing_set, views
        self.crop = None

    def __call__(self, img):
        import torch
        from torchvision import transforms

        from gpuaug import reference

        if self.crop is None:
            self.crop = transforms.Compose([transforms.RandomResizedCrop(self.size), transforms.RandomHorizontalFlip()])
        x = np.asarray(self.crop(img.convert("RGB")))
        rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, ())))
        fn = data.reference_function(self.name)
        args = (self.mixing.sample(1, rng, self.size, self.size)[0],) if self.mixing is not None else ()

        def finish(v):
            return torch.from_numpy(((v - MEAN) / STD).transpose(2, 0, 1).copy())

        if self.views:
            return tuple(finish(v) for v in reference.views(fn, x, *args, rng=rng, **self.kwargs))
        return finish(fn(x, *args, rng=rng, **self.kwargs))


def reference_loader(root, batch, name, size, workers, mixing_cpu, views, pin):
    import torch.utils.data as tud
    from torchvision.datasets import ImageFolder

    method = augment.build_method(name, size)
    t = ReferenceTransform(name, data.reference_kwargs(name, method), size,
                           mixing_cpu if method.needs_mixing else None, views)
    return tud.DataLoader(ImageFolder(str(root), transform=t), batch_size=batch, shuffle=True, drop_last=True,
                          num_workers=workers, persistent_workers=workers > 0, pin_memory=pin,
                          prefetch_factor=4 if workers > 0 else None)


class BatchStream:
    """Endless batches from a loader: a new epoch (iter()) when one ends."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device
        self.it = iter(loader)

    def next(self):
        try:
            images, labels = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            images, labels = next(self.it)
        if self.device != "cpu":
            move = (lambda t: t.to(self.device, non_blocking=True))
            images = tuple(map(move, images)) if isinstance(images, (tuple, list)) else move(images)
            labels = move(labels)
        return images, labels


def n_images(images) -> int:
    return int((images[0] if isinstance(images, (tuple, list)) else images).shape[0])


def time_stream(stream, batches, warmup, repeats, sync=None):
    """Per-run seconds, images per run (median) and CPU use of pulling ``batches`` batches."""
    counts, cpu = [], []

    def run(i):
        got = 0
        with common.CpuMonitor() as mon:
            for _ in range(batches):
                images, _ = stream.next()
                got += n_images(images)
            if sync:
                sync()
        if i >= 0:
            counts.append(got)
            cpu.append(mon.result)

    times = common.time_runs(run, warmup=warmup, repeats=repeats, sync=sync)
    return times, counts, common.cpu_summary(cpu)


def ffcv_loader(root, batch, name, size, workers, mixing_gpu, views, cache_dir):
    import gpuaug.ffcv as gffcv
    from ffcv.loader import Loader, OrderOption
    from torchvision.datasets import ImageFolder

    beton = Path(cache_dir) / f"{Path(root).name}-{size}.beton"
    if not beton.exists():
        gffcv.write_dataset(beton, ImageFolder(str(root)), max_resolution=512, write_mode="jpg",
                            jpeg_quality=90, num_workers=workers)
    method = augment.build_method(name, size)
    extra = {"mixing": mixing_gpu} if method.needs_mixing else {}
    return Loader(str(beton), batch_size=batch, num_workers=workers, order=OrderOption.RANDOM, os_cache=True,
                  drop_last=True, pipelines={
                      "image": gffcv.train_pipeline(method, "cuda", size, seed=0, normalize=True,
                                                    views=views, **extra),
                      "label": gffcv.label_pipeline("cuda")})


def run(cfg: dict) -> dict:
    """cfg: data_dir, jpeg_count, image_size, batch, methods, batches_per_run, warmup,
    repeats, workers, mixing_count, impls."""
    has_cuda = common.cuda_available()
    workers, size, batch = cfg["workers"], cfg["image_size"], cfg["batch"]
    manifest = data.jpeg_folder(cfg["data_dir"], cfg["jpeg_count"], classes=cfg.get("classes", 10))
    batches = cfg["batches_per_run"]
    impls = cfg.get("impls") or IMPLS
    mix_cpu = data.mixing_set(size, cfg["mixing_count"], "cpu")
    mix_gpu = data.mixing_set(size, cfg["mixing_count"], "cuda") if has_cuda else None
    cls, why_not = loader_class()
    rows = []
    sync = common.cuda_sync if has_cuda else None
    for name in cfg["methods"]:
        method = augment.build_method(name, size)
        views = name in data.VIEWS_METHODS
        common.log(f"[loader] {name}")

        def base(impl, notes):
            b = common.make_base("loader", name, impl, size, batch, notes)
            b["views"] = views
            return b

        if "ours-dali-cuda" in impls:
            b = base("ours-dali-cuda", f"ImageFolderLoader(device='cuda', num_threads={workers}), GPU decode")
            if not has_cuda:
                rows.append(common.skipped(b, common.NO_CUDA))
            elif cls is None:
                rows.append(common.skipped(b, why_not))
            else:
                rows.append(common.guarded(b, lambda b=b: _stream_row(
                    b, ours_loader(cfg["data_dir"], batch, method, views, size, "cuda", workers, mix_gpu),
                    "cpu", batches, cfg, sync)))
        if "ours-dali-cpu" in impls:
            b = base("ours-dali-cpu", f"ImageFolderLoader(device='cpu', num_threads={workers}): CPU DALI + cpu executor")
            if cls is None:
                rows.append(common.skipped(b, why_not))
            else:
                rows.append(common.guarded(b, lambda b=b: _stream_row(
                    b, ours_loader(cfg["data_dir"], batch, method, views, size, "cpu", workers, mix_cpu),
                    "cpu", batches, cfg, None)))
        if "tv-reference" in impls:
            where = "cuda" if has_cuda else "cpu"
            b = base("tv-reference", f"torchvision ImageFolder + gpuaug.reference, DataLoader {workers} workers"
                     + (", pinned, copied to the GPU" if has_cuda else ""))
            rows.append(common.guarded(b, lambda b=b, where=where: _stream_row(
                b, reference_loader(cfg["data_dir"], batch, name, size, workers, mix_cpu, views, has_cuda),
                where, batches, cfg, sync)))
        if "ffcv-ours" in impls:
            b = base("ffcv-ours", f"FFCV Loader ({workers} workers) + gpuaug.ffcv.train_pipeline (our module on the GPU)")
            try:
                import ffcv  # noqa: F401

                have_ffcv = None
            except Exception as err:  # noqa: BLE001
                have_ffcv = f"FFCV not installed ({type(err).__name__}: {err})"
            if have_ffcv:
                rows.append(common.skipped(b, have_ffcv))
            elif not has_cuda:
                rows.append(common.skipped(b, common.NO_CUDA))
            else:
                rows.append(common.guarded(b, lambda b=b: _stream_row(
                    b, ffcv_loader(cfg["data_dir"], batch, name, size, workers, mix_gpu, views, cfg["data_dir"]),
                    "cpu", batches, cfg, sync)))
    return {"settings": augment._jsonable(cfg), "dataset": manifest, "rows": rows,
            "ratios": _ratios(rows)}


def _stream_row(base, loader, device, batches, cfg, sync):
    stream = BatchStream(loader, device)
    try:
        times, counts, cpu = time_stream(stream, batches, cfg["warmup"], cfg["repeats"], sync)
    finally:
        it = getattr(stream.it, "_shutdown_workers", None)
        if it:
            it()
    per_run = int(np.median(counts))
    row = common.timed_row(base, times, per_run, cpu=cpu)
    row["throughput"] = common.stats([c / t for c, t in zip(counts, times)])
    return row


def _ratios(rows):
    out = []
    ok = [r for r in rows if r["status"] == "ok"]
    for r in ok:
        if not r["impl"].startswith(("ours", "ffcv")):
            continue
        for b in ok:
            if b["method"] == r["method"] and b["impl"] == "tv-reference":
                out.append({"method": r["method"], "ours": r["name"], "baseline": b["name"],
                            "ours_impl": r["impl"], "baseline_impl": b["impl"],
                            "ratio": r["throughput"]["median"] / b["throughput"]["median"]})
    return out


def default_data_dir(count: int) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), ".data", f"jpeg-{count}")

