"""DALI graph nodes and ready pipelines.

Nodes take a DataNode of uint8 HWC images, batch-dense (crop or resize to one size
first), on the GPU or the CPU, and return float32 HWC DataNodes in [0, 1]; use them in
any ``@pipeline_def`` (in the style of ``nvidia.dali.auto_aug``)::

    images = fn.decoders.image(jpegs, device="mixed")
    images = fn.random_resized_crop(images, size=224)
    images = gpuaug.dali.ipmix(images, mixing=MixingSet.fractals(1000, device="cuda"))

On the GPU a node is a ``python_function(device="gpu", batch_processing=True)`` running
the cuda executor on DALI's stream (no host sync); on the CPU it runs the cpu executor.
Randomness: one numpy Generator per node, ``stream_rng(seed, shard_id)`` with ``seed``
defaulting to the pipeline's seed, advanced batch by batch -- reproducible for a fixed
seed, different per shard. The first batch equals ``method(batch, mixing, seed=rng)``
with ``rng = stream_rng(seed, shard_id)`` (and later batches continue that rng).
"""

from __future__ import annotations

import os
import tempfile
import weakref

import numpy as np

from ._arrays import ArrayKind
from .methods import AugMix, DynamicMixup, IPMix, NoisyMix, PixMix
from .methods.base import Method, to_float
from .methods.mixing_source import SetSource
from .normalization import IMAGENET_MEAN as MEAN, IMAGENET_STD as STD

DTYPES = ("float16", "bfloat16", "float32")


def stream_rng(seed: int, shard_id: int = 0) -> np.random.Generator:
    """The Generator a node starts from for ``(seed, shard_id)``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(shard_id), 0x6770])


class _Augment:
    """The batch callable behind a node (state: its Generator, advanced per batch)."""

    def __init__(self, method: Method, mixing, views: bool, seed: int, shard_id: int, gpu: bool,
                 backend: str | None = None):
        self.method, self.mixing, self.views, self.gpu = method, mixing, views, gpu
        self.n_views = method.jsd_views if views else 1
        self.backend = backend  # None: "cuda" or "cpu" by ``gpu`` ("recording": host benchmark)
        self.rng = stream_rng(seed, shard_id)

    def __call__(self, images, pool=None):
        from .executors.backend import get_backend

        backend = get_backend(self.backend or ("cuda" if self.gpu else "cpu"))
        if not backend.on_device:  # cpu, or the recording backend (no device at all)
            return self._run(images, pool, backend)
        import cupy

        # Kernels, buffers and the mixing set must be those of the images' device, not of
        # whatever device DALI's worker thread happens to have current.
        with cupy.cuda.Device(images[0].device.id):
            return self._run(images, pool, backend)

    def _run(self, images, pool, backend):
        xp = backend.xp
        shapes = {tuple(a.shape) for a in images}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
            raise ValueError(f"gpuaug.dali nodes need batch-dense uint8 HWC RGB images (crop or resize "
                             f"to one size first); got shapes {sorted(shapes)[:4]}")
        x = _dense_batch(xp, images)
        n, h, w = (int(s) for s in x.shape[:3])
        pictures = None
        if self.method.needs_mixing:
            if pool is not None:
                pool = _dense_batch(xp, pool)
                if tuple(pool.shape[1:3]) != (h, w):
                    raise ValueError(f"mixing pictures from the pipeline are {tuple(pool.shape[1:3])}, "
                                     f"images are {(h, w)}: crop them to the images' size")
                pictures = pool[backend.asarray(self.rng.integers(0, pool.shape[0], size=n))]
            else:
                kind = ArrayKind("cupy", True, x.device.id) if self.gpu else ArrayKind("numpy", False)
                source = SetSource(self.mixing, h, w, kind)
                pictures = source.gather(source.sample(n, self.rng), backend)
        outs = self.method.execute_all([self.method.plan(n, h, w, self.rng) for _ in range(self.n_views)], x,
                                       pictures, backend)
        if self.views:
            outs.insert(0, to_float(backend, x))
        outs = [list(xp.ascontiguousarray(o)) for o in outs]
        return tuple(outs) if len(outs) > 1 else outs[0]


def _dense_batch(xp, samples):
    """The samples as one (N, ...) array: a read-only view when they already lie back to
    back in one buffer (DALI's dense TensorLists: no copy), else one stack."""
    first = samples[0]
    step = first.nbytes
    if step and all(a.flags.c_contiguous and a.shape == first.shape and a.dtype == first.dtype for a in samples):
        address = (lambda a: a.ctypes.data) if isinstance(first, np.ndarray) else (lambda a: a.data.ptr)
        start = address(first)
        if all(address(a) == start + i * step for i, a in enumerate(samples)):
            shape = (len(samples),) + tuple(first.shape)
            if isinstance(first, np.ndarray):
                return np.lib.stride_tricks.as_strided(first, shape, (step,) + first.strides, writeable=False)
            return type(first)(shape, first.dtype, memptr=first.data)  # CuPy: a view of the same memory
    return xp.ascontiguousarray(xp.stack(samples))


def _pipeline_seed() -> int:
    from nvidia.dali.pipeline import Pipeline

    pipe = Pipeline.current()
    if pipe is None:
        raise RuntimeError("gpuaug.dali nodes must be called inside a DALI pipeline definition")
    if pipe.seed is None:
        raise ValueError("give the pipeline a seed (or pass seed=) so the augmentation is reproducible")
    return int(pipe.seed)


def augment(images, method: Method, mixing=None, views: bool = False, seed: int | None = None,
            shard_id: int = 0):
    """Apply ``method`` to a DataNode of uint8 HWC images; float32 HWC in [0, 1].

    ``mixing``: a :class:`gpuaug.mixing.MixingSet` (on the pipeline's device: a CUDA set
    for a GPU node, a host set for a CPU node) or a DataNode of uint8 pictures of the
    images' size (e.g. a second reader; one drawn per image). ``views=True`` returns
    (clean, aug1, aug2) for JSD training ((clean, aug) for a method with ``jsd_views=1``).
    """
    from nvidia.dali import fn
    from nvidia.dali.data_node import DataNode

    if not isinstance(method, Method):
        raise TypeError(f"method must be a gpuaug method (e.g. gpuaug.AugMix()), got {type(method).__name__}")
    if method.needs_mixing and mixing is None:
        raise ValueError(f"{type(method).__name__} needs mixing= (a MixingSet or a DataNode of pictures)")
    if not method.needs_mixing and mixing is not None:
        raise ValueError(f"{type(method).__name__} takes no mixing pictures")
    gpu = images.device == "gpu"
    node_input = isinstance(mixing, DataNode)
    if mixing is not None and not node_input:
        _check_set_device(mixing, gpu)
        if gpu and getattr(mixing, "device_index", None) is not None:
            mixing.cupy_images()  # convert to CuPy now, not on DALI's stream (see MixingSet)
    seed = _pipeline_seed() if seed is None else int(seed)
    n_out = 1 + method.jsd_views if views else 1
    fun = _Augment(method, None if node_input else mixing, views, seed, shard_id, gpu)
    inputs = [images] + ([mixing.gpu() if gpu and mixing.device != "gpu" else mixing] if node_input else [])
    out = fn.python_function(*inputs, function=fun, num_outputs=n_out, batch_processing=True,
                             device="gpu" if gpu else "cpu", output_layouts=["HWC"] * n_out)
    return tuple(out) if views else out


def _check_set_device(mixing, gpu: bool) -> None:
    if not (hasattr(mixing, "sample_plan") and hasattr(mixing, "gather")):
        raise TypeError(f"mixing must be a MixingSet or a DataNode, got {type(mixing).__name__}")
    on_cuda = str(mixing.device).startswith("cuda")
    if on_cuda and not gpu:
        raise ValueError(f"the mixing set is on {mixing.device} but the images are on the CPU; "
                         "build it with device='cpu' for a CPU pipeline")


def augmix(images, seed=None, shard_id=0, **settings):
    """AugMix (``gpuaug.AugMix(**settings)``) as a DALI node."""
    return augment(images, AugMix(**settings), seed=seed, shard_id=shard_id)


def pixmix(images, mixing, seed=None, shard_id=0, **settings):
    """PixMix (``gpuaug.PixMix(**settings)``) as a DALI node."""
    return augment(images, PixMix(**settings), mixing=mixing, seed=seed, shard_id=shard_id)


def ipmix(images, mixing, seed=None, shard_id=0, **settings):
    """IPMix (``gpuaug.IPMix(**settings)``) as a DALI node."""
    return augment(images, IPMix(**settings), mixing=mixing, seed=seed, shard_id=shard_id)


def dynamic_mixup(images, seed=None, shard_id=0, **settings):
    """Dynamic Mixup (``gpuaug.DynamicMixup(**settings)``) as a DALI node."""
    return augment(images, DynamicMixup(**settings), seed=seed, shard_id=shard_id)


def noisymix(images, seed=None, shard_id=0, **settings):
    """NoisyMix's data side (AugMix views) as a DALI node: (clean, aug1, aug2)."""
    return augment(images, NoisyMix(**settings), views=True, seed=seed, shard_id=shard_id)


def views(images, method: Method, mixing=None, seed=None, shard_id=0):
    """(clean, aug1, aug2) DataNodes for JSD training, from one decode."""
    return augment(images, method, mixing=mixing, views=True, seed=seed, shard_id=shard_id)


# ------------------------------------------------------------------ pipelines


def normalize(images, dtype: str = "float16", crop=None, mirror=None, uint8: bool = True, mean=MEAN, std=STD):
    """Mean/std normalisation (ImageNet's unless given, on the [0, 1] scale) to HWC ``dtype``
    (bfloat16 leaves DALI as float32; the loader casts). ``uint8=True``: input in 0..255,
    else float in [0, 1]."""
    from nvidia.dali import fn, types

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    scale = 255.0 if uint8 else 1.0
    kwargs = {} if crop is None else {"crop": crop}
    if mirror is not None:
        kwargs["mirror"] = mirror
    return fn.crop_mirror_normalize(
        images, dtype=types.FLOAT16 if dtype == "float16" else types.FLOAT, output_layout="HWC",
        mean=[m * scale for m in mean], std=[s * scale for s in std], **kwargs)


def _read(source, shard_id: int, num_shards: int, seed: int):
    """(encoded images, int32 labels) from a reader spec (see :mod:`gpuaug.loader`)."""
    from nvidia.dali import fn, types

    if source.get("presharded"):  # the list is this rank's share already
        shard_id, num_shards = 0, 1
    if source["kind"] == "arrays":  # decoded uint8 HWC images from memory, already this rank's share
        images, labels = fn.external_source(source=source["batches"], num_outputs=2, batch=True,
                                            layout=["HWC", ""], dtype=[types.UINT8, types.INT32])
        return images, labels
    common = dict(shard_id=shard_id, num_shards=num_shards, pad_last_batch=True, name="reader", seed=seed)
    if source["kind"] == "files":
        jpegs, labels = fn.readers.file(**_file_args(source["files"], source["labels"]),
                                        random_shuffle=False, **common)
        return refuse_too_large(jpegs), labels
    jpegs, cls = fn.readers.webdataset(
        paths=source["paths"], index_paths=source["index_paths"], ext=[source["image_ext"], source["label_ext"]],
        missing_component_behavior="error", random_shuffle=source.get("shuffle", False),
        initial_fill=source.get("initial_fill", 256), **common)
    labels = fn.python_function(cls, function=_parse_labels, batch_processing=True)
    return jpegs, fn.cast(labels, dtype=types.INT32)


def _decoded(encoded, source, gpu: bool, side: int | None = None):
    """The reader's images decoded to uint8 HWC RGB (on the GPU for a GPU pipeline), resized
    to ``side`` x ``side`` when given; an "arrays" source is decoded already."""
    from nvidia.dali import fn, types

    if source["kind"] == "arrays":
        images = encoded.gpu() if gpu else encoded
        same = side is None or source.get("side") == side
        return images if same else fn.resize(images, size=(side, side))
    images = fn.decoders.image(encoded, device="mixed" if gpu else "cpu", output_type=types.RGB)
    return images if side is None else fn.resize(images, size=(side, side))


def _file_args(files, labels) -> dict:
    """``fn.readers.file`` arguments reading ``files``: ``files=``, or -- where a name is
    not valid UTF-8, which ``files=`` cannot take -- a ``file_list`` of the names' bytes,
    kept for the life of the pipeline being defined."""
    files = [os.fspath(f) for f in files]
    try:
        for f in files:
            f.encode("utf-8")
        return {"files": files, "labels": list(labels)}
    except UnicodeEncodeError:
        pass
    if any("\n" in f or "\r" in f for f in files):
        bad = next(f for f in files if "\n" in f or "\r" in f)
        raise ValueError(f"DALI cannot read a data set with both file names that are not UTF-8 and names "
                         f"with a line break (e.g. {bad!r}): rename those files")
    from nvidia.dali.pipeline import Pipeline

    fd, path = tempfile.mkstemp(prefix="gpuaug-files-", suffix=".txt")
    weakref.finalize(Pipeline.current(), _remove_quietly, path)
    with os.fdopen(fd, "wb") as f:
        for name, label in zip(files, labels):
            f.write(os.fsencode(os.path.abspath(name)) + b" %d\n" % int(label))
    return {"file_list": path}


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def refuse_too_large(encoded):
    """``encoded`` with every image over the pixel limit (:mod:`gpuaug.data.imagesize`, read
    from its header by ``fn.peek_image_shape``) zeroed, so the decoder refuses it instead
    of decoding a decompression bomb; the loader then finds it as "too large"
    (:func:`gpuaug.loader.loadfail.find_failed_file`)."""
    from nvidia.dali import fn, types

    from .data.imagesize import max_pixels

    limit = max_pixels()
    if not limit:
        return encoded
    shape = fn.peek_image_shape(encoded, dtype=types.INT64)
    return encoded * fn.cast(shape[0] * shape[1] <= limit, dtype=types.UINT8)


def _parse_labels(texts):
    return [np.array([int(bytes(t).decode("utf-8").strip())], np.int32) for t in texts]


def _mixing_reader(mixing_files, size: int, gpu: bool, seed: int):
    """A second reader: random mixing pictures, short side resized then randomly cropped."""
    from nvidia.dali import fn, types

    enc, _ = fn.readers.file(**_file_args(mixing_files, [0] * len(mixing_files)), random_shuffle=True,
                             name="mixing_reader",
                             seed=seed, initial_fill=min(1024, len(mixing_files)))
    pics = fn.decoders.image(enc, device="mixed" if gpu else "cpu", output_type=types.RGB)
    pics = fn.resize(pics, resize_shorter=max(size, round(size / 0.875)))
    return fn.crop(pics, crop=(size, size), crop_pos_x=fn.random.uniform(range=(0.0, 1.0)),
                   crop_pos_y=fn.random.uniform(range=(0.0, 1.0)))


def _finish(images, labels, method, mixing, jsd, dtype, shard_id, gpu, seed, mean=MEAN, std=STD):
    """Method (or views), then normalisation; returns the pipeline outputs."""
    if method is None:
        return normalize(images, dtype, mean=mean, std=std), labels
    out = augment(images, method, mixing=mixing, views=jsd, seed=seed, shard_id=shard_id)
    out = out if jsd else (out,)
    return (*[normalize(o, dtype, uint8=False, mean=mean, std=std) for o in out], labels)


def training_pipeline(source, batch_size: int, method: Method | None = None, mixing=None,
                      jsd: bool = False, image_size: int = 224, cifar: bool = False,
                      dtype: str = "float16", device_id: int | None = 0, num_threads: int = 4,
                      seed: int = 0, shard_id: int = 0, num_shards: int = 1, prefetch: int = 2,
                      aug_seed: int | None = None, mean=MEAN, std=STD):
    """reader -> decode ("mixed": nvJPEG / hardware decoder on GPU) with a random resized
    crop (scale 0.08-1, ratio 3/4-4/3) to ``image_size`` -> random flip -> ``method`` ->
    normalise. ``cifar=True``: decode, resize to ``image_size``, pad 4 + random crop,
    flip. ``device_id=None`` builds a CPU-only pipeline. ``mixing``: a MixingSet or a
    list of picture files (read by a second reader). ``mean``/``std``: the normalisation
    (:mod:`gpuaug.normalization`). Outputs: images (HWC; three with ``jsd``) and labels."""
    from nvidia.dali import fn, types
    from nvidia.dali.pipeline import Pipeline

    gpu = device_id is not None
    pipe = Pipeline(batch_size=batch_size, num_threads=num_threads, device_id=device_id, seed=seed,
                    prefetch_queue_depth=prefetch)
    with pipe:
        jpegs, labels = _read(source, shard_id, num_shards, seed)
        decoder = "mixed" if gpu else "cpu"
        if cifar:
            images = _decoded(jpegs, source, gpu, image_size)
            padded = image_size + 8
            images = fn.crop(images, crop=(padded, padded), out_of_bounds_policy="pad", fill_values=0)
            steps = [i / 8 for i in range(9)]
            images = fn.crop(images, crop=(image_size, image_size),
                             crop_pos_x=fn.random.uniform(values=steps), crop_pos_y=fn.random.uniform(values=steps))
        elif source["kind"] == "arrays":
            images = fn.random_resized_crop(_decoded(jpegs, source, gpu), size=(image_size, image_size),
                                            random_area=[0.08, 1.0], random_aspect_ratio=[0.75, 4 / 3],
                                            num_attempts=10)
        else:
            images = fn.decoders.image_random_crop(jpegs, device=decoder, output_type=types.RGB,
                                                   random_area=[0.08, 1.0], random_aspect_ratio=[0.75, 4 / 3],
                                                   num_attempts=10)
            images = fn.resize(images, size=(image_size, image_size))
        flip = fn.random.coin_flip(probability=0.5)
        if method is not None:
            images = fn.flip(images, horizontal=flip)
            if isinstance(mixing, (list, tuple)):
                mixing = _mixing_reader(mixing, image_size, gpu, seed + 1)
            outs = _finish(images, labels, method, mixing, jsd, dtype, shard_id, gpu, aug_seed, mean, std)
        else:
            outs = (normalize(images, dtype, mirror=flip, mean=mean, std=std), labels)
        pipe.set_outputs(*[o.gpu() if gpu else o for o in outs])
    return pipe


def validation_pipeline(source, batch_size: int, image_size: int = 224, cifar: bool = False,
                        dtype: str = "float16", device_id: int | None = 0, num_threads: int = 4,
                        seed: int = 0, shard_id: int = 0, num_shards: int = 1, prefetch: int = 2,
                        mean=MEAN, std=STD):
    """reader -> decode -> resize short side to image_size / 0.875 (256 for 224) -> centre
    crop ``image_size`` -> normalise. ``cifar=True``: resize to ``image_size`` only."""
    from nvidia.dali import fn
    from nvidia.dali.pipeline import Pipeline

    gpu = device_id is not None
    pipe = Pipeline(batch_size=batch_size, num_threads=num_threads, device_id=device_id, seed=seed,
                    prefetch_queue_depth=prefetch)
    with pipe:
        jpegs, labels = _read(source, shard_id, num_shards, seed)
        if cifar:
            images = normalize(_decoded(jpegs, source, gpu, image_size), dtype, mean=mean, std=std)
        else:
            images = fn.resize(_decoded(jpegs, source, gpu), resize_shorter=round(image_size / 0.875))
            images = normalize(images, dtype, crop=(image_size, image_size), mean=mean, std=std)
        pipe.set_outputs(images, labels.gpu() if gpu else labels)
    return pipe
