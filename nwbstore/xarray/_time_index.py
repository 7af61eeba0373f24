"""An evenly sampled time axis as a lazy index: ``starting_time + i / rate``, never read.

xarray's ``RangeIndex`` selects only with ``method="nearest"``; a series' time axis is
mostly cut with label slices (``ds.sel(time=slice(1.0, 2.0))``), so this subclass also takes
a slice without a method, with pandas' semantics (both ends included), keeping the range
index for the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["make_time_coords"]

try:  # xarray >= 2025.6
    from xarray.indexes import RangeIndex
except ImportError:  # pragma: no cover - older xarray: a computed coordinate instead
    RangeIndex = None  # type: ignore[assignment,misc]

#: Positions closer than this to a whole sample count as on it (float rounding of times).
_EPS = 1e-9

if RangeIndex is not None:
    from xarray.core.indexing import IndexSelResult

    class TimeRangeIndex(RangeIndex):
        """``RangeIndex`` that also selects a label slice without ``method``."""

        def sel(
            self, labels: dict[Any, Any], method: Any = None, tolerance: Any = None
        ) -> IndexSelResult:
            label = labels[self.dim]
            if method is None and isinstance(label, slice) and label.step is None:
                first = 0
                stop = self.size
                if label.start is not None:
                    pos = self.transform.reverse(
                        {self.coord_name: np.array([label.start], dtype=float)}
                    )[self.dim]
                    first = max(math.ceil(float(pos[0]) - _EPS), 0)
                if label.stop is not None:
                    pos = self.transform.reverse(
                        {self.coord_name: np.array([label.stop], dtype=float)}
                    )[self.dim]
                    stop = min(math.floor(float(pos[0]) + _EPS) + 1, self.size)
                return IndexSelResult({self.dim: slice(first, max(stop, first))})
            return super().sel(labels, method=method, tolerance=tolerance)

        def _position(self, label: Any) -> float:
            """The (fractional) sample position of time ``label``."""
            value = np.array([label], dtype=float)
            return float(self.transform.reverse({self.coord_name: value})[self.dim][0])

        def isel(self, indexers: Mapping[Any, Any]) -> Any:
            out = super().isel(indexers)
            if type(out) is RangeIndex:
                return TimeRangeIndex(out.transform)
            return out


def make_time_coords(name: str, start: float, rate: float, size: int) -> xr.Coordinates:
    """Coordinates holding ``name`` = ``start + arange(size) / rate`` on dimension ``name``."""
    if RangeIndex is None:  # pragma: no cover
        return xr.Coordinates({name: start + np.arange(size) / rate})
    index = TimeRangeIndex.linspace(
        start, start + size / rate, num=size, endpoint=False, dim=name, coord_name=name
    )
    return xr.Coordinates.from_xindex(index)
