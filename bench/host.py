"""Benchmark: the cuda executor's host side, measured on the CPU (no GPU needed).

Each batch runs on the ``recording`` backend (:mod:`gpuaug.executors.recording`): the
mixing-picture draw, the plan, the parameter packing and every launch's set-up and
argument checks run for real; kernels, uploads and memsets are only recorded. Per method,
batch and image size a row gives:

* ``host_ms_per_batch``: median host time of one batch: the CPU time of the Python
  thread that feeds the GPU (``host_ms`` has the spread; ``host_wall_ms`` the wall time,
  which on a loaded machine also counts waiting for a core), and ``host_ceiling_img_s``
  = batch / that time: the most images/s this host side can feed, whatever the GPU;
* ``dali_gil_ms_per_batch``: the same batch through the DALI node's callable
  (``gpuaug.dali._Augment``: per-sample inputs of one dense buffer in, per-sample
  outputs out, as DALI 2.4's batch ``python_function`` requires; CPU time);
  all of it runs in Python, so it is the time the node holds the GIL per batch;
* per batch: ``launches`` (kernels), ``elementwise`` (CuPy-style passes and copies),
  ``uploads`` (``pageable_uploads`` of them from pageable memory), ``memsets``,
  ``syncs`` (host waits on the device);
* ``bytes_per_image``: device bytes all of them would move, per image, and
  ``min_bytes_per_image``: read the uint8 image (and mixing crop) once, write each float32
  output once.

NoisyMix is timed as JSD views (clean, aug1, aug2), as the trainer uses it. On a machine
with a CUDA device the row also has ``cuda_host_ms_per_batch``: the real cuda executor's
host time per batch (no synchronisation), which includes CuPy's own launch overhead.
"""

from __future__ import annotations

import time

import numpy as np

from . import augment, common, data

# bench's method names -> the names in this suite's rows (the spelling)
ROW_NAMES = {"augmix": "augmix", "pixmix": "pixmix", "ipmix": "ipmix", "dynamic-mixup": "dynamic_mixup",
             "noisymix": "noisymix"}


def min_bytes_per_image(height: int, width: int, needs_mixing: bool, outputs: int) -> float:
    """Read the uint8 image (and its mixing crop) once, write each float32 output once."""
    px = 3.0 * height * width
    return px * (2 if needs_mixing else 1) + outputs * 4 * px


def _mixing(size: int, count: int):
    from gpuaug.executors import crops
    from gpuaug.mixing import MixingSet

    side = max(size, int(round(size * 256 / 224)))
    # Only sample_plan runs on the host; the pictures' pixels are never read.
    return crops.DeviceMixingSet(MixingSet.from_array(np.zeros((count, side, side, 3), np.uint8)))


def _batch_runner(method, n: int, size: int, mixing, views: bool):
    """One batch as ``Method._run`` does it on the cuda backend (after the DLPack hand-off)."""
    from gpuaug.executors import recording
    from gpuaug.executors.backend import get_backend
    from gpuaug.methods.base import to_float
    from gpuaug.methods.mixing_source import SetSource

    backend = get_backend("recording")
    x = recording.device_images(n, size, size)
    source = SetSource(mixing, size, size) if method.needs_mixing else None
    n_views = 2 if views else 1

    def run(rng):
        pictures = source.gather(source.sample(n, rng), backend) if source is not None else None
        outs = method.execute_all([method.plan(n, size, size, rng) for _ in range(n_views)], x, pictures, backend)
        if views:
            outs.insert(0, to_float(backend, x))
        return outs

    return run


def _dali_runner(method, n: int, size: int, mixing, views: bool):
    """One batch through the DALI node's callable, inputs and outputs per sample."""
    from gpuaug.dali import _Augment
    from gpuaug.executors import recording

    node = _Augment(method, mixing if method.needs_mixing else None, views, seed=0, shard_id=0,
                    gpu=True, backend="recording")
    samples = list(recording.device_images(n, size, size))  # a dense TensorList, as DALI's resize/crop give
    return lambda rng: node(samples)


def _time(run, warmup: int, min_repeats: int, max_repeats: int, budget_s: float, seed: int):
    """Per-batch seconds of this thread's CPU time and of wall time, one Recorder per batch."""
    from gpuaug.executors import recording

    rng = np.random.default_rng(seed)
    for _ in range(warmup):
        with recording.session():
            run(rng)
    cpu, wall, recs = [], [], []
    start = time.perf_counter()
    while len(cpu) < max_repeats and (len(cpu) < min_repeats or time.perf_counter() - start < budget_s):
        with recording.session() as rec:
            t0, c0 = time.perf_counter(), time.thread_time()
            run(rng)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - t0)
        recs.append(rec)
    return cpu, wall, recs


_cuda_sets: dict = {}


def _cuda_host_ms(method, n, size, views, cfg):
    """Host time per batch of the real cuda executor (launch-bound: no synchronisation)."""
    import cupy

    x = cupy.zeros((n, size, size, 3), dtype=cupy.uint8)
    mix = None
    if method.needs_mixing:
        if size not in _cuda_sets:
            _cuda_sets[size] = data.mixing_set(size, 8, "cuda")
        mix = _cuda_sets[size]
    call = method.views if views else method.__call__
    times = common.time_runs(lambda i: call(x, mixing=mix, seed=i), warmup=cfg["warmup"], repeats=cfg["repeats"])
    cupy.cuda.Device().synchronize()
    return 1e3 * float(np.median(times))


def run(cfg: dict) -> dict:
    has_cuda = common.cuda_available()
    rows = []
    for size in cfg["image_sizes"]:
        mixing = _mixing(size, cfg["mixing_count"])
        for name in cfg["methods"]:
            method = augment.build_method(name, size)
            views = name in data.VIEWS_METHODS
            for n in cfg["batches"]:
                common.log(f"[host] {name} {size}px b{n}")
                base = common.make_base("host", ROW_NAMES.get(name, name), "recording", size, n,
                                        "host side of the cuda executor; device work recorded, not run")
                base["views"] = views

                def measure(method=method, n=n, size=size, views=views, base=base):
                    times, wall, recs = _time(_batch_runner(method, n, size, mixing, views), cfg["warmup"],
                                              cfg["min_repeats"], cfg["repeats"], cfg["budget_s"], seed=1)
                    summaries = [r.summary() for r in recs]
                    med = lambda key: float(np.median([s[key] for s in summaries]))  # noqa: E731
                    host_ms = 1e3 * float(np.median(times))
                    outputs = 3 if views else 1
                    row = dict(base, status="ok", reason=None)
                    row.update(
                        host_ms_per_batch=host_ms, host_ms=common.stats([1e3 * t for t in times]),
                        host_wall_ms=common.stats([1e3 * t for t in wall]),
                        host_ceiling_img_s=n / (host_ms / 1e3),
                        launches=med("launches"), elementwise=med("elementwise"), uploads=med("uploads"),
                        pageable_uploads=med("pageable_uploads"), upload_bytes=med("upload_bytes"),
                        memsets=med("memsets"), syncs=med("syncs"),
                        bytes_per_image=float(np.mean([s["bytes"] for s in summaries])) / n,
                        min_bytes_per_image=min_bytes_per_image(size, size, method.needs_mixing, outputs),
                        kernels=summaries[0]["kernels"],
                    )
                    row["bytes_vs_min"] = row["bytes_per_image"] / row["min_bytes_per_image"]
                    dtimes, _, _ = _time(_dali_runner(method, n, size, mixing, views), cfg["warmup"],
                                         cfg["min_repeats"], cfg["repeats"], cfg["budget_s"] / 2, seed=2)
                    row["dali_gil_ms_per_batch"] = 1e3 * float(np.median(dtimes))
                    row["dali_ceiling_img_s"] = n / (row["dali_gil_ms_per_batch"] / 1e3)
                    row["cuda_host_ms_per_batch"] = None
                    if has_cuda:
                        try:
                            row["cuda_host_ms_per_batch"] = _cuda_host_ms(method, n, size, views, cfg)
                        except Exception as err:  # noqa: BLE001 - the CPU figures stand on their own
                            row["cuda_host_error"] = f"{type(err).__name__}: {err}"
                    return row

                rows.append(common.guarded(base, measure))
    return {"settings": cfg, "rows": rows}
