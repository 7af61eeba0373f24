"""``DatasetSettings``: one chunking and codec model for HDF5 and Zarr (skeleton; see issue 3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DatasetSettings"]


@dataclass(frozen=True)
class DatasetSettings:
    """Chunking, sharding, codecs, fill value and maxshape of a dataset (skeleton)."""

    chunks: tuple[int, ...] | None = None
    shards: tuple[int, ...] | None = None
    compression: str | None = None
    compression_opts: Any = None
    shuffle: bool = False
    checksum: bool = False
    fill_value: Any = None
    maxshape: tuple[int | None, ...] | None = None

    def to_hdf5(self) -> dict[str, Any]:
        raise NotImplementedError  # filled in by issue 3

    def to_zarr(self, zarr_format: int = 3) -> dict[str, Any]:
        raise NotImplementedError  # filled in by issue 3

    @classmethod
    def from_hdf5(cls, dataset: Any) -> DatasetSettings:
        raise NotImplementedError  # filled in by issue 3

    @classmethod
    def from_zarr(cls, array: Any) -> DatasetSettings:
        raise NotImplementedError  # filled in by issue 3
