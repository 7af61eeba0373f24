"""Spreading a conversion's chunk copies over a Dask distributed cluster (``scheduler=``).

The driver creates the destination's structure; each task opens both stores by URL on its
worker, with the caller's ``storage_options`` (so credentials and endpoints travel with the
work), and copies either one range of blocks (decoded and re-encoded) or, where the codec
pipelines match (:func:`~nwbstore.convert.data.raw_copy_blocker`), a list of stored chunks
copied as they are. The driver lists only chunk indexes, never their bytes. Only Zarr
destinations can take writes from many processes at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from nwbstore.convert.data import _block_shape, copy_stored_chunks, iter_blocks, raw_copy_blocker
from nwbstore.convert.report import ConversionReport
from nwbstore.errors import CorruptChunkError, MissingDependencyError, SettingsError
from nwbstore.nodes import Dataset, StoredChunk

__all__ = ["DistributedCopier", "copy_blocks", "copy_chunks"]

#: Blocks per task: few enough tasks to keep scheduling cheap, enough to spread the work.
BLOCKS_PER_TASK = 4

#: Stored bytes per raw-copy task, and a cap on its chunk count (many tiny chunks still spread).
RAW_TASK_BYTES = 64 * 2**20
RAW_TASK_MAX_CHUNKS = 4096


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


def copy_chunks(
    src_url: str,
    dst_url: str,
    path: str,
    indexes: list[tuple[int, ...]],
    storage_options: Mapping[str, Any],
) -> tuple[int, int, int, int]:
    """Copy the stored chunks at grid positions ``indexes`` of dataset ``path``.

    Runs on a worker: it opens both stores itself and fetches each chunk by index (its bytes
    and HDF5 filter mask come from the source here, not from the driver). Chunks with a
    filter mask are decoded and re-encoded, the others copied as stored. Returns the report
    counters ``(chunks_raw, chunks_transcoded, bytes_read, bytes_written)``.
    """
    import nwbstore

    report = ConversionReport(src_url, dst_url)
    with (
        nwbstore.open(src_url, "r", storage_options=storage_options) as src,
        nwbstore.open(dst_url, "r+", storage_options=storage_options, allow_incomplete=True) as dst,
    ):
        a, b = src[path], dst[path]
        assert isinstance(a, Dataset) and isinstance(b, Dataset)

        def fetch() -> Iterator[StoredChunk]:
            for index in indexes:
                chunk = a.read_stored_chunk(index)
                if chunk is None:
                    raise CorruptChunkError(
                        f"stored chunk {index} of {path!r} in {src_url} vanished while it was "
                        "being copied: leave the source unchanged during a conversion and run "
                        "it again"
                    )
                yield chunk

        copy_stored_chunks(a, b, fetch(), report)
    return report.chunks_raw, report.chunks_transcoded, report.bytes_read, report.bytes_written


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

    def copy(self, src: Dataset, dst: Dataset, report: ConversionReport, raw: bool = True) -> None:
        """Copy every value of ``src`` into ``dst`` on the cluster.

        With ``raw`` and pipelines that match (:func:`raw_copy_blocker`), stored chunks are
        copied as they are and ``dst`` joins ``report.datasets_raw`` when all of them went
        raw; otherwise blocks are decoded and re-encoded.
        """
        if raw and src.ndim and raw_copy_blocker(src, dst) is None:
            self._copy_raw(src, dst, report)
            return
        block = _block_shape(dst, src)
        bounds = [
            tuple((s.start, s.stop) for s in sel) for sel in iter_blocks(tuple(dst.shape), block)
        ]
        groups = [bounds[i : i + BLOCKS_PER_TASK] for i in range(0, len(bounds), BLOCKS_PER_TASK)]
        moved = sum(self._run_tasks(copy_blocks, src, dst, groups))
        report.add_chunks(transcoded=len(bounds), read=moved, written=moved)

    def _run_tasks(self, task: Any, src: Dataset, dst: Dataset, groups: Iterable[Any]) -> list:
        """Run ``task(src_url, dst_url, path, group, storage_options)`` per group; gather."""
        futures = [
            self.client.submit(
                task,
                src.store.url,
                dst.store.url,
                src.name,
                group,
                self.storage_options,
                pure=False,
            )
            for group in groups
        ]
        return list(self.client.gather(futures))

    def _copy_raw(self, src: Dataset, dst: Dataset, report: ConversionReport) -> None:
        raw = transcoded = read = written = 0
        for r, t, n_read, n_written in self._run_tasks(copy_chunks, src, dst, _chunk_groups(src)):
            raw, transcoded = raw + r, transcoded + t
            read, written = read + n_read, written + n_written
        report.add_chunks(raw=raw, transcoded=transcoded, read=read, written=written)
        if transcoded == 0:
            report.datasets_raw.append(src.name)

    def close(self) -> None:
        """Close the client if this object created it."""
        if self._own:
            self.client.close()


def _chunk_groups(src: Dataset) -> Iterator[list[tuple[int, ...]]]:
    """Indexes of the stored chunks of ``src`` in groups of about :data:`RAW_TASK_BYTES`.

    Only the chunk listing is read: chunk bytes load lazily and stay on the source. A chunk
    whose size is not known without reading it counts as its decoded size.
    """
    guess = math.prod(src.chunks or ()) * max(1, src.dtype.itemsize)
    group: list[tuple[int, ...]] = []
    size = 0
    for chunk in src.iter_stored_chunks():
        group.append(chunk.index)
        size += chunk.nbytes if chunk.nbytes >= 0 else guess
        if size >= RAW_TASK_BYTES or len(group) >= RAW_TASK_MAX_CHUNKS:
            yield group
            group, size = [], 0
    if group:
        yield group
