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


def map_unordered(
    func: Callable[[T], R], items: Iterable[T], *, workers: int = 1, chunk_size: int = 16
) -> Iterator[list[R]]:
    """Yield lists of ``func(item)`` results, one list per finished chunk, in completion order.

    ``workers <= 1`` runs in this process. ``func`` must be picklable (a
    module-level function or a ``functools.partial`` of one). At most
    ``2 * workers`` chunks are in flight, so memory stays bounded.
    """
    chunks: Iterator[list[T]] = _chunked(items, chunk_size)
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


def _chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
