"""A minimal progress bar on stderr for long host-side jobs (no dependency).

It stays silent for work that finishes within ``delay`` seconds. On a terminal it redraws
one line (``\\r``); otherwise (a log file, CI) it writes a plain line about every
``every`` seconds, so logs stay short.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """``Progress(total, "rendering fractals")``; call ``update(k)`` as k more items are
    done and ``close()`` at the end (or use it as a context manager)."""

    def __init__(self, total: int, desc: str, stream=None, delay: float = 1.0, every: float = 10.0):
        self.total, self.desc = int(total), desc
        self.stream = sys.stderr if stream is None else stream
        self.delay, self.every = delay, every
        self.done = 0
        self.start = time.monotonic()
        self._last = None  # time of the last line written
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False

    def _line(self, now: float) -> str:
        elapsed = now - self.start
        frac = self.done / self.total if self.total else 1.0
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        bar = "#" * int(24 * frac)
        return (f"{self.desc}: [{bar:<24}] {self.done}/{self.total} "
                f"{elapsed:.0f}s elapsed, ~{eta:.0f}s left")

    def update(self, k: int = 1) -> None:
        self.done += k
        now = time.monotonic()
        if now - self.start < self.delay:
            return
        wait = 0.2 if self.tty else self.every
        final = self.tty and self.done >= self.total  # a log gets its last line from close()
        if self._last is not None and now - self._last < wait and not final:
            return
        self._last = now
        end = "" if self.tty else "\n"
        self.stream.write(("\r" if self.tty else "") + self._line(now) + end)
        self.stream.flush()

    def close(self) -> None:
        """Finish the line if anything was written."""
        if self._last is None:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self._line(now) + "\n")
        else:
            self.stream.write(f"{self.desc}: {self.done}/{self.total} done in {now - self.start:.1f}s\n")
        self.stream.flush()
        self._last = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
