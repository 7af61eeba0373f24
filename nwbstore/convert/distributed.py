"""Spreading a conversion's chunk copies over a Dask distributed cluster (``scheduler=``).

The driver creates the destination's structure; each task opens both stores by URL on its
worker, with the caller's ``storage_options`` (so credentials and endpoints travel with the
work), and copies one range of blocks. Only Zarr destinations can take writes from many
processes at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nwbstore.convert.data import _block_shape, iter_blocks
from nwbstore.errors import MissingDependencyError, SettingsError
from nwbstore.nodes import Dataset

if TYPE_CHECKING:
    from nwbstore.convert.report import ConversionReport

__all__ = ["DistributedCopier", "copy_blocks"]

#: Blocks per task: few enough tasks to keep scheduling cheap, enough to spread the work.
BLOCKS_PER_TASK = 4


def copy_blocks(
    src_url: str,
    dst_url: str,
    path: str,
    selections: list[tuple[tuple[int, int], ...]],
    storage_options: Mapping[str, Any],
) -> int:
    """Copy ``selections`` of dataset ``path`` from ``src_url`` to ``dst_url``; return bytes.

    Runs on a worker: it opens both stores itself.
    """
    import nwbstore

    moved = 0
    with (
        nwbstore.open(src_url, "r", storage_options=storage_options) as src,
        nwbstore.open(dst_url, "r+", storage_options=storage_options, allow_incomplete=True) as dst,
    ):
        a, b = src[path], dst[path]
        assert isinstance(a, Dataset) and isinstance(b, Dataset)
        for bounds in selections:
            sel = tuple(slice(lo, hi) for lo, hi in bounds)
            values = a[sel]
            b[sel] = values
            moved += int(getattr(values, "nbytes", 0))
    return moved


class DistributedCopier:
    """Submits block ranges of each dataset to a Dask cluster and waits for them."""

    def __init__(self, scheduler: Any, dst_format: str, storage_options: Mapping[str, Any]):
        try:
            from dask.distributed import Client
        except ImportError as err:
            raise MissingDependencyError(
                "scheduler= needs dask.distributed: pip install 'nwbstore[distributed]'"
            ) from err
        if dst_format != "zarr":
            raise SettingsError(
                "scheduler= needs a Zarr destination: HDF5 files take writes from one process; "
                "use jobs= for threads instead"
            )
        self._own = not isinstance(scheduler, Client)
        self.client = Client(scheduler) if self._own else scheduler
        self.storage_options = dict(storage_options)

    def copy(self, src: Dataset, dst: Dataset, report: ConversionReport) -> None:
        """Copy every value of ``src`` into ``dst`` on the cluster."""
        block = _block_shape(dst, src)
        bounds = [
            tuple((s.start, s.stop) for s in sel) for sel in iter_blocks(tuple(dst.shape), block)
        ]
        groups = [bounds[i : i + BLOCKS_PER_TASK] for i in range(0, len(bounds), BLOCKS_PER_TASK)]
        futures = [
            self.client.submit(
                copy_blocks,
                src.store.url,
                dst.store.url,
                src.name,
                group,
                self.storage_options,
                pure=False,
            )
            for group in groups
        ]
        moved = sum(self.client.gather(futures))
        report.add_chunks(transcoded=len(bounds), read=moved, written=moved)

    def close(self) -> None:
        """Close the client if this object created it."""
        if self._own:
            self.client.close()
