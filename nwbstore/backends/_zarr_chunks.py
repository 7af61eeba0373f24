"""Stored (still encoded) chunks of a Zarr array: list, read and write them by grid index.

Chunk keys come from the array's own metadata (``encode_chunk_key``), so Zarr v2 (``1.0``
or ``1/0``) and v3 (``c/1/0``, or any configured encoding) are both handled. Sharded arrays
keep chunks inside shard objects and are refused here: callers decode them instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from nwbstore.errors import SettingsError, UnsupportedOperationError
from nwbstore.nodes import StoredChunk

__all__ = ["iter_stored_chunks", "write_stored_chunk"]


def _refuse_shards(array: zarr.Array, name: str) -> None:
    if getattr(array, "shards", None) is not None:
        raise UnsupportedOperationError(
            f"{name!r} is sharded: its chunks live inside shard objects; read it decoded"
        )


def _grid(array: zarr.Array) -> tuple[int, ...]:
    return tuple(math.ceil(s / c) for s, c in zip(array.shape, array.chunks, strict=True))


def _key(array: zarr.Array, index: tuple[int, ...]) -> str:
    chunk_key = array.metadata.encode_chunk_key(index)
    return f"{array.path}/{chunk_key}" if array.path else chunk_key


def iter_stored_chunks(array: zarr.Array, name: str) -> Iterator[StoredChunk]:
    """Yield the stored chunks of ``array`` in grid order, skipping chunks never written."""
    _refuse_shards(array, name)
    store = array.store_path.store
    prefix = f"{array.path}/" if array.path else ""

    async def listing() -> set[str]:
        return {k async for k in store.list_prefix(prefix)}

    present = sync(listing())
    prototype = default_buffer_prototype()
    for index in itertools.product(*(range(n) for n in _grid(array))):
        key = _key(array, index)
        if key not in present:
            continue
        buf = sync(store.get(key, prototype=prototype))
        if buf is not None:
            yield StoredChunk(index=tuple(index), data=buf.to_bytes())


def write_stored_chunk(array: zarr.Array, name: str, index: tuple[int, ...], data: Any) -> None:
    """Store already-encoded ``data`` as the chunk at grid position ``index``."""
    _refuse_shards(array, name)
    grid = _grid(array)
    if len(index) != len(grid) or any(not 0 <= i < n for i, n in zip(index, grid, strict=True)):
        raise SettingsError(f"chunk index {index} is outside the chunk grid {grid} of {name!r}")
    buf = default_buffer_prototype().buffer.from_bytes(bytes(data))
    sync(array.store_path.store.set(_key(array, tuple(index)), buf))
