"""Where a sweep's runs execute: in this process, or on a local pool of processes.

An executor is a context manager holding the bars for the workers (entered once per sweep or
walk-forward) with one method, ``run(template, specs)``, which yields a
:class:`~tradeloop.sweep.runner.RunOutcome` per spec **as each finishes** (in completion order;
the sweep sorts them by run index). A run that raises comes back as an outcome with its error; it
never stops the others.

:class:`LocalExecutor` puts the bars into one block of POSIX shared memory
(:mod:`multiprocessing.shared_memory`), once; each worker process maps it and builds its
:class:`~tradeloop.data.feed.BarFeed` from it once, so no run copies the data. Workers are started
with ``spawn`` (no fork of a process holding threads, the same on every platform) and ignore
SIGINT: Ctrl-C reaches only the sweep, which terminates the workers and keeps what finished. The
shared memory is unlinked when the executor exits, whatever happened (an error, Ctrl-C, a worker
killed). A worker process that dies (killed, out of memory, a crash in native code) breaks the
pool: the pool is restarted, the runs that were in flight are retried one at a time, and the one
that kills its worker again is reported as failed.

The Ray executor lives in :mod:`tradeloop.sweep.ray_executor` (imported only when asked for).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import shared_memory
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from tradeloop.sweep.runner import (
    COLUMNS,
    FeedArrays,
    RunOutcome,
    RunSpec,
    Template,
    clear_cache,
    run_one,
)

__all__ = [
    "Executor",
    "LocalExecutor",
    "SerialExecutor",
    "SharedFeedHandle",
    "default_workers",
]

WORKER_DIED = (
    "the worker process died (killed, out of memory, or a crash in native code) while running "
    "this parameter set"
)


def default_workers() -> int:
    """The number of worker processes by default: every core (``os.cpu_count()``)."""
    return os.cpu_count() or 1


class Executor(Protocol):
    """What the sweep needs of an executor."""

    name: str
    workers: int

    def __enter__(self) -> Executor: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def run(self, template: Template, specs: Sequence[RunSpec]) -> Iterator[RunOutcome]: ...


class SerialExecutor:
    """Every run in the calling process, one after another (the reference for the others)."""

    name = "serial"
    workers = 1

    def __init__(self, data: FeedArrays | None) -> None:
        self.data = data

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        clear_cache()

    def run(self, template: Template, specs: Sequence[RunSpec]) -> Iterator[RunOutcome]:
        for spec in specs:
            yield run_one(self.data, template, spec)


# ------------------------------------------------------------------------------ shared memory


@dataclass(frozen=True)
class SharedFeedHandle:
    """A picklable handle to bars in shared memory: what a worker receives instead of the bars.

    The block holds ``ts`` (int64, n) followed by ``ohlcv`` (float64, 5 x n)."""

    shm_name: str
    symbols: tuple[str, ...]
    offsets: tuple[int, ...]
    n: int

    @property
    def key(self) -> str:
        return self.shm_name

    def arrays(self) -> FeedArrays:
        cached = _ATTACHED.get(self.shm_name)
        if cached is not None:
            return cached[1]
        shm = shared_memory.SharedMemory(name=self.shm_name, create=False)
        ts = np.ndarray((self.n,), dtype=np.int64, buffer=shm.buf)
        ohlcv = np.ndarray(
            (len(COLUMNS), self.n), dtype=np.float64, buffer=shm.buf, offset=8 * self.n
        )
        ts.flags.writeable = False
        ohlcv.flags.writeable = False
        arrays = FeedArrays(
            self.symbols, np.asarray(self.offsets, dtype=np.int64), ts, ohlcv, self.shm_name
        )
        _ATTACHED[self.shm_name] = (shm, arrays)
        return arrays


# in a worker: the shared blocks it has mapped (kept open for the life of the process)
_ATTACHED: dict[str, tuple[shared_memory.SharedMemory, FeedArrays]] = {}


def share(data: FeedArrays) -> tuple[shared_memory.SharedMemory, SharedFeedHandle]:
    """Copy ``data`` into a new shared-memory block; the caller must close and unlink it."""
    n = int(data.ts.size)
    size = max(8 * n * (1 + len(COLUMNS)), 1)
    shm = shared_memory.SharedMemory(create=True, size=size)
    try:
        ts = np.ndarray((n,), dtype=np.int64, buffer=shm.buf)
        ts[:] = data.ts
        ohlcv = np.ndarray((len(COLUMNS), n), dtype=np.float64, buffer=shm.buf, offset=8 * n)
        ohlcv[:] = data.ohlcv
        del ts, ohlcv  # no view may outlive the block (close() refuses while one exists)
    except BaseException:
        release(shm)
        raise
    handle = SharedFeedHandle(shm.name, data.symbols, tuple(int(x) for x in data.offsets), n)
    return shm, handle


def release(shm: shared_memory.SharedMemory) -> None:
    """Close and unlink a block (quietly if it is already gone)."""
    with contextlib.suppress(BufferError):
        shm.close()
    with contextlib.suppress(FileNotFoundError):
        shm.unlink()


# ----------------------------------------------------------------------------------- the pool


def _worker_init() -> None:
    # Ctrl-C goes to the whole process group; only the sweep (the parent) acts on it
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalExecutor:
    """Runs on a pool of ``max_workers`` local processes (default: every core)."""

    name = "local"

    def __init__(
        self,
        data: FeedArrays | None,
        max_workers: int | None = None,
        mp_context: str = "spawn",
    ) -> None:
        self.data = data
        self.workers = max_workers if max_workers is not None else default_workers()
        if self.workers < 1:
            from tradeloop.errors import ConfigError

            raise ConfigError("max_workers", max_workers, "must be >= 1")
        self._ctx = multiprocessing.get_context(mp_context)
        self._shm: shared_memory.SharedMemory | None = None
        self.handle: SharedFeedHandle | None = None
        self._pool: ProcessPoolExecutor | None = None

    # -- lifecycle

    def __enter__(self) -> LocalExecutor:
        try:
            if self.data is not None:
                self._shm, self.handle = share(self.data)
            self._pool = self._new_pool(self.workers)
        except BaseException:
            self._close(terminate=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close(terminate=exc_type is not None)

    @property
    def shm_name(self) -> str | None:
        """The shared-memory block's name while the executor is open (for tests)."""
        return self._shm.name if self._shm is not None else None

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers, mp_context=self._ctx, initializer=_worker_init
        )

    def _stop_pool(self, terminate: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not terminate:
            pool.shutdown(wait=True, cancel_futures=True)
            return
        workers: dict[int, Any] = {}
        for _ in range(2):  # again after the first: the pool may have started one meanwhile
            procs: dict[Any, Any] = getattr(pool, "_processes", None) or {}
            for p in list(procs.values()):
                workers[id(p)] = p
                with contextlib.suppress(Exception):
                    p.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for p in workers.values():
            with contextlib.suppress(Exception):
                p.join(timeout=5)
                if p.is_alive():  # SIGTERM not acted on in time: no process is left behind
                    p.kill()
                    p.join(timeout=5)

    def _close(self, terminate: bool) -> None:
        try:
            self._stop_pool(terminate)
        finally:
            if self._shm is not None:
                release(self._shm)
                self._shm = None
            clear_cache()

    # -- running

    def _submit(self, template: Template, spec: RunSpec) -> Future[RunOutcome]:
        assert self._pool is not None, "use the executor as a context manager"
        return self._pool.submit(run_one, self.handle, template, spec)

    def run(self, template: Template, specs: Sequence[RunSpec]) -> Iterator[RunOutcome]:
        queue = list(reversed(specs))
        window = 2 * self.workers  # in flight at once: enough to keep every worker busy
        inflight: dict[Future[RunOutcome], RunSpec] = {}
        while queue or inflight:
            while queue and len(inflight) < window:
                spec = queue.pop()
                inflight[self._submit(template, spec)] = spec
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            suspects: list[RunSpec] = []
            for fut in sorted(done, key=lambda f: inflight[f].index):
                spec = inflight.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    suspects.append(spec)
                except Exception as exc:  # e.g. the template could not be pickled
                    yield _failed(spec, f"{type(exc).__name__}: {exc}")
            if suspects:
                suspects.extend(inflight.values())  # the dead pool fails them all
                inflight.clear()
                yield from self._isolate(template, sorted(suspects, key=lambda s: s.index))

    def _isolate(self, template: Template, suspects: list[RunSpec]) -> Iterator[RunOutcome]:
        """After a worker died: rerun the runs that were in flight one at a time, each on a
        fresh pool, so the one that kills its worker is found; then restart the full pool."""
        self._stop_pool(terminate=True)
        for spec in suspects:
            self._pool = self._new_pool(1)
            try:
                yield self._submit(template, spec).result()
            except BrokenProcessPool:
                yield _failed(spec, WORKER_DIED)
            except Exception as exc:
                yield _failed(spec, f"{type(exc).__name__}: {exc}")
            finally:
                self._stop_pool(terminate=True)
        self._pool = self._new_pool(self.workers)


def _failed(spec: RunSpec, error: str) -> RunOutcome:
    return RunOutcome(spec.index, dict(spec.params), None, error, 0.0)
