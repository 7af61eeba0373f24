"""The block cache h5py's metadata reads of a remote HDF5 file go through.

h5py reads a file's metadata as many small reads (object headers, B-tree nodes, heaps) at
offsets spread over the file. fsspec's ``blockcache`` answers each miss with one request of
a whole block; with 2 MiB blocks a cold open of a pynwb file fetches ~6 MB for ~1 MB of
metadata, with small blocks it needs a request per block. :class:`MetadataBlockCache`
(fsspec cache type ``"nwbstore-metadata"``) keeps small blocks (256 KiB by default) and:

- fetches the missing blocks of one read in **one** request (blocks between two missing ones
  are fetched again rather than split the read into two requests);
- answers a read larger than a block with exactly its bytes, not cached (h5py reading a
  contiguous dataset, or a big chunk through h5py, must not evict the metadata);
- keeps at most :data:`MAX_BLOCKS` blocks, least recently used dropped first;
- checks every answer's length: a server that sends fewer bytes than the range it was asked
  for (a truncated object, a proxy cutting the body) raises
  :class:`~nwbstore.errors.RemoteRangeError` instead of handing h5py short data;
- :meth:`~MetadataBlockCache.prefetch` fetches several ranges concurrently (one round), and
  :meth:`~MetadataBlockCache.prefetch_ends` the first block and the last two, where the
  superblock and the metadata written at close live: h5py's first reads are then answered
  from memory on a cold open.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import fsspec.caching

from nwbstore.errors import RemoteRangeError

__all__ = [
    "CACHE_NAME",
    "DEFAULT_BLOCK_SIZE",
    "MAX_BLOCKS",
    "MetadataBlockCache",
    "prefetch_metadata",
]

logger = logging.getLogger(__name__)

#: The fsspec ``cache_type`` name the cache is registered under.
CACHE_NAME = "nwbstore-metadata"
#: Block size of a remote HDF5 file's metadata reads (256 KiB).
DEFAULT_BLOCK_SIZE = 256 * 2**10
#: Blocks kept (256 KiB blocks: 32 MiB at most).
MAX_BLOCKS = 128
#: Blocks at the end of the file :meth:`MetadataBlockCache.prefetch_ends` fetches.
END_BLOCKS = 2

Fetcher = Callable[[int, int], bytes]


class MetadataBlockCache(fsspec.caching.BaseCache):
    """An LRU cache of small blocks; a read's missing blocks come in one request.

    Parameters
    ----------
    blocksize
        Block size in bytes.
    fetcher
        ``fetcher(start, end)`` returns the bytes ``[start, end)`` of the object.
    size
        Size of the object in bytes.
    max_blocks
        Blocks kept before the least recently used is dropped.
    """

    name = CACHE_NAME

    def __init__(
        self, blocksize: int, fetcher: Fetcher, size: int, max_blocks: int = MAX_BLOCKS
    ) -> None:
        super().__init__(blocksize, fetcher, size)
        if blocksize < 1 or max_blocks < 1:
            raise ValueError(f"blocksize={blocksize} and max_blocks={max_blocks} must be >= 1")
        self.max_blocks = max_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        #: Requests this cache sent (reads and prefetches).
        self.requests = 0

    # -- fsspec's cache interface ---------------------------------------------------------

    def _fetch(self, start: int | None, stop: int | None) -> bytes:
        start = 0 if start is None else max(start, 0)
        stop = self.size if stop is None else min(stop, self.size)
        if start >= stop:
            return b""
        if stop - start > self.blocksize:  # a data read: exact, and kept out of the cache
            self.miss_count += 1
            return self._get(start, stop)
        first, last = start // self.blocksize, (stop - 1) // self.blocksize
        with self._lock:
            missing = [b for b in range(first, last + 1) if b not in self._blocks]
        if missing:
            self.miss_count += 1
            self._fetch_blocks(missing[0], missing[-1])
        else:
            self.hit_count += 1
        with self._lock:
            parts = []
            for b in range(first, last + 1):
                block = self._blocks.get(b)
                if block is None:  # evicted meanwhile by another thread's read: refetch
                    block = self._get(*self._block_range(b))
                else:
                    self._blocks.move_to_end(b)
                parts.append(block)
        data = b"".join(parts)
        lo = start - first * self.blocksize
        return data[lo : lo + (stop - start)]

    # -- prefetching ----------------------------------------------------------------------

    def prefetch(self, ranges: Sequence[tuple[int, int]]) -> None:
        """Fetch the blocks of several byte ranges ``[start, end)`` concurrently.

        Each range is one request for its missing blocks; the requests run in parallel, so
        they cost one round trip together.
        """
        spans = []
        for start, stop in ranges:
            stop = min(stop, self.size)
            if start < stop:
                spans.append((max(start, 0) // self.blocksize, (stop - 1) // self.blocksize))
        with self._lock:
            todo = [(a, b) for a, b in spans if any(k not in self._blocks for k in range(a, b + 1))]
        if len(todo) == 1:
            self._fetch_blocks(*todo[0])
        elif todo:
            with ThreadPoolExecutor(max_workers=len(todo)) as pool:
                for future in [pool.submit(self._fetch_blocks, a, b) for a, b in todo]:
                    future.result()

    def prefetch_ends(self) -> None:
        """Fetch the first block and the last :data:`END_BLOCKS` blocks in one round."""
        last = (self.size - 1) // self.blocksize
        tail = max(last - END_BLOCKS + 1, 1) * self.blocksize
        self.prefetch([(0, self.blocksize), (tail, self.size)])

    # -- internals ------------------------------------------------------------------------

    def _block_range(self, block: int) -> tuple[int, int]:
        start = block * self.blocksize
        return start, min(start + self.blocksize, self.size)

    def _fetch_blocks(self, first: int, last: int) -> None:
        start, stop = first * self.blocksize, self._block_range(last)[1]
        data = self._get(start, stop)
        with self._lock:
            for b in range(first, last + 1):
                lo = (b - first) * self.blocksize
                self._blocks[b] = data[lo : lo + self.blocksize]
                self._blocks.move_to_end(b)
            while len(self._blocks) > self.max_blocks:
                self._blocks.popitem(last=False)
            self.nblocks = len(self._blocks)

    def _get(self, start: int, stop: int) -> bytes:
        self.requests += 1
        self.total_requested_bytes += stop - start
        data = self.fetcher(start, stop)
        if len(data) != stop - start:
            raise RemoteRangeError(
                f"asked for bytes {start}-{stop - 1} of a {self.size}-byte object and got "
                f"{len(data)} bytes: the object is shorter than its listed size (truncated "
                "or replaced while open) or a proxy cut the answer. Reopen the file; if this "
                "repeats, download it and check it"
            )
        return bytes(data)


def prefetch_metadata(fileobj: object) -> None:
    """Prefetch the ends of a remote file opened with the metadata cache (else nothing).

    Errors are only logged: h5py's own reads will meet (and report) them.
    """
    cache = getattr(fileobj, "cache", None)
    if not isinstance(cache, MetadataBlockCache):
        return
    try:
        cache.prefetch_ends()
    except Exception as err:
        logger.debug("metadata prefetch failed: %s", err)


fsspec.caching.register_cache(MetadataBlockCache, clobber=True)
