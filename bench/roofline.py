"""Benchmark 2: roofline. For each method, the bytes its kernels must move per image (counted
from the cuda executor's own launches on the recording backend:
:func:`bench.bytes_model.record`) and the achieved fraction of the device's
measured copy bandwidth (a torch device-to-device copy: 2 x size bytes per copy).

Per timed run r (seed 10_000 + r, the same seeds as the augment suite's cuda rows):
achieved_r = traced_bytes(seed_r) / time_r; fraction_r = achieved_r / copy bandwidth.
``compulsory`` is what a single fused kernel would have to move (read the uint8 images
and mixing crops once, write the float32 outputs once); ``compulsory_fraction`` =
compulsory bytes / time / copy bandwidth says how far the method is from that ideal.
"""

from __future__ import annotations

from . import augment, bytes_model, common, data

NEEDS_DEVICE = "needs a CUDA device: the achieved fraction is relative to the device's measured copy bandwidth"


def copy_bandwidth(nbytes: int, warmup: int, repeats: int) -> dict:
    import torch

    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").fill_(1)
    dst = torch.empty_like(src)
    times = common.time_runs(lambda i: dst.copy_(src), warmup=warmup, repeats=repeats, sync=common.cuda_sync)
    gbps = [2 * nbytes / t / 1e9 for t in times]
    del src, dst
    torch.cuda.empty_cache()
    return {"status": "ok", "method": "torch.Tensor.copy_ device-to-device", "buffer_bytes": nbytes,
            "bytes_per_copy": 2 * nbytes, "GBps": common.stats(gbps), "time_s": common.stats(times)}


def run(cfg: dict) -> dict:
    has_cuda = common.cuda_available()
    rows = []
    if has_cuda:
        bw = common.guarded({"suite": "roofline", "name": "copy-bandwidth"},
                            lambda: copy_bandwidth(cfg["bw_bytes"], cfg["warmup"], cfg["repeats"]))
    else:
        bw = {"status": "skipped", "reason": common.NO_CUDA}
    peak = bw["GBps"]["median"] * 1e9 if bw.get("status") == "ok" else None
    batch = cfg["batch"]
    seeds = [10_000 + i for i in range(cfg["repeats"])]
    for size in cfg["image_sizes"]:
        mix = data.mixing_set(size, cfg["mixing_count"], "cuda" if has_cuda else "cpu")
        pool = data.image_pool(cfg["pool_count"], size)
        for name in cfg["methods"]:
            method = augment.build_method(name, size)
            views = name in data.VIEWS_METHODS
            common.log(f"[roofline] {name} {size}px")
            base = common.make_base("roofline", name, "ours-cuda", size, batch,
                                    "bytes: traced from the plan (see bench/README.md); time: cuda executor")
            base["views"] = views

            def model(method=method, views=views):
                traces = [bytes_model.record(method, batch, size, size, s, views, mix if method.needs_mixing else None)
                          for s in seeds]
                per_image = [t["bytes_per_image"] for t in traces]
                return traces, {"per_image": common.stats(per_image),
                                "compulsory_per_image": traces[0]["compulsory_bytes_per_image"],
                                "op_kernels_per_image": common.stats([t["bytes_op_kernels"] / batch for t in traces]),
                                "elementwise_per_image": common.stats([t["bytes_elementwise"] / batch for t in traces]),
                                "fused_per_image": common.stats([t["bytes_fused"] / batch for t in traces]),
                                "launches_median_run": traces[len(traces) // 2]["launches"],
                                "elementwise_full_batch_launches": common.stats(
                                    [t["elementwise_launches_full_batch"] for t in traces]),
                                "by_function_first_run": traces[0]["elementwise_by_function"]}

            def row(base=base, method=method, views=views, model=model):
                traces, summary = model()
                if not has_cuda:
                    return common.skipped(base, NEEDS_DEVICE + f" ({common.NO_CUDA})", bytes=summary)
                if peak is None:
                    return common.skipped(base, "copy bandwidth measurement failed", bytes=summary)
                r = augment._ours_cuda(base, method, views, pool, batch,
                                       mix if method.needs_mixing else None, cfg)
                times = r["time_s"]["samples"]
                achieved = [t["bytes_total"] / s for t, s in zip(traces, times)]
                r["bytes"] = summary
                r["achieved_GBps"] = common.stats([a / 1e9 for a in achieved])
                r["fraction_of_copy_bw"] = common.stats([a / peak for a in achieved])
                r["compulsory_fraction_of_copy_bw"] = common.stats(
                    [summary["compulsory_per_image"] * batch / s / peak for s in times])
                return r

            rows.append(common.guarded(base, row))
    return {"settings": augment._jsonable(cfg), "copy_bandwidth": bw, "rows": rows}
