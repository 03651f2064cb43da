"""Progress lines, one module for every bar gpuaug draws (no dependency).

:class:`Line` writes a status line: redrawn in place on a terminal (``\\r``), appended as a
plain line otherwise (a log file, CI). Three bars use it, each with its own rhythm:

* :class:`Progress` -- long host-side jobs (fractals, corruptions) on stderr: silent for
  work that finishes within ``delay`` seconds; on a terminal redrawn every 0.2 s, in a log
  a plain line about every ``every`` seconds.
* :class:`CountLine` -- the decode check: on a terminal only, once the check has run
  ``delay`` seconds, advanced from several threads.
* :class:`EpochBar` -- the trainer's epoch bar on stdout (loss, images/s, ETA): on a
  terminal redrawn every 0.25 s, in a log a line every 10 % of the epoch.
"""

from __future__ import annotations

import sys
import threading
import time


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Line:
    """One status line on ``stream``: ``show(text)`` redraws it on a terminal, appends it
    elsewhere; ``end(text)`` finishes it (a last text, or just the newline a terminal needs)."""

    def __init__(self, stream):
        self.stream, self.tty, self.shown = stream, _isatty(stream), False

    def show(self, text: str) -> None:
        self.stream.write("\r" + text + "\033[K" if self.tty else text + "\n")
        self.stream.flush()
        self.shown = True

    def end(self, text: str | None = None) -> None:
        if text is not None:
            self.stream.write("\r" + text + "\033[K\n" if self.tty else text + "\n")
        elif self.tty and self.shown:
            self.stream.write("\n")
        else:
            return
        self.stream.flush()


class Progress:
    """``Progress(total, "rendering fractals")``; call ``update(k)`` as k more items are
    done and ``close()`` at the end (or use it as a context manager)."""

    def __init__(self, total: int, desc: str, stream=None, delay: float = 1.0, every: float = 10.0):
        self.total, self.desc = int(total), desc
        self.line = Line(sys.stderr if stream is None else stream)
        self.tty = self.line.tty
        self.delay, self.every = delay, every
        self.done = 0
        self.start = time.monotonic()
        self._last = None  # time of the last line written

    def _text(self, now: float) -> str:
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
        self.line.show(self._text(now))

    def close(self) -> None:
        """Finish the line if anything was written."""
        if self._last is None:
            return
        now = time.monotonic()
        self.line.end(self._text(now) if self.tty else
                      f"{self.desc}: {self.done}/{self.total} done in {now - self.start:.1f}s")
        self._last = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CountLine:
    """``label: done/total (pct%, t s)`` on stderr, only on a terminal and once ``delay``
    seconds have passed; ``advance`` may be called from several threads."""

    def __init__(self, total: int, label: str, delay: float = 1.0):
        self.total, self.label, self.done, self.delay = total, label, 0, delay
        self.start = self.last = time.monotonic()
        self.line = Line(sys.stderr)
        self.enabled = total > 0 and self.line.tty
        self.lock = threading.Lock()

    def advance(self, n: int = 1) -> None:
        with self.lock:
            self.done += n
            now = time.monotonic()
            if not self.enabled or now - self.start < self.delay:
                return
            if now - self.last >= 0.2 or self.done == self.total:
                self.last = now
                self.line.show(f"{self.label}: {self.done}/{self.total} "
                               f"({100 * self.done // self.total}%, {now - self.start:.0f} s)")

    def close(self) -> None:
        self.line.end()


def _fmt_time(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class EpochBar:
    """The trainer's bar: ``prefix [####....] done/total k v ... img/s eta`` on stdout."""

    def __init__(self, total: int, prefix: str, enabled: bool = True, stream=None, width: int = 24):
        self.total, self.prefix, self.enabled = max(1, total), prefix, enabled
        self.line = Line(stream or sys.stdout)
        self.tty = self.line.tty
        self.width, self.start, self.last, self.next_pct = width, time.time(), 0.0, 0.1
        self.images = 0

    def due(self, done: int) -> bool:
        """Whether :meth:`update` would print now (so callers compute fields only then)."""
        if not self.enabled:
            return False
        if done >= self.total:
            return True
        if self.tty:
            return time.time() - self.last >= 0.25
        return done / self.total >= self.next_pct

    def update(self, done: int, images: int, fields: dict | None = None, force: bool = False) -> None:
        """``done`` batches of ``total``, ``images`` seen so far (all ranks); ``fields`` shown as k v."""
        if not self.enabled:
            return
        now = time.time()
        frac = done / self.total
        if not force:
            if self.tty and now - self.last < 0.25:
                return
            if not self.tty and frac < self.next_pct:
                return
        self.last = now
        while frac >= self.next_pct:
            self.next_pct += 0.1
        elapsed = now - self.start
        rate = images / elapsed if elapsed > 0 else 0.0
        eta = elapsed / done * (self.total - done) if done else 0.0
        fill = int(self.width * frac)
        bar = "#" * fill + "." * (self.width - fill)
        extra = " ".join(f"{k} {v}" for k, v in (fields or {}).items())
        self.line.show(f"{self.prefix} [{bar}] {done}/{self.total} {extra} {rate:,.0f} img/s eta {_fmt_time(eta)}")

    def close(self, summary: str = "") -> None:
        if not self.enabled:
            return
        self.line.end(f"{self.prefix} done in {_fmt_time(time.time() - self.start)} {summary}")
