"""Why a DALI epoch failed on a file: which file, and what would actually help.

DALI stops its whole pipeline on a file it cannot read or decode. The loader then finds
the file (:func:`find_failed_file`) -- the reader's message names a file it cannot open;
the decoder's does not name its input, so the next files of the epoch are decoded one by
one with the same DALI decoder until one is refused -- and skips it (the loader's
``_run_epoch``). An image over the pixel limit (:mod:`gpuaug.data.imagesize`: a decompression
bomb, or a file replaced since the scan) is refused before it is decoded
(:func:`gpuaug.dali.refuse_too_large`) and skipped the same way, as "too large". Where
the file cannot be found, :func:`explain` gives the error: it names the file where it
can and the remedy that fits the cause: a file deleted or moved after the scan needs
restoring or a rescan (decode validation would not help: the scan already passed it); a
file that does not decode needs ``validate='decode'`` (or, when that check already ran,
removing or re-encoding the file).
"""

from __future__ import annotations

import os

from ..data.imagesize import TOO_LARGE, too_large

# Reasons for a file skipped at load time (after the scan passed it), and TOO_LARGE.
MISSING = "missing"
UNDECODABLE = "undecodable"


class BadSampleWarning(UserWarning):
    """A file that passed the scan failed to load at train time and was skipped."""


def find_failed_file(message: str, candidates, device_id: int | None, probe: int) -> tuple[str, str] | None:
    """``(path, reason)`` of the file a DALI failure ``message`` is about, among
    ``candidates`` (the epoch's files not yet delivered, in reading order), or None.

    A reader failure names the file; a decoder failure does not, so the first ``probe``
    candidates (those DALI may have read) are decoded one at a time by
    ``fn.decoders.image`` on the loader's device until one is refused (or missing). Any
    other failure (an augmentation error, ...) gives None."""
    if "Critical error" not in message:
        return None
    named = [str(f) for f in candidates if str(f) in message]
    if named:
        path = max(named, key=len)  # "a/b.jpg" is also in "a/b.jpg.bak"'s message
        return path, MISSING if not os.path.exists(path) else UNDECODABLE
    if "decoders." not in message and "peek_image_shape" not in message:  # not the decode (or its size check)
        return None
    return _probe(list(candidates)[:probe], device_id)


def _probe(candidates, device_id):
    """The first of ``candidates`` that is over the pixel limit (TOO_LARGE), that DALI's
    decoder refuses, or that is gone; else None. Nothing over the limit is decoded."""
    import numpy as np
    from nvidia.dali import fn, types
    from nvidia.dali.pipeline import Pipeline

    from ..dali import refuse_too_large

    pipe = Pipeline(batch_size=1, num_threads=1, device_id=device_id, prefetch_queue_depth=1)
    with pipe:
        enc = fn.external_source(name="enc", dtype=types.UINT8, ndim=1)
        pipe.set_outputs(fn.decoders.image(refuse_too_large(enc), device="cpu" if device_id is None else "mixed",
                                           output_type=types.RGB))
    pipe.build()
    for path in map(str, candidates):
        if too_large(path):
            return path, TOO_LARGE
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except FileNotFoundError:
            return path, MISSING
        except OSError:
            return path, UNDECODABLE
        try:
            pipe.feed_input("enc", [data])
            pipe.run()
        except RuntimeError:
            return path, UNDECODABLE
    return None


def explain(epoch: int, message: str, files, validate: str | None = None) -> str:
    """The error text for a DALI failure ``message`` in ``epoch`` over ``files``."""
    files = [str(f) for f in files]
    named = [f for f in files if f in message]
    missing = [f for f in (named or files) if not os.path.exists(f)]
    if missing:
        return (f"DALI failed in epoch {epoch}: {len(missing)} file(s) were deleted or moved after the scan "
                f"(e.g. {missing[0]}); restore them, or create the loader again so the scan leaves them out")
    which = named[0] if named else "a file"
    return f"DALI failed in epoch {epoch} (see the error above) on {which}.\n{decode_hint(validate)}"


def decode_hint(validate: str | None) -> str:
    """What to do about a file that does not decode, given the check the loader ran."""
    if validate == "none":
        return ("Files were not checked (validate='none'), so a file that does not decode stops the "
                "epoch: construct the loader with validate='decode' (the default; gpuaug train "
                "--validate decode) to find and skip it")
    if validate == "header":
        return ("A file passed the header check (validate='header') but does not decode: construct the "
                "loader with validate='decode' (the default; gpuaug train --validate decode) to find and skip it")
    return ("Every file decoded with libjpeg-turbo/Pillow when the loader was built (validate='decode'), "
            "so DALI's decoder disagrees on one (nvJPEG on the GPU can refuse a file the CPU decoders "
            "accept) or a file changed since: run `gpuaug scan` on the data, try device='cpu', or remove "
            "or re-encode the file")
