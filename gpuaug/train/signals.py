"""Graceful stop on SIGTERM and SIGINT, wherever they are delivered.

Slurm's ``scancel``, a preemption notice, systemd and Ctrl-C signal the whole process
group, DataLoader workers included. Workers ignore both signals (:func:`worker_init`;
they are forked with the signals blocked, see :func:`blocked`, so none lands before
that runs); the main process only raises a flag (:class:`GracefulStop`), finishes the
current step, checkpoints and exits with 128 + the signal number (143 TERM, 130 INT).
A second signal while stopping aborts at once (the default action of that signal).
DALI's loader threads live in the main process: Python runs the handler in the main
thread whichever thread the kernel picked, so they need nothing.

Because workers ignore SIGTERM, Python's exit handler for child processes (SIGTERM, then
join without a time limit) cannot end them: after an uncaught error, whose traceback
keeps the DataLoader iterator alive, the process would never exit. So every iterator
whose workers run :func:`worker_init` is registered (:func:`stop_at_exit`), and an exit
handler that runs first shuts their workers down, killing any still alive after a
bounded wait (:func:`stop_workers`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
import weakref

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
WORKER_EXIT_WAIT = 10.0  # seconds a worker gets to finish its item at exit before SIGKILL
_live = weakref.WeakSet()  # DataLoader iterators with signal-ignoring workers
_registered = []


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


def stop_at_exit(iterator) -> None:
    """Register a multi-process DataLoader iterator: :func:`stop_workers` ends its workers
    when the process exits, whatever still refers to it."""
    if not _registered:
        import multiprocessing.util  # noqa: F401 -- its exit handler must be registered before ours (LIFO)

        atexit.register(stop_workers)
        _registered.append(True)
    _live.add(iterator)


def stop_workers(wait: float = WORKER_EXIT_WAIT) -> None:
    """Shut the registered iterators' workers down (as the iterator's own shutdown does:
    done event, end-of-work message), then SIGKILL any worker still alive after ``wait``
    seconds (they ignore SIGTERM)."""
    for it in list(_live):
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        for w in getattr(it, "_workers", []):
            w.join(wait)
            if w.is_alive():
                w.kill()
                w.join(wait)
    _live.clear()
