"""Full decode validation: does each image decode cleanly, checked in worker processes.

Which decoder defines "corrupt". A JPEG is corrupt when libjpeg-turbo -- the CPU decoder
DALI itself uses, through nvImageCodec -- fails on it *or reports any warning* while
decoding it ("Corrupt JPEG data: bad Huffman code", "premature end of data segment",
"N extraneous bytes before marker"): such a file still yields pixels, but pixels of
garbage, so warnings count as errors. Pillow cannot serve here: it swallows libjpeg's
warnings and loads a JPEG with a scrambled body without complaint. Other formats (PNG,
BMP, TIFF, WebP, PNM) are decoded by Pillow with truncated images refused and Python
warnings raised as errors. Where nvImageCodec is not importable (no DALI), JPEGs fall
back to Pillow, which misses warning-only corruption.

This is stricter than torchvision's Pillow loader (which trains on such files) and may
differ from nvJPEG, the GPU decoder of ``device="cuda"`` loaders: a file nvJPEG cannot
decode but libjpeg-turbo can still stops an epoch with an error.

libjpeg-turbo prints its warnings to the C ``stderr``; each worker process points its
file descriptor 2 at a private file and reads what one decode wrote there, so a warning
is attributed to the file that caused it. Workers are isolated ``python -I``
subprocesses (:func:`worker_command`; not multiprocessing), so a user's script is never
re-imported and nothing in the current folder is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading

from .._progress import CountLine as _Progress  # the check's progress line (TTY only)

PROGRESS_AFTER_S = 1.0  # show a progress line once a check has run this long (TTY only)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _read_item(item) -> bytes:
    path, offset, size = item
    with open(path, "rb") as f:
        if offset:
            f.seek(offset)
        return f.read() if size < 0 else f.read(size)


class _Checker:
    """Decode one image strictly; see the module notes."""

    def __init__(self):
        try:
            from nvidia import nvimgcodec as nv

            self.jpeg = nv.Decoder(device_id=nv.NVIMGCODEC_DEVICE_CPU_ONLY, max_num_cpu_threads=1,
                                   backends=[nv.Backend(nv.BackendKind.CPU_ONLY)])
        except Exception:  # noqa: BLE001 -- no nvImageCodec: Pillow for JPEG too
            self.jpeg = None
        self.capture = None

    def capture_stderr(self):
        """Point fd 2 at a private file (C libraries' messages land there); Python's own
        ``sys.stderr`` keeps the original stream."""
        sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
        self.capture = tempfile.TemporaryFile()
        os.dup2(self.capture.fileno(), 2)

    def _printed_since(self, start: int) -> str:
        end = os.fstat(self.capture.fileno()).st_size
        if end <= start:
            return ""
        self.capture.seek(start)
        text = _ANSI.sub("", self.capture.read(end - start).decode("utf-8", "replace"))
        return " / ".join(line.strip() for line in text.splitlines() if line.strip())

    def check(self, data: bytes) -> str | None:
        """None if ``data`` decodes cleanly, else what went wrong."""
        if data[:3] == b"\xff\xd8\xff" and self.jpeg is not None:
            start = os.fstat(self.capture.fileno()).st_size if self.capture else 0
            try:
                image = self.jpeg.decode(data)
                if image is not None:
                    image.cpu()
            except Exception as err:  # noqa: BLE001 -- any decoder failure is a verdict
                return f"libjpeg-turbo: {err}"
            printed = self._printed_since(start) if self.capture else ""
            if image is None:
                return f"libjpeg-turbo: {printed or 'decode failed'}"
            return f"libjpeg-turbo: {printed}" if printed else None
        return _pillow_check(data)


def _pillow_check(data: bytes) -> str | None:
    import io
    import warnings

    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = None  # huge but well formed: DALI has no pixel limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with Image.open(io.BytesIO(data)) as img:
                img.load()
        return None
    except Exception as err:  # noqa: BLE001 -- any decoder failure is a verdict
        return f"Pillow: {type(err).__name__}: {err}"


def _worker(items_file: str) -> None:
    checker = _Checker()
    checker.capture_stderr()
    out = sys.stdout
    with open(items_file) as f:
        for line in f:
            index, path, offset, size = json.loads(line)
            try:
                verdict = checker.check(_read_item((path.encode("latin-1"), offset, size)))
            except OSError as err:
                verdict = f"cannot read: {err.strerror or err}"
            out.write(json.dumps([index, verdict]) + "\n")
            out.flush()


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def worker_command(items_file: str) -> list[str]:
    """The command line of one worker: an isolated interpreter (``-I``: neither the current
    folder nor ``PYTHON*`` variables enter it, so a ``json.py`` lying in the folder a scan
    runs from is not imported) given this process's own import path, absolute (gpuaug and
    its dependencies import as they do here: installed, or from a checkout on
    ``PYTHONPATH``), minus the current folder."""
    here = os.path.realpath(os.getcwd())
    # the folder holding the gpuaug package: one level up per dot in this module's name
    package_parent = os.path.abspath(__file__)
    for _ in range(__name__.count(".") + 1):
        package_parent = os.path.dirname(package_parent)
    path = [package_parent] + [os.path.abspath(p) for p in sys.path
                               if p and os.path.realpath(os.path.abspath(p)) != here]
    boot = ("import sys; sys.path[:0] = __import__('json').loads(sys.argv[1]); "
            f"from {__name__} import _worker; _worker(sys.argv[2])")
    return [sys.executable, "-I", "-c", boot, json.dumps(path), items_file]


def check_items(items, workers: int | None = None, label: str = "gpuaug: decoding images to validate them",
                on_verdict=None):
    """Strictly decode each ``(path, offset, size)`` item (size -1: to the end of the
    file) in ``workers`` subprocesses; returns one verdict per item (None: decodes).
    ``on_verdict(index, verdict)`` is called (from a helper thread) as each arrives, so a
    caller keeps what finished when the check is interrupted."""
    items = list(items)
    verdicts: list = [None] * len(items)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive number of processes (or None: the CPU count), got {workers!r}")
    if not items:
        return verdicts
    workers = min(workers or default_workers(), len(items))
    progress = _Progress(len(items), label, delay=PROGRESS_AFTER_S)
    with tempfile.TemporaryDirectory(prefix="gpuaug-check-") as tmp:
        procs = []
        for w in range(workers):
            lst = os.path.join(tmp, f"{w}.jsonl")
            with open(lst, "w") as f:
                for i in range(w, len(items), workers):
                    path, offset, size = items[i]
                    # the path's bytes, whatever their encoding (the worker opens them as bytes)
                    f.write(json.dumps([i, os.fsencode(path).decode("latin-1"), int(offset), int(size)]) + "\n")
            # a session of their own: Ctrl-C reaches this process only, which stops them
            procs.append(subprocess.Popen(worker_command(lst), stdout=subprocess.PIPE, text=True,
                                          start_new_session=True))
        errors = []
        lock = threading.Lock()

        def collect(proc):
            seen = 0
            with proc.stdout:
                for line in proc.stdout:
                    index, verdict = json.loads(line)
                    verdicts[index] = verdict
                    seen += 1
                    progress.advance()
                    if on_verdict is not None:
                        with lock:
                            on_verdict(index, verdict)
            if proc.wait() != 0:
                errors.append(f"decode check worker exited with status {proc.returncode} after {seen} files")

        threads = [threading.Thread(target=collect, args=(p,), daemon=True) for p in procs]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            progress.close()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for t in threads:  # their pipes are closed now: no verdict arrives after this returns
                t.join()
        if errors:
            raise RuntimeError("; ".join(errors) + " (see the error above)")
    return verdicts


if __name__ == "__main__":
    _worker(sys.argv[1])
