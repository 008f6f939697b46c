"""Sweeps on Ray: the bars go into the object store once, and each run is one Ray task.

``address=None`` starts a local Ray instance with ``max_workers`` CPUs (default: every core) and
shuts it down afterwards; ``address="ray://host:10001"`` (or ``"auto"``) connects to a running
cluster, whose nodes need tradeloop installed (and the strategy: a built-in, an installed module,
or a file at the same path on every node). A Ray session the caller started already is used as it
is and left running.

Ray is an optional extra (``pip install 'tradeloop[ray]'``); this module is imported only when a
sweep asks for ``executor="ray"``, never by ``import tradeloop``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tradeloop.errors import ConfigError
from tradeloop.sweep.executors import default_workers
from tradeloop.sweep.runner import FeedArrays, RunOutcome, RunSpec, Template, run_one

__all__ = ["RAY_EXTRA", "RayExecutor", "ray_available"]

RAY_EXTRA = "pip install 'tradeloop[ray]'"


def ray_available() -> bool:
    """Whether Ray can be imported (checked without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class _RaySource:
    """In a Ray task: the bars, fetched from the object store (zero-copy numpy arrays) once per
    worker process, keyed by the object's id."""

    box: tuple[Any, ...]  # (ObjectRef,): wrapped so Ray passes the reference, not the value

    @property
    def key(self) -> str:
        return f"ray-{self.box[0].hex()}"

    def arrays(self) -> FeedArrays:
        import ray

        data = ray.get(self.box[0])
        assert isinstance(data, FeedArrays)
        return data


def _ray_task(source: _RaySource | None, template: Template, spec: RunSpec) -> RunOutcome:
    return run_one(source, template, spec)


class RayExecutor:
    """One Ray task per run; the data placed in the object store once."""

    name = "ray"

    def __init__(
        self,
        data: FeedArrays | None,
        max_workers: int | None = None,
        address: str | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not ray_available():
            raise ConfigError("executor", "ray", f"Ray is not installed: {RAY_EXTRA}")
        if max_workers is not None and max_workers < 1:
            raise ConfigError("max_workers", max_workers, "must be >= 1")
        self.data = data
        self.address = address
        self.max_workers = max_workers
        self.workers = max_workers if max_workers is not None else default_workers()
        self.init_kwargs = dict(init_kwargs or {})
        self._started = False
        self._source: _RaySource | None = None
        self._remote: Any = None
        self._pending: list[Any] = []

    def __enter__(self) -> RayExecutor:
        import ray

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
                **self.init_kwargs,
            }
            if self.address is None:
                kwargs.setdefault("num_cpus", self.workers)
            else:
                kwargs["address"] = self.address
            try:
                ray.init(**kwargs)
            except Exception as exc:
                raise ConfigError(
                    "address", self.address, f"cannot start or reach Ray: {exc}"
                ) from exc
            self._started = True
        try:
            if self.max_workers is None:
                resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
                self.workers = max(1, int(resources.get("CPU", self.workers)))
            if self.data is not None:
                self._source = _RaySource((ray.put(self.data),))
            self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        import ray

        for ref in self._pending:
            with contextlib.suppress(Exception):  # it may have finished meanwhile
                ray.cancel(ref, force=True)
        self._pending = []
        self._source = None
        if self._started:
            ray.shutdown()
            self._started = False

    def run(self, template: Template, specs: Sequence[RunSpec]) -> Iterator[RunOutcome]:
        import ray

        queue = list(reversed(specs))
        window = 2 * self.workers
        by_ref: dict[Any, RunSpec] = {}
        try:
            while queue or by_ref:
                while queue and len(by_ref) < window:
                    spec = queue.pop()
                    by_ref[self._remote.remote(self._source, template, spec)] = spec
                self._pending = list(by_ref)
                done, _ = ray.wait(list(by_ref), num_returns=1)
                for ref in done:
                    spec = by_ref.pop(ref)
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # the task's worker died, or could not run it
                        yield RunOutcome(
                            spec.index,
                            dict(spec.params),
                            None,
                            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}",
                            0.0,
                        )
        finally:
            self._pending = list(by_ref)
