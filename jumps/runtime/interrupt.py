"""SIGINT and SIGTERM (what Slurm sends before it kills a job) during a run.

Before the chunks start, a signal ends the run at once (:class:`Interrupted`: exit status
``128 + signal``; nothing is computed yet). While chunks run, the handler only sets a flag,
checked between chunks, so a chunk always finishes: every rank then writes its final
checkpoint and the run exits with ``128 + signal`` (130 for SIGINT, 143 for SIGTERM), to be
continued with ``--resume``. No MPI call is ever made in a handler.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A signal ended the run before its chunks started (like KeyboardInterrupt)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def status(self) -> int:
        return 128 + self.signum


def name(signum: int) -> str:
    return signal.Signals(signum).name


class SignalGuard:
    """Handlers for SIGINT and SIGTERM for the lifetime of a run (main thread only; a SIGINT
    the launcher set to be ignored, as shells do for background jobs, stays ignored)."""

    def __init__(self):
        self.signum: int | None = None
        self.deferred = False
        self._previous: dict[int, object] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in SIGNALS:
            current = signal.getsignal(signum)
            if signum == signal.SIGINT and current is signal.SIG_IGN:
                continue
            self._previous[signum] = current
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        if not self.deferred:
            raise Interrupted(signum)

    def defer(self) -> None:
        """From now on a signal only sets :attr:`signum` (checked between chunks)."""
        self.deferred = True

    def restore(self) -> None:
        """Put the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
