"""Run a function over many items on a process pool, in chunks, yielding results as they finish.

Workers end when the process that started them dies, however it dies
(``kill -9`` included): on Linux the kernel sends them SIGKILL
(``PR_SET_PDEATHSIG``); elsewhere a thread in each worker watches its parent.
With the workers gone, multiprocessing's resource tracker reads the end of its
pipe and exits too, so nothing of a killed run lingers.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _run_chunk(func: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    return [func(item) for item in chunk]


#: ``prctl`` option: the signal this process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def _watch_parent(parent_pid: int, every_s: float = 1.0) -> None:
    while os.getppid() == parent_pid:
        time.sleep(every_s)
    os._exit(1)


def exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process as soon as ``parent_pid`` (the process that started it) is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # the parent died before the request took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="stegwatch-parent-watch", daemon=True).start()


#: ``mallopt`` parameters (malloc.h) and the values workers set: keep freed memory for the next file instead of
#: returning it to the system. With glibc's defaults each file's large temporaries (a few MiB each) are mapped and
#: unmapped again, and the page faults keep a worker in the kernel (`make bench` times scans). Glibc stops adjusting
#: either threshold once one is set, so both are set: the mapping threshold to glibc's own ceiling on 64-bit
#: systems (32 MiB), the trim threshold well above a worker's working set.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
WORKER_MMAP_THRESHOLD = 32 << 20
WORKER_TRIM_THRESHOLD = 512 << 20


def keep_freed_memory() -> bool:
    """Tune glibc's allocator in this process so that freed blocks are reused, not unmapped (see above).

    Returns whether both settings took (False where the C library is not glibc or the call fails)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    global _freed_memory_kept
    _freed_memory_kept = bool(mallopt(M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, WORKER_TRIM_THRESHOLD))
    return _freed_memory_kept


_freed_memory_kept = False


def keeps_freed_memory(*_: object) -> bool:
    """Whether :func:`keep_freed_memory` took effect in this process (arguments ignored: a probe for pool workers)."""
    return _freed_memory_kept


@functools.cache
def _thread_pools():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Context manager: the BLAS libraries loaded in this process (numpy's OpenBLAS) use one thread inside it.

    Feature extraction calls BLAS on long vectors (dot products, stacked 8x8
    products): multithreaded, OpenBLAS splits a dot product among its threads
    (one per core), so a value's last bits depended on the machine's core
    count, and on a scan's workers (one per core) each worker's threads
    competed with the other workers for the same cores: on 2 cores the
    workers extracted about 1.5x as many files per second with one thread each
    (``benchmarks/blas_threads.py``). With one thread the values are the same
    whatever the cores and the workers. The libraries are found once per
    process; entering and leaving only sets their thread counts.
    """
    return _thread_pools().limit(limits=1, user_api="blas")


def init_worker(parent_pid: int) -> None:
    """Process-pool initializer: end with the parent (:func:`exit_with_parent`), keep freed memory (:func:`keep_freed_memory`)."""
    exit_with_parent(parent_pid)
    keep_freed_memory()


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
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker,
                             initargs=(os.getpid(),)) as pool:
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
