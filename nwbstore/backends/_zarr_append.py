"""Streaming appends along the first axis of a Zarr array.

``ds.append(block)`` on Zarr does not resize and rewrite on every call (that costs a chunk
read-modify-write and a metadata write per append on object storage). An
:class:`AppendStream` keeps at most one *open chunk row* in memory: the rows past the last
complete chunk row (a chunk row is one stored object's height along axis 0 -- the shard
height for sharded arrays -- across every other axis). When rows complete a chunk row, that
row is written whole (zarr writes complete chunks without reading them) and dropped from
memory; rows of a large block are written straight from the block, one chunk row at a time,
without copying the block.

The stored shape is grown only when the stream is *settled*: at ``flush()``/``close()``,
before a read, a write, a resize or a raw-chunk access of the dataset. Settling writes the
open chunk row as it is (an edge chunk, again without reading; for a sharded array the whole
shard row, its rows past the end as fill, because zarr reads an edge shard back before
writing it) and then the new shape, so a reader never sees a shape that covers chunks not
written yet. Complete chunk rows beyond the
stored shape are written through an unsaved view of the array whose shape covers them; the
array's metadata is not touched until the stream settles.

A dataset that already holds a partial chunk row when appending starts (opened for writing
again, or written with ``ds[...] = x``) has that row read back once, so that the row can be
written whole when it completes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr
from zarr.core.array import AsyncArray

__all__ = ["AppendStream", "AppendStreams", "chunk_row_height"]


def chunk_row_height(array: zarr.Array) -> int | None:
    """Rows along axis 0 of one stored object (shard, else chunk); None if not streamable.

    Arrays with a chunk grid zarr cannot describe by one chunk shape (rectilinear grids)
    and scalar arrays are appended to without buffering.
    """
    if array.ndim == 0:
        return None
    try:
        outer = array.shards or array.chunks
    except (NotImplementedError, ValueError, TypeError, AttributeError):
        return None
    height = int(outer[0])
    return height if height > 0 else None


class AppendStream:
    """Rows appended along axis 0 of one Zarr array, written one complete chunk row at a time.

    Parameters
    ----------
    array
        The dataset's ``zarr.Array`` (its stored shape is grown only by :meth:`settle`).
    rows
        Height of a chunk row (see :func:`chunk_row_height`).

    Attributes
    ----------
    length
        Logical length along axis 0, pending rows included.
    """

    def __init__(self, array: zarr.Array, rows: int) -> None:
        self._array = array
        self.rows = rows
        self.length = int(array.shape[0])
        self._stored = self.length  # axis-0 length recorded in the array's metadata
        self._start = (self.length // rows) * rows  # first row of the open chunk row
        self._pending: np.ndarray | None = None  # the open chunk row, when held in memory
        self._unwritten = False  # the open chunk row holds rows not stored yet

    @property
    def array(self) -> zarr.Array:
        """The array rows are appended to."""
        return self._array

    @property
    def shape(self) -> tuple[int, ...]:
        """Logical shape, pending rows included."""
        return (self.length, *(int(s) for s in self._array.shape[1:]))

    @property
    def settled(self) -> bool:
        """True when storage holds every appended row and the logical shape."""
        return not self._unwritten and self._stored == self.length

    @property
    def pending_nbytes(self) -> int:
        """Bytes held in memory for the open chunk row (at most one chunk row)."""
        return 0 if self._pending is None else int(self._pending.nbytes)

    def append(self, block: np.ndarray) -> None:
        """Append ``block`` (trailing shape already checked) after the last row.

        If a write fails the exception propagates; the rows appended before the failure
        stay appended (``length`` says how many).
        """
        n = int(block.shape[0])
        done = 0
        rows = self.rows
        if n and self.length > self._start:  # fill the open chunk row first
            row = self._open_row()
            fill = self.length - self._start
            take = min(n, rows - fill)
            row[fill : fill + take] = block[:take]
            done = take
            if fill + take == rows:
                self._write_rows(self._start, row)
                self._close_row()
            else:
                self._unwritten = True
            self.length += take
        while n - done >= rows:  # whole chunk rows straight from the block (views, no copy)
            self._write_rows(self.length, block[done : done + rows])
            done += rows
            self.length += rows
            self._start = self.length
        if done < n:  # the rest opens a new chunk row
            row = self._open_row()
            row[: n - done] = block[done:]
            self.length += n - done
            self._unwritten = True

    def settle(self) -> bool:
        """Write the open chunk row as it is, then the logical shape; True if anything was written.

        The open row stays in memory, so appending on completes it without a read.
        """
        wrote = self.write_pending()
        if self._stored != self.length:
            self._array.resize(self.shape)
            self._stored = self.length
            wrote = True
        return wrote

    def write_pending(self) -> bool:
        """Write the open chunk row (not the shape); True if there was one to write."""
        if not self._unwritten:
            return False
        assert self._pending is not None
        held = self.length - self._start
        if self._array.shards is None:
            self._write_rows(self._start, self._pending[:held])
        else:
            # zarr writes an edge *shard* by reading the stored one back first (a HEAD, or a
            # GET once a flush has stored it): write the whole shard row instead, the rows
            # past the end as fill, which readers never see (the shape stops before them)
            self._pending[held:] = self._array.fill_value
            self._write_rows(self._start, self._pending)
        self._unwritten = False
        return True

    # -- internals ---------------------------------------------------------------------------

    def _row_buffer(self) -> np.ndarray:
        return np.empty((self.rows, *self.shape[1:]), dtype=self._array.dtype)

    def _open_row(self) -> np.ndarray:
        """The open chunk row in memory, read back from storage if it holds rows already."""
        if self._pending is None:
            row = self._row_buffer()
            held = self.length - self._start
            if held:
                # rows stored before this stream began (only settled rows can be held here)
                assert self._stored >= self.length
                row[:held] = self._array[self._start : self.length]
            self._pending = row
        return self._pending

    def _close_row(self) -> None:
        self._pending = None
        self._unwritten = False
        self._start += self.rows

    def _write_rows(self, start: int, data: np.ndarray) -> None:
        """Write ``data`` at rows ``start...`` through a view whose shape ends with it.

        The rows are whole chunk rows, or the array's last (edge) row: every chunk touched
        is complete, so zarr encodes and stores it without reading what is stored.
        """
        stop = start + int(data.shape[0])
        self._view(stop)[start:stop] = data

    def _view(self, length: int) -> zarr.Array:
        """An unsaved ``zarr.Array`` over the same store whose axis 0 has ``length`` rows."""
        source = self._array.async_array
        shape = (length, *source.metadata.shape[1:])
        view: AsyncArray[Any] = AsyncArray(
            metadata=source.metadata.update_shape(shape),
            store_path=source.store_path,
            config=source.config,
        )
        return zarr.Array(view)


class AppendStreams:
    """The append streams of one store, by dataset path."""

    def __init__(self) -> None:
        self._streams: dict[str, AppendStream] = {}

    def get(self, path: str) -> AppendStream | None:
        """The stream of the dataset at ``path``, if it has one."""
        return self._streams.get(path)

    def open(self, path: str, array: zarr.Array, rows: int) -> AppendStream:
        """The stream of the dataset at ``path``, started if there is none."""
        stream = self._streams.get(path)
        if stream is None:
            stream = self._streams[path] = AppendStream(array, rows)
        return stream

    def end(self, path: str) -> AppendStream | None:
        """Forget the stream of ``path`` without settling it; return it (caller settles)."""
        return self._streams.pop(path, None)

    def settle_all(self) -> bool:
        """Settle every stream; True if anything was written."""
        wrote = False
        for stream in self._streams.values():
            wrote = stream.settle() or wrote
        return wrote

    def discard(self, path: str) -> None:
        """Drop, unwritten, the streams of ``path`` and below it (the node was deleted)."""
        prefix = path.rstrip("/") + "/"
        for key in [k for k in self._streams if k == path or k.startswith(prefix)]:
            del self._streams[key]

    def __len__(self) -> int:
        return len(self._streams)
