"""The remote read path: HDF5 chunks read as concurrent range GETs, decoded without HDF5.

Every value is checked against h5py's read of the LOCAL file. Files go to moto's
ThreadedMotoServer on loopback (``s3_server``/``counting_s3``), or to a tiny ``http.server``
that ignores ``Range``.
"""

from __future__ import annotations

import functools
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np
import pytest

import nwbstore
from nwbstore.backends._chunk_index import ChunkIndex, index_problem
from nwbstore.backends._remote_chunks import RemoteChunkReader, outer_selection
from nwbstore.errors import (
    CorruptChunkError,
    NwbStoreError,
    RemoteObjectChangedError,
    RemoteRangeError,
)

pytestmark = pytest.mark.s3

SELECTIONS: list[Any] = [
    (),
    Ellipsis,
    np.s_[1:7],
    np.s_[::3],
    np.s_[-5:],
    np.s_[2:40:7],
    np.s_[0],
    np.s_[-1],
    np.s_[[0, 3, 4]],
]
SELECTIONS_2D: list[Any] = [
    np.s_[:, 1],
    np.s_[3:30:4, ::2],
    np.s_[[1, 5, 17], 2:9],
    np.s_[..., [0, 2]],
    np.s_[-2, -1],
    np.s_[5:5, :],
]


def _upload(s3: Any, local: Path, key: str) -> str:
    s3.filesystem().put_file(str(local), f"{s3.bucket}/{key}")
    return f"s3://{s3.bucket}/{key}"


def _same(expected: Any, got: Any, what: str) -> None:
    assert type(got) is type(expected), f"{what}: {type(got)} != {type(expected)}"
    exp, out = np.asarray(expected), np.asarray(got)
    assert out.shape == exp.shape and out.dtype == exp.dtype, f"{what}: {out.dtype} {out.shape}"
    assert np.array_equal(out, exp, equal_nan=exp.dtype.kind in "fc"), what


def _check_all(store: Any, local: Path, names: list[str]) -> None:
    with h5py.File(local, "r") as ref:
        for name in names:
            ds = ref[name]
            selections = SELECTIONS + (SELECTIONS_2D if ds.ndim >= 2 else [])
            for sel in selections:
                try:
                    expected = ds[sel]
                except (ValueError, IndexError, TypeError, OSError):
                    continue  # h5py refuses this selection on this dataset
                _same(expected, store[name][sel], f"{name}[{sel!r}]")


def _engine(store: Any, name: str) -> RemoteChunkReader | None:
    return store.chunk_reader(store[name].h5py_dataset)  # type: ignore[no-any-return]


# -- purpose-built files -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def filters_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("remote") / "filters.h5"
    rng = np.random.default_rng(0)
    ints = rng.integers(0, 1000, (45, 41)).astype("i4")
    floats = rng.random((40, 37))
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "gzip_shuffle", data=ints.astype("<i2"), chunks=(16, 16), compression="gzip",
            shuffle=True,
        )  # fmt: skip
        f.create_dataset("fletcher", data=floats, chunks=(16, 16), fletcher32=True, shuffle=True)
        f.create_dataset("big_endian", data=ints.astype(">i4"), chunks=(10, 10), compression=1)
        f.create_dataset("blosc", data=floats, chunks=(16, 16), **hdf5plugin.Blosc(cname="zstd"))
        f.create_dataset("blosc_lz4_bit", data=ints, chunks=(16, 16), **hdf5plugin.Blosc(
            cname="lz4", shuffle=hdf5plugin.Blosc.BITSHUFFLE))  # fmt: skip
        f.create_dataset("zstd", data=floats, chunks=(16, 16), **hdf5plugin.Zstd(clevel=5))
        f.create_dataset("lz4", data=floats, chunks=(16, 16), **hdf5plugin.LZ4())
        f.create_dataset("bitshuffle_lz4", data=ints, chunks=(16, 16), **hdf5plugin.Bitshuffle())
        f.create_dataset(
            "bitshuffle_zstd", data=ints, chunks=(13, 7), **hdf5plugin.Bitshuffle(cname="zstd")
        )
        f.create_dataset("bitshuffle_none", data=ints, chunks=(16, 16), **hdf5plugin.Bitshuffle(
            cname="none"))  # fmt: skip
        f.create_dataset("lzf", data=floats, chunks=(16, 16), compression="lzf")
        f.create_dataset("bzip2", data=ints, chunks=(16, 16), **hdf5plugin.BZip2())
        f.create_dataset("edges", data=np.arange(23 * 11, dtype="u8").reshape(23, 11),
                         chunks=(5, 4), compression="gzip")  # fmt: skip
        sparse = f.create_dataset("sparse", shape=(100, 6), chunks=(10, 3), dtype="f4",
                                  fillvalue=7.5, compression="gzip")  # fmt: skip
        sparse[20:30, :3] = 1.0
        sparse[95:, 4] = -2.0
        f.create_dataset("contiguous", data=floats)
        f.create_dataset("contiguous_big", data=rng.random((3000, 100)))  # several row blocks
        f.create_dataset("contiguous_unwritten", shape=(30, 2), dtype="i2", fillvalue=-3)
        f.create_dataset("scalar", data=3.25)
        f.create_dataset("scalar_int", data=np.int16(-4))
        f.create_dataset("empty", shape=(0, 4), dtype="i4", chunks=(10, 4), maxshape=(None, 4))
        f.create_dataset("fixed_bytes", data=np.array([b"ab", b"cde", b""] * 5, dtype="S3"),
                         chunks=(4,), compression="gzip")  # fmt: skip
        f.create_dataset("bools", data=rng.random(50) > 0.5, chunks=(8,), compression="gzip")
        f.create_dataset("complex", data=rng.random(30) + 1j * rng.random(30), chunks=(7,))
        compound = np.zeros(20, dtype=[("a", "<i4"), ("b", "<f8")])
        compound["a"] = np.arange(20)
        compound["b"] = rng.random(20)
        f.create_dataset("compound", data=compound, chunks=(6,), compression="gzip")
        # one chunk written raw with its first filter (deflate) marked skipped
        masked = f.create_dataset(
            "masked", shape=(8, 8), chunks=(4, 8), dtype="<i4", compression="gzip"
        )
        masked[4:, :] = 5
        masked.id.write_direct_chunk((0, 0), np.arange(32, dtype="<i4").tobytes(), filter_mask=1)
        f.create_dataset("compact", data=np.arange(5), dtype="i8")
        f.create_dataset("vlen", data=["a", "bb", "ccc"], dtype=h5py.string_dtype())
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple((4,))
        h5py.h5d.create(f.id, b"compact_layout", h5py.h5t.STD_I32LE, space, dcpl=dcpl).write(
            h5py.h5s.ALL, h5py.h5s.ALL, np.arange(4, dtype="<i4")
        )
        f.create_dataset("scaleoffset", data=ints, chunks=(16, 16), scaleoffset=0)
        ext = f.create_dataset(
            "external", shape=(10,), dtype="<i4", external=[(str(path.parent / "ext.bin"), 0, 40)]
        )
        ext[...] = np.arange(10)
    return path


ENGINE_NAMES = [
    "gzip_shuffle", "fletcher", "big_endian", "blosc", "blosc_lz4_bit", "zstd", "lz4",
    "bitshuffle_lz4", "bitshuffle_zstd", "bitshuffle_none", "lzf", "bzip2", "edges", "sparse",
    "contiguous", "contiguous_big", "contiguous_unwritten", "scalar", "scalar_int", "empty",
    "fixed_bytes", "bools", "complex", "compound", "masked",
]  # fmt: skip
H5PY_NAMES = ["compact_layout", "vlen", "scaleoffset", "external"]


def test_values_equal_local_h5py(s3_server: Any, s3_bucket: str, filters_file: Path) -> None:
    s3_server.filesystem().put_file(str(filters_file), f"{s3_bucket}/filters.h5")
    url = f"s3://{s3_bucket}/filters.h5"
    with nwbstore.open(url, storage_options=s3_server.storage_options) as store:
        # (vlen strings: nwbstore gives str where h5py gives bytes; not this engine's business)
        _check_all(store, filters_file, [*ENGINE_NAMES, "compact_layout", "scaleoffset", "compact"])
        for name in ENGINE_NAMES:
            assert _engine(store, name) is not None, f"{name} should read through the engine"
        for name in H5PY_NAMES:
            assert _engine(store, name) is None, f"{name} must read through h5py"
        with pytest.raises(IndexError):
            store["edges"][23]
        with pytest.raises(IndexError):
            store["edges"][[0, 30]]
        # field names are not the engine's: h5py answers
        with h5py.File(filters_file) as ref:
            assert np.array_equal(store["compound"]["a"], ref["compound"]["a"])


def test_filter_mask_chunk_really_was_raw(filters_file: Path) -> None:
    """The masked chunk is stored uncompressed: decoding it with deflate would fail."""
    with h5py.File(filters_file) as f:
        mask, raw = f["masked"].id.read_direct_chunk((0, 0))
        assert mask == 1 and raw == np.arange(32, dtype="<i4").tobytes()


def test_unsupported_filter_logs_and_falls_back(
    s3_server: Any, s3_bucket: str, filters_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s3_server.filesystem().put_file(str(filters_file), f"{s3_bucket}/f.h5")
    with nwbstore.open(f"s3://{s3_bucket}/f.h5", storage_options=s3_server.storage_options) as st:
        with caplog.at_level(logging.DEBUG, logger="nwbstore.backends.hdf5"):
            got = st["scaleoffset"][3:20, ::2]
        assert "scaleoffset" in caplog.text and "no exact decoder" in caplog.text
        with h5py.File(filters_file) as ref:
            assert np.array_equal(got, ref["scaleoffset"][3:20, ::2])
        index = ChunkIndex.from_h5py(st["scaleoffset"].h5py_dataset)
        with pytest.raises(ValueError, match="scaleoffset"):
            RemoteChunkReader(None, "x", index)


def test_fletcher32_mismatch_is_an_error(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "damaged.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(64, dtype="f8"), chunks=(16,), fletcher32=True)
        info = f["x"].id.get_chunk_info(1)
    data = bytearray(path.read_bytes())
    data[info.byte_offset + 3] ^= 0xFF  # damage chunk 1's data, not its checksum
    path.write_bytes(bytes(data))
    s3_server.filesystem().put_file(str(path), f"{s3_bucket}/d.h5")
    with nwbstore.open(f"s3://{s3_bucket}/d.h5", storage_options=s3_server.storage_options) as st:
        assert np.array_equal(st["x"][:16], np.arange(16, dtype="f8"))  # chunk 0 is fine
        with pytest.raises(CorruptChunkError, match=r"chunk \(1,\).*Fletcher-32"):
            st["x"][10:20]


def test_rich_nwb_every_numeric_dataset(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    from nwbstore.testing.nwb_samples import build_rich_nwb

    local = build_rich_nwb(tmp_path / "rich.nwb", n_samples=3000)
    names: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "biufc" and obj.shape is not None:
            names.append(name)

    with h5py.File(local) as f:
        f.visititems(visit)
    assert len(names) > 20
    s3_server.filesystem().put_file(str(local), f"{s3_bucket}/rich.nwb")
    with nwbstore.open(
        f"s3://{s3_bucket}/rich.nwb", storage_options=s3_server.storage_options
    ) as store:
        _check_all(store, local, names)
        engine = [n for n in names if _engine(store, n) is not None]
    with h5py.File(local) as f:
        chunked = [n for n in names if f[n].chunks is not None and index_problem(f[n]) is None]
    assert set(chunked) <= set(engine)  # gzip/zstd/blosc/lzf of the sample all decode


# -- chunk index ------------------------------------------------------------------------------


def test_chunk_index_json_round_trip(filters_file: Path) -> None:
    with h5py.File(filters_file) as f:
        for name in ("sparse", "compound", "scalar", "contiguous_big", "empty", "masked"):
            index = ChunkIndex.from_h5py(f[name])
            back = ChunkIndex.from_json(index.to_json())
            assert back.shape == index.shape and back.chunks == index.chunks
            assert back.dtype == index.dtype and back.filters == index.filters
            assert back.fill_value.tobytes() == index.fill_value.tobytes()
            for field in ("coords", "offsets", "sizes", "masks"):
                assert np.array_equal(getattr(back, field), getattr(index, field)), field
        sparse = ChunkIndex.from_h5py(f["sparse"])
        assert sparse.nchunks == 2 and float(sparse.fill_value) == 7.5
        assert sparse.coords.tolist() == [[2, 0], [9, 1]]
        assert [f.id for f in sparse.filters] == [1]
        masked = ChunkIndex.from_h5py(f["masked"])
        assert masked.masks.tolist() == [1, 0]
        assert masked.lookup(np.array([[0, 0], [1, 0], [5, 0]])).tolist() == [0, 1, -1]
        with pytest.raises(ValueError, match="variable-length"):
            ChunkIndex.from_h5py(f["vlen"])
        with pytest.raises(ValueError, match="compact"):
            ChunkIndex.from_h5py(f["compact_layout"])
        assert index_problem(f["external"]) == "external storage"
    with pytest.raises(ValueError, match="version"):
        ChunkIndex.from_json('{"version": 99}')


def test_outer_selection_errors() -> None:
    with pytest.raises(IndexError, match="too many"):
        outer_selection((0, 0), (3,))
    with pytest.raises(IndexError, match="single ellipsis"):
        outer_selection((..., ...), (3,))
    with pytest.raises(IndexError, match="out of bounds"):
        outer_selection(-4, (3,))
    axes, dropped = outer_selection(np.array([True, False, True]), (3,))
    assert axes[0].tolist() == [0, 2] and dropped == [False]


# -- request budget ----------------------------------------------------------------------------

MIB = 2**20


@pytest.fixture(scope="module")
def budget_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 chunks of 1 MiB (random floats, stored uncompressed: gaps are real bytes)."""
    path = tmp_path_factory.mktemp("budget") / "budget.h5"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=rng.random(16 * MIB // 8), chunks=(MIB // 8,))
    return path


def test_request_budget_vs_h5py(counting_s3: Any, budget_file: Path) -> None:
    url = _upload(counting_s3, budget_file, "budget.h5")
    proxy = counting_s3.proxy
    # long enough that requests sent together overlap even on a loaded machine
    proxy.latency = 0.2
    n = MIB // 8
    with h5py.File(budget_file) as ref:
        expected_two = ref["x"][n - 10 : n + 10]
        scattered = [i * 2 * n + 5 for i in range(8)]  # chunks 0, 2, ..., 14
        expected_scattered = ref["x"][scattered]
        sizes = {i: ref["x"].id.get_chunk_info(i).size for i in range(ref["x"].id.get_num_chunks())}
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        assert _engine(store, "x") is not None  # index built: its requests are not counted
        proxy.reset()
        _same(expected_two, store["x"][n - 10 : n + 10], "two chunks")
        assert (proxy.total, proxy.rounds()) == (1, 1)
        assert proxy.counts["GET"] == 1
        assert proxy.bytes_out <= 1.05 * (sizes[0] + sizes[1])
        proxy.reset()
        _same(expected_scattered, store["x"][scattered], "eight scattered chunks")
        # sent together: one round (two when a loaded machine delays one past the others)
        assert proxy.total == 8 and proxy.rounds() <= 2, proxy.rounds()
        assert proxy.bytes_out <= 1.05 * sum(sizes[2 * i] for i in range(8))
        engine_rounds = proxy.rounds()
    # the same selection through h5py over an fsspec file (the old path): one round per read
    proxy.latency = 0.05
    fs = counting_s3.filesystem()
    with fs.open(f"{counting_s3.bucket}/budget.h5", "rb", block_size=2 * MIB,
                 cache_type="blockcache") as fh, h5py.File(fh, "r") as f:  # fmt: skip
        f["x"].id.get_num_chunks()
        proxy.reset()
        _same(expected_scattered, f["x"][scattered], "h5py")
        h5py_rounds = proxy.rounds()
    assert h5py_rounds >= 3 * engine_rounds  # measured: 8 sequential requests


def test_open_reuses_the_probe(counting_s3: Any, budget_file: Path) -> None:
    """One HEAD at open (the probe): its size and ETag serve h5py's file object too."""
    url = _upload(counting_s3, budget_file, "budget.h5")
    etag = counting_s3.filesystem().info(url)["ETag"]
    counting_s3.reset()
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        assert counting_s3.counts["HEAD"] == 1
        assert store.remote.size == budget_file.stat().st_size
        assert store.h5file.id.get_filesize() == store.remote.size
        assert store.remote.etag == etag
        ds = store["x"]
        ds[:10]
    assert counting_s3.counts["HEAD"] == 1
    counting_s3.reset()
    with pytest.raises(RuntimeError):  # h5py's error for a dataset of a closed file
        ds[:10]
    assert counting_s3.total == 0  # a closed store reads nothing


def test_concurrency_option_reaches_the_reader(counting_s3: Any, budget_file: Path) -> None:
    url = _upload(counting_s3, budget_file, "budget.h5")
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        reader = _engine(store, "x")
        assert reader is not None and reader.concurrency == 16
    with nwbstore.open(url, storage_options=counting_s3.storage_options, concurrency=1) as store:
        reader = _engine(store, "x")
        assert reader is not None and reader.concurrency == 1
        proxy = counting_s3.proxy
        proxy.latency = 0.02
        proxy.reset()
        n = MIB // 8
        store["x"][[0, 4 * n, 8 * n]]
        assert proxy.total == 3 and proxy.rounds() == 3  # one at a time


# -- changed objects and servers that ignore Range -------------------------------------------


def test_object_changed_while_open(counting_s3: Any, filters_file: Path, tmp_path: Path) -> None:
    url = _upload(counting_s3, filters_file, "changing.h5")
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        before = store["gzip_shuffle"][:5]
        etag = store.remote.etag
        assert etag and etag == counting_s3.filesystem().info(url)["ETag"]
        other = tmp_path / "other.h5"
        with h5py.File(filters_file) as src, h5py.File(other, "w") as dst:
            src.copy("gzip_shuffle", dst)
            dst["gzip_shuffle"][...] = -1
        counting_s3.filesystem().put_file(str(other), url)
        with pytest.raises(RemoteObjectChangedError, match="reopen the store") as info:
            store["gzip_shuffle"][10:30]
        err = info.value
        assert isinstance(err, NwbStoreError) and isinstance(err, OSError)
        assert url in str(err) and err.old_etag == etag and err.new_etag not in (None, etag)
    assert before.min() >= 0


class _NoRangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files and ignores ``Range`` (answers 200 with the whole file)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def no_range_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    handler = functools.partial(_NoRangeHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_server_that_ignores_range(no_range_server: tuple[str, Path]) -> None:
    """h5py reads the file (it fits fsspec's first 2 MiB block), the engine cannot: the store
    falls back to h5py for good, and the reader itself raises a clear error."""
    base, root = no_range_server
    filters_file = root / "f.h5"
    rng = np.random.default_rng(5)
    with h5py.File(filters_file, "w") as f:
        f.create_dataset("gzip_shuffle", data=rng.integers(0, 9, (40, 30)), chunks=(8, 8),
                         compression="gzip", shuffle=True)  # fmt: skip
        f.create_dataset("blosc", data=rng.random((40, 40)), chunks=(16, 16), **hdf5plugin.Blosc())
        f.create_dataset("zstd", data=rng.random((40, 40)), chunks=(16, 16), **hdf5plugin.Zstd())
        f.create_dataset("sparse", shape=(50,), chunks=(10,), dtype="f4", fillvalue=2.0)
        f["sparse"][12:14] = 1.0
    url = f"{base}/f.h5"
    with nwbstore.open(url) as store:
        got = store["gzip_shuffle"][3:30]
        assert isinstance(store.remote.range_error, RemoteRangeError)
        assert url in str(store.remote.range_error)
        assert _engine(store, "blosc") is None  # h5py from now on
        _check_all(store, filters_file, ["blosc", "sparse"])
        reader = RemoteChunkReader(
            store.remote.fs,
            store.remote.path,
            ChunkIndex.from_h5py(store["zstd"].h5py_dataset),
            url=url,
        )
        with pytest.raises(RemoteRangeError, match="ignored the byte range"):
            reader.read(np.s_[20:])
    with h5py.File(filters_file) as ref:
        assert np.array_equal(got, ref["gzip_shuffle"][3:30])


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files with ``Range`` (206), an ``ETag`` (the content's md5) and ``If-Match``."""

    protocol_version = "HTTP/1.1"
    root: Path
    seen: list[tuple[str, str | None, str | None]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, body: bool) -> None:
        import hashlib

        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        rng, match = self.headers.get("Range"), self.headers.get("If-Match")
        self.seen.append((self.command, rng, match))
        if match and match != etag:
            self.send_response(412)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, part = 200, data
        if rng:
            lo, hi = (int(v) for v in rng.removeprefix("bytes=").split("-"))
            status, part = 206, data[lo : hi + 1]
        self.send_response(status)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {lo}-{lo + len(part) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if body:
            self.wfile.write(part)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)


def test_https_range_reads_and_if_match(tmp_path: Path, filters_file: Path) -> None:
    seen: list[tuple[str, str | None, str | None]] = []
    handler = type("H", (_RangeHandler,), {"root": tmp_path, "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = tmp_path / "f.h5"
    local.write_bytes(filters_file.read_bytes())
    url = f"http://127.0.0.1:{server.server_address[1]}/f.h5"
    try:
        with nwbstore.open(url) as store:
            assert store.remote.etag and store.remote.etag.startswith('"')
            _check_all(store, filters_file, ["gzip_shuffle", "sparse", "contiguous_big", "lz4"])
            assert _engine(store, "gzip_shuffle") is not None
            assert store.remote.range_error is None
            conditional = [s for s in seen if s[0] == "GET" and s[2] == store.remote.etag]
            assert conditional  # the engine's range GETs carry If-Match
            local.write_bytes(b"\0" * 16 + filters_file.read_bytes()[16:])  # the file changes
            with pytest.raises(RemoteObjectChangedError, match="reopen the store"):
                store["zstd"][:]
    finally:
        server.shutdown()
        server.server_close()


def test_gc_paused_nests_and_restores() -> None:
    import gc

    from nwbstore.backends._gc_pause import GcPausedFile, gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # off before: stays off
    finally:
        gc.enable()

    class Probe:
        closed = False

        def readinto(self, buffer: Any) -> int:
            assert not gc.isenabled()
            buffer[:2] = b"ok"
            return 2

    wrapped = GcPausedFile(Probe())
    buf = bytearray(2)
    assert wrapped.readinto(buf) == 2 and buf == b"ok" and gc.isenabled()
    assert wrapped.closed is False


@pytest.mark.s3
def test_zarr_reads_take_the_store_concurrency(counting_s3: Any) -> None:
    """Zarr chunks are fetched by zarr itself, ``concurrency`` at once when it is given."""
    url = counting_s3.url("conc.zarr")
    with nwbstore.open(url, "w", storage_options=counting_s3.storage_options) as store:
        settings = nwbstore.DatasetSettings(chunks=(100,))
        store.root.create_dataset("x", data=np.arange(2000, dtype="i4"), settings=settings)
    doc = json.loads(counting_s3.filesystem().cat(f"{counting_s3.bucket}/conc.zarr/x/zarr.json"))
    assert doc["chunk_grid"]["configuration"]["chunk_shape"] == [100]
    counting_s3.proxy.latency = 0.2
    rounds = {}
    for concurrency in (20, 2):
        with nwbstore.open(
            url, storage_options=counting_s3.storage_options, concurrency=concurrency
        ) as store:
            counting_s3.reset()
            np.testing.assert_array_equal(store["x"][:], np.arange(2000))
            assert counting_s3.counts["GET"] == 20
            rounds[concurrency] = counting_s3.proxy.rounds()
    assert rounds[20] <= 2 and rounds[2] >= 8, rounds


@pytest.mark.s3
def test_range_gets_are_retried_after_transient_faults(
    counting_s3: Any, budget_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """503s and reset connections on chunk GETs are retried (nwbstore's policy): same values."""
    monkeypatch.setenv("NWBSTORE_S3_RETRY_SECONDS", "30")
    url = _upload(counting_s3, budget_file, "faulty.h5")
    with h5py.File(budget_file) as ref:
        expected = ref["x"][::5000]
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        assert _engine(store, "x") is not None
        counting_s3.proxy.set_faults(
            fail_fraction=0.3, reset_fraction=0.2, fault_kinds=["GET"], max_faults=6, seed=3
        )
        _same(expected, store["x"][::5000], "strided read through faults")
    faults = counting_s3.proxy.faults
    assert sum(faults.values()) >= 1, faults  # the faults really happened
