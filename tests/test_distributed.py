"""Conversion on a Dask cluster (``scheduler=``): stored chunks copied raw on the workers,
and ``Dataset.read_stored_chunk`` on both backends."""

from __future__ import annotations

import itertools
import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore.errors import SettingsError

SHAPE = (100, 37)
CHUNKS = (16, 10)  # 7 x 4 grid: the last row and column of chunks are edge chunks
GRID = tuple(math.ceil(s / c) for s, c in zip(SHAPE, CHUNKS, strict=True))
UNALLOCATED = (2, 1)  # never written in any dataset
MASKED = (6, 3)  # edge chunk of "gz" written with filter_mask=1 (shuffle skipped)
ALL_INDEXES = list(itertools.product(*(range(n) for n in GRID)))
ALLOCATED = [i for i in ALL_INDEXES if i != UNALLOCATED]


def _values(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    return (rng.integers(0, 50, size=SHAPE) * np.arange(SHAPE[1])).astype(dtype)


def _sel(index: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(
        slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, CHUNKS, SHAPE, strict=True)
    )


def _offset(index: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(i * c for i, c in zip(index, CHUNKS, strict=True))


def _write_all_but_unallocated(ds: h5py.Dataset, values: np.ndarray) -> None:
    for index in ALLOCATED:
        ds[_sel(index)] = values[_sel(index)]


@pytest.fixture(scope="module")
def h5_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gzip+shuffle (with one masked edge chunk), Blosc/zstd and Zstd datasets, one hole each."""
    path = tmp_path_factory.mktemp("dist") / "src.h5"
    with h5py.File(path, "w") as f:
        gz = f.create_dataset(
            "gz", shape=SHAPE, dtype="i2", chunks=CHUNKS, compression="gzip", shuffle=True
        )
        values = _values("i2")
        _write_all_but_unallocated(gz, values)
        # filter 0 (shuffle) skipped for this chunk: the bytes are zlib of the padded chunk
        full = np.zeros(CHUNKS, dtype="i2")
        part = values[_sel(MASKED)]
        full[: part.shape[0], : part.shape[1]] = part
        gz.id.write_direct_chunk(_offset(MASKED), zlib.compress(full.tobytes()), filter_mask=1)
        blosc = f.create_dataset(
            "blosc",
            shape=SHAPE,
            dtype="f4",
            chunks=CHUNKS,
            **hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
        )
        _write_all_but_unallocated(blosc, _values("f4"))
        zstd = f.create_dataset(
            "zstd", shape=SHAPE, dtype="i4", chunks=CHUNKS, **hdf5plugin.Zstd(clevel=3)
        )
        _write_all_but_unallocated(zstd, _values("i4"))
    with h5py.File(path, "r") as f:  # the masked chunk reads back through HDF5 as written
        np.testing.assert_array_equal(f["gz"][_sel(MASKED)], values[_sel(MASKED)])
        assert f["gz"].id.get_chunk_info_by_coord(_offset(MASKED)).filter_mask == 1
    return path


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """A LocalCluster of threads on loopback (no dashboard), shared by this module."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=False,
            protocol="tcp",  # in-process workers, but over real loopback sockets
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def _h5_stored(path: Path, name: str) -> dict[tuple[int, ...], tuple[int, bytes]]:
    """Every allocated chunk of ``name`` as h5py reads it: index -> (filter mask, bytes)."""
    out = {}
    with h5py.File(path, "r") as f:
        ds = f[name]
        for index in ALL_INDEXES:
            if ds.id.get_chunk_info_by_coord(_offset(index)).byte_offset is None:
                continue
            mask, data = ds.id.read_direct_chunk(_offset(index))
            out[index] = (mask, bytes(data))
    return out


def _chunk_file(root: Path, name: str, index: tuple[int, ...]) -> Path:
    return root.joinpath(name, "c", *map(str, index))


def _check_h5_to_zarr(src: Path, out: Path, report: nwbstore.ConversionReport) -> None:
    raw_bytes = 0
    for name in ("gz", "blosc", "zstd"):
        stored = _h5_stored(src, name)
        assert sorted(stored) == ALLOCATED
        for index, (mask, data) in stored.items():
            file = _chunk_file(out, name, index)
            if mask:
                # decoded and re-encoded: Zarr has no per-chunk filter mask
                assert (name, index) == ("gz", MASKED)
                assert file.read_bytes() != data
            else:
                assert file.read_bytes() == data, f"{name} chunk {index}"
                raw_bytes += len(data)
        assert not _chunk_file(out, name, UNALLOCATED).exists()
        with h5py.File(src, "r") as f:
            expected = f[name][...]
        got = zarr.open_array(out / name, mode="r")[...]
        np.testing.assert_array_equal(got, expected)
        assert not got[_sel(UNALLOCATED)].any()
    assert report.chunks_raw == 3 * len(ALLOCATED) - 1
    assert report.chunks_transcoded == 1
    masked_size = len(_h5_stored(src, "gz")[MASKED][1])
    assert report.bytes_read == report.bytes_written == raw_bytes + masked_size
    assert sorted(report.datasets_raw) == ["/blosc", "/zstd"]


def test_hdf5_to_zarr_raw_on_worker_processes(h5_source: Path, tmp_path: Path) -> None:
    """Worker processes open both files by path and copy HDF5 chunks into Zarr files as stored."""
    from dask.distributed import Client, LocalCluster

    out = tmp_path / "out.zarr"
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as c,
    ):
        report = nwbstore.convert(h5_source, out, scheduler=c, progress=False)
        assert sum(c.run(lambda: 1).values()) == 2  # both worker processes were alive
    _check_h5_to_zarr(h5_source, out, report)
    assert json.loads((out / "zarr.json").read_text())["zarr_format"] == 3
    assert nwbstore.verify(h5_source, out).ok


def test_hdf5_to_zarr_raw_matches_single_machine(
    h5_source: Path, tmp_path: Path, client: object
) -> None:
    """Cluster and single-machine raw copies give the same chunk files and counts."""
    out = tmp_path / "dask.zarr"
    report = nwbstore.convert(h5_source, out, scheduler=client, progress=False)
    _check_h5_to_zarr(h5_source, out, report)
    local = tmp_path / "local.zarr"
    single = nwbstore.convert(h5_source, local, progress=False)
    assert (single.chunks_raw, single.chunks_transcoded) == (
        report.chunks_raw,
        report.chunks_transcoded,
    )
    assert single.bytes_read == report.bytes_read
    assert sorted(single.datasets_raw) == sorted(report.datasets_raw)
    for name in ("blosc", "zstd"):
        for index in ALLOCATED:
            a, b = _chunk_file(out, name, index), _chunk_file(local, name, index)
            assert a.read_bytes() == b.read_bytes()


def test_raw_false_transcodes_on_the_cluster(
    h5_source: Path, tmp_path: Path, client: object
) -> None:
    out = tmp_path / "transcoded.zarr"
    report = nwbstore.convert(h5_source, out, scheduler=client, raw=False, progress=False)
    assert report.chunks_raw == 0 and report.chunks_transcoded > 0
    assert report.datasets_raw == []
    with h5py.File(h5_source, "r") as f:
        for name in ("gz", "blosc", "zstd"):
            np.testing.assert_array_equal(zarr.open_array(out / name, mode="r")[...], f[name][...])


def test_zarr_to_zarr_raw(tmp_path: Path, client: object) -> None:
    src = tmp_path / "src.zarr"
    root = zarr.open_group(src, mode="w", zarr_format=3)
    arr = root.create_array(
        "data",
        shape=SHAPE,
        chunks=CHUNKS,
        dtype="i4",
        compressors=[zarr.codecs.ZstdCodec(level=3)],
        fill_value=0,
    )
    values = _values("i4")
    for index in ALLOCATED:
        arr[_sel(index)] = values[_sel(index)]
    out = tmp_path / "out.zarr"
    report = nwbstore.convert(src, out, scheduler=client, progress=False)
    assert report.chunks_raw == len(ALLOCATED) and report.chunks_transcoded == 0
    assert report.datasets_raw == ["/data"]
    total = 0
    for index in ALLOCATED:
        data = _chunk_file(src, "data", index).read_bytes()
        assert _chunk_file(out, "data", index).read_bytes() == data
        total += len(data)
    assert report.bytes_read == report.bytes_written == total
    assert not _chunk_file(out, "data", UNALLOCATED).exists()
    expected = values.copy()
    expected[_sel(UNALLOCATED)] = 0
    np.testing.assert_array_equal(zarr.open_array(out / "data", mode="r")[...], expected)


@pytest.mark.s3
def test_hdf5_to_s3_zarr_raw(h5_source: Path, client: object, s3_server, s3_bucket) -> None:
    """storage_options travel to the workers; chunks land on S3 as HDF5 stored them."""
    url = f"s3://{s3_bucket}/out.zarr"
    opts = s3_server.storage_options
    report = nwbstore.convert(
        h5_source, url, scheduler=client, storage_options=opts, progress=False
    )
    assert report.chunks_raw == 3 * len(ALLOCATED) - 1 and report.chunks_transcoded == 1
    assert sorted(report.datasets_raw) == ["/blosc", "/zstd"]
    fs = s3_server.filesystem()
    for name in ("blosc", "zstd", "gz"):
        for index, (mask, data) in _h5_stored(h5_source, name).items():
            key = f"{s3_bucket}/out.zarr/{name}/c/{index[0]}/{index[1]}"
            assert (fs.cat(key) == data) is (mask == 0), f"{name} chunk {index}"
        assert not fs.exists(f"{s3_bucket}/out.zarr/{name}/c/{UNALLOCATED[0]}/{UNALLOCATED[1]}")
        store = zarr.storage.FsspecStore.from_url(url, storage_options=opts, read_only=True)
        with h5py.File(h5_source, "r") as f:
            expected = f[name][...]
        np.testing.assert_array_equal(zarr.open_array(store, path=name, mode="r")[...], expected)


# -- read_stored_chunk ------------------------------------------------------------------------


def test_read_stored_chunk_hdf5(h5_source: Path, tmp_path: Path) -> None:
    stored = _h5_stored(h5_source, "gz")
    with nwbstore.open(h5_source, "r") as store:
        ds = store["gz"]
        chunk = ds.read_stored_chunk((1, 2))
        assert chunk is not None and chunk.index == (1, 2) and chunk.filter_mask == 0
        assert chunk.location is not None and chunk.location.path == str(h5_source.resolve())
        assert chunk.data == stored[(1, 2)][1] and chunk.nbytes == len(stored[(1, 2)][1])
        edge = ds.read_stored_chunk(MASKED)
        assert edge is not None and edge.filter_mask == 1 and edge.data == stored[MASKED][1]
        assert ds.read_stored_chunk(UNALLOCATED) is None
        for bad in [(GRID[0], 0), (0, -1), (0,)]:
            with pytest.raises(SettingsError, match="outside the chunk grid"):
                ds.read_stored_chunk(bad)
    # open for writing, chunks go through HDF5 (no file location) but give the same bytes
    copy = tmp_path / "copy.h5"
    copy.write_bytes(h5_source.read_bytes())
    with nwbstore.open(copy, "r+") as store:
        chunk = store["gz"].read_stored_chunk((1, 2))
        assert chunk is not None and chunk.location is None
        assert chunk.data == stored[(1, 2)][1] and chunk.nbytes == len(chunk.data)


def _zarr_source(url: str | Path, storage_options: dict | None = None) -> np.ndarray:
    root = zarr.open_group(url, mode="w", zarr_format=3, storage_options=storage_options)
    arr = root.create_array(
        "data", shape=SHAPE, chunks=CHUNKS, dtype="i4", compressors=[zarr.codecs.ZstdCodec()]
    )
    values = _values("i4")
    for index in ALLOCATED:
        arr[_sel(index)] = values[_sel(index)]
    return values


def test_read_stored_chunk_zarr_local(tmp_path: Path) -> None:
    path = tmp_path / "z.zarr"
    _zarr_source(path)
    with nwbstore.open(path, "r") as store:
        ds = store["data"]
        chunk = ds.read_stored_chunk((6, 3))
        on_disk = _chunk_file(path, "data", (6, 3))
        assert chunk is not None and chunk.index == (6, 3) and chunk.filter_mask == 0
        assert chunk.location is not None and Path(chunk.location.path) == on_disk
        assert chunk.data == on_disk.read_bytes() and chunk.nbytes == on_disk.stat().st_size
        assert ds.read_stored_chunk(UNALLOCATED) is None
        for bad in [(GRID[0], 0), (0, GRID[1]), (-1, 0), (0, 0, 0)]:
            with pytest.raises(SettingsError, match="outside the chunk grid"):
                ds.read_stored_chunk(bad)


@pytest.mark.s3
def test_read_stored_chunk_zarr_s3(s3_server, s3_bucket) -> None:
    url = f"s3://{s3_bucket}/z.zarr"
    opts = s3_server.storage_options
    _zarr_source(url, opts)
    fs = s3_server.filesystem()
    with nwbstore.open(url, "r", storage_options=opts) as store:
        ds = store["data"]
        chunk = ds.read_stored_chunk((0, 1))
        assert chunk is not None and chunk.location is None
        assert chunk.data == fs.cat(f"{s3_bucket}/z.zarr/data/c/0/1")
        assert chunk.nbytes == len(chunk.data)
        assert ds.read_stored_chunk(UNALLOCATED) is None
        with pytest.raises(SettingsError, match="outside the chunk grid"):
            ds.read_stored_chunk((0, GRID[1]))
