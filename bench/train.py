"""Benchmark 4: a ResNet-50 training step (torchvision model, SGD, bfloat16 autocast on
CUDA, channels_last) fed by

* ``synthetic``       a device-resident batch (the ceiling: no loading at all); with JSD
                      the same three views, so the step does the same work as (b);
* ``ours-loader``     gpuaug's ImageFolderLoader with the method (+JSD views) on the device;
* ``cpu-reference``   torchvision ImageFolder + the gpuaug.reference method (+ reference JSD
                      views) in a DataLoader with one worker per core, pinned, copied over.

images/s counts source images (a JSD step forwards 3x as many samples: see
``model_samples_per_s``). The figures users care about: ours/synthetic (how close the
loader gets to the ceiling) and ours/cpu-reference. On CPU-only machines the step runs in
float32 on the CPU (smoke only: the numbers say nothing about a GPU).
"""

from __future__ import annotations

from . import augment, common, data, loader

IMPLS = ("synthetic", "ours-loader", "cpu-reference")


def js_loss(logits_clean, logits_a, logits_b):
    import torch
    import torch.nn.functional as F

    p = [F.softmax(x.float(), dim=1) for x in (logits_clean, logits_a, logits_b)]
    m = torch.clamp((p[0] + p[1] + p[2]) / 3, 1e-7, 1).log()
    return sum(F.kl_div(m, q, reduction="batchmean") for q in p) / 3


class Step:
    """One optimisation step of ResNet-50 on a batch (or JSD triple) of NCHW images."""

    def __init__(self, device: str, num_classes: int, jsd: bool, arch: str = "resnet50"):
        import torch
        import torchvision

        self.device, self.jsd = device, jsd
        self.model = getattr(torchvision.models, arch)(num_classes=num_classes).to(device)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        self.autocast = device.startswith("cuda")

    def __call__(self, images, labels):
        import torch
        import torch.nn.functional as F

        if isinstance(images, (tuple, list)):
            x = torch.cat(list(images))
        else:
            x = images
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = labels.to(self.device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.model(x)
        if self.jsd and isinstance(images, (tuple, list)):
            n = labels.shape[0]
            lc, la, lb = logits[:n], logits[n:2 * n], logits[2 * n:]
            loss = F.cross_entropy(lc.float(), labels) + 12.0 * js_loss(lc, la, lb)
        else:
            loss = F.cross_entropy(logits.float(), labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss


class SyntheticStream:
    def __init__(self, batch, size, device, jsd, num_classes):
        import torch

        g = torch.Generator(device="cpu").manual_seed(0)
        make = (lambda: torch.randn(batch, 3, size, size, generator=g).to(device)
                .contiguous(memory_format=torch.channels_last))
        self.images = tuple(make() for _ in range(3)) if jsd else make()
        self.labels = torch.randint(0, num_classes, (batch,), generator=g).to(device)

    def next(self):
        return self.images, self.labels


def run(cfg: dict) -> dict:
    """cfg: data_dir, jpeg_count, image_size, batch, method, jsd, steps_per_run, warmup,
    repeats, workers, mixing_count, arch, impls."""
    has_cuda = common.cuda_available()
    device = "cuda" if has_cuda else "cpu"
    size, batch, name, jsd, workers = cfg["image_size"], cfg["batch"], cfg["method"], cfg["jsd"], cfg["workers"]
    manifest = data.jpeg_folder(cfg["data_dir"], cfg["jpeg_count"], classes=cfg.get("classes", 10))
    num_classes = manifest["classes"]
    impls = cfg.get("impls") or IMPLS
    method = augment.build_method(name, size)
    mixing = data.mixing_set(size, cfg["mixing_count"], device) if method.needs_mixing else None
    mix_cpu = data.mixing_set(size, cfg["mixing_count"], "cpu") if method.needs_mixing else None
    sync = common.cuda_sync if has_cuda else None
    precision = "bf16 autocast, channels_last" if has_cuda else "float32 on the CPU (smoke only), channels_last"
    rows = []

    def base(impl, notes):
        b = common.make_base("train", name, impl, size, batch, f"{cfg['arch']} step, {precision}; {notes}")
        b.update(jsd=jsd, device=device, arch=cfg["arch"])
        return b

    def measure(b, stream):
        import torch

        if has_cuda:
            torch.backends.cudnn.benchmark = True
        step = Step(device, num_classes, jsd, cfg["arch"])
        counts, cpu = [], []

        def one_run(i):
            got = 0
            with common.CpuMonitor() as mon:
                for _ in range(cfg["steps_per_run"]):
                    images, labels = stream.next()
                    step(images, labels)
                    got += loader.n_images(images)
                if sync:
                    sync()
            if i >= 0:
                counts.append(got)
                cpu.append(mon.result)

        times = common.time_runs(one_run, warmup=cfg["warmup"], repeats=cfg["repeats"], sync=sync)
        row = common.timed_row(b, times, int(sum(counts) / max(len(counts), 1)), cpu=common.cpu_summary(cpu))
        row["throughput"] = common.stats([c / t for c, t in zip(counts, times)])
        row["model_samples_per_s"] = common.stats([c * (3 if jsd else 1) / t for c, t in zip(counts, times)])
        return row

    common.log(f"[train] {cfg['arch']} {name} jsd={jsd} on {device}")
    if "synthetic" in impls:
        b = base("synthetic", "device-resident random batch" + (" (three views)" if jsd else ""))
        rows.append(common.guarded(b, lambda: measure(b, SyntheticStream(batch, size, device, jsd, num_classes))))
    if "ours-loader" in impls:
        b = base("ours-loader", f"gpuaug ImageFolderLoader(device={device!r}, num_threads={workers})")
        cls, why_not = loader.loader_class()
        if cls is None:
            rows.append(common.skipped(b, why_not))
        else:
            rows.append(common.guarded(b, lambda: measure(b, loader.BatchStream(loader.ours_loader(
                cfg["data_dir"], batch, method, jsd, size, device, workers, mixing,
                dtype="bfloat16" if has_cuda else "float32"), "cpu"))))
    if "cpu-reference" in impls:
        b = base("cpu-reference", f"torchvision ImageFolder + gpuaug.reference, DataLoader {workers} workers")
        rows.append(common.guarded(b, lambda: measure(b, loader.BatchStream(loader.reference_loader(
            cfg["data_dir"], batch, name, size, workers, mix_cpu, jsd, has_cuda), device))))
    by = {r["impl"]: r for r in rows if r["status"] == "ok"}
    ratios = []
    for num, den, what in (("ours-loader", "synthetic", "(b)/(a): our loader vs the device-resident ceiling"),
                           ("ours-loader", "cpu-reference", "(b)/(c): our loader vs the CPU reference loader"),
                           ("cpu-reference", "synthetic", "(c)/(a): CPU reference loader vs the ceiling")):
        if num in by and den in by:
            ratios.append({"method": name, "ours": by[num]["name"], "baseline": by[den]["name"], "what": what,
                           "ours_impl": num, "baseline_impl": den,
                           "ratio": by[num]["throughput"]["median"] / by[den]["throughput"]["median"]})
    return {"settings": augment._jsonable(cfg), "dataset": manifest, "rows": rows, "ratios": ratios}
