"""Threads for the many small requests of a run (HEADs, manifest GETs, listings).

Blob transfers have their own bounded pool in `copy`; look-ups go through `map_limited`,
whose threads are kept for the next call so that each keeps its registry connections.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


LOOKUPS = 16  # at least this many HEADs and manifest GETs in flight: they are cheap


def map_limited(limit: int, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`function` over `items` on at most `limit` threads, results in order.

    The threads are kept for the next call (each keeps its registry connections, see
    `PerThread`); `function` must not itself call `map_limited`.
    """
    work = list(items)
    if len(work) <= 1:
        return [function(item) for item in work]
    return list(_lookup_pool(limit).map(function, work))


@functools.cache
def _lookup_pool(limit: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(limit, thread_name_prefix="lookup")
