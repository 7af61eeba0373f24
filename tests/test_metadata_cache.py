"""The metadata block cache of remote HDF5: few requests, few bytes, never short data.

Unit tests drive :class:`MetadataBlockCache` with a fetcher over an in-memory object that
records every request; the end-to-end tests open files on moto's S3 server behind the
counting proxy and check values against h5py's read of the local file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import fsspec.caching
import h5py
import numpy as np
import pytest

import nwbstore
from nwbstore.backends._metadata_cache import CACHE_NAME, MetadataBlockCache
from nwbstore.errors import RemoteRangeError

BLOCK = 1024
DATA = bytes(np.random.default_rng(0).integers(0, 256, 20 * BLOCK + 100, dtype=np.uint8))


class Fetcher:
    """``fetcher(start, end)`` over :data:`DATA`, recording each request."""

    def __init__(self, data: bytes = DATA, barrier: threading.Barrier | None = None) -> None:
        self.data = data
        self.barrier = barrier
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        if self.barrier is not None:
            self.barrier.wait()  # returns only once every concurrent request is in flight
        return self.data[start:end]


def _cache(fetcher: Fetcher, max_blocks: int = 128) -> MetadataBlockCache:
    return MetadataBlockCache(BLOCK, fetcher, len(DATA), max_blocks=max_blocks)


def test_registered_as_an_fsspec_cache_type() -> None:
    assert fsspec.caching.caches[CACHE_NAME] is MetadataBlockCache


def test_a_small_read_fetches_its_block_once() -> None:
    fetcher = Fetcher()
    cache = _cache(fetcher)
    assert cache._fetch(100, 200) == DATA[100:200]
    assert cache._fetch(300, 400) == DATA[300:400]  # same block: no request
    assert fetcher.calls == [(0, BLOCK)]


def test_the_missing_blocks_of_one_read_come_in_one_request() -> None:
    fetcher = Fetcher()
    cache = _cache(fetcher)
    # a read across blocks 0 and 1, both missing: one request for both
    assert cache._fetch(BLOCK - 10, BLOCK + 10) == DATA[BLOCK - 10 : BLOCK + 10]
    assert fetcher.calls == [(0, 2 * BLOCK)]
    # across blocks 1 (cached) and 2: only block 2 is asked for
    assert cache._fetch(2 * BLOCK - 10, 2 * BLOCK + 10) == DATA[2 * BLOCK - 10 : 2 * BLOCK + 10]
    assert fetcher.calls[-1] == (2 * BLOCK, 3 * BLOCK)


def test_a_read_larger_than_a_block_is_exact_and_not_cached() -> None:
    fetcher = Fetcher()
    cache = _cache(fetcher)
    assert cache._fetch(10, 10 + 3 * BLOCK) == DATA[10 : 10 + 3 * BLOCK]
    assert fetcher.calls == [(10, 10 + 3 * BLOCK)]
    cache._fetch(20, 30)
    assert fetcher.calls[-1] == (0, BLOCK)  # the big read left nothing behind


def test_the_last_block_is_clipped_to_the_object() -> None:
    fetcher = Fetcher()
    cache = _cache(fetcher)
    end = len(DATA)
    assert cache._fetch(end - 50, end + 1000) == DATA[end - 50 :]
    assert fetcher.calls == [(20 * BLOCK, end)]
    assert cache._fetch(end, end + 10) == b""


def test_least_recently_used_blocks_are_dropped() -> None:
    fetcher = Fetcher()
    cache = _cache(fetcher, max_blocks=2)
    for block in (0, 1, 0, 2):  # block 1 is the least recently used when block 2 comes
        cache._fetch(block * BLOCK, block * BLOCK + 1)
    fetcher.calls.clear()
    cache._fetch(0, 1)
    cache._fetch(2 * BLOCK, 2 * BLOCK + 1)
    assert fetcher.calls == []
    cache._fetch(BLOCK, BLOCK + 1)
    assert fetcher.calls == [(BLOCK, 2 * BLOCK)]
    assert cache.nblocks == 2


def test_a_short_answer_raises_instead_of_returning_short_data() -> None:
    short = Fetcher(DATA[: 5 * BLOCK])  # the server holds less than the size it listed
    cache = _cache(short)
    assert cache._fetch(0, 10) == DATA[:10]
    with pytest.raises(RemoteRangeError, match="shorter than its listed size"):
        cache._fetch(6 * BLOCK, 6 * BLOCK + 10)


def test_prefetch_ends_runs_its_requests_concurrently() -> None:
    fetcher = Fetcher(barrier=threading.Barrier(2, timeout=10))  # fails unless both overlap
    cache = _cache(fetcher)
    cache.prefetch_ends()
    assert sorted(fetcher.calls) == [(0, BLOCK), (19 * BLOCK, len(DATA))]
    fetcher.barrier = None
    fetcher.calls.clear()
    assert cache._fetch(5, 50) == DATA[5:50]
    assert cache._fetch(len(DATA) - 10, len(DATA)) == DATA[-10:]
    assert fetcher.calls == []


def test_prefetch_skips_what_is_cached() -> None:
    fetcher = Fetcher()
    cache = _cache(fetcher)
    cache._fetch(0, 10)
    cache.prefetch([(0, 100), (3 * BLOCK, 4 * BLOCK)])
    assert fetcher.calls == [(0, BLOCK), (3 * BLOCK, 4 * BLOCK)]


# -- end to end on the loopback S3 server ---------------------------------------------------


def _big_file(path: Path) -> Path:
    """Metadata spread over a file whose bulk is chunked data (~16 MB)."""
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "metadata cache"
        for i in range(8):
            g = f.create_group(f"series_{i}")
            g.attrs["description"] = f"series {i}"
            g.create_dataset(
                "data", data=rng.integers(-1000, 1000, (250_000, 4), dtype=np.int16), chunks=True
            )
            g.create_dataset("timestamps", data=np.arange(10, dtype=np.float64))
    return path


def _open_and_walk(s3: Any, **extra: Any) -> tuple[int, dict[str, Any], np.ndarray]:
    s3.reset()
    options = {**s3.storage_options, **extra}
    with nwbstore.open(s3.url("big.h5"), storage_options=options, catalog=False) as store:
        walked: dict[str, dict[str, Any]] = {}
        store.root.visititems(lambda name, node: walked.update({name: dict(node.attrs)}))
        small = store.root["series_3/timestamps"][...]
    return int(s3.proxy.bytes_out), walked, small


@pytest.mark.s3
def test_a_cold_open_and_walk_reads_far_less_than_a_2mib_block_cache(
    counting_s3: Any, tmp_path: Path
) -> None:
    local = _big_file(tmp_path / "big.h5")
    counting_s3.filesystem().put_file(str(local), f"{counting_s3.bucket}/big.h5")
    sent, walked, small = _open_and_walk(counting_s3)
    # the same walk through fsspec's blockcache of 2 MiB blocks (the earlier default)
    before, walked_before, _ = _open_and_walk(
        counting_s3, default_cache_type="blockcache", default_block_size=2 * 2**20
    )
    assert local.stat().st_size > 15 * 2**20
    assert walked == walked_before
    assert sent < before / 2, f"{sent} bytes against {before} with 2 MiB blocks"
    assert sent < local.stat().st_size / 4
    with h5py.File(local, "r") as f:
        local_names: list[str] = []
        f.visit(local_names.append)
        assert sorted(walked) == sorted(local_names)
        assert walked["series_5"] == {"description": "series 5"}
        np.testing.assert_array_equal(small, f["series_3/timestamps"][...])
