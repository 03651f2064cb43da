"""Encoded videos (ImageNet-P's released ``.mp4`` files) decoded to RGB frames with PyAV,
an optional dependency (``pip install 'gpuaug[video]'``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ENCODED_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv")


def require_av(example: Path):
    """The ``av`` module, or a clear error naming how to get it (``example``: a video found)."""
    try:
        import av
    except ImportError:
        raise SystemExit(f"error: {example} is an encoded video; decoding it needs PyAV, which is not installed: "
                         "pip install av (or pip install 'gpuaug[video]'), or convert each video to a folder of "
                         "frames first (ffmpeg -i v.mp4 v/%03d.png) or an .npy array (frames, H, W, 3) uint8") from None
    return av


def read_frames(path: Path) -> np.ndarray:
    """All frames of the first video stream of ``path`` as uint8 (frames, H, W, 3) RGB."""
    av = require_av(path)
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, ValueError, IndexError) as err:  # IndexError/ValueError: no video stream
        raise SystemExit(f"error: cannot decode the video {path}: {err}") from None
    if not frames:
        raise SystemExit(f"error: the video {path} has no frames")
    return np.stack(frames)
