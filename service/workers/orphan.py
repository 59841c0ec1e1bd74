"""Worker processes stop (gracefully) when the process that started them dies."""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger(__name__)


def stop_when_orphaned(interval: float = 1.0) -> None:
    """SIGTERM this process once its parent is gone (e.g. `dropnet serve` was SIGKILLed), so
    the job it runs is checkpointed and released instead of running unsupervised."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(interval)
        log.warning("parent process %d is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
