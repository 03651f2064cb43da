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
    which = f"{named[0]} " if named else "a file "
    if validate == "decode":
        return (f"DALI failed in epoch {epoch} (see the error above): {which}passed Pillow's decode check but "
                "DALI cannot decode it; remove or re-encode it")
    check = "was not checked (validate='none')" if validate == "none" else "passed the header check"
    return (f"DALI failed in epoch {epoch} (see the error above): {which}{check} but does not decode; "
            "construct the loader with validate='decode' (gpuaug train --validate decode) to find and skip it")
