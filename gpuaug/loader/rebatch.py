"""Keep a rank's promised batch sizes when files are skipped mid-epoch: :func:`refill`
plans the sizes for the samples left, :class:`_Rebatch` cuts DALI's batches to them."""

from __future__ import annotations


def refill(sizes: list[int], available: int) -> list[int]:
    """``sizes`` (the batches a rank promised) for ``available`` samples: the same number of
    batches, the samples short taken from the last batches (each keeps at least one); if
    there are fewer samples than batches, the last batches (size 1) repeat a sample."""
    sizes, short = list(sizes), sum(sizes) - available
    for i in reversed(range(len(sizes))):
        if short <= 0:
            break
        cut = min(short, sizes[i] - 1)
        sizes[i] -= cut
        short -= cut
    return sizes


class _Rebatch:
    """Cut a stream of DALI batches into the promised ``sizes`` (consumed in place); a batch
    may span two DALI batches (after a skip)."""

    def __init__(self, sizes, jsd: bool):
        self.sizes, self.jsd, self.pending, self.last = list(sizes), jsd, None, None

    @property
    def finished(self) -> bool:
        return not self.sizes

    @property
    def pending_count(self) -> int:
        return 0 if self.pending is None else int(self.pending[1].shape[0])

    def push(self, images, labels):
        import torch

        if self.pending is not None:
            images = [torch.cat([p, x]) for p, x in zip(self.pending[0], images)]
            labels = torch.cat([self.pending[1], labels])
            self.pending = None
        self.last = ([x[-1:] for x in images], labels[-1:])
        start, n = 0, labels.shape[0]
        while self.sizes and start + self.sizes[0] <= n:
            size = self.sizes.pop(0)
            yield self._batch([x[start:start + size] for x in images], labels[start:start + size])
            start += size
        if self.sizes and start < n:
            self.pending = ([x[start:] for x in images], labels[start:])

    def finish(self):
        """The promised batches the data did not fill: the last sample again (see :func:`refill`)."""
        if self.pending is not None:  # fewer samples than promised (cannot happen after refill)
            yield self._batch(*self.pending)
            self.sizes.pop(0)
            self.pending = None
        while self.sizes and self.last is not None:
            size = self.sizes.pop(0)
            images, labels = self.last
            yield self._batch([x.expand(size, *x.shape[1:]) for x in images], labels.expand(size))

    def _batch(self, images, labels):
        return (tuple(images) if self.jsd else images[0]), labels
