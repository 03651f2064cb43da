"""``loader.dataset``: a torchvision-like view of a loader's samples."""

from __future__ import annotations


class DatasetView:
    """What torchvision users reach for in ``loader.dataset``: ``classes``,
    ``class_to_idx``, ``samples`` (= ``imgs``: ``(path, class index)`` pairs),
    ``targets``, ``root`` and ``len()`` (the whole data set, every rank's share)."""

    def __init__(self, samples, root=None):
        self._samples, self.root = samples, None if root is None else str(root)

    @property
    def classes(self) -> list:
        return list(self._samples.classes)

    @property
    def class_to_idx(self) -> dict:
        return {c: i for i, c in enumerate(self._samples.classes)}

    @property
    def samples(self) -> list:
        return list(zip(self._samples.files, self._samples.labels))

    imgs = samples

    @property
    def targets(self) -> list:
        return list(self._samples.labels)

    def __len__(self) -> int:
        return len(self._samples)

    def __repr__(self) -> str:
        where = f", root={self.root!r}" if self.root else ""
        return f"DatasetView({len(self)} samples, {len(self._samples.classes)} classes{where})"
