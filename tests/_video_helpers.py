"""Tiny encoded videos for the ImageNet-P tests (PyAV, the ``video`` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_mp4(path: Path, frames: np.ndarray, rate: int = 5) -> None:
    """uint8 (frames, H, W, 3) RGB -> an MPEG-4 Part 2 ``.mp4`` (lossy; H, W even)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decoded(path: Path) -> np.ndarray:
    """The frames a decoder gives back for ``path`` (the reference the tests compare with)."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
