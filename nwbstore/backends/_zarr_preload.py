"""Read ahead, in one concurrent round, the small objects a reader will ask for one by one.

hdmf-zarr reads every scalar and small dataset of an NWB file when it builds the ``NWBFile``
(``starting_time``, ``rate``, descriptions, the ids of small tables ...), one GET after the
other: on object storage each is a round trip. With consolidated metadata the hierarchy is
known at open, so :func:`preload_small_chunks` fetches the single chunk of every small array
at once (``concurrency`` GETs in flight) and hands the bytes to the read-only store, which
serves each of them from memory. A chunk never written (fill value) is remembered as absent.

Only stores opened read-only use this (their objects cannot change through nwbstore while
open); sharded arrays and arrays of more than one chunk are left to zarr.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
import zarr
from zarr.core.buffer import Buffer, default_buffer_prototype
from zarr.core.sync import sync

__all__ = ["ABSENT", "PreloadTarget", "Selector", "preload_small_chunks", "small_chunk_keys"]

#: Marks a key found missing (a chunk never written: zarr gives the fill value).
ABSENT = b""

#: Arrays whose single chunk holds at most this many decoded bytes are read ahead.
SMALL_ARRAY_BYTES = 64 * 1024
#: At most this many bytes are read ahead for one store.
PRELOAD_BUDGET = 8 * 2**20


class PreloadTarget(Protocol):
    """A store that can serve preloaded objects (see ``_zarr_storage``)."""

    def preload(self, objects: dict[str, bytes]) -> None: ...

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Buffer | None: ...


def _single_chunk_key(array: zarr.Array) -> str | None:
    """The store key of ``array``'s only chunk, or None (sharded, several chunks, large)."""
    if getattr(array, "shards", None) is not None:
        return None
    shape, chunks = tuple(array.shape), tuple(array.chunks)
    if math.prod(shape) == 0:
        return None  # an empty array: zarr reads no chunk
    if any(s > c for s, c in zip(shape, chunks, strict=True)):
        return None
    if array.dtype.kind in "OTUS" or not isinstance(array.dtype, np.dtype):
        itemsize = 256  # strings: a generous guess per element
    else:
        itemsize = array.dtype.itemsize
    if math.prod(chunks) * itemsize > SMALL_ARRAY_BYTES:
        return None
    chunk_key = array.metadata.encode_chunk_key((0,) * len(shape))
    return f"{array.path}/{chunk_key}" if array.path else chunk_key


#: ``select(path, array)``: whether a small array is worth reading ahead.
Selector = Callable[[str, zarr.Array], bool]


def small_chunk_keys(group: zarr.Group, select: Selector | None = None) -> list[str]:
    """Keys of the single chunk of each small array under ``group`` (from its metadata).

    ``select`` narrows them to the arrays a reader will really read (default: all).
    """
    keys: list[str] = []
    for path, node in group.members(max_depth=None):
        if isinstance(node, zarr.Array) and (select is None or select(path, node)):
            key = _single_chunk_key(node)
            if key is not None:
                keys.append(key)
    return keys


async def _fetch(store: PreloadTarget, keys: Iterable[str], concurrency: int) -> dict[str, bytes]:
    limit = asyncio.Semaphore(concurrency)
    prototype = default_buffer_prototype()
    found: dict[str, bytes] = {}
    total = 0

    async def one(key: str) -> None:
        nonlocal total
        async with limit:
            if total > PRELOAD_BUDGET:
                return
            buf = await store.get(key, prototype)
        data = ABSENT if buf is None else buf.to_bytes()
        total += len(data)
        found[key] = data

    await asyncio.gather(*(one(key) for key in keys))
    return found


def preload_small_chunks(
    group: zarr.Group,
    store: PreloadTarget,
    *,
    select: Selector | None = None,
    concurrency: int = 32,
) -> int:
    """Read the small arrays' chunks of ``group`` concurrently into ``store``; return how many.

    ``store`` is the read-only store ``group`` reads through. The hierarchy must come from
    consolidated metadata (listing it costs no request); otherwise nothing is read ahead.
    """
    if group.metadata.consolidated_metadata is None:
        return 0
    keys = small_chunk_keys(group, select)
    if not keys:
        return 0
    found = sync(_fetch(store, keys, concurrency))
    store.preload(found)
    return len(found)
