"""Lazy arrays over nwbstore datasets for xarray (``BackendArray``).

Reads go through the public ``Dataset[...]`` of any backend. Outer (orthogonal) keys are
turned into what every backend accepts: an integer array on an axis is read as its bounding
slice and subselected in memory, so HDF5 (one fancy axis at most, increasing) and Zarr
(vectorised arrays) give the same answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from nwbstore.nodes import Dataset
from nwbstore.xarray._values import text_values

__all__ = ["CountArray", "NwbstoreArray", "read_outer"]

_OUTER = indexing.IndexingSupport.OUTER


def read_outer(dataset: Dataset, key: tuple[Any, ...]) -> np.ndarray:
    """Read an outer-indexing ``key`` (ints, slices, integer arrays per axis) from ``dataset``.

    Arrays are read as their bounding slice, then the wanted positions are taken.
    """
    if dataset.ndim == 0:
        return np.asarray(dataset[()])
    store_key: list[Any] = []
    takes: list[tuple[int, np.ndarray]] = []
    kept = 0  # axes kept in the result so far
    for k in key:
        if isinstance(k, (int, np.integer)):
            store_key.append(int(k))
            continue
        if isinstance(k, np.ndarray):
            idx = k.astype(np.int64, copy=False)
            if idx.size == 0:
                store_key.append(slice(0, 0))
                takes.append((kept, idx))
            else:
                lo, hi = int(idx.min()), int(idx.max()) + 1
                store_key.append(slice(lo, hi))
                takes.append((kept, idx - lo))
        else:
            store_key.append(k)
        kept += 1
    data = np.asarray(dataset[tuple(store_key)])
    for axis, idx in takes:
        data = np.take(data, idx, axis=axis)
    return data


class NwbstoreArray(BackendArray):
    """A lazy, read-only view of an nwbstore dataset.

    Parameters
    ----------
    dataset
        The nwbstore dataset.
    field
        For a compound dataset: the field this array shows.
    channel_scale
        Per-position factors applied along ``channel_axis`` after reading (NWB's
        ``channel_conversion``); the array's dtype becomes floating.
    channel_axis
        The axis ``channel_scale`` applies to.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        field: str | None = None,
        channel_scale: np.ndarray | None = None,
        channel_axis: int = 1,
    ) -> None:
        self.dataset = dataset
        self.field = field
        self.shape = tuple(dataset.shape)
        dtype = dataset.dtype if field is None else dataset.dtype[field]
        self.channel_scale = channel_scale
        self.channel_axis = channel_axis
        if channel_scale is not None:
            dtype = np.result_type(dtype, channel_scale.dtype, np.float32)
        self.dtype = np.dtype(dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(key, self.shape, _OUTER, self._raw)

    async def async_getitem(self, key: indexing.ExplicitIndexer) -> Any:
        # the Store interface is synchronous: run the read in a worker thread
        return await asyncio.to_thread(self.__getitem__, key)

    def _raw(self, key: tuple[Any, ...]) -> np.ndarray:
        data = read_outer(self.dataset, key)
        if self.field is not None:
            data = np.asarray(data[self.field])
        if data.dtype == object:
            data = text_values(data)
        if self.channel_scale is not None:
            data = self._scaled(data, key)
        return data

    def _scaled(self, data: np.ndarray, key: tuple[Any, ...]) -> np.ndarray:
        assert self.channel_scale is not None
        if len(key) <= self.channel_axis:
            return data * self.channel_scale
        k = key[self.channel_axis]
        factors = np.asarray(self.channel_scale[k])
        if factors.ndim == 0:
            return np.asarray(data * factors, dtype=self.dtype)
        axis = sum(1 for kk in key[: self.channel_axis] if not isinstance(kk, (int, np.integer)))
        shape = [1] * data.ndim
        shape[axis] = factors.size
        return np.asarray(data * factors.reshape(shape), dtype=self.dtype)


class CountArray(BackendArray):
    """Rows' element counts of a ragged column, computed lazily from its ``VectorIndex``.

    Row ``i`` holds ``index[i] - index[i - 1]`` elements (``index[-1]`` = 0): the
    ``count`` variable of a CF contiguous ragged array.
    """

    def __init__(self, index: Dataset) -> None:
        self.index = index
        self.shape = tuple(index.shape)
        self.dtype = np.dtype(np.int64)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(key, self.shape, _OUTER, self._raw)

    async def async_getitem(self, key: indexing.ExplicitIndexer) -> Any:
        return await asyncio.to_thread(self.__getitem__, key)

    def _raw(self, key: tuple[Any, ...]) -> np.ndarray:
        rows = np.arange(self.shape[0])[key[0]]
        scalar = np.ndim(rows) == 0
        rows = np.atleast_1d(rows)
        if rows.size == 0:
            return np.zeros(0, dtype=np.int64)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        ends = np.asarray(self.index[max(lo - 1, 0) : hi], dtype=np.int64)
        if lo == 0:
            ends = np.concatenate([[0], ends])
        counts = np.diff(ends)[rows - lo]
        return counts[0] if scalar else counts
