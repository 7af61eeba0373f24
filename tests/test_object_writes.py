"""The object-storage write path: every object written once, no probes, bounded uploads.

Request budgets are counted by the proxy in front of the loopback S3 server, and what was
written is read back with zarr and s3fs directly.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import FsspecStore, MemoryStore

import nwbstore
from nwbstore.backends._object_writes import WRITER_ATTR, ObjectWriteStore
from nwbstore.backends._zarr_storage import _WriteCheckedFsspecStore
from nwbstore.errors import StoreExistsError, WriteFailedError

N_GROUPS = 50
N_ARRAYS = 50


def _s3_store(url: str, counting_s3: Any) -> Any:
    """The storage layer nwbstore puts under the write path (retries, conditional create)."""
    inner = _WriteCheckedFsspecStore.from_url(
        url, storage_options=counting_s3.storage_options, read_only=False
    )
    inner.configure_retries()
    return inner


def _keys(counting_s3: Any) -> Counter[str]:
    """How many PUTs each key received."""
    prefix = f"/{counting_s3.bucket}/"
    return Counter(
        r.path.split("?")[0].removeprefix(prefix)
        for r in counting_s3.proxy.requests
        if r.kind == "PUT"
    )


def _stored_keys(counting_s3: Any, root: str) -> set[str]:
    fs = counting_s3.filesystem()
    return {
        k.removeprefix(f"{counting_s3.bucket}/") for k in fs.find(f"{counting_s3.bucket}/{root}")
    }


def _write_hierarchy(store: nwbstore.Store) -> None:
    for i in range(N_GROUPS):
        group = store.root.create_group(f"g{i}")
        group.attrs["index"] = i
    for i in range(N_ARRAYS):
        ds = store.root[f"g{i}"].create_dataset(
            "data", shape=(200,), dtype="int32", settings=nwbstore.DatasetSettings(chunks=(100,))
        )
        ds[:] = np.arange(200, dtype="int32") + i


def test_fifty_groups_and_arrays_cost_one_put_per_object(counting_s3: Any) -> None:
    url = counting_s3.url("budget.zarr")
    store = nwbstore.open(url, "w", storage_options=counting_s3.storage_options)
    opened = counting_s3.counts
    assert opened["PUT"] == 1  # the exclusive create of the root
    # one listing of the prefix (s3fs lists the parent too when it is empty), the bucket check
    assert sum(opened[k] for k in ("HEAD", "GET", "LIST")) <= 3
    counting_s3.reset()
    _write_hierarchy(store)
    store.close()

    counts = counting_s3.counts
    objects = _stored_keys(counting_s3, "budget.zarr")
    # 50 group documents, 50 array documents, 100 chunks, the root
    assert len(objects) == N_GROUPS + N_ARRAYS + 2 * N_ARRAYS + 1
    assert counts["HEAD"] == counts["GET"] == counts["LIST"] == 0, counts
    assert counting_s3.total <= len(objects) + 5, counts
    puts = _keys(counting_s3)
    assert max(puts.values()) == 1  # every object once (the root's first PUT was at open)

    group = zarr.open_group(
        store=FsspecStore.from_url(url, storage_options=counting_s3.storage_options), mode="r"
    )
    assert group["g7"].attrs["index"] == 7
    np.testing.assert_array_equal(group["g7/data"][:], np.arange(200, dtype="int32") + 7)
    root = json.loads(
        counting_s3.filesystem().cat_file(f"{counting_s3.bucket}/budget.zarr/zarr.json")
    )
    assert "g49/data" in root["consolidated_metadata"]["metadata"]
    assert WRITER_ATTR not in root["attributes"]


def test_root_is_written_last(counting_s3: Any) -> None:
    url = counting_s3.url("order.zarr")
    with nwbstore.open(url, "w", storage_options=counting_s3.storage_options) as store:
        counting_s3.reset()
        _write_hierarchy(store)
    puts = [r.path for r in counting_s3.proxy.requests if r.kind == "PUT"]
    assert puts[-1].split("?")[0].endswith("order.zarr/zarr.json")
    assert sum(p.split("?")[0].endswith("order.zarr/zarr.json") for p in puts) == 1


def test_nothing_is_readable_as_complete_before_flush(counting_s3: Any) -> None:
    url = counting_s3.url("flush.zarr")
    fs = counting_s3.filesystem()
    with nwbstore.open(url, "w", storage_options=counting_s3.storage_options) as store:
        store.root.create_dataset("x", data=np.arange(10))
        assert not fs.exists(f"{counting_s3.bucket}/flush.zarr/x/zarr.json")
        store.flush()
        fs.invalidate_cache()
        assert fs.exists(f"{counting_s3.bucket}/flush.zarr/x/zarr.json")
        reader = zarr.open_group(
            store=FsspecStore.from_url(url, storage_options=counting_s3.storage_options), mode="r"
        )
        np.testing.assert_array_equal(reader["x"][:], np.arange(10))


def test_a_second_writer_of_the_same_new_store_is_refused(counting_s3: Any) -> None:
    url = counting_s3.url("two.zarr")
    first = nwbstore.open(url, "w-", storage_options=counting_s3.storage_options)
    # the second writer looked before the first created anything: simulate by a fresh wrapper
    second = ObjectWriteStore(_s3_store(url, counting_s3), url=url, fresh=True)
    with pytest.raises(StoreExistsError, match="another writer"):
        zarr.open_group(store=second, mode="w")
    first.root.create_dataset("x", data=[1, 2, 3])
    first.close()
    with nwbstore.open(url, "r", storage_options=counting_s3.storage_options) as store:
        assert store.root["x"][:].tolist() == [1, 2, 3]
        assert list(store.root) == ["x"]


def test_a_claim_retried_after_a_lost_answer_is_not_a_conflict(counting_s3: Any) -> None:
    url = counting_s3.url("retried.zarr")
    store = ObjectWriteStore(_s3_store(url, counting_s3), url=url, fresh=True)
    zarr.open_group(store=store, mode="w")  # the claim reached the server
    # the same writer sends its claim again (as a retry after a lost answer would)
    store._claim_root = True
    doc = zarr.core.sync.sync(store.get("zarr.json", default_buffer_prototype()))
    assert doc is not None
    zarr.core.sync.sync(store.set("zarr.json", doc))  # no StoreExistsError


def test_chunk_uploads_are_bounded_and_run_in_parallel() -> None:
    inner = _SlowStore()
    store = ObjectWriteStore(inner, url="memory://slow", fresh=True, concurrency=4)
    group = zarr.open_group(store=store, mode="w")
    array = group.create_array("x", shape=(64,), chunks=(1,), dtype="int8")
    array[:] = np.arange(64, dtype="int8")
    zarr.core.sync.sync(store.flush())
    assert inner.peak == 4
    np.testing.assert_array_equal(
        zarr.open_group(store=MemoryStore(inner.data), mode="r")["x"][:], np.arange(64)
    )


def test_a_failed_upload_is_raised_by_flush_and_the_root_is_not_written() -> None:
    inner = _SlowStore(fail_key="x/c/3")
    store = ObjectWriteStore(inner, url="memory://failing", fresh=True, concurrency=4)
    group = zarr.open_group(store=store, mode="w")
    array = group.create_array("x", shape=(8,), chunks=(1,), dtype="int8")
    array[:] = np.arange(8, dtype="int8")
    with pytest.raises(WriteFailedError, match=r"'x/c/3'.*memory://failing"):
        zarr.core.sync.sync(store.flush())
    assert "x/zarr.json" not in inner.data  # metadata never vouches for a missing chunk


def test_reads_of_own_keys_cost_nothing_and_see_chunks_in_flight() -> None:
    inner = _SlowStore(delay=0.05)
    store = ObjectWriteStore(inner, url="memory://own", fresh=True)
    group = zarr.open_group(store=store, mode="w")
    inner.reads = 0  # the claim of the root looked first (a memory store has no If-None-Match)
    array = group.create_array("x", shape=(10,), chunks=(5,), dtype="int16", fill_value=0)
    array[:5] = 7
    array[2:8] = 3  # partial write: reads chunk 0 back while it may still be in flight
    zarr.core.sync.sync(store.flush())
    assert inner.reads == 0
    np.testing.assert_array_equal(
        zarr.open_group(store=MemoryStore(inner.data), mode="r")["x"][:],
        [7, 7, 3, 3, 3, 3, 3, 3, 0, 0],
    )


def test_existing_store_reads_each_document_once(counting_s3: Any) -> None:
    url = counting_s3.url("again.zarr")
    with nwbstore.open(url, "w", storage_options=counting_s3.storage_options) as store:
        _write_hierarchy(store)
    counting_s3.reset()
    with nwbstore.open(url, "a", storage_options=counting_s3.storage_options) as store:
        store.root["g3"].attrs["more"] = "yes"
        store.root["g4"].attrs["more"] = "yes"
        store.root.create_group("new")
    gets = Counter(r.path for r in counting_s3.proxy.requests if r.kind == "GET")
    assert gets and max(gets.values()) == 1, gets
    with nwbstore.open(url, "r", storage_options=counting_s3.storage_options) as store:
        assert store.root["g4"].attrs["more"] == "yes"
        assert "new" in store.root


def test_deleting_and_recreating_in_a_new_store() -> None:
    inner = MemoryStore()
    store = ObjectWriteStore(inner, url="memory://del", fresh=True, concurrency=2)
    group = zarr.open_group(store=store, mode="w")
    group.create_array("a", shape=(4,), chunks=(2,), dtype="int8")[:] = 1
    zarr.core.sync.sync(store.flush())
    del group["a"]
    group.create_array("a", shape=(2,), chunks=(2,), dtype="int8")[:] = 5
    zarr.consolidate_metadata(store)
    zarr.core.sync.sync(store.flush())
    reread = zarr.open_group(store=inner, mode="r", use_consolidated=False)
    assert reread["a"].shape == (2,)
    np.testing.assert_array_equal(reread["a"][:], [5, 5])
    assert not any(k.startswith("a/c/1") for k in inner._store_dict)


class _SlowStore(MemoryStore):
    """A memory store that counts reads, delays writes and records the PUTs in flight."""

    def __init__(self, *, delay: float = 0.01, fail_key: str | None = None) -> None:
        super().__init__()
        self.delay = delay
        self.fail_key = fail_key
        self.reads = 0
        self.active = 0
        self.peak = 0
        self.data = self._store_dict
        self._lock = threading.Lock()

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        self.reads += 1
        return await super().get(key, prototype, byte_range)

    async def set(self, key: str, value: Any) -> None:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
            if key == self.fail_key:
                raise OSError(f"simulated failure of {key}")
            await super().set(key, value)
        finally:
            with self._lock:
                self.active -= 1


def test_a_chunk_filled_piece_by_piece_is_uploaded_once_more_at_flush() -> None:
    inner = _SlowStore(delay=0.0)
    puts: Counter[str] = Counter()
    original = inner.set

    async def counting_set(key: str, value: Any) -> None:
        puts[key] += 1
        await original(key, value)

    inner.set = counting_set  # type: ignore[method-assign]
    store = ObjectWriteStore(inner, url="memory://pieces", fresh=True)
    group = zarr.open_group(store=store, mode="w")
    array = group.create_array("refs", shape=(100,), chunks=(100,), dtype="int32", fill_value=0)
    inner.reads = 0
    for i in range(100):  # as hdmf-zarr writes a column of references
        array[i] = i
    zarr.core.sync.sync(store.flush())
    assert puts["refs/c/0"] == 2  # the first write, then the finished chunk at flush
    assert inner.reads <= 1  # the chunk is read back once at most (after its first PUT)
    reread = zarr.open_group(store=MemoryStore(inner.data), mode="r")
    np.testing.assert_array_equal(reread["refs"][:], np.arange(100))
