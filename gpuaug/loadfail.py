"""Why a DALI epoch failed on a file, and what would actually help.

DALI stops its pipeline on a file it cannot read or decode (it cannot skip one). The
message names the file where it can be found and the remedy that fits the cause: a file
deleted or moved after the scan needs restoring or a rescan (decode validation would not
help: the scan already passed it); a file that does not decode needs ``validate='decode'``
(or, when that check already ran, removing or re-encoding the file).
"""

from __future__ import annotations

import os


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
