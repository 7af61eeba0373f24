"""Iterators that make ``buffer_shape`` bound the memory of a write, for every kind of source.

- :class:`BufferedArrayIterator` reads an in-memory array, or a dataset of another file, one
  buffer at a time (hdmf then writes each buffer as it comes).
- :class:`RebufferedIterator` regroups what a ``DataChunkIterator`` yields into buffers of
  whole chunks, so each write covers whole chunks however the iterator was cut.
- :func:`rebuffer_generic` gives a ``GenericDataChunkIterator`` a new buffer and chunk shape
  (before it has been iterated).
"""

from __future__ import annotations

import math
from itertools import chain, product
from typing import Any

import numpy as np
from hdmf.data_utils import AbstractDataChunkIterator, DataChunk, GenericDataChunkIterator

__all__ = ["BufferedArrayIterator", "RebufferedIterator", "rebuffer_generic"]


class BufferedArrayIterator(GenericDataChunkIterator):
    """Yield ``source`` (numpy array, h5py or zarr dataset) one ``buffer_shape`` at a time.

    Parameters
    ----------
    source
        Anything with ``shape``, ``dtype`` and numpy slicing.
    buffer_shape, chunk_shape
        As validated by :class:`~nwbstore.nwb.DatasetIOConfiguration`.
    """

    def __init__(
        self, source: Any, buffer_shape: tuple[int, ...], chunk_shape: tuple[int, ...]
    ) -> None:
        self.source = source
        super().__init__(
            buffer_shape=tuple(buffer_shape), chunk_shape=tuple(chunk_shape), display_progress=False
        )

    def _get_data(self, selection: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self.source[selection])

    def _get_maxshape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.source.shape)

    def _get_dtype(self) -> np.dtype[Any]:
        return np.dtype(self.source.dtype)


class RebufferedIterator(AbstractDataChunkIterator):
    """Regroup the chunks of a ``DataChunkIterator`` (axis 0) into ``buffer_rows`` rows.

    Memory held is at most one buffer plus one piece of the source iterator.
    """

    def __init__(self, source: Any, buffer_rows: int, chunk_shape: tuple[int, ...]) -> None:
        self.source = source
        self._rows = int(buffer_rows)
        self._chunk = tuple(chunk_shape)
        self._pending: list[np.ndarray] = []
        self._start = 0  # row of the first pending row
        self._carry: tuple[int, np.ndarray] | None = None  # a piece after a gap
        self._done = False

    def __iter__(self) -> RebufferedIterator:
        return self

    def _next_piece(self) -> tuple[int, np.ndarray] | None:
        if self._carry is not None:
            piece, self._carry = self._carry, None
            return piece
        while not self._done:
            try:
                chunk = next(self.source)
            except StopIteration:
                self._done = True
                break
            if chunk.data is None:
                continue
            sel = chunk.selection
            first = sel[0] if isinstance(sel, tuple) else sel
            start = int(first.start or 0) if isinstance(first, slice) else int(first)
            return start, np.asarray(chunk.data)
        return None

    def __next__(self) -> DataChunk:
        have = sum(p.shape[0] for p in self._pending)
        while have < self._rows:
            piece = self._next_piece()
            if piece is None:
                break
            start, data = piece
            if not self._pending:
                self._start = start
            elif start != self._start + have:  # a gap in the source: emit what is pending
                self._carry = piece
                break
            self._pending.append(data)
            have += data.shape[0]
        if have == 0:
            raise StopIteration
        block = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        out, rest = block[: self._rows], block[self._rows :]
        self._pending = [rest] if rest.shape[0] else []
        rows = slice(self._start, self._start + out.shape[0])
        selection = (rows, *(slice(0, s) for s in out.shape[1:]))
        self._start += out.shape[0]
        return DataChunk(data=out, selection=selection)

    next = __next__

    def recommended_chunk_shape(self) -> tuple[int, ...]:
        return self._chunk

    def recommended_data_shape(self) -> tuple[int, ...]:
        # what hdmf would use for the DataChunkIterator alone (its maxshape when fully known)
        return tuple(self.source.recommended_data_shape())

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.source.dtype)

    @property
    def maxshape(self) -> tuple[int | None, ...]:
        return tuple(self.source.maxshape)


def rebuffer_generic(
    iterator: GenericDataChunkIterator, buffer_shape: tuple[int, ...], chunk_shape: tuple[int, ...]
) -> GenericDataChunkIterator:
    """Give a not yet iterated ``GenericDataChunkIterator`` new buffer and chunk shapes.

    The buffer selections are rebuilt the way hdmf builds them in ``__init__``.
    """
    maxshape = tuple(int(m) for m in iterator.maxshape)
    iterator.chunk_shape = tuple(chunk_shape)
    iterator.buffer_shape = tuple(buffer_shape)
    iterator.num_buffers = math.prod(
        math.ceil(m / b) for b, m in zip(buffer_shape, maxshape, strict=True)
    )
    starts = product(*(range(0, m, b) for m, b in zip(maxshape, buffer_shape, strict=True)))
    stops = product(
        *(chain(range(b, m, b), [m]) for m, b in zip(maxshape, buffer_shape, strict=True))
    )
    iterator.buffer_selection_generator = (
        tuple(slice(lo, hi) for lo, hi in zip(lower, upper, strict=True))
        for lower, upper in zip(starts, stops, strict=True)
    )
    bar = getattr(iterator, "progress_bar", None)
    if bar is not None and hasattr(bar, "total"):
        bar.total = iterator.num_buffers
    return iterator
