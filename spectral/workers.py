"""Worker processes that end with the process that started them (features, VoxCeleb2 decoding).

:func:`process_pool` is a ``ProcessPoolExecutor`` whose workers die when the main process
dies, however it dies (SIGKILL, SIGTERM, a crash): on Linux the kernel kills them
(``PR_SET_PDEATHSIG``), and on any platform a thread in each worker polls the parent.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

POLL_SECONDS = 0.5


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when ``parent`` (the main process) ends."""
    import ctypes
    import signal
    import threading
    import time

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    first_parent = os.getppid()

    def orphaned() -> bool:
        return os.getppid() != first_parent or not pid_alive(parent)

    def watch() -> None:
        while not orphaned():
            time.sleep(POLL_SECONDS)
        os._exit(1)

    if orphaned():  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that stop with this one."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_stop_with_parent, initargs=(os.getpid(),))
