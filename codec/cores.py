"""Sharing the cores: work made on a second thread beside the coding, with the same results in any timing.

Torch's CPU thread count is per thread (OpenMP's and MKL's settings are thread-local; a new
thread starts from the last count set anywhere), so each thread below sets its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def one_thread() -> Iterator[None]:
    """This thread's torch work on one core meanwhile."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def together(main: Callable[[], R], other: Callable[[], T]) -> tuple[R, T]:
    """(main(), other()), other() made on a second thread while main() runs on this one. They
    start together: begun before main, other()'s threads would fight main's first work."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        made = pool.submit(other)
        return main(), made.result()


def ahead(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """fn(item) for each item in order, each made on a second thread while the caller works on
    the one before: the network's matrix products, which let go of the GIL, overlap the
    tables' numpy work, and both cores stay busy."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for item in items:
            following = pool.submit(fn, item)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def side_by_side(fns: list[Callable[[], R]]) -> list[R]:
    """[fn() for fn in fns], with several each on a thread of its own and this thread's torch
    threads shared out among them (one at least each); one runs here, with all of them. Small
    networks use two cores better as two single-threaded streams than as one on both
    (`streamed`); independent ones need no stream between them."""
    threads = torch.get_num_threads()
    if len(fns) == 1 or threads < 2:
        return [fn() for fn in fns]
    each = max(1, threads // len(fns))

    def run(fn: Callable[[], R]) -> R:
        torch.set_num_threads(each)
        return fn()

    try:
        with ThreadPoolExecutor(max_workers=min(len(fns), threads)) as pool:
            return list(pool.map(run, fns))
    finally:
        torch.set_num_threads(threads)  # a thread started later takes the count set last


@contextmanager
def streamed(fn: Callable[[T], R], items: Iterable[T], beside: bool = True) -> Iterator[Iterator[R]]:
    """fn(item) for every item, in order, all made on a second thread with one core while the
    caller works with the other; the caller gets its threads back once the stream has ended.
    Two single-threaded streams do more than one that takes both cores for each small network
    in turn (binarized MNIST's posterior and features: 1.6-1.8 times as fast on two threads as
    on one, not twice). Not `beside`, or with one thread allowed, the items are made when asked for."""
    items = list(items)
    threads = torch.get_num_threads()
    if not beside or threads < 2 or not items:
        yield map(fn, items)
        return

    def on_one_core(item: T) -> R:
        # Not one_thread(): giving the count back would start the caller's new threads on two.
        torch.set_num_threads(1)
        return fn(item)

    with ThreadPoolExecutor(max_workers=1) as pool, one_thread():
        futures = [pool.submit(on_one_core, item) for item in items]

        def results() -> Iterator[R]:
            for future in futures:
                yield future.result()
                if futures[-1].done():
                    torch.set_num_threads(threads)

        try:
            yield results()
        finally:
            for future in futures:
                future.cancel()
