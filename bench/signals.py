"""Ctrl-C and SIGTERM: one way to stop for both, never swallowed, and never the death of a DataLoader worker.

    with signals.handled():          # bench.cli.main: SIGINT raises KeyboardInterrupt, SIGTERM Terminated
        with signals.deferred():     # a fork or a swap of folders: a signal waits until the block ends
            ...
        signals.check()              # raise again a signal whose exception Python printed and dropped

Python runs a signal's handler between two bytecodes of the main thread, wherever that is. Where it is an
at-fork hook, a destructor or a callback, the exception is printed ("Exception ignored in ...") and dropped,
and the run goes on: so the first signal is also remembered, and check() raises it again on the next safe
path (every block of a cell, before each record is written, and when a command returns). DataLoader workers
fork with both signals held (deferred) and start by ignoring Ctrl-C (quiet_worker): a terminal's Ctrl-C goes
to the whole process group, and a worker hit while half-born dies with a traceback the run then reports as
a fault. The main process stops the run instead, and the DataLoader ends its workers.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from bench.errors import Terminated

HELD = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []  # signals since handled() began, in order
_state = {"deferring": 0, "raised": False}


def _exception(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handler(signum, frame) -> None:
    _received.append(signum)
    if _state["deferring"] or _state["raised"]:
        return  # deferred() raises it as it ends; a second signal is not raised into the first one's clean-up
    _state["raised"] = True
    raise _exception(signum)


@contextmanager
def handled():
    """SIGINT and SIGTERM raise (KeyboardInterrupt, Terminated) while the block runs; the handlers that were
    there before are put back after it."""
    _received.clear()
    _state.update(deferring=0, raised=False)
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    before = {s: signal.signal(s, _handler) for s in HELD}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def received() -> int | None:
    """The first signal that came while handled() ran (even one whose exception was dropped), or None."""
    return _received[0] if _received else None


def check() -> None:
    """Raise the first signal's exception again, if a signal came: a no-op unless one did."""
    if _received:
        raise _exception(_received[0])


@contextmanager
def deferred():
    """Hold SIGINT and SIGTERM while the block runs; one that came is raised as it ends. Both layers count: the
    mask holds them in this thread and in any process forked meanwhile (which inherits it), and the handler
    only notes a signal the kernel gave another thread of ours, instead of raising it into the block."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        if _received and not _state["deferring"] and not _state["raised"]:
            _state["raised"] = True
            raise _exception(_received[0])


def quiet_worker(worker_id: int) -> None:
    """A DataLoader's worker_init_fn: ignore Ctrl-C (the main process stops the run and ends its workers),
    then take the signals held since the fork; a held Ctrl-C is dropped, a SIGTERM ends the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)
