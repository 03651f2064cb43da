"""Benchmark 1: augmentation only, per method and image size, uint8 batch already where the
implementation runs (device for the cuda rows, host memory for the CPU rows).

Implementations (``impl`` of a row):

* ``ours-cuda``        our cuda executor on a torch CUDA uint8 batch (per batch size);
                       mixing pictures: a MixingSet of fractals on the device.
* ``ours-cpu-1proc``   our cpu executor (vectorised numpy) in this one process: numpy
                       runs single-threaded, so this is one core.
* ``ours-cpu-workers`` the same executor on all cores: a torch DataLoader with one worker
                       per core, each augmenting a chunk of the batch; the chunks are
                       concatenated in the main process (one tensor per batch).
* ``reference-dl1``    ``gpuaug.reference`` (the papers' one-image PIL code) in a torch
* ``reference-dlall``  DataLoader with 1 worker / one worker per core, default collate.
* ``tv2-cpu-dlall``    torchvision.transforms.v2.AugMix per image (uint8 CHW tensor, then
                       float /255) in a DataLoader with one worker per core (AugMix only).
* ``tv2-cuda-batch``   torchvision v2 AugMix on a CUDA uint8 NCHW batch, for contrast: it
                       draws ONE op chain for the whole batch, not one per sample.

DataLoader rows: one timed run is one pass over ``images_per_run`` images with persistent
workers (started in the warm-up), so worker start-up is excluded but inter-process
transfer and collation are included. Reference rows keep the mixing pictures in memory
(the official code reads one from disk per sample), which favours the baseline.
"""

from __future__ import annotations

import numpy as np

from . import common, data

IMPLS = ("ours-cuda", "ours-cpu-1proc", "ours-cpu-workers", "reference-dl1", "reference-dlall",
         "tv2-cpu-dlall", "tv2-cuda-batch")
TV2_METHODS = ("augmix",)


def method_settings(name: str, size: int) -> dict:
    """The papers' settings for the image size: ImageNet for >= 64 px, CIFAR below."""
    imagenet = size >= 64
    if name == "ipmix" and not imagenet:
        return dict(beta=3, severity=3, patch_sizes=(4, 8, 16, 32), augment_partner=False)
    if name == "pixmix" and imagenet:
        return dict(beta=4)
    if name == "dynamic-mixup" and imagenet:
        return dict(downscale=True)
    return {}


def build_method(name: str, size: int):
    from gpuaug.methods import make_method

    return make_method(name, **method_settings(name, size))


# ---------------------------------------------------------------- DataLoader plumbing
# Module-level classes so that DataLoader workers can pickle them.

class RunSampler:
    """Indices run*n .. run*n + n - 1 for the run-th pass (distinct seeds per pass).
    Iterated in the main process, so the counter works with persistent workers."""

    def __init__(self, per_run: int):
        self.per_run = per_run
        self.run = 0

    def __iter__(self):
        start = self.run * self.per_run
        self.run += 1
        return iter(range(start, start + self.per_run))

    def __len__(self):
        return self.per_run


class ReferenceDataset:
    """Item i: the reference algorithm on pool[i % len(pool)], seeded by (seed, i)."""

    def __init__(self, name, kwargs, pool, mixing_set, seed=0):
        self.name, self.kwargs, self.pool, self.mixing, self.seed = name, kwargs, pool, mixing_set, seed

    def __len__(self):
        return 1 << 40

    def __getitem__(self, i):
        import torch

        from gpuaug import reference

        rng = np.random.default_rng([self.seed, i])
        image = self.pool[i % len(self.pool)]
        fn = data.reference_function(self.name)
        args = ()
        if self.mixing is not None:
            size = image.shape[0]
            args = (self.mixing.sample(1, rng, size, size)[0],)
        if self.name in data.VIEWS_METHODS:
            return tuple(torch.from_numpy(v) for v in reference.views(fn, image, *args, rng=rng, **self.kwargs))
        return torch.from_numpy(fn(image, *args, rng=rng, **self.kwargs))


class ChunkDataset:
    """Item c: our cpu executor on a chunk of ``chunk`` images (one worker per chunk)."""

    def __init__(self, method, views, pool, chunk, mixing_set, seed=0):
        self.method, self.views, self.pool, self.chunk = method, views, pool, chunk
        self.mixing, self.seed = mixing_set, seed

    def __len__(self):
        return 1 << 40

    def __getitem__(self, c):
        import torch

        x = np.ascontiguousarray(self.pool[(np.arange(self.chunk) + c * self.chunk) % len(self.pool)])
        fn = self.method.views if self.views else self.method
        out = fn(x, mixing=self.mixing, seed=self.seed * 1_000_003 + c, executor="cpu")
        if self.views:
            return tuple(torch.from_numpy(v) for v in out)
        return torch.from_numpy(out)


class TV2Dataset:
    """Item i: torchvision v2 AugMix on one uint8 CHW image, then float32 / 255."""

    def __init__(self, pool, seed=0):
        self.pool, self.seed = pool, seed
        self.transform = None

    def __len__(self):
        return 1 << 40

    def __getitem__(self, i):
        import torch
        from torchvision.transforms import v2

        if self.transform is None:
            self.transform = v2.Compose([v2.AugMix(all_ops=False), v2.ToDtype(torch.float32, scale=True)])
        torch.manual_seed(self.seed * 1_000_003 + i)
        img = torch.from_numpy(self.pool[i % len(self.pool)]).permute(2, 0, 1)
        return self.transform(img)


def _loader(dataset, per_run, batch_size, workers):
    import torch.utils.data as tud

    return tud.DataLoader(dataset, batch_size=batch_size, sampler=RunSampler(per_run), num_workers=workers,
                          persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)


def _cat_views(parts):
    import torch

    if isinstance(parts[0], (tuple, list)):
        return tuple(torch.cat([p[v] for p in parts]) for v in range(len(parts[0])))
    return torch.cat(parts)


def _time_loader(loader, per_run, warmup, repeats, collect=None):
    """Time passes over a DataLoader; returns (times, cpu summary)."""
    cpu = []

    def run(i):
        if i >= 0:
            with common.CpuMonitor() as mon:
                parts = list(loader)
            cpu.append(mon.result)
        else:
            parts = list(loader)
        if collect is not None:
            collect(parts)

    times = common.time_runs(run, warmup=warmup, repeats=repeats)
    return times, common.cpu_summary(cpu)


def _shutdown(loader):
    it = getattr(loader, "_iterator", None)
    if it is not None and hasattr(it, "_shutdown_workers"):
        it._shutdown_workers()


# ---------------------------------------------------------------- the suite

def run(cfg: dict) -> dict:
    """cfg: image_sizes, methods, gpu_batches, headline_batch, cpu_batch{size}, dl_batch,
    dl_images_1{size}, dl_images_all{size}, warmup, repeats, cpu_warmup, cpu_repeats,
    mixing_count, pool_count, workers, impls."""
    rows: list[dict] = []
    has_cuda = common.cuda_available()
    workers = cfg["workers"]
    impls = cfg.get("impls") or IMPLS
    for size in cfg["image_sizes"]:
        pool = data.image_pool(cfg["pool_count"], size)
        mix_cpu = data.mixing_set(size, cfg["mixing_count"], "cpu")
        mix_gpu = None
        for name in cfg["methods"]:
            method = build_method(name, size)
            views = name in data.VIEWS_METHODS
            config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in method.config().items()}
            mixing_cpu = mix_cpu if method.needs_mixing else None
            common.log(f"[augment] {name} {size}px")

            def base(impl, batch=None, notes=""):
                b = common.make_base("augment", name, impl, size, batch, notes)
                b["views"] = views
                b["method_config"] = config
                return b

            # ours, cuda
            if "ours-cuda" in impls:
                for batch in cfg["gpu_batches"]:
                    b = base("ours-cuda", batch, "cuda executor, uint8 torch batch on the device, "
                             "mixing pictures on the device; wall time incl. host-side planning")
                    if not has_cuda:
                        rows.append(common.skipped(b, common.NO_CUDA))
                        continue
                    if mix_gpu is None and method.needs_mixing:
                        mix_gpu = data.mixing_set(size, cfg["mixing_count"], "cuda")
                    rows.append(common.guarded(b, lambda b=b, batch=batch: _ours_cuda(
                        b, method, views, pool, batch, mix_gpu if method.needs_mixing else None, cfg)))
            if "ours-cpu-1proc" in impls:
                b = base("ours-cpu-1proc", cfg["cpu_batch"][size],
                         "cpu executor (numpy) in one process: single-threaded, one core")
                rows.append(common.guarded(b, lambda b=b: _ours_cpu(b, method, views, pool,
                                                                    cfg["cpu_batch"][size], mixing_cpu, cfg)))
            if "ours-cpu-workers" in impls:
                chunk = max(1, -(-cfg["cpu_batch_all"][size] // workers))
                b = base("ours-cpu-workers", chunk * workers,
                         f"cpu executor on all cores: DataLoader, {workers} workers x chunks of {chunk}, "
                         "chunks concatenated")
                rows.append(common.guarded(b, lambda b=b, chunk=chunk: _ours_cpu_workers(
                    b, method, views, pool, chunk, mixing_cpu, workers, cfg)))
            kwargs = data.reference_kwargs(name, method)
            for impl, nw, per_run in (("reference-dl1", 1, cfg["dl_images_1"][size]),
                                      ("reference-dlall", workers, cfg["dl_images_all"][size])):
                if impl not in impls:
                    continue
                b = base(impl, cfg["dl_batch"], f"gpuaug.reference (PIL, one image per call) in a DataLoader, "
                         f"{nw} worker(s), {per_run} images per run")
                ds = ReferenceDataset(name, kwargs, pool, mixing_cpu)
                rows.append(common.guarded(b, lambda b=b, ds=ds, nw=nw, per_run=per_run: _dataloader_row(
                    b, ds, per_run, cfg["dl_batch"], nw, cfg)))
            if name in TV2_METHODS and "tv2-cpu-dlall" in impls:
                per_run = cfg["dl_images_all"][size]
                b = base("tv2-cpu-dlall", cfg["dl_batch"],
                         f"torchvision v2 AugMix(all_ops=False) per image, DataLoader {workers} workers")
                rows.append(common.guarded(b, lambda b=b, per_run=per_run: _dataloader_row(
                    b, TV2Dataset(pool), per_run, cfg["dl_batch"], workers, cfg)))
            if name in TV2_METHODS and "tv2-cuda-batch" in impls:
                batch = cfg["headline_batch"]
                b = base("tv2-cuda-batch", batch, "torchvision v2 AugMix(all_ops=False) on a CUDA uint8 NCHW "
                         "batch: ONE op chain per batch, not per sample (not the same augmentation)")
                if not has_cuda:
                    rows.append(common.skipped(b, common.NO_CUDA))
                else:
                    rows.append(common.guarded(b, lambda b=b, batch=batch: _tv2_cuda(b, pool, batch, cfg)))
    return {"settings": _jsonable(cfg), "rows": rows, "ratios": ratios(rows, cfg["headline_batch"])}


def _jsonable(cfg):
    return {k: ({str(kk): vv for kk, vv in v.items()} if isinstance(v, dict) else v) for k, v in cfg.items()}


def _ours_cuda(base, method, views, pool, batch, mixing, cfg):
    import torch

    from gpuaug.executors import cuda as cuda_exec

    cuda_exec.load_kernels("cuda")
    images = torch.from_numpy(data.tile_batch(pool, batch)).cuda()
    fn = method.views if views else method
    torch.cuda.synchronize()
    times = common.time_runs(lambda i: fn(images, mixing=mixing, seed=10_000 + i, executor="cuda"),
                             warmup=cfg["warmup"], repeats=cfg["repeats"], sync=common.cuda_sync)
    return common.timed_row(base, times, batch, seeds=[10_000 + i for i in range(cfg["repeats"])])


def _ours_cpu(base, method, views, pool, batch, mixing, cfg):
    images = data.tile_batch(pool, batch)
    fn = method.views if views else method
    cpu = []

    def run(i):
        with common.CpuMonitor() as mon:
            fn(images, mixing=mixing, seed=20_000 + i, executor="cpu")
        cpu.append(mon.result)

    times = common.time_runs(run, warmup=cfg["cpu_warmup"], repeats=cfg["cpu_repeats"])
    return common.timed_row(base, times, batch, cpu=common.cpu_summary(cpu[cfg["cpu_warmup"]:]))


def _ours_cpu_workers(base, method, views, pool, chunk, mixing, workers, cfg):
    loader = _loader(ChunkDataset(method, views, pool, chunk, mixing), workers, None, workers)
    try:
        times, cpu = _time_loader(loader, workers, cfg["cpu_warmup"], cfg["cpu_repeats"], collect=_cat_views)
    finally:
        _shutdown(loader)
    return common.timed_row(base, times, chunk * workers, cpu=cpu, workers=workers)


def _dataloader_row(base, dataset, per_run, batch, workers, cfg):
    loader = _loader(dataset, per_run, batch, workers)
    try:
        times, cpu = _time_loader(loader, per_run, cfg["cpu_warmup"], cfg["cpu_repeats"])
    finally:
        _shutdown(loader)
    return common.timed_row(base, times, per_run, cpu=cpu, workers=workers)


def _tv2_cuda(base, pool, batch, cfg):
    import torch
    from torchvision.transforms import v2

    images = torch.from_numpy(data.tile_batch(pool, batch)).cuda().permute(0, 3, 1, 2).contiguous()
    t = v2.AugMix(all_ops=False)

    def run(i):
        torch.manual_seed(30_000 + i)
        t(images).float().div_(255)

    times = common.time_runs(run, warmup=cfg["warmup"], repeats=cfg["repeats"], sync=common.cuda_sync)
    return common.timed_row(base, times, batch)


# ---------------------------------------------------------------- ratios

OURS = ("ours-cuda", "ours-cpu-workers")


def ratios(rows: list[dict], headline_batch: int) -> list[dict]:
    """ours / baseline (images/s medians) for each method and size: ours = ours-cuda at the
    headline batch (else its largest measured batch) and ours-cpu-workers; baselines =
    every other measured row of the same method and size."""
    out = []
    ok = [r for r in rows if r["status"] == "ok"]
    keys = sorted({(r["method"], r["image_size"]) for r in ok}, key=str)
    for method, size in keys:
        group = [r for r in ok if r["method"] == method and r["image_size"] == size]
        ours = []
        cuda_rows = [r for r in group if r["impl"] == "ours-cuda"]
        if cuda_rows:
            pick = [r for r in cuda_rows if r["batch"] == headline_batch] or \
                sorted(cuda_rows, key=lambda r: r["batch"])[-1:]
            ours += pick
        ours += [r for r in group if r["impl"] == "ours-cpu-workers"]
        for o in ours:
            for b in group:
                if b is o or b["impl"] == o["impl"] or (o["impl"] == "ours-cpu-workers" and b["impl"] == "ours-cuda"):
                    continue
                out.append({"method": method, "image_size": size, "ours": o["name"], "baseline": b["name"],
                            "ours_impl": o["impl"], "baseline_impl": b["impl"],
                            "ratio": o["throughput"]["median"] / b["throughput"]["median"]})
    return out
