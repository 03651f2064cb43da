"""Drop-in loaders: ``for images, labels in loader`` with DALI decoding and gpuaug methods.

Epochs. Each ``iter(loader)`` runs one epoch (``set_epoch(e)`` picks which, like
DistributedSampler; without it the epoch counts up from 0). Training order is a
permutation of all samples drawn from ``(seed, epoch)`` -- the same on every rank -- and
the DALI pipeline is rebuilt for each epoch, so epoch ``e`` gives the same batches
whatever ran before it (webdataset: the shard order is permuted and samples are shuffled
in a buffer of ``initial_fill``).

Sharding (``shard="auto"``: ``(rank, world_size)`` under torch.distributed, else
``(0, 1)``): rank ``r`` of ``S`` reads samples ``[r*N//S, (r+1)*N//S)`` of the epoch's
order (DALI's split), so the ranks' shards are disjoint and cover the data set.

Last batch. ``drop_last=False``: every sample exactly once per epoch across ranks; every
rank yields ``len(loader) = ceil(ceil(N/S) / batch_size)`` batches, full except the last
(which is smaller on some ranks). Where a rank holds one sample fewer and that makes it a
whole batch short, its last full batch is split into ``batch_size - 1`` and ``1``, so all
ranks step together (with ``batch_size=1`` that rank repeats its last sample instead).
``drop_last=True``: every rank yields ``(N//S) // batch_size`` full batches; the rest of
the epoch's order (different samples each epoch) is not seen.

An epoch with no batch (``len(loader) == 0``) yields nothing and builds no pipeline;
``drop_last=True`` with fewer samples per rank than one batch warns at construction.

Device and dtype. ``device="auto"`` (default): the current CUDA device when torch sees
one, else a CPU DALI pipeline (said once per process in a log line). The output is
float32 like torchvision's ``ToTensor`` + ``Normalize``; ``dtype="bfloat16"`` or
``"float16"`` halves the bytes and is the fast path for a loop under ``torch.autocast``.
Images are contiguous NCHW like torchvision's (``memory_format="channels_last"``: the
fast path for a channels_last model, no copy). Size, crop and normalisation come from a
preset (:mod:`gpuaug.loader.presets`: ``"cifar"`` or ``"imagenet"``, inferred from the data when
not given; explicit ``image_size``/``cifar``/``mean``/``std`` win), logged once at INFO
with the other resolved settings, which ``repr(loader)`` shows. The DataLoader attributes
that trainers read (``sampler``, ``batch_sampler``, ``num_workers``, ``pin_memory``) are
there (:mod:`gpuaug.loader.surface`); ``jsd=True`` yields the views as a list, or with
``views="concat"`` one (3B, ...) tensor and the labels repeated 3 times (timm's layout).

``loader.dataset`` is a torchvision-like view of the data set (``classes``,
``class_to_idx``, ``samples``/``imgs``, ``targets``, ``len()``).

Skips: see :mod:`gpuaug.data.datafiles`. ``loader.skipped`` maps a reason to the paths
skipped at construction; a warning gives the counts.

Files that fail in DALI (ImageFolder and file lists). A file that passed the scan but
that DALI cannot read ("missing": deleted or moved since; every other missing file of the
rank's epoch is found at the same time) or decode ("undecodable": DALI's decoder refuses
it) is skipped: it is found (:func:`gpuaug.loader.loadfail.find_failed_file`), added to
``loader.skipped`` and ``loader.bad_files`` with a warning giving the count, and the
epoch's pipeline is rebuilt over the rank's remaining samples (the samples of batches
already yielded are not read again; augmentation draws continue from a new seed). Every
other sample is still seen exactly once and the rank still yields ``len(loader)``
batches: the samples short come off its last batches (the last shrinks first, each
keeping at least one sample: :func:`refill`; with ``drop_last=True`` the unread rest of the
rank's order fills them first, so batches stay full); only a rank left with fewer
samples than batches repeats its last sample. Later epochs leave the file out from the
start. The data set, the epoch order and the split are unchanged (ranks do not talk), so
another rank meets the file, and skips it, when its order reaches it. A failure whose
file cannot be found, or a rank with no readable file left, stops the epoch with
:func:`gpuaug.loader.loadfail.explain`'s error; webdataset shards are not skipped in.

Modules: :mod:`.daliloader` (the loaders), :mod:`.cifar` (CIFAR in memory), :mod:`.placement`
(device, shards, batch sizes), :mod:`.view` (``loader.dataset``), :mod:`.rebatch` (batch sizes
kept across skips), :mod:`.loadfail` (finding the file DALI failed on), :mod:`.surface`
(DataLoader attributes, batch layout), :mod:`.presets` (size / crop / normalisation presets).
"""

from .cifar import CIFARDatasetView, CIFARLoader
from .daliloader import DTYPES, DaliLoader, FileListLoader, ImageFolderLoader, WebDatasetLoader
from .loadfail import BadSampleWarning
from .placement import batch_sizes, resolve_device
from .rebatch import refill
from .view import DatasetView

__all__ = ["CIFARDatasetView", "CIFARLoader", "DTYPES", "DaliLoader", "FileListLoader", "ImageFolderLoader",
           "WebDatasetLoader", "BadSampleWarning", "batch_sizes", "resolve_device", "refill", "DatasetView"]
