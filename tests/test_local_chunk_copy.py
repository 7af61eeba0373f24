"""Stored chunks on local disk: where they sit, and copying them file to file.

The raw copy of a conversion hands chunk locations (file, offset, size) from HDF5's chunk index
or a Zarr chunk file to a local Zarr destination, which copies the bytes kernel-side. These tests
check the locations against h5py and the copies against the files on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import nwbstore
from nwbstore.backends import _local_files
from nwbstore.backends._local_files import copy_to_file, read_location
from nwbstore.errors import CorruptChunkError
from nwbstore.nodes import ChunkLocation, Dataset
from nwbstore.settings import DatasetSettings


def _write_h5(path: Path, *, userblock: int = 0) -> np.ndarray:
    data = np.arange(1050 * 3, dtype="<i4").reshape(1050, 3)
    with h5py.File(path, "w", userblock_size=userblock) as f:
        ds = f.create_dataset(
            "acq/x",
            shape=data.shape,
            dtype=data.dtype,
            chunks=(100, 3),
            compression="gzip",
            shuffle=True,
            fillvalue=-1,
        )
        ds[:500] = data[:500]
        ds[1000:] = data[1000:]  # chunks 5..9 never written: unallocated; chunk 10 is an edge
    return data


def _stored_chunks(url: str | Path, path: str) -> list:
    with nwbstore.open(url, "r") as store:
        ds = store[path]
        assert isinstance(ds, Dataset)
        return list(ds.iter_stored_chunks())


@pytest.mark.parametrize("userblock", [0, 512])
def test_hdf5_chunk_locations_match_h5py(tmp_path: Path, userblock: int) -> None:
    path = tmp_path / "a.h5"
    _write_h5(path, userblock=userblock)
    chunks = _stored_chunks(path, "acq/x")
    assert [c.index for c in chunks] == [(i, 0) for i in (0, 1, 2, 3, 4, 10)]
    raw = path.read_bytes()
    with h5py.File(path, "r") as f:
        for chunk in chunks:
            loc = chunk.location
            assert loc is not None and loc.path == str(path.resolve())
            mask, expected = f["acq/x"].id.read_direct_chunk((chunk.index[0] * 100, 0))
            assert raw[loc.offset : loc.offset + loc.size] == bytes(expected)
            assert chunk.data == bytes(expected) and chunk.nbytes == len(expected)
            assert chunk.filter_mask == mask == 0


def test_writable_hdf5_reads_chunks_through_hdf5(tmp_path: Path) -> None:
    """A file open for writing may hold unflushed chunks: no byte offsets are handed out."""
    path = tmp_path / "a.h5"
    _write_h5(path)
    with nwbstore.open(path, "r+") as store:
        ds = store["acq/x"]
        assert isinstance(ds, Dataset)
        ds[500:600] = np.full((100, 3), 7, dtype="i4")  # in HDF5's chunk cache, maybe not on disk
        chunks = {c.index: c for c in ds.iter_stored_chunks()}
        assert all(c.location is None for c in chunks.values())
        fifth = chunks[(5, 0)].data
        assert chunks[(5, 0)].nbytes == len(fifth)
    with h5py.File(path, "r") as f:
        assert fifth == bytes(f["acq/x"].id.read_direct_chunk((500, 0))[1])


def test_family_hdf5_reads_chunks_through_hdf5(tmp_path: Path) -> None:
    """Family members split HDF5's address space: offsets are not file offsets."""
    pattern = tmp_path / "fam%d.h5"
    with h5py.File(pattern, "w", driver="family", memb_size=4096) as f:
        f.create_dataset("x", data=np.arange(5000, dtype="i4"), chunks=(500,), compression="gzip")
    with nwbstore.open(str(pattern), "r") as store:
        ds = store["x"]
        assert isinstance(ds, Dataset)
        chunks = [(c.index, c.location, c.data) for c in ds.iter_stored_chunks()]
    assert len(chunks) == 10 and all(location is None for _, location, _ in chunks)
    with h5py.File(pattern, "r", driver="family", memb_size=4096) as f:
        for index, _, data in chunks:
            assert data == bytes(f["x"].id.read_direct_chunk((index[0] * 500,))[1])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_chunk_locations_are_the_chunk_files(tmp_path: Path, zarr_format: int) -> None:
    url = tmp_path / "a.zarr"
    root = zarr.open_group(url, mode="w", zarr_format=zarr_format)
    arr = root.create_array("g/x", shape=(25,), chunks=(10,), dtype="i2", fill_value=0)
    arr[:10] = np.arange(10, dtype="i2")
    arr[20:] = np.arange(5, dtype="i2")
    chunks = _stored_chunks(url, "g/x")
    assert [c.index for c in chunks] == [(0,), (2,)]
    for c in chunks:
        key = arr.metadata.encode_chunk_key(c.index)
        expected = (url / "g" / "x" / key).read_bytes()
        assert c.location == ChunkLocation(str(url / "g" / "x" / key), 0, len(expected))
        assert c.data == expected


def test_memory_zarr_chunks_have_no_location() -> None:
    with nwbstore.open("memory://loc-test.zarr", "w") as store:
        ds = store.root.create_dataset(
            "x", data=np.arange(30, dtype="f8"), settings=DatasetSettings(chunks=(10,))
        )
        chunks = [(c.location, c.data) for c in ds.iter_stored_chunks()]
        direct = ds.zarr_array.store_path.store  # type: ignore[attr-defined]
    assert len(chunks) == 3 and all(location is None for location, _ in chunks)
    assert (
        chunks[0][1] == sync(direct.get("x/c/0", prototype=default_buffer_prototype())).to_bytes()
    )


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_hdf5_to_local_zarr_copies_chunk_bytes_file_to_file(
    tmp_path: Path, zarr_format: int
) -> None:
    src = tmp_path / "a.h5"
    data = _write_h5(src, userblock=512)
    dst = tmp_path / "b.zarr"
    report = nwbstore.convert(src, dst, zarr_format=zarr_format, progress=False)
    assert report.chunks_raw == 6 and report.chunks_transcoded == 0
    assert "/acq/x" in report.datasets_raw
    arr = zarr.open_array(dst / "acq" / "x", mode="r")
    expected = data.copy()
    expected[500:1000] = -1  # never written: the fill value, in both formats
    np.testing.assert_array_equal(arr[:], expected)
    with h5py.File(src, "r") as f:
        for index in (0, 1, 2, 3, 4, 10):
            stored = bytes(f["acq/x"].id.read_direct_chunk((index * 100, 0))[1])
            key = arr.metadata.encode_chunk_key((index, 0))
            assert (dst / "acq" / "x" / key).read_bytes() == stored
        for index in range(5, 10):
            assert not (dst / "acq" / "x" / arr.metadata.encode_chunk_key((index, 0))).exists()


def test_local_zarr_to_local_zarr_copies_chunk_files(tmp_path: Path) -> None:
    src = tmp_path / "a.zarr"
    root = zarr.open_group(src, mode="w", zarr_format=3)
    arr = root.create_array("x", shape=(1000,), chunks=(64,), dtype="f4", compressors=None)
    arr[:] = np.linspace(0, 1, 1000, dtype="f4")
    dst = tmp_path / "b.zarr"
    report = nwbstore.convert(src, dst, progress=False)
    assert report.chunks_raw == 16
    for i in range(16):
        key = f"c/{i}"
        assert (dst / "x" / key).read_bytes() == (src / "x" / key).read_bytes()
    np.testing.assert_array_equal(zarr.open_array(dst / "x", mode="r")[:], arr[:])


def test_copy_to_file_without_copy_file_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kernels and file systems without copy_file_range get the pread/write path."""
    source = tmp_path / "src.bin"
    payload = os.urandom(3 * 2**20 + 17)
    source.write_bytes(b"head" + payload + b"tail")
    location = ChunkLocation(str(source), 4, len(payload))
    for flag in (True, False):
        monkeypatch.setattr(_local_files, "_COPY_FILE_RANGE", flag)
        out = tmp_path / f"new-dir-{flag}" / "sub" / "chunk"
        copy_to_file(location, str(out))
        assert out.read_bytes() == payload
        copy_to_file(ChunkLocation(str(source), 0, 4), str(out))  # replaces, never appends
        assert out.read_bytes() == b"head"
    assert read_location(location) == payload


def test_short_source_is_a_corrupt_chunk(tmp_path: Path) -> None:
    source = tmp_path / "cut.bin"
    source.write_bytes(b"x" * 100)
    beyond = ChunkLocation(str(source), 60, 80)
    with pytest.raises(CorruptChunkError, match=r"cut\.bin ends before byte 140"):
        read_location(beyond)
    with pytest.raises(CorruptChunkError, match="40 of 80 bytes missing"):
        copy_to_file(beyond, str(tmp_path / "out"))
