"""The remote read path: selections of HDF5 datasets read as concurrent byte-range GETs.

:class:`RemoteChunkReader` reads a selection of one dataset without HDF5 (and its global
lock) on the hot path:

1. the chunks the selection touches are looked up in the dataset's
   :class:`~nwbstore.backends._chunk_index.ChunkIndex`;
2. their byte ranges are planned into requests (:func:`~nwbstore.backends._range_plan.
   plan_ranges`: neighbours a few KiB apart share a request; a request is capped at
   :func:`~nwbstore.backends._range_plan.spread_request_size`, 2-16 MiB, so that a big read
   is cut into about ``concurrency`` requests that transfer in parallel);
3. the requests run concurrently on fsspec's event loop, at most ``concurrency`` in flight.
   On S3 each is a ``GetObject`` with ``Range`` and ``IfMatch`` (the ETag seen at open), so a
   changed object fails with :class:`~nwbstore.errors.RemoteObjectChangedError` instead of
   mixing bytes; over HTTP(S) an ``If-Match`` header is sent when the server gave an ETag, and
   an answer that is not the range asked for raises :class:`~nwbstore.errors.RemoteRangeError`;
4. each chunk is decoded in a thread pool (the codecs release the GIL) by running the HDF5
   filter pipeline in reverse, honouring the chunk's filter mask, and copied into the output.
   Chunks never written read as the fill value.

Selections: integers, slices (any step), ``Ellipsis`` and one integer array (or list, or
1-d boolean mask) per axis, applied independently per axis (outer indexing, as xarray's
``OuterIndexer``). Anything else raises :class:`UnsupportedSelection` and the caller uses
h5py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from nwbstore.backends._chunk_decode import FletcherMismatch, pipeline_decoder, unsupported_filter
from nwbstore.backends._chunk_index import ChunkIndex
from nwbstore.backends._range_plan import (
    MAX_GAP,
    MAX_REQUEST,
    RangeRequest,
    plan_ranges,
    spread_request_size,
)
from nwbstore.errors import CorruptChunkError, RemoteObjectChangedError, RemoteRangeError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "MAX_REMEMBERED",
    "RemoteChunkReader",
    "SpanMemory",
    "UnsupportedSelection",
    "outer_selection",
    "unsupported_reason",
]

#: Range requests in flight at most, per read, unless the store is opened with another value.
DEFAULT_CONCURRENCY = 16

logger = logging.getLogger(__name__)

#: Fetched ranges up to this size are recorded in the open's catalog (values of small
#: datasets, index coordinates); bigger ones are bulk data and never kept.
MAX_REMEMBERED = 64 * 1024

#: ``place(request, data, member)``: decode chunk ``member`` of an answer into the output.
Place = Callable[[RangeRequest, bytes, int], None]


class SpanMemory(Protocol):
    """Byte spans of the object kept in memory (the open's metadata catalog)."""

    def cached(self, offset: int, size: int) -> bytes | None: ...

    def remember(self, offset: int, data: bytes) -> None: ...


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _decode_pool() -> ThreadPoolExecutor:
    """One shared pool for chunk decoding, a thread per core."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(
                max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="nwbstore-decode"
            )
        return _POOL


class UnsupportedSelection(TypeError):
    """A selection the remote reader does not handle (field names, ``np.newaxis``, ...)."""


def unsupported_reason(index: ChunkIndex) -> str | None:
    """Why ``index``'s dataset cannot be read by :class:`RemoteChunkReader`, or None."""
    nbytes = int(np.prod(index.chunks, dtype=np.int64)) * index.dtype.itemsize
    stage = unsupported_filter(index.filters, index.dtype.itemsize, nbytes)
    if stage is None:
        return None
    return (
        f"HDF5 filter {stage.id} ({stage.name}, cd_values {list(stage.cd_values)}) has no exact "
        "decoder in nwbstore (or its package, e.g. imagecodecs, is not installed)"
    )


def outer_selection(selection: Any, shape: Sequence[int]) -> tuple[list[np.ndarray], list[bool]]:
    """Per-axis int64 index arrays of ``selection``, and which axes an integer dropped.

    Raises
    ------
    IndexError
        For too many indices or an index out of bounds.
    UnsupportedSelection
        For anything but ints, slices, Ellipsis and 1-d integer/boolean arrays.
    """
    items = selection if isinstance(selection, tuple) else (selection,)
    ellipses = sum(1 for s in items if s is Ellipsis)
    if ellipses > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        at = next(i for i, s in enumerate(items) if s is Ellipsis)
        fill = len(shape) - (len(items) - 1)
        items = items[:at] + (slice(None),) * max(fill, 0) + items[at + 1 :]
    if len(items) > len(shape):
        raise IndexError(f"too many indices: {len(items)} for {len(shape)} dimensions")
    items = items + (slice(None),) * (len(shape) - len(items))
    axes: list[np.ndarray] = []
    dropped: list[bool] = []
    for axis, (item, n) in enumerate(zip(items, shape, strict=True)):
        if isinstance(item, slice):
            axes.append(np.arange(*item.indices(n), dtype=np.int64))
            dropped.append(False)
            continue
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            i = int(item)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
            axes.append(np.array([i % n], dtype=np.int64))
            dropped.append(True)
            continue
        if isinstance(item, (list, np.ndarray)):
            arr = np.asarray(item)
            if arr.ndim == 1 and arr.dtype == bool:
                if arr.size != n:
                    raise IndexError(f"boolean index of length {arr.size} on axis {axis} of {n}")
                axes.append(np.flatnonzero(arr).astype(np.int64))
                dropped.append(False)
                continue
            if arr.ndim == 1 and (arr.dtype.kind in "iu" or arr.size == 0):
                idx = arr.astype(np.int64)
                if idx.size and (idx.min() < -n or idx.max() >= n):
                    raise IndexError(f"index out of bounds for axis {axis} with size {n}")
                axes.append(np.where(idx < 0, idx + n, idx))
                dropped.append(False)
                continue
        raise UnsupportedSelection(f"selection item {item!r} on axis {axis}")
    return axes, dropped


def _as_slice(idx: np.ndarray) -> slice | np.ndarray:
    """A slice equal to the increasing run ``idx`` (step >= 1), else ``idx``."""
    if idx.size == 0:
        return slice(0, 0)
    if idx.size == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    step = int(idx[1] - idx[0])
    if step >= 1 and np.all(np.diff(idx) == step):
        return slice(int(idx[0]), int(idx[-1]) + 1, step)
    return idx


class RemoteChunkReader:
    """Read selections of one HDF5 dataset from byte ranges of a remote object.

    Parameters
    ----------
    fs
        The fsspec filesystem (``s3fs.S3FileSystem``, ``HTTPFileSystem``, or any other; an
        async one is used on its own event loop).
    path
        The object's path on ``fs`` (``bucket/key`` for S3, the URL for HTTP).
    index
        The dataset's chunk index.
    etag
        The object's ETag when the store was opened; requests are conditional on it.
    concurrency
        Requests in flight at most.
    url
        The URL named in errors (defaults to ``path``).
    spans
        The open's metadata catalog (:class:`~nwbstore.backends._catalog.CatalogFile`), or
        None: a range it holds is served from memory, and a range of at most
        :data:`MAX_REMEMBERED` bytes that had to be fetched (a small dataset's values, an
        index coordinate) is recorded in it, so a warm open reads it with no request.

    Raises
    ------
    ValueError
        If a filter of the dataset has no exact decoder (see :func:`unsupported_reason`).
    """

    def __init__(
        self,
        fs: Any,
        path: str,
        index: ChunkIndex,
        etag: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        *,
        url: str | None = None,
        max_gap: int = MAX_GAP,
        max_request: int = MAX_REQUEST,
        spans: SpanMemory | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r} must be a positive integer")
        self.fs = fs
        self.path = path
        self.index = index
        self.etag = etag
        self.concurrency = concurrency
        self.url = url or path
        self.max_gap = max_gap
        self.max_request = max_request
        self.spans = spans
        self._chunk_items = int(np.prod(index.chunks, dtype=np.int64))
        nbytes = self._chunk_items * index.dtype.itemsize
        reason = unsupported_reason(index)
        decoder = pipeline_decoder(index.filters, index.dtype.itemsize, nbytes)
        if reason is not None or decoder is None:
            raise ValueError(f"dataset {index.path!r} in {self.url}: {reason}")
        self._decode = decoder

    # -- reading ----------------------------------------------------------------------------

    def read(self, selection: Any = ()) -> Any:
        """Return ``dataset[selection]`` as h5py would (a numpy array, or a numpy scalar when
        every axis is indexed by an integer).

        Raises
        ------
        IndexError
            For an index out of bounds.
        UnsupportedSelection
            For a selection other than ints, slices, Ellipsis and 1-d integer arrays.
        RemoteObjectChangedError
            If the object's ETag no longer matches the one seen at open.
        RemoteRangeError
            If the server did not answer a range request with exactly that range.
        CorruptChunkError
            If a chunk does not decode (bad data, checksum mismatch, wrong size).
        """
        index = self.index
        axes, dropped = outer_selection(selection, index.shape)
        out_shape = tuple(len(a) for a in axes)
        out = np.empty(out_shape, dtype=index.dtype)
        out[...] = index.fill_value
        if out.size and index.nchunks:
            self._read_into(out, axes)
        kept = tuple(n for n, d in zip(out_shape, dropped, strict=True) if not d)
        result = out.reshape(kept)
        scalar = not kept and not (
            selection is Ellipsis
            or (isinstance(selection, tuple) and any(s is Ellipsis for s in selection))
        )
        return result[()] if scalar else result

    def _read_into(self, out: np.ndarray, axes: list[np.ndarray]) -> None:
        index = self.index
        per_axis: list[list[tuple[int, Any, Any]]] = []
        for idx, c in zip(axes, index.chunks, strict=True):
            which = idx // c
            order = np.argsort(which, kind="stable")  # positions grouped by chunk, in order
            groups = []
            for pos in np.split(order, np.flatnonzero(np.diff(which[order])) + 1):
                if not pos.size:
                    continue
                k = int(which[pos[0]])
                groups.append((k, _as_slice(pos), _as_slice(idx[pos] - k * c)))
            per_axis.append(groups)
        combos = list(itertools.product(*per_axis))
        coords = np.array([[g[0] for g in combo] for combo in combos], dtype=np.int64).reshape(
            len(combos), len(index.shape)
        )
        found = index.lookup(coords)
        wanted = [
            (combo, int(p)) for combo, p in zip(combos, found.tolist(), strict=True) if p >= 0
        ]
        if not wanted:
            return
        positions = np.array([p for _, p in wanted], dtype=np.int64)
        sizes = index.sizes[positions]
        plan = plan_ranges(
            index.offsets[positions],
            sizes,
            max_gap=self.max_gap,
            max_request=spread_request_size(
                int(sizes.sum()), self.concurrency, max_request=self.max_request
            ),
        )

        def place(request: RangeRequest, data: bytes, member: int) -> None:
            # chunks write disjoint parts of ``out``: members decode in parallel threads
            combo, p = wanted[member]
            lo = int(index.offsets[p]) - request.start
            raw = memoryview(data)[lo : lo + int(index.sizes[p])]
            chunk = self._decode_chunk(raw, p, combo)
            out_ix = tuple(g[1] for g in combo)
            local_ix = tuple(g[2] for g in combo)
            out[_outer(out_ix)] = chunk[_outer(local_ix)]

        self._fetch(plan, place)

    def _decode_chunk(self, raw: memoryview, p: int, combo: Sequence[tuple[int, Any, Any]]) -> Any:
        index = self.index
        where = f"chunk {tuple(g[0] for g in combo)} of dataset {index.path!r} in {self.url}"
        try:
            data = self._decode(raw, int(index.masks[p]))
        except FletcherMismatch:
            raise CorruptChunkError(
                f"{where}: its Fletcher-32 checksum does not match (the stored bytes are "
                "damaged); copy the file again from its origin"
            ) from None
        except Exception as err:
            raise CorruptChunkError(
                f"{where} does not decode: {type(err).__name__}: {err}"
            ) from None
        shape = self._chunk_shape(p)
        expected = int(np.prod(shape, dtype=np.int64)) * index.dtype.itemsize
        if len(data) != expected:
            raise CorruptChunkError(
                f"{where} decodes to {len(data)} bytes, not the {expected} of its shape {shape}"
            )
        return np.frombuffer(data, dtype=index.dtype).reshape(shape)

    def _chunk_shape(self, p: int) -> tuple[int, ...]:
        index = self.index
        if not index.contiguous:
            return index.chunks
        start = index.coords[p] * np.asarray(index.chunks, dtype=np.int64)
        return tuple(
            int(min(c, s - o)) for c, s, o in zip(index.chunks, index.shape, start, strict=True)
        )

    # -- fetching ---------------------------------------------------------------------------

    def _fetch(self, plan: list[RangeRequest], place: Place) -> None:
        """Run ``plan`` with at most ``concurrency`` requests in flight; ``place`` each chunk
        of an answer (in the decode pool, one task per chunk) as the answer arrives."""
        if self.spans is not None:
            plan = self._from_memory(plan, place)
            if not plan:
                return
        loop = getattr(self.fs, "loop", None)
        if loop is None or not getattr(self.fs, "async_impl", False):
            self._fetch_threads(plan, place)
            return
        from fsspec.asyn import sync

        sync(loop, self._fetch_async, plan, place)

    def _from_memory(self, plan: list[RangeRequest], place: Place) -> list[RangeRequest]:
        """Place the requests ``self.spans`` holds; return the ones still to fetch."""
        assert self.spans is not None
        remaining = []
        for request in plan:
            data = self.spans.cached(request.start, request.end - request.start)
            if data is None:
                remaining.append(request)
                continue
            for member in request.members:
                place(request, data, member)
        return remaining

    def _remember(self, start: int, data: bytes) -> None:
        if self.spans is not None and len(data) <= MAX_REMEMBERED:
            self.spans.remember(start, data)

    async def _fetch_async(self, plan: list[RangeRequest], place: Place) -> None:
        loop = asyncio.get_running_loop()
        pool = _decode_pool()
        slots = asyncio.Semaphore(self.concurrency)

        async def one(request: RangeRequest) -> None:
            async with slots:
                data = await self._retried_range(request.start, request.end)
            self._remember(request.start, data)
            await asyncio.gather(
                *(loop.run_in_executor(pool, place, request, data, m) for m in request.members)
            )

        tasks = [asyncio.ensure_future(one(r)) for r in plan]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    def _fetch_threads(self, plan: list[RangeRequest], place: Place) -> None:
        def one(request: RangeRequest) -> None:
            data = self.fs.cat_file(self.path, start=request.start, end=request.end)
            self._check_length(request.start, request.end, len(data), None)
            self._remember(request.start, data)
            for member in request.members:
                place(request, data, member)

        with ThreadPoolExecutor(max_workers=self.concurrency) as ex:
            for future in [ex.submit(one, r) for r in plan]:
                future.result()

    async def _retried_range(self, start: int, end: int) -> bytes:
        """One range GET under nwbstore's retry policy, with nwbstore's errors.

        Transient faults (503, resets, timeouts) are retried with backoff; a changed object, a
        refused range, a 403 or an unreachable endpoint fail at once, named.
        """
        from nwbstore.backends._remote import translate_s3_error, unreachable
        from nwbstore.backends._s3_retries import RetryPolicy, retry_async

        protocol = self.url.partition("://")[0] or "s3"
        options = {"endpoint_url": getattr(self.fs, "endpoint_url", None)}
        try:
            return await retry_async(
                lambda: self._get_range(start, end),
                what=f"GET {self.url} bytes {start}-{end - 1}",
                policy=RetryPolicy.from_env(),
                on_unreachable=lambda err: unreachable(self.url, protocol, options, err),
            )
        except (RemoteObjectChangedError, RemoteRangeError, CorruptChunkError):
            raise
        except Exception as err:
            translated = translate_s3_error(self.url, protocol, options, err)
            if translated is None or translated is err:
                raise
            raise translated from err

    async def _get_range(self, start: int, end: int) -> bytes:
        if hasattr(self.fs, "_call_s3"):
            return await self._get_s3(start, end)
        if hasattr(self.fs, "set_session") and str(self.path).startswith(("http://", "https://")):
            return await self._get_http(start, end)
        data = bytes(await self.fs._cat_file(self.path, start=start, end=end))
        self._check_length(start, end, len(data), None)
        return data

    async def _get_s3(self, start: int, end: int) -> bytes:
        fs = self.fs
        bucket, key, version = fs.split_path(self.path)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes={start}-{end - 1}"}
        if version:
            kwargs["VersionId"] = version
        if self.etag:
            kwargs["IfMatch"] = self.etag
        try:
            resp = await fs._call_s3("get_object", **kwargs, **getattr(fs, "req_kw", {}))
        except OSError as err:
            if _precondition_failed(err):
                raise RemoteObjectChangedError(
                    self.url, self.etag, await self._current_etag()
                ) from None
            raise
        body = resp["Body"]
        try:
            data = bytes(await body.read())
        finally:
            body.close()
        new = resp.get("ETag")
        if self.etag and new and new.strip('"') != self.etag.strip('"'):
            raise RemoteObjectChangedError(self.url, self.etag, new)
        self._check_length(start, end, len(data), resp.get("ContentRange"))
        return data

    async def _current_etag(self) -> str | None:
        try:
            bucket, key, _ = self.fs.split_path(self.path)
            head = await self.fs._call_s3("head_object", Bucket=bucket, Key=key)
            return str(head.get("ETag")) if head.get("ETag") else None
        except Exception:  # the error being reported matters more than this detail
            return None

    async def _get_http(self, start: int, end: int) -> bytes:
        fs = self.fs
        session = await fs.set_session()
        headers = dict(fs.kwargs.get("headers") or {})
        headers["Range"] = f"bytes={start}-{end - 1}"
        if self.etag:
            headers["If-Match"] = self.etag
        kwargs = {k: v for k, v in fs.kwargs.items() if k != "headers"}
        async with session.get(fs.encode_url(self.path), headers=headers, **kwargs) as resp:
            if resp.status == 412:
                raise RemoteObjectChangedError(self.url, self.etag, resp.headers.get("ETag"))
            if resp.status == 404:
                raise FileNotFoundError(self.url)
            resp.raise_for_status()
            data = bytes(await resp.read())
            new = resp.headers.get("ETag")
            if self.etag and new and new.strip('"') != self.etag.strip('"'):
                raise RemoteObjectChangedError(self.url, self.etag, new)
            if resp.status != 206 and not (start == 0 and len(data) == end):
                raise RemoteRangeError(
                    f"{self.url}: the server ignored the byte range {start}-{end - 1} "
                    f"(status {resp.status}, {len(data)} bytes); it cannot serve chunk reads. "
                    "Download the file, or serve it from a server that supports Range requests"
                )
        self._check_length(start, end, len(data), None)
        return data

    def _check_length(self, start: int, end: int, got: int, content_range: str | None) -> None:
        if got != end - start:
            detail = f", Content-Range {content_range}" if content_range else ""
            raise RemoteRangeError(
                f"{self.url}: asked for bytes {start}-{end - 1} ({end - start} bytes) and got "
                f"{got}{detail}: the object is shorter than its chunk index says (truncated?) "
                "or the server does not honour Range requests"
            )


def _outer(ix: tuple[Any, ...]) -> tuple[Any, ...]:
    """``ix`` for outer indexing: slices stay, index arrays are broadcast like ``np.ix_``."""
    if all(isinstance(i, slice) for i in ix):
        return ix
    arrays = [np.arange(i.start, i.stop, i.step or 1) if isinstance(i, slice) else i for i in ix]
    return np.ix_(*arrays)


def _precondition_failed(err: BaseException) -> bool:
    """True for what s3fs raises on a 412 (``PreconditionFailed``) answer."""
    cause = err.__cause__ or err.__context__
    response = getattr(cause, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code", ""))
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "412") or status == 412 or "Precondition" in str(err)
