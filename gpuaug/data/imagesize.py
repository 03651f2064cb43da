"""The image-size policy of every loader: an image with more pixels than Pillow's
decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``: 89,478,485 by default, about
9459 x 9459; raise it there to allow larger images) is not trained on. The folder scans
skip it as "too large" from its header (no decode; :func:`too_large`), and the CPU loader
skips and counts one met at load time. A 20000 x 20000 image would otherwise cost over
1 GB of decoded pixels per copy, and DALI only prints "Image too large" while yielding it.
"""

from __future__ import annotations

import warnings

TOO_LARGE = "too large"


def max_pixels() -> int:
    """The limit in pixels (0: none), read from Pillow each time so a change there applies."""
    from PIL import Image

    return int(Image.MAX_IMAGE_PIXELS or 0)


def too_large(path) -> bool:
    """Whether the image at ``path`` is over :func:`max_pixels`, from its header only
    (False when the header cannot be read: the other checks decide about such files)."""
    from PIL import Image

    limit = max_pixels()
    if not limit:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return img.width * img.height > limit
    except Image.DecompressionBombError:
        return True
    except Exception:  # noqa: BLE001 -- not an image Pillow reads: not this check's call
        return False
