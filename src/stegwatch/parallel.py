"""Run a function over many items on a process pool, in chunks, yielding results as they finish."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _run_chunk(func: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    return [func(item) for item in chunk]


#: ``scheduler`` value that starts a Dask LocalCluster on this machine (for trying the Dask path).
LOCAL_CLUSTER = "local-cluster"


def map_unordered(
    func: Callable[[T], R], items: Iterable[T], *, workers: int = 1, chunk_size: int = 16, scheduler: str | None = None
) -> Iterator[list[R]]:
    """Yield lists of ``func(item)`` results, one list per finished chunk, in completion order.

    ``workers <= 1`` runs in this process; more uses a local process pool. With
    ``scheduler`` (a Dask scheduler address, or :data:`LOCAL_CLUSTER`), chunks
    run on a Dask distributed cluster instead (files must be reachable from
    the workers by the same path). ``func`` must be picklable (a module-level
    function or a ``functools.partial`` of one). At most ``2 * workers``
    chunks are in flight, so memory stays bounded.
    """
    chunks: Iterator[list[T]] = _chunked(items, chunk_size)
    if scheduler:
        yield from _map_dask(func, chunks, workers=max(1, workers), scheduler=scheduler)
        return
    if workers <= 1:
        for chunk in chunks:
            yield _run_chunk(func, chunk)
        return
    # spawn: workers start clean (no inherited threads or locks from the progress display).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: set[Future[list[R]]] = set()
        for chunk in chunks:
            pending.add(pool.submit(_run_chunk, func, chunk))
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()


def _map_dask(func: Callable[[T], R], chunks: Iterator[list[T]], *, workers: int, scheduler: str) -> Iterator[list[R]]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) if scheduler == LOCAL_CLUSTER else None
    client = Client(cluster if cluster is not None else scheduler)
    try:
        in_flight = max(2, 2 * sum(client.nthreads().values()))
        futures = as_completed()
        pending = 0
        for chunk in chunks:
            futures.add(client.submit(_run_chunk, func, chunk, pure=False))
            pending += 1
            if pending >= in_flight:
                yield next(futures).result()
                pending -= 1
        for future in futures:
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
