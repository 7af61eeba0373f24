"""Format detection: explicit format=, then extension, then what is stored there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore.backends.registry import (
    BACKENDS,
    HDF5_MAGIC,
    BackendSpec,
    detect_backend,
    get_backend,
    split_protocol,
)
from nwbstore.errors import MissingDependencyError, StoreNotFoundError, UnknownFormatError


def _h5(path: Path, **kwargs: Any) -> Path:
    with h5py.File(path, "w", **kwargs) as f:
        f["x"] = np.arange(3)
    return path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("s.nwb", "hdf5"),
        ("s.h5", "hdf5"),
        ("s.hdf5", "hdf5"),
        ("s.HDF5", "hdf5"),
        ("s.hdf", "hdf5"),
        ("s.zarr", "zarr"),
        ("s.nwb.zarr", "zarr"),
        ("s.zarr/", "zarr"),
        ("s_%d.h5", "hdf5-family"),
        ("raw_%05d.nwb", "hdf5-family"),
    ],
)
def test_extension(tmp_path: Path, name: str, expected: str) -> None:
    assert detect_backend(str(tmp_path / name), "w") == expected


def test_explicit_format_beats_extension_and_content(tmp_path: Path) -> None:
    h5 = _h5(tmp_path / "looks.zarr")  # an HDF5 file with a Zarr name
    assert detect_backend(str(h5), "r", format="hdf5") == "hdf5"
    assert detect_backend(str(tmp_path / "new.h5"), "w", format="zarr") == "zarr"
    for alias in ("h5", "HDF5", "nwb", "hdf"):
        assert detect_backend(str(tmp_path / "x.zarr"), "w", format=alias) == "hdf5"
    with pytest.raises(UnknownFormatError, match="tiff"):
        detect_backend(str(tmp_path / "x"), "w", format="tiff")


def test_extension_beats_content(tmp_path: Path) -> None:
    zarr.open_group(str(tmp_path / "store.h5"), mode="w")  # a Zarr directory named .h5
    assert detect_backend(str(tmp_path / "store.h5"), "r") == "hdf5"


def test_hdf5_magic_without_extension(tmp_path: Path) -> None:
    path = _h5(tmp_path / "recording")
    assert detect_backend(str(path), "r") == "hdf5"
    with nwbstore.open(path) as store:
        assert store.format == "hdf5"
        np.testing.assert_array_equal(store["x"][...], np.arange(3))


@pytest.mark.parametrize("userblock", [512, 1024, 4096])
def test_hdf5_magic_after_userblock(tmp_path: Path, userblock: int) -> None:
    path = _h5(tmp_path / "with_userblock", userblock_size=userblock)
    raw = path.read_bytes()
    assert raw[:8] != HDF5_MAGIC and raw[userblock : userblock + 8] == HDF5_MAGIC
    assert detect_backend(str(path), "r") == "hdf5"
    with nwbstore.open(path) as store:
        np.testing.assert_array_equal(store["x"][...], np.arange(3))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_metadata_without_extension(tmp_path: Path, zarr_format: int) -> None:
    root = zarr.open_group(str(tmp_path / "session"), mode="w", zarr_format=zarr_format)
    root.create_array("x", data=np.arange(3))
    marker = "zarr.json" if zarr_format == 3 else ".zgroup"
    assert (tmp_path / "session" / marker).exists()
    assert detect_backend(str(tmp_path / "session"), "r") == "zarr"
    with nwbstore.open(tmp_path / "session") as store:
        assert store.format == "zarr"
        np.testing.assert_array_equal(store["x"][...], np.arange(3))


def test_bare_zarr_array_directory_is_zarr(tmp_path: Path) -> None:
    zarr.open_array(str(tmp_path / "arr"), mode="w", shape=(2,), dtype="i4", zarr_format=2)
    assert (tmp_path / "arr" / ".zarray").exists()
    assert detect_backend(str(tmp_path / "arr"), "r") == "zarr"


def test_unknown_content_lists_what_was_tried(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"\x00" * 4096)
    with pytest.raises(UnknownFormatError) as info:
        detect_backend(str(tmp_path / "blob"), "r")
    message = str(info.value)
    for tried in ("format=", "extension", "HDF5 signature"):
        assert tried in message, message


def test_missing_input_without_extension(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError):
        detect_backend(str(tmp_path / "nothing"), "r")
    with pytest.raises(UnknownFormatError):  # cannot guess what to create
        detect_backend(str(tmp_path / "nothing"), "w")


@pytest.mark.parametrize("mode", ["r", "w", "a"])
def test_memory_is_always_zarr(mode: str) -> None:
    assert detect_backend("memory://scratch/x.h5", mode) == "zarr"  # type: ignore[arg-type]
    assert detect_backend("memory://scratch", mode) == "zarr"  # type: ignore[arg-type]
    with pytest.raises(UnknownFormatError, match="memory"):
        detect_backend("memory://scratch", mode, format="hdf5")  # type: ignore[arg-type]


def test_family_from_pattern_or_driver(tmp_path: Path) -> None:
    assert detect_backend(str(tmp_path / "f_%d.h5"), "w") == "hdf5-family"
    assert detect_backend(str(tmp_path / "f_%d"), "w") == "hdf5-family"  # no extension
    assert detect_backend(str(tmp_path / "f.h5"), "w", driver="family") == "hdf5-family"
    assert detect_backend(str(tmp_path / "f.h5"), "w") == "hdf5"


def test_remote_urls(tmp_path: Path) -> None:
    assert detect_backend("s3://bucket/f.nwb", "r") == "hdf5-remote"
    assert detect_backend("https://example.org/f.h5", "r") == "hdf5-remote"
    assert detect_backend("s3://bucket/f.nwb.zarr", "r") == "zarr"
    assert detect_backend("s3://bucket/f.zarr", "w") == "zarr"


@pytest.mark.s3
def test_remote_sniffing(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    fs = s3_server.filesystem()
    options = s3_server.storage_options
    local = _h5(tmp_path / "f.h5")
    fs.put(str(local), f"{s3_bucket}/hdf5-no-ext")
    root = zarr.open_group(f"s3://{s3_bucket}/zarr-no-ext", mode="w", storage_options=options)
    root.create_array("x", data=np.arange(3))
    fs.pipe(f"{s3_bucket}/junk", b"junk" * 10)
    assert detect_backend(f"s3://{s3_bucket}/hdf5-no-ext", "r", storage_options=options) == (
        "hdf5-remote"
    )
    assert detect_backend(f"s3://{s3_bucket}/zarr-no-ext", "r", storage_options=options) == "zarr"
    with pytest.raises(UnknownFormatError) as info:
        detect_backend(f"s3://{s3_bucket}/junk", "r", storage_options=options)
    assert "zarr.json" in str(info.value) and "HDF5 signature" in str(info.value)
    with pytest.raises(StoreNotFoundError):
        detect_backend(f"s3://{s3_bucket}/absent", "r", storage_options=options)


def test_split_protocol() -> None:
    assert split_protocol("s3://b/k") == ("s3", "b/k")
    assert split_protocol("S3://b/k") == ("s3", "b/k")
    assert split_protocol("/tmp/x.h5") == ("file", "/tmp/x.h5")


def test_backend_table() -> None:
    assert {"hdf5", "hdf5-family", "hdf5-remote", "zarr"} <= set(BACKENDS)
    with pytest.raises(TypeError):
        BACKENDS["x"] = BACKENDS["zarr"]  # type: ignore[index]
    for name, spec in BACKENDS.items():
        assert spec.name == name and spec.extra and spec.description
        assert get_backend(name).__name__ == spec.target.partition(":")[2]
    with pytest.raises(UnknownFormatError) as info:
        get_backend("netcdf")
    assert "hdf5" in str(info.value) and "zarr" in str(info.value)


def test_backend_spec_names_the_extra() -> None:
    spec = BackendSpec("later", "no_such_pkg_for_nwbstore.mod:Store", "xarray", "test")
    with pytest.raises(MissingDependencyError) as info:
        spec.load()
    assert isinstance(info.value, ImportError)
    assert "pip install 'nwbstore[xarray]'" in str(info.value)
