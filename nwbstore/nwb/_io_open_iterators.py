"""Whole-chunk Zarr writes for ``DataChunkIterator``\\ s of unknown length.

A ``DataChunkIterator`` over a generator (``maxshape=(None, ...)``) cannot be configured ahead
of the write: its length is unknown. Left alone, hdmf-zarr makes its chunks the shape of the
iterator's first buffer -- one row for ``buffer_size=1``, the seed's iterative-write example --
which on object storage is one PUT per row. :func:`chunk_open_iterators` gives each such
iterator, when it is not wrapped in a ``ZarrDataIO`` already, the chunk shape
:func:`nwbstore.default_settings` suggests for its row shape and regroups what it yields into
whole chunks (:class:`~nwbstore.nwb._config_iterators.RebufferedIterator`): each chunk is
written once, and memory holds at most one chunk and one piece of the iterator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["chunk_open_iterators"]

#: Rows assumed for an iterator of unknown length when its chunks are chosen: the chunk shape
#: is then the one suggested for a long recording.
_ASSUMED_ROWS = 2**40


def _open_length(data: Any) -> bool:
    from hdmf.data_utils import DataChunkIterator

    if not isinstance(data, DataChunkIterator) or getattr(data, "iter_axis", 0) != 0:
        return False
    maxshape, dtype = data.maxshape, data.dtype
    if maxshape is None or dtype is None or np.dtype(dtype).kind not in "biufc":
        return False
    return maxshape[0] is None and all(m is not None for m in maxshape[1:])


def chunk_open_iterators(nwbfile: Any, zarr_format: int) -> list[str]:
    """Wrap ``nwbfile``'s unwrapped open-length iterators for whole-chunk Zarr writes.

    Returns the locations changed (for the write report).
    """
    from hdmf_zarr import ZarrDataIO

    from nwbstore.defaults import default_settings
    from nwbstore.nwb._config_apply import assign
    from nwbstore.nwb._config_iterators import RebufferedIterator
    from nwbstore.nwb._config_walk import iter_candidates

    changed: list[str] = []
    for cand in iter_candidates(nwbfile):
        data = cand.value
        if not _open_length(data):
            continue
        trailing = tuple(int(m) for m in data.maxshape[1:])
        dtype = np.dtype(data.dtype)
        suggestion = default_settings(
            (_ASSUMED_ROWS, *trailing), dtype, "zarr", zarr_format=zarr_format
        )
        assert suggestion.settings.chunks is not None
        chunks = (int(suggestion.settings.chunks[0]), *trailing)
        regrouped = RebufferedIterator(data, chunks[0], chunks)
        assign(cand, ZarrDataIO(data=regrouped, chunks=chunks))
        changed.append(cand.location)
    return changed
