"""Graceful stop on SIGTERM and SIGINT, wherever they are delivered.

Slurm's ``scancel``, a preemption notice, systemd and Ctrl-C signal the whole process
group, DataLoader workers included. Workers ignore both signals (:func:`worker_init`;
they are forked with the signals blocked, see :func:`blocked`, so none lands before
that runs); the main process only raises a flag (:class:`GracefulStop`), finishes the
current step, checkpoints and exits with 128 + the signal number (143 TERM, 130 INT).
A second signal while stopping aborts at once (the default action of that signal).
DALI's loader threads live in the main process: Python runs the handler in the main
thread whichever thread the kernel picked, so they need nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """Context manager: ``.flag`` becomes True on the first SIGTERM/SIGINT, ``.signum``
    says which; the second one kills the process with that signal's default action."""

    def __init__(self):
        self.flag, self.signum, self.previous = False, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.flag:  # second signal: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.flag, self.signum = True, signum
        # os.write, not print: the handler may interrupt a print in progress (reentrant call)
        os.write(2, f"\nreceived {signal.Signals(signum).name}: stopping after this step and saving a "
                    f"checkpoint (send it again to abort at once)\n".encode())

    def trip(self, signum: int = signal.SIGTERM) -> None:
        """Behave as if ``signum`` had arrived (``--stop-after-steps``)."""
        if not self.flag:
            self.flag, self.signum = True, signum

    @property
    def exit_status(self) -> int:
        return 128 + int(self.signum or signal.SIGTERM)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: ignore stop signals (the main process handles them)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def blocked():
    """Block the stop signals in this thread while worker processes are forked, so a child
    never runs with the parent's handler; a signal that came meanwhile is delivered after."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
