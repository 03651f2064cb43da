"""A one-line progress bar (rewritten in place on a terminal, printed every ~10% otherwise)."""

from __future__ import annotations

import sys
import time


def _fmt_time(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    def __init__(self, total: int, prefix: str, enabled: bool = True, stream=None, width: int = 24):
        self.total, self.prefix, self.enabled = max(1, total), prefix, enabled
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if hasattr(self.stream, "isatty") else False
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
        line = f"{self.prefix} [{bar}] {done}/{self.total} {extra} {rate:,.0f} img/s eta {_fmt_time(eta)}"
        if self.tty:
            self.stream.write("\r" + line + "\033[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self, summary: str = "") -> None:
        if not self.enabled:
            return
        elapsed = time.time() - self.start
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"{self.prefix} done in {_fmt_time(elapsed)} {summary}\n")
        self.stream.flush()
