"""The DALI-backed loaders: one pipeline per epoch over a rank's share of the samples,
with files DALI fails on skipped and the epoch rebuilt (see :mod:`gpuaug.loader`)."""

from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np

from ..data import datafiles
from . import presets
from .placement import _auto_shard, _device_id, batch_sizes, resolve_device
from .rebatch import _Rebatch, refill
from .surface import VIEWS, DataLoaderSurface, memory_format_name, present
from .view import DatasetView

DTYPES = ("float32", "bfloat16", "float16")


class DaliLoader(DataLoaderSurface):
    """Base loader over :class:`gpuaug.data.datafiles.Samples` (use the subclasses)."""

    _skips_files = True  # a file DALI fails on is skipped (False: the epoch stops, see loadfail)
    _known_order = True  # False: the reader shuffles (webdataset), so loader.sampler cannot list the order

    def __init__(self, samples, batch_size: int, augment=None, mixing=None, jsd: bool = False,
                 train: bool = True, image_size: int | None = None, cifar: bool | None = None,
                 device: str = "auto", num_threads: int | None = None, seed: int = 0,
                 shard="auto", drop_last: bool = False, dtype: str = "float32", prefetch: int = 2,
                 validate: str = "decode", root=None, mean=None, std=None, preset: str | None = None,
                 memory_format="contiguous", views: str = "list", num_workers=None, pin_memory=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if jsd and augment is None:
            raise ValueError("jsd=True needs augment= a method (the views are clean, aug1, aug2)")
        if augment is not None and not train:
            raise ValueError("augment= only applies to train=True")
        if views not in VIEWS:
            raise ValueError(f"views must be one of {VIEWS}, got {views!r}")
        if views == "concat" and not jsd:
            raise ValueError("views='concat' lays out the views of jsd=True; without jsd there is one view")
        self.samples = samples
        self.batch_size, self.augment, self.jsd, self.train = batch_size, augment, jsd, train
        self.views, self.memory_format = views, memory_format_name(memory_format)
        self._accept_worker_args(num_workers, pin_memory)
        self.resolved = presets.resolve(preset, image_size, cifar, mean, std, sides=lambda: self._image_sides(samples))
        self.preset, self.image_size, self.cifar = self.resolved.preset, self.resolved.image_size, self.resolved.cifar
        self.mean, self.std = self.resolved.mean, self.resolved.std
        device = resolve_device(device)
        self.device, self.device_id = device, _device_id(device)
        self.validate = validate
        self.dataset = DatasetView(samples, root)
        self.num_threads = num_threads or min(8, os.cpu_count() or 1)
        self.seed, self.drop_last, self.dtype, self.prefetch = int(seed), drop_last, dtype, prefetch
        self.shard_id, self.num_shards = _auto_shard() if shard == "auto" else tuple(int(v) for v in shard)
        if not 0 <= self.shard_id < self.num_shards:
            raise ValueError(f"shard must be (shard_id, num_shards) with 0 <= shard_id < num_shards, got {shard!r}")
        if len(samples) < self.num_shards:
            raise ValueError(f"{len(samples)} samples cannot be split over {self.num_shards} ranks")
        self.mixing = self._check_mixing(augment, mixing)
        self.epoch, self._epoch_set = 0, False
        self._load_skips, self._load_skip_set = {}, set()  # files DALI failed on (see _run_epoch)
        self._load_skip_epochs = {}  # path -> the epoch it was skipped in (-1: left out from the start)
        n_files = sum(len(v) for r, v in samples.skipped.items() if r != "repeated folder")
        if n_files:
            warnings.warn(f"gpuaug loader: skipped {n_files} files "
                          f"({samples.skipped_summary(files_only=True)}); see loader.skipped", stacklevel=3)
        if samples.skipped.get("repeated folder"):
            warnings.warn(f"gpuaug loader: {len(samples.skipped['repeated folder'])} folder links lead to a folder "
                          "already read (a symlink loop or a second link) and were not followed; see "
                          "loader.skipped['repeated folder']", stacklevel=3)
        if samples.empty_classes:
            warnings.warn(f"gpuaug loader: {len(samples.empty_classes)} empty class folders "
                          f"(labels kept): {samples.empty_classes[:5]}", stacklevel=3)
        if drop_last and len(self) == 0:
            per_rank = len(samples) // self.num_shards
            warnings.warn(f"gpuaug loader: {per_rank} samples per rank is less than one batch of {batch_size} "
                          "with drop_last=True, so every epoch is empty: lower batch_size or set "
                          "drop_last=False", stacklevel=3)
        presets.log_once("loader", self.settings(), self.resolved)

    # ------------------------------------------------------------ public

    @property
    def skipped(self) -> dict:
        """Skip reason -> list of skipped paths (or tar:key for webdataset): the scan's and
        those skipped at load time (:attr:`bad_files`)."""
        merged = {r: list(v) for r, v in self.samples.skipped.items()}
        for reason, paths in self._load_skips.items():
            merged.setdefault(reason, []).extend(paths)
        return merged

    @property
    def bad_files(self) -> dict:
        """Skip reason ("missing", "undecodable") -> files that passed the scan but failed in
        DALI at load time (this rank's, so far); they are left out of later epochs."""
        return {r: list(v) for r, v in self._load_skips.items()}

    @property
    def load_skip_state(self) -> dict:
        """Path -> [reason, epoch] of this rank's files skipped at load time: what a
        checkpoint keeps so a resumed run leaves them out where the first run did."""
        return {p: [r, self._load_skip_epochs.get(p, -1)] for r, ps in self._load_skips.items() for p in ps}

    def leave_out(self, skips: dict) -> None:
        """Skip these files (path -> (reason, epoch) as :attr:`load_skip_state` gives) from
        the start of the next epoch, as if met at load time (a resumed run's)."""
        for path, (reason, epoch) in skips.items():
            if path not in self._load_skip_set:
                self._load_skips.setdefault(reason, []).append(path)
                self._load_skip_set.add(path)
                self._load_skip_epochs[path] = int(epoch)

    @property
    def classes(self) -> list:
        return self.samples.classes

    @property
    def num_samples(self) -> int:
        """Samples this rank yields per epoch (exactly its shard unless drop_last)."""
        return sum(self._sizes())

    def __len__(self) -> int:
        return len(self._sizes())

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next ``iter()`` runs (its order and augmentation draws)."""
        self.epoch, self._epoch_set = int(epoch), True

    def settings(self) -> dict:
        """The resolved settings (logged once at INFO, shown by ``repr(loader)``)."""
        out = {"batch_size": self.batch_size, "train": self.train, "preset": self.preset,
               "image_size": self.image_size, "crop": self.resolved.crop if self.train else
               ("as is" if self.cifar else f"short side {round(self.image_size / 0.875)}, centre crop"),
               "mean": self.mean, "std": self.std, "dtype": self.dtype, "memory_format": self.memory_format,
               "device": self.device}
        if self.augment is not None:
            out["augment"] = type(self.augment).__name__
        if self.jsd:
            out["views"] = self.views
        return out

    def _image_sides(self, samples) -> set:
        return presets.image_sides(samples.files)

    def _epoch_indices(self) -> list:
        """The sample indices this rank reads in the current epoch (``loader.sampler``)."""
        if not self._known_order:
            raise TypeError(f"{type(self).__name__} reads its shards through a shuffle buffer: "
                            "its sample order is not known ahead")
        return self._rank_order(self.epoch)[:self.num_samples]

    def __iter__(self):
        epoch = self.epoch
        self.epoch, self._epoch_set = epoch + 1, False
        if not self._sizes():  # an empty epoch: no pipeline, no decoding
            return iter(())
        return present(self._run_epoch(epoch), self.jsd, self.views, self.memory_format)

    # ------------------------------------------------------------ machinery

    def _sizes(self):
        return batch_sizes(len(self.samples), self.batch_size, self.shard_id, self.num_shards, self.drop_last)

    def _check_mixing(self, method, mixing):
        if method is None or not method.needs_mixing:
            if mixing is not None:
                raise ValueError("mixing= only applies to a method that mixes pictures (PixMix, IPMix)")
            return None
        if mixing is None:
            raise ValueError(f"{type(method).__name__} needs mixing= a MixingSet or a folder of pictures")
        if isinstance(mixing, (str, os.PathLike)):
            if not os.path.isdir(mixing):
                raise FileNotFoundError(f"mixing folder {str(mixing)!r} does not exist")
            return datafiles.read_file_list(datafiles.walk_files(mixing), validate=self.validate).files
        side = getattr(mixing, "side", None)
        if side is None:
            raise TypeError(f"mixing must be a MixingSet or a folder path, got {type(mixing).__name__}")
        if side < self.image_size:
            raise ValueError(f"mixing pictures are {side}x{side}, smaller than image_size={self.image_size}: "
                             f"build the MixingSet with resize >= {self.image_size}")
        if side > 2 * self.image_size:
            warnings.warn(f"mixing pictures ({side}px) are much larger than the images ({self.image_size}px); "
                          "crops will show small parts of them (MixingSet resize ~ image_size / 0.875)",
                          stacklevel=3)
        on_cuda = str(mixing.device).startswith("cuda")
        if on_cuda and self.device_id is None:
            raise ValueError(f"the mixing set is on {mixing.device} but device='cpu'; build it with device='cpu'")
        if not on_cuda and self.device_id is not None:
            warnings.warn("the mixing set is on the host: crops are copied to the GPU every batch; "
                          "build it with device='cuda'", stacklevel=3)
        return mixing

    def _seeds(self, epoch: int, restart: int = 0):
        key = [self.seed, epoch, self.shard_id] + ([restart] if restart else [])
        state = np.random.SeedSequence(key).generate_state(2)
        return int(state[0] & 0x7FFFFFFF), int(state[1] & 0x7FFFFFFF)

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.samples)
        if not self.train:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch, 0x0D]).permutation(n)

    def _rank_order(self, epoch: int) -> list:
        """This rank's share of the epoch's order: ``[r*N//S, (r+1)*N//S)`` (DALI's split)."""
        order, n, r, s = self._order(epoch), len(self.samples), self.shard_id, self.num_shards
        return [int(i) for i in order[r * n // s:(r + 1) * n // s]]

    def _source(self, epoch: int, indices=None) -> dict:
        """The reader spec: the rank's ``indices`` (already sharded), default its epoch share."""
        indices = self._rank_order(epoch) if indices is None else indices
        return {"kind": "files", "files": [self.samples.files[i] for i in indices],
                "labels": [self.samples.labels[i] for i in indices], "presharded": True}

    def _pipeline(self, source: dict, seeds):
        from .. import dali

        pipe_seed, aug_seed = seeds
        common = dict(batch_size=self.batch_size, image_size=self.image_size, cifar=self.cifar,
                      dtype=self.dtype, device_id=self.device_id, num_threads=self.num_threads,
                      seed=pipe_seed, shard_id=self.shard_id, num_shards=self.num_shards,
                      prefetch=self.prefetch, mean=self.mean, std=self.std)
        if self.train:
            return dali.training_pipeline(source, method=self.augment, mixing=self.mixing, jsd=self.jsd,
                                          aug_seed=aug_seed, **common)
        return dali.validation_pipeline(source, **common)

    def _dali_batches(self, source: dict, seeds):
        """``(images, labels)`` torch batches of one DALI pipeline over ``source``."""
        import torch
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        n_images = 1 + self.augment.jsd_views if self.jsd else 1
        names = [f"images{i}" for i in range(n_images)] + ["labels"]
        pipe = self._pipeline(source, seeds)
        it = DALIGenericIterator(pipe, names, reader_name=source.get("reader", "reader"), auto_reset=False,
                                 last_batch_policy=LastBatchPolicy.PARTIAL, prepare_first_batch=False)
        cast = torch.bfloat16 if self.dtype == "bfloat16" else None
        try:
            for data in it:
                data = data[0]
                images = [data[n].permute(0, 3, 1, 2) for n in names[:-1]]  # NCHW view, channels_last
                if cast is not None:
                    images = [x.to(cast, memory_format=torch.channels_last) for x in images]
                yield images, data["labels"].reshape(-1).to(torch.int64)
        except UnicodeDecodeError as err:  # DALI's error names a file whose name is not UTF-8
            raise RuntimeError(bytes(err.object).decode("utf-8", "surrogateescape")) from None
        finally:
            del it, pipe

    def _run_epoch(self, epoch: int):
        if not self._skips_files:
            yield from self._run_unskippable(epoch)
            return
        todo = [i for i in self._rank_order(epoch) if self.samples.files[i] not in self._load_skip_set]
        out = _Rebatch(refill(self._sizes(), len(todo)), self.jsd)
        done, restart = 0, 0
        while True:
            try:
                if done < len(todo):
                    for images, labels in self._dali_batches(self._source(epoch, todo[done:]),
                                                             self._seeds(epoch, restart)):
                        done += labels.shape[0]
                        yield from out.push(images, labels)
                        if out.finished:
                            return
                break
            except RuntimeError as err:
                from .loadfail import explain, find_failed_file

                rest = [self.samples.files[i] for i in todo[done:]]
                # DALI runs at most ``prefetch`` batches ahead of the last one delivered
                found = find_failed_file(str(err), rest, self.device_id, (self.prefetch + 3) * self.batch_size)
                if found is None or found[0] in self._load_skip_set:
                    if "Critical error" in str(err):
                        raise RuntimeError(explain(epoch, str(err), self.samples.files, self.validate)) from err
                    raise
                gone = self._skip_at_load(epoch, *found, rest)
                todo = todo[:done] + [i for i in todo[done:] if self.samples.files[i] not in gone]
                out.sizes = refill(out.sizes, out.pending_count + len(todo) - done)
                if out.sizes and out.last is None and done == len(todo):  # nothing left to yield
                    raise RuntimeError(f"no file of this rank's share of epoch {epoch} could be read "
                                       f"({len(self._load_skip_set)} skipped at load time). "
                                       + explain(epoch, found[0], [found[0]], self.validate)) from err
                restart += 1
        yield from out.finish()

    def _skip_at_load(self, epoch: int, path: str, reason: str, rest) -> set:
        """Record a file DALI failed on (a missing one: every missing file of ``rest``);
        returns the paths newly skipped."""
        from .loadfail import MISSING, TOO_LARGE, BadSampleWarning

        gone = {path}
        if reason == MISSING:
            gone |= {f for f in rest if not os.path.exists(f)}
        self._load_skips.setdefault(reason, []).extend(sorted(gone))
        self._load_skip_set.update(gone)
        self._load_skip_epochs.update((p, epoch) for p in gone)
        total = sum(len(v) for v in self._load_skips.values())
        if reason == MISSING:
            what = (f"{len(gone)} file(s) deleted or moved after the scan (e.g. {path}); restore them, or create "
                    "the loader again to rescan")
        elif reason == TOO_LARGE:
            from ..data.imagesize import max_pixels

            what = f"{path}: over Pillow's limit of {max_pixels()} pixels, not decoded (gpuaug.data.imagesize)"
        elif self.validate == "decode":
            what = (f"{path}: DALI's decoder refuses it although the scan's decode check passed it (nvJPEG on "
                    "the GPU can refuse a file the CPU decoders accept, or it changed since); remove or "
                    "re-encode it")
        else:
            what = (f"{path}: DALI's decoder refuses it (validate='{self.validate}' did not decode it; "
                    "validate='decode' skips such files up front)")
        warnings.warn(f"gpuaug loader: skipped {what} ({reason}, epoch {epoch}); {total} file(s) skipped at load "
                      "time so far, left out of later epochs (loader.skipped)", BadSampleWarning, stacklevel=4)
        return gone

    def _run_unskippable(self, epoch: int):
        """Today's path for a source DALI shards itself (webdataset): a failure stops the epoch."""
        out = _Rebatch(self._sizes(), self.jsd)
        try:
            for images, labels in self._dali_batches(self._source(epoch), self._seeds(epoch)):
                yield from out.push(images, labels)
                if out.finished:
                    return
        except RuntimeError as err:
            if "Critical error" in str(err):
                from .loadfail import explain

                raise RuntimeError(explain(epoch, str(err), self.samples.files, self.validate)) from err
            raise
        yield from out.finish()

    def _decode_failure_hint(self) -> str:
        from .loadfail import decode_hint

        return decode_hint(self.validate)


class ImageFolderLoader(DaliLoader):
    """``torchvision.datasets.ImageFolder`` + ``DataLoader`` in one, decoded and augmented
    by DALI: ``for images, labels in ImageFolderLoader(root, 256, augment=gpuaug.AugMix())``.

    ``augment``: a gpuaug method or None; ``jsd=True`` yields ([clean, aug1, aug2], labels)
    (``[clean, aug]`` for a method with ``jsd_views=1``; ``views="concat"``: one tensor);
    ``mixing``: a MixingSet or a folder (PixMix, IPMix); ``preset`` "cifar" | "imagenet"
    (default: inferred from the data, :mod:`gpuaug.loader.presets`) sets ``image_size``, the crop
    (``cifar=True``: pad 4 + random crop) and ``mean``/``std`` (on the [0, 1] scale), each
    overridable; ``memory_format`` "contiguous" (default) | "channels_last"; ``device``
    "auto" (default: the GPU if torch sees one, else the CPU) | "cuda" | "cuda:N" | "cpu";
    ``dtype`` float32 (default) | bfloat16 | float16 (the fast path under autocast);
    ``validate`` decode (default, cached) | header | none; ``num_workers``/``pin_memory``
    accepted and ignored (warned once). ``loader.dataset``: classes, class_to_idx, samples,
    targets as torchvision names them.
    """

    def __init__(self, root, batch_size: int, augment=None, validate: str = "decode", **kwargs):
        super().__init__(datafiles.scan_image_folder(root, validate=validate), batch_size, augment,
                         validate=validate, root=root, **kwargs)
        self.root = str(root)

    @property
    def class_to_idx(self) -> dict:
        return self.dataset.class_to_idx


class FileListLoader(DaliLoader):
    """Like :class:`ImageFolderLoader` over a list file (``<path> <label>`` lines) or a
    list of paths with ``labels=``."""

    def __init__(self, files, batch_size: int, augment=None, labels=None, root=None,
                 validate: str = "decode", **kwargs):
        samples = datafiles.read_file_list(files, labels=labels, root=root, validate=validate)
        super().__init__(samples, batch_size, augment, validate=validate, root=root, **kwargs)


class WebDatasetLoader(DaliLoader):
    """Like :class:`ImageFolderLoader` over webdataset tar shards (``<key>.jpg`` + integer
    ``<key>.cls``). Index files listing the good samples are written to a temporary folder
    (DALI's ``fn.readers.webdataset`` reads them). A sample DALI fails on stops the epoch
    with an error naming the remedy (no skipping inside a shard)."""

    _skips_files = False
    _known_order = False

    def __init__(self, shards, batch_size: int, augment=None, image_ext=("jpg", "jpeg", "png"),
                 label_ext: str = "cls", validate: str = "decode", initial_fill: int = 256, **kwargs):
        samples = datafiles.scan_webdataset(shards, image_ext=image_ext, label_ext=label_ext, validate=validate)
        super().__init__(samples, batch_size, augment, validate=validate, **kwargs)
        self.image_ext, self.label_ext, self.initial_fill = ";".join(image_ext), label_ext, initial_fill
        self._tmp = tempfile.TemporaryDirectory(prefix="gpuaug-wds-")
        self._index = []
        for i, (path, kept) in enumerate(samples.shards):
            idx = os.path.join(self._tmp.name, f"{i}.idx")
            datafiles.write_wds_index(kept, idx)
            self._index.append((path, idx, len(kept)))
        self._index = [entry for entry in self._index if entry[2] > 0]

    def _source(self, epoch: int) -> dict:
        order = (np.random.default_rng([self.seed, epoch, 0x0D]).permutation(len(self._index))
                 if self.train else np.arange(len(self._index)))
        return {"kind": "webdataset", "paths": [self._index[i][0] for i in order],
                "index_paths": [self._index[i][1] for i in order], "image_ext": self.image_ext,
                "label_ext": self.label_ext, "shuffle": self.train, "initial_fill": self.initial_fill}
