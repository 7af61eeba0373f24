"""Stored (still encoded) chunks of a Zarr array: list, read and write them by grid index.

Chunk keys come from the array's own metadata (``encode_chunk_key``), so Zarr v2 (``1.0``
or ``1/0``) and v3 (``c/1/0``, or any configured encoding) are both handled. Sharded arrays
keep chunks inside shard objects and are refused here: callers decode them instead.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from functools import partial
from typing import Any

import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from nwbstore.backends._local_files import copy_to_file, read_location
from nwbstore.errors import CorruptChunkError, SettingsError, UnsupportedOperationError
from nwbstore.nodes import ChunkLocation, StoredChunk

__all__ = [
    "copy_stored_chunk",
    "iter_stored_chunks",
    "local_root",
    "read_stored_chunk",
    "write_stored_chunk",
]


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


def local_root(array: zarr.Array) -> str | None:
    """The folder of ``array``'s store when it is a plain local-disk store, else None."""
    from zarr.storage import LocalStore

    store = array.store_path.store
    if type(store) is LocalStore:
        return str(store.root)
    return None


def iter_stored_chunks(array: zarr.Array, name: str) -> Iterator[StoredChunk]:
    """Yield the stored chunks of ``array`` in grid order, skipping chunks never written.

    The bytes are read when a chunk's ``data`` is asked for (so worker threads fetch them
    in parallel); on local disk each chunk also carries its file as ``location``.
    """
    _refuse_shards(array, name)
    store = array.store_path.store
    prefix = f"{array.path}/" if array.path else ""

    async def listing() -> set[str]:
        return {k async for k in store.list_prefix(prefix)}

    present = sync(listing())
    root = local_root(array)
    for index in itertools.product(*(range(n) for n in _grid(array))):
        key = _key(array, index)
        if key not in present:
            continue
        if root is None:
            yield StoredChunk(index, load=partial(_get, store, key, name))
        elif (chunk := _local_chunk(root, key, index)) is not None:
            yield chunk


def read_stored_chunk(array: zarr.Array, name: str, index: tuple[int, ...]) -> StoredChunk | None:
    """Return the stored chunk at grid position ``index``, or None if it was never written.

    On local disk the chunk carries its file as ``location`` and loads lazily; elsewhere its
    bytes are fetched now (one request, which also tells whether the chunk exists).
    """
    _refuse_shards(array, name)
    index = tuple(int(i) for i in index)
    _check_index(array, name, index)
    key = _key(array, index)
    root = local_root(array)
    if root is not None:
        return _local_chunk(root, key, index)
    buf = sync(array.store_path.store.get(key, prototype=default_buffer_prototype()))
    return None if buf is None else StoredChunk(index, bytes(buf.to_bytes()))


def _local_chunk(root: str, key: str, index: tuple[int, ...]) -> StoredChunk | None:
    """The chunk file ``key`` under ``root`` as a lazily read chunk; None if it is absent."""
    path = os.path.join(root, key)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return None
    location = ChunkLocation(path, 0, size)
    return StoredChunk(index, location=location, load=partial(read_location, location))


def _get(store: Any, key: str, name: str) -> bytes:
    buf = sync(store.get(key, prototype=default_buffer_prototype()))
    if buf is None:
        raise CorruptChunkError(f"chunk {key!r} of {name!r} vanished while it was being copied")
    return bytes(buf.to_bytes())


def _check_index(array: zarr.Array, name: str, index: tuple[int, ...]) -> None:
    grid = _grid(array)
    if len(index) != len(grid) or any(not 0 <= i < n for i, n in zip(index, grid, strict=True)):
        raise SettingsError(f"chunk index {index} is outside the chunk grid {grid} of {name!r}")


def write_stored_chunk(array: zarr.Array, name: str, index: tuple[int, ...], data: Any) -> None:
    """Store already-encoded ``data`` as the chunk at grid position ``index``."""
    _refuse_shards(array, name)
    _check_index(array, name, tuple(index))
    buf = default_buffer_prototype().buffer.from_bytes(bytes(data))
    sync(array.store_path.store.set(_key(array, tuple(index)), buf))


def copy_stored_chunk(array: zarr.Array, name: str, chunk: StoredChunk) -> None:
    """Store ``chunk``; on local disk a chunk with a ``location`` is copied file to file."""
    root = local_root(array) if chunk.location is not None else None
    if root is None or chunk.location is None:
        write_stored_chunk(array, name, chunk.index, chunk.data)
        return
    _refuse_shards(array, name)
    _check_index(array, name, chunk.index)
    copy_to_file(chunk.location, os.path.join(root, _key(array, chunk.index)))
