"""What training code reads from a ``torch.utils.data.DataLoader`` besides iterating it,
for the gpuaug loaders (:class:`DataLoaderSurface`), and the layout of their batches.

Checked against the readers: timm 1.0's ``train.py`` calls
``loader.sampler.set_epoch(epoch)`` (when distributed and the sampler has it) and
``len(loader)``; Lightning 2.x calls ``set_epoch`` on ``loader.sampler`` and on
``loader.batch_sampler.sampler`` (once per distinct object) and ``len(loader)``; both
iterate ``(input, target)`` pairs. ``sampler`` and ``batch_sampler`` here are views of the
loader: ``set_epoch`` on either sets the loader's epoch, iterating them gives the sample
indices (batches of indices) this rank reads in the current epoch.

``num_workers`` and ``pin_memory`` are accepted so a DataLoader call can be swapped
without editing its arguments, and are meaningless here (decoding runs in DALI's
``num_threads`` threads and batches are made on the output device): a value other than
the DataLoader defaults (0, False) is said once per process in a warning.
"""

from __future__ import annotations

import warnings

MEMORY_FORMATS = ("contiguous", "channels_last")
VIEWS = ("list", "concat")
_warned: set = set()


def memory_format_name(value) -> str:
    """``"contiguous"`` or ``"channels_last"`` from that name or a ``torch.memory_format``."""
    import torch

    named = {torch.contiguous_format: "contiguous", torch.channels_last: "channels_last"}
    if isinstance(value, torch.memory_format):
        if value not in named:
            raise ValueError(f"memory_format must be torch.contiguous_format or torch.channels_last, got {value}")
        return named[value]
    if value not in MEMORY_FORMATS:
        raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {value!r}")
    return value


def warn_worker_args(num_workers, pin_memory) -> None:
    """Say once per process that DataLoader's worker arguments do nothing here."""
    given = [f"{n}={v!r}" for n, v, default in (("num_workers", num_workers, 0), ("pin_memory", pin_memory, False))
             if v is not None and v != default]
    if given and tuple(given) not in _warned:
        _warned.add(tuple(given))
        warnings.warn(f"gpuaug loader: {', '.join(given)} ignored: DALI decodes in num_threads threads and the "
                      "batches are made on the output device (no worker processes, nothing to pin)", stacklevel=5)


def present(batches, jsd: bool, views: str, memory_format: str):
    """Each ``(images, labels)`` of ``batches`` (images: a tensor, or a sequence of views
    with ``jsd``) laid out as asked: views as a list, or ``views="concat"``: one (V*B, ...)
    tensor, view by view, with the labels repeated V times; in ``memory_format``."""
    import torch

    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    for images, labels in batches:
        if jsd:
            if views == "concat":
                yield torch.cat(list(images)).contiguous(memory_format=fmt), labels.repeat(len(images))
            else:
                yield [x.contiguous(memory_format=fmt) for x in images], labels
        else:
            yield images.contiguous(memory_format=fmt), labels


class _EpochSampler:
    """``loader.sampler``: this rank's sample indices for the current epoch."""

    def __init__(self, loader):
        self.loader = loader

    @property
    def epoch(self) -> int:
        return self.loader.epoch

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __iter__(self):
        return iter(self.loader._epoch_indices())

    def __len__(self) -> int:
        return self.loader.num_samples


class _EpochBatchSampler(_EpochSampler):
    """``loader.batch_sampler``: the index lists of this rank's batches; ``.sampler`` is
    ``loader.sampler`` (the same object, so code that sets the epoch on both sets it once)."""

    @property
    def sampler(self):
        return self.loader.sampler

    @property
    def batch_size(self) -> int:
        return self.loader.batch_size

    @property
    def drop_last(self) -> bool:
        return self.loader.drop_last

    def __iter__(self):
        indices, start = self.loader._epoch_indices(), 0
        for size in self.loader._sizes():
            yield indices[start:start + size]
            start += size

    def __len__(self) -> int:
        return len(self.loader)


class DataLoaderSurface:
    """``sampler``, ``batch_sampler``, ``num_workers``, ``pin_memory`` and a ``repr`` giving
    the resolved settings (the loader provides ``settings()``, ``_epoch_indices()``,
    ``_sizes()``, ``set_epoch``, ``epoch``, ``batch_size``, ``drop_last``, ``num_samples``)."""

    num_workers: int = 0
    pin_memory: bool = False

    @property
    def sampler(self) -> _EpochSampler:
        if getattr(self, "_sampler", None) is None:
            self._sampler = _EpochSampler(self)
        return self._sampler

    @property
    def batch_sampler(self) -> _EpochBatchSampler:
        if getattr(self, "_batch_sampler", None) is None:
            self._batch_sampler = _EpochBatchSampler(self)
        return self._batch_sampler

    def _accept_worker_args(self, num_workers, pin_memory) -> None:
        warn_worker_args(num_workers, pin_memory)
        self.num_workers = 0 if num_workers is None else int(num_workers)
        self.pin_memory = bool(pin_memory)

    def __repr__(self) -> str:
        from .presets import describe

        return f"{type(self).__name__}({describe(self.settings())})"
