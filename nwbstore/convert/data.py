"""Moving a dataset's values: stored chunks copied raw where the pipelines match, otherwise
decoded and re-encoded block by block. Memory is bounded by the blocks in flight."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

import numpy as np

from nwbstore.codecs import row_by_name
from nwbstore.convert.landed import ChunkFilter, block_landed
from nwbstore.convert.report import ConversionReport
from nwbstore.dtypes import is_reference_dtype, is_string_dtype
from nwbstore.errors import CorruptChunkError
from nwbstore.nodes import Dataset, StoredChunk

__all__ = ["Checkpoint", "copy_stored_chunks", "copy_values", "iter_blocks", "raw_copy_blocker"]

#: Target size of one decoded block in a transcode.
BLOCK_BYTES = 8 * 2**20  # 16 MiB gave the same speed and ~70 MB more peak RSS (benchmarks/)


def _has_objects(dtype: np.dtype[Any]) -> bool:
    if dtype.names is not None:
        return any(_has_objects(dtype[n]) for n in dtype.names)
    return dtype.kind == "O" or is_string_dtype(dtype) or is_reference_dtype(dtype)


def raw_copy_blocker(src: Dataset, dst: Dataset) -> str | None:
    """Return why stored chunks of ``src`` cannot be copied into ``dst`` as they are, or None."""
    if not (src.store.capabilities.raw_chunks and dst.store.capabilities.raw_chunks):
        return "a backend cannot move stored chunks"
    if _has_objects(src.dtype):
        return "variable-length or reference values are pointers into the file"
    if src.dtype != dst.dtype:
        return f"dtype changes ({src.dtype} -> {dst.dtype})"
    s, d = src.settings, dst.settings
    if s.chunks is None or d.chunks is None:
        return "contiguous layout"
    if tuple(s.chunks) != tuple(d.chunks):
        return f"chunk shape changes ({s.chunks} -> {d.chunks})"
    if d.shards is not None or s.shards is not None:
        return "chunks are inside shards"
    if s.pipeline != d.pipeline:
        return "the codec pipelines differ"
    for spec in s.pipeline:
        row = row_by_name(spec.name)
        if row is None or not row.raw_copy:
            return f"codec {spec.name!r} has no byte-identical counterpart"
    return None


def _block_shape(dst: Dataset, src: Dataset) -> tuple[int, ...]:
    """Blocks aligned to the destination chunks (or the source's), grown to ~BLOCK_BYTES."""
    shape = dst.shape
    base = dst.chunks or src.chunks or tuple(max(1, s) for s in shape)
    base = tuple(max(1, min(b, max(s, 1))) for b, s in zip(base, shape, strict=True))
    itemsize = max(1, src.dtype.itemsize)
    per_block = math.prod(base) * itemsize
    if not shape:
        return ()
    grow = max(1, BLOCK_BYTES // max(1, per_block))
    first = min(max(shape[0], 1), base[0] * grow)
    return (first, *base[1:])


def iter_blocks(shape: tuple[int, ...], block: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """Yield selections that tile ``shape`` with blocks of ``block`` (edges truncated)."""
    if any(s == 0 for s in shape):
        return
    ranges = [range(0, s, b) for s, b in zip(shape, block, strict=True)]
    for starts in itertools.product(*ranges):
        yield tuple(
            slice(st, min(st + b, s)) for st, b, s in zip(starts, block, shape, strict=True)
        )


class Checkpoint(Protocol):
    """Where a resumable copy records and finds its finished prefix (see ``convert.marker``)."""

    def resume_point(self, path: str, kind: str) -> int:
        """How many leading tasks of ``path`` copied as ``kind`` are already done."""
        ...

    def advance(self, path: str, kind: str, done: int, nbytes: int, *, force: bool = False) -> None:
        """Note that the first ``done`` tasks are finished (``nbytes`` more since last call)."""
        ...


#: Called with (tasks done in order from the start, bytes they added, force a save).
PrefixCallback = Callable[[int, int, bool], None]


class _Prefix:
    """The contiguous finished prefix of tasks that finish out of order."""

    def __init__(self, on_prefix: PrefixCallback | None) -> None:
        self.on_prefix = on_prefix
        self.count = 0
        self.nbytes = 0
        self._finished: dict[int, int] = {}

    def add(self, index: int, nbytes: int | None) -> None:
        self._finished[index] = nbytes or 0
        before = self.count
        while self.count in self._finished:
            self.nbytes += self._finished.pop(self.count)
            self.count += 1
        if self.on_prefix is not None and self.count > before:
            added, self.nbytes = self.nbytes, 0
            self.on_prefix(self.count, added, False)

    def save_now(self) -> None:
        """Record the prefix reached so far (on an interruption); never masks the error."""
        if self.on_prefix is None or self.count == 0:
            return
        # the original error matters more than a missed checkpoint
        with contextlib.suppress(Exception):
            self.on_prefix(self.count, self.nbytes, True)


def _run(
    tasks: Iterable[Callable[[], int | None]],
    jobs: int,
    on_prefix: PrefixCallback | None = None,
) -> None:
    """Run tasks on ``jobs`` threads with at most ``2 * jobs`` in flight (bounded memory).

    Each task may return the bytes it moved. ``on_prefix`` hears how many tasks, counted in
    order from the first, are finished -- also when the run is interrupted.
    """
    prefix = _Prefix(on_prefix)
    if jobs <= 1:
        try:
            for index, task in enumerate(tasks):
                prefix.add(index, task())
        except BaseException:
            prefix.save_now()
            raise
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending: dict[Future[int | None], int] = {}

        def collect(finished: Iterable[Future[int | None]]) -> None:
            for fut in finished:
                index = pending.pop(fut)
                prefix.add(index, fut.result())

        try:
            for index, task in enumerate(tasks):
                pending[pool.submit(task)] = index
                if len(pending) >= 2 * jobs:
                    collect(wait(pending, return_when=FIRST_COMPLETED).done)
            collect(wait(pending).done)
        except BaseException:
            # let the few queued tasks finish (at most 2 * jobs): cancelling one that a worker
            # has taken but not started would cut the finished prefix short
            wait(pending)
            for fut, index in list(pending.items()):
                if not fut.cancelled() and fut.exception() is None:
                    prefix.add(index, fut.result())
            prefix.save_now()
            raise


def _prefix_recorder(
    checkpoint: Checkpoint | None, path: str, kind: str, skipped: int
) -> PrefixCallback | None:
    if checkpoint is None:
        return None

    def record(done: int, nbytes: int, force: bool) -> None:
        checkpoint.advance(path, kind, skipped + done, nbytes, force=force)

    return record


def _corrupt_chunk_error(src: Dataset, sel: tuple[slice, ...], err: OSError) -> CorruptChunkError:
    """Find the first unreadable chunk inside ``sel`` and name it with the dataset."""
    where = f"dataset {src.name!r} in {src.store.url}"
    chunks = src.chunks
    if chunks is None:
        return CorruptChunkError(f"cannot read {where} (contiguous): {err}")
    grid = [range(s.start // c, -(-s.stop // c)) for s, c in zip(sel, chunks, strict=True)]
    for index in itertools.product(*grid):
        try:
            src[_chunk_selection(index, chunks, src.shape)]
        except OSError as chunk_err:
            return CorruptChunkError(f"cannot read chunk index {index} of {where}: {chunk_err}")
    return CorruptChunkError(f"cannot read {where}: {err}")


def _chunk_selection(index: tuple[int, ...], chunks: tuple[int, ...], shape: tuple[int, ...]):
    return tuple(
        slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, chunks, shape, strict=True)
    )


def copy_values(
    src: Dataset,
    dst: Dataset,
    report: ConversionReport,
    *,
    jobs: int = 1,
    raw: bool = True,
    on_progress: Callable[[int], None] | None = None,
    value_map: Callable[[Any], Any] | None = None,
    first_n: int | None = None,
    checkpoint: Checkpoint | None = None,
    landed: ChunkFilter | None = None,
) -> bool:
    """Copy all values of ``src`` into ``dst`` (same shape). Returns True if entirely raw.

    Parameters
    ----------
    jobs
        Worker threads.
    raw
        Allow copying stored chunks without decoding when :func:`raw_copy_blocker` allows.
    on_progress
        Called with the decoded bytes of each chunk/block written (destination bytes).
    value_map
        Applied to each decoded block before writing (used for reference translation).
    first_n
        Copy only the first ``first_n`` entries along axis 0 (``dst`` has that length).
    checkpoint
        Records the finished prefix of the in-order chunk/block sequence under ``dst.name``
        and supplies where an interrupted copy stopped: those chunks/blocks are skipped.
    landed
        Which destination chunks are stored already (a resume on object storage): a stored
        chunk, or a block all of whose chunks, is not copied again (it still counts as done).
    """
    tick = on_progress or (lambda _n: None)
    if src.ndim == 0:
        value = src[()]
        dst[()] = value_map(value) if value_map else value
        report.add_chunks(transcoded=1, read=src.dtype.itemsize, written=src.dtype.itemsize)
        tick(src.dtype.itemsize)
        return False
    shape = dst.shape
    if raw and first_n is None and value_map is None and raw_copy_blocker(src, dst) is None:
        kind = "chunks"
        skip = checkpoint.resume_point(dst.name, kind) if checkpoint is not None else 0
        return copy_stored_chunks(
            src,
            dst,
            itertools.islice(src.iter_stored_chunks(), skip, None),
            report,
            jobs=jobs,
            tick=tick,
            on_prefix=_prefix_recorder(checkpoint, dst.name, kind, skip),
            landed=landed,
        )

    block = _block_shape(dst, src)
    kind = "blocks:" + "x".join(str(b) for b in block)
    skip = checkpoint.resume_point(dst.name, kind) if checkpoint is not None else 0
    itemsize = max(1, src.dtype.itemsize)

    dst_chunks = dst.chunks

    def make(sel: tuple[slice, ...]) -> Callable[[], int]:
        def task() -> int:
            n = int(np.prod([s.stop - s.start for s in sel])) * itemsize
            if landed is not None and dst_chunks and block_landed(landed, dst_chunks, sel):
                report.add_chunks(skipped=1)
                tick(n)
                return 0
            try:
                values = src[sel]
            except OSError as err:
                raise _corrupt_chunk_error(src, sel, err) from err
            if value_map is not None:
                values = value_map(values)
            dst[sel] = values
            report.add_chunks(transcoded=1, read=n, written=n)
            tick(n)
            return n

        return task

    blocks = itertools.islice(iter_blocks(shape, block), skip, None)
    _run((make(sel) for sel in blocks), jobs, _prefix_recorder(checkpoint, dst.name, kind, skip))
    return False


def copy_stored_chunks(
    src: Dataset,
    dst: Dataset,
    chunks: Iterable[StoredChunk],
    report: ConversionReport,
    *,
    jobs: int = 1,
    tick: Callable[[int], None] | None = None,
    on_prefix: PrefixCallback | None = None,
    landed: ChunkFilter | None = None,
) -> bool:
    """Copy the stored ``chunks`` of ``src`` into ``dst``; return True if every one went raw.

    ``dst`` must pass :func:`raw_copy_blocker` against ``src``. A chunk whose HDF5 filter
    mask is set (a filter was skipped for it) is decoded and re-encoded instead, since Zarr
    has no per-chunk mask. Counts and bytes go to ``report``; ``on_prefix`` hears how many
    of ``chunks``, in order, are finished. A chunk ``landed`` says is stored already is
    not read nor written (it counts as finished).
    """
    grid = tuple(src.chunks or ())
    shape = src.shape
    tick = tick or (lambda _n: None)
    all_raw = True

    def decoded_bytes(index: tuple[int, ...]) -> int:  # what the progress bar counts
        sel = _chunk_selection(index, grid, shape)
        return math.prod(s.stop - s.start for s in sel) * src.dtype.itemsize

    def make(chunk: StoredChunk) -> Callable[[], int]:
        def task() -> int:
            if landed is not None and landed(chunk.index):
                report.add_chunks(skipped=1)
                tick(decoded_bytes(chunk.index))
                return 0
            if chunk.filter_mask:
                sel = _chunk_selection(chunk.index, grid, shape)
                try:
                    dst[sel] = src[sel]
                except OSError as err:
                    raise CorruptChunkError(
                        f"cannot read chunk {chunk.index} of {src.name!r} in {src.store.url}: {err}"
                    ) from err
                report.add_chunks(transcoded=1, read=chunk.nbytes, written=chunk.nbytes)
                tick(decoded_bytes(chunk.index))
                return chunk.nbytes
            stored = chunk
            try:
                if stored.nbytes < 0:  # size unknown until read (remote Zarr): read it once
                    stored = StoredChunk(chunk.index, chunk.data, chunk.filter_mask)
                dst.copy_stored_chunk(stored)
            except CorruptChunkError as err:
                raise CorruptChunkError(
                    f"cannot copy stored chunk {chunk.index} of {src.name!r} in "
                    f"{src.store.url}: {err}"
                ) from err
            report.add_chunks(raw=1, read=stored.nbytes, written=stored.nbytes)
            tick(decoded_bytes(chunk.index))
            return stored.nbytes

        return task

    def tasks() -> Iterator[Callable[[], int]]:
        nonlocal all_raw
        for chunk in chunks:
            all_raw = all_raw and not chunk.filter_mask
            yield make(chunk)

    _run(tasks(), jobs, on_prefix)
    return all_raw
