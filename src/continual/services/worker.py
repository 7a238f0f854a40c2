"""The training worker: one child process for fits and MLflow I/O.

A fit in a thread holds the GIL and raised the server's p99 eightfold here; a child
process keeps the event loop and the request path free. The child is started lazily,
niced, pinned to one BLAS thread, and replaced if it dies or overruns its time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from continual.core.errors import Unavailable

T = TypeVar("T")


def _exit_with_parent(parent: int) -> None:
    # A server killed with SIGKILL cannot stop its child; without this watch the child
    # would go on fitting (and holding memory) with nobody to report to.
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def _init_child(parent: int) -> None:
    # ``parent`` comes from the server: a child still starting when the server died has
    # already been reparented, and its own getppid() would watch the wrong process
    threading.Thread(
        target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True
    ).start()
    with contextlib.suppress(OSError):
        os.nice(5)  # the server's requests come first on a small box
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


class Worker:
    """Runs functions in a single long-lived child process, with a time limit."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_child,
                initargs=(os.getpid(),),
            )
        return self._pool

    async def run(self, timeout: float, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the child; kill and replace the child after ``timeout``."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor(), fn, *args)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.kill()
            raise Unavailable(
                f"the training worker did not finish within {timeout:.0f} s", {"timeout": timeout}
            ) from None
        except BrokenProcessPool:
            self.kill()
            raise Unavailable("the training worker died; it will be restarted", None) from None

    def kill(self) -> None:
        """End the child now (used on time-out and at shutdown)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the child at shutdown."""
        self.kill()
