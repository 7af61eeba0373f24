"""Bad input: each gets a specific error, and nothing half-written is left looking valid."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nwbstore
from nwbstore.backends.registry import BackendSpec
from nwbstore.errors import (
    ContainsNodeError,
    MissingDependencyError,
    NodeNotFoundError,
    NwbStoreError,
    ReadOnlyError,
    StoreExistsError,
    StoreNotFoundError,
    UnknownFormatError,
    UnsupportedDtypeError,
)
from nwbstore.testing.conformance import Bypass, HDF5Bypass, ZarrBypass

LOCAL_KINDS = ["hdf5", "zarr3", "zarr2"]


def local_store(tmp_path: Path, kind: str) -> tuple[str, dict[str, Any], Bypass]:
    """URL, write kwargs and bypass of a new local store of ``kind``."""
    if kind == "hdf5":
        return str(tmp_path / "f.h5"), {}, HDF5Bypass()
    fmt = 3 if kind == "zarr3" else 2
    return str(tmp_path / "f.zarr"), {"zarr_format": fmt}, ZarrBypass()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, noted, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- missing input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["missing.h5", "missing.nwb", "missing.zarr", "missing", "missing_%d.h5"]
)
@pytest.mark.parametrize("mode", ["r", "r+"])
def test_missing_path(tmp_path: Path, name: str, mode: str) -> None:
    url = str(tmp_path / name)
    with pytest.raises(StoreNotFoundError) as info:
        nwbstore.open(url, mode)  # type: ignore[arg-type]
    assert isinstance(info.value, FileNotFoundError)
    assert name in str(info.value)
    assert list(tmp_path.iterdir()) == [], "opening a missing store created something"


def test_missing_memory_store() -> None:
    with pytest.raises(StoreNotFoundError):
        nwbstore.open("memory://never-written-store/f.zarr", "r")


def test_missing_parent_directory_hdf5(tmp_path: Path) -> None:
    url = tmp_path / "no" / "such" / "dir" / "f.h5"
    with pytest.raises(StoreNotFoundError) as info:
        nwbstore.open(url, "w")
    assert isinstance(info.value, FileNotFoundError)
    assert not (tmp_path / "no").exists()


# -- neither HDF5 nor Zarr -------------------------------------------------------------------


def test_unknown_file_lists_what_was_tried(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, long enough to hold an HDF5 signature if it were one\n" * 20)
    with pytest.raises(UnknownFormatError) as info:
        nwbstore.open(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "notes.txt" in message
    assert "extension" in message and "HDF5 signature" in message
    assert "format=" in message  # tells the user what to do


def test_unknown_directory_lists_what_was_tried(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "readme").write_text("x")
    with pytest.raises(UnknownFormatError) as info:
        nwbstore.open(tmp_path / "folder")
    message = str(info.value)
    assert "zarr.json" in message and ".zgroup" in message


def test_text_file_with_hdf5_extension(tmp_path: Path) -> None:
    path = tmp_path / "fake.h5"
    path.write_bytes(b"not an HDF5 file" * 100)
    with pytest.raises(UnknownFormatError) as info:
        nwbstore.open(path)
    assert "fake.h5" in str(info.value)
    assert path.read_bytes() == b"not an HDF5 file" * 100


def test_directory_with_zarr_extension_but_no_metadata(tmp_path: Path) -> None:
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises((UnknownFormatError, StoreNotFoundError)) as info:
        nwbstore.open(tmp_path / "empty.zarr")
    assert "empty.zarr" in str(info.value)
    assert list((tmp_path / "empty.zarr").iterdir()) == []


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        nwbstore.open("memory://x/f.zarr", "q")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zarr_format"):
        nwbstore.open("memory://x/f.zarr", "w", zarr_format=4)
    with pytest.raises(UnknownFormatError, match="netcdf"):
        nwbstore.open("memory://x/f.zarr", "w", format="netcdf")


def test_driver_on_zarr_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormatError, match="driver"):
        nwbstore.open(tmp_path / "f.zarr", "w", driver="sec2")
    assert not (tmp_path / "f.zarr").exists()


# -- modes and nodes -------------------------------------------------------------------------


def _seed(url: str, kwargs: dict[str, Any]) -> None:
    with nwbstore.open(url, "w", **kwargs) as store:
        store.root.create_dataset("g/data", data=np.arange(4))
        store.root.attrs["a"] = 1


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_write_in_read_mode(tmp_path: Path, kind: str) -> None:
    url, kwargs, raw = local_store(tmp_path, kind)
    _seed(url, kwargs)
    with nwbstore.open(url, "r") as store:
        with pytest.raises(ReadOnlyError) as info:
            store.root.create_group("new")
        assert isinstance(info.value, PermissionError)
        assert "r+" in str(info.value)  # says how to open for writing
        with pytest.raises(PermissionError):
            store["g/data"][0] = 99
        with pytest.raises(PermissionError):
            store.root.attrs["a"] = 2
    np.testing.assert_array_equal(raw.raw_read(url, "/g/data"), np.arange(4))
    assert raw.raw_attrs(url, "/")["a"] == 1
    assert raw.raw_kind(url, "/new") == "missing"


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_create_existing_node(tmp_path: Path, kind: str) -> None:
    url, kwargs, raw = local_store(tmp_path, kind)
    _seed(url, kwargs)
    with nwbstore.open(url, "r+") as store:
        for action in (
            lambda: store.root.create_group("g"),
            lambda: store.root.create_group("g/data"),
            lambda: store.root.create_dataset("g/data", data=[1.5]),
            lambda: store.root.create_soft_link("g/data", "/g"),
        ):
            with pytest.raises(ContainsNodeError) as info:
                action()
            assert isinstance(info.value, ValueError)
            assert "/g" in str(info.value)
    assert raw.raw_kind(url, "/g/data") == "dataset"
    np.testing.assert_array_equal(raw.raw_read(url, "/g/data"), np.arange(4))


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_read_missing_node(tmp_path: Path, kind: str) -> None:
    url, kwargs, _raw = local_store(tmp_path, kind)
    _seed(url, kwargs)
    with nwbstore.open(url, "r") as store:
        with pytest.raises(NodeNotFoundError) as info:
            store["g/nothing"]
        err = info.value
        assert isinstance(err, KeyError) and isinstance(err, FileNotFoundError)
        assert "/g/nothing" in str(err)
        with pytest.raises(KeyError):
            store["nothing/deeper"]


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_create_mode_refuses_existing_store(tmp_path: Path, kind: str) -> None:
    url, kwargs, raw = local_store(tmp_path, kind)
    _seed(url, kwargs)
    for mode in ("w-", "x"):
        with pytest.raises(StoreExistsError) as info:
            nwbstore.open(url, mode, **kwargs)  # type: ignore[arg-type]
        assert isinstance(info.value, FileExistsError)
        assert Path(url).name in str(info.value)
    np.testing.assert_array_equal(raw.raw_read(url, "/g/data"), np.arange(4))


# -- unsupported dtypes ----------------------------------------------------------------------

BAD_DTYPES = {
    "complex": np.array([1 + 2j, 3 - 1j]),
    "object": np.array([object(), object()], dtype=object),
    "mixed-object": np.array([1, "a", None], dtype=object),
    "datetime64": np.array(["2024-01-01", "2024-06-01"], dtype="datetime64[D]"),
    "timedelta64": np.array([1, 2], dtype="timedelta64[s]"),
}


@pytest.mark.parametrize("kind", LOCAL_KINDS)
@pytest.mark.parametrize("label", sorted(BAD_DTYPES))
def test_unsupported_dtype(tmp_path: Path, kind: str, label: str) -> None:
    url, kwargs, raw = local_store(tmp_path, kind)
    with nwbstore.open(url, "w", **kwargs) as store:
        with pytest.raises(UnsupportedDtypeError) as info:
            store.root.create_dataset("grp/bad", data=BAD_DTYPES[label])
        assert isinstance(info.value, TypeError)
        assert "bad" in str(info.value)
        with pytest.raises(UnsupportedDtypeError):
            store.root.create_dataset("bad2", shape=(2,), dtype=BAD_DTYPES[label].dtype)
        assert "bad2" not in store.root
        assert "grp/bad" not in store.root
    assert raw.raw_kind(url, "/bad2") == "missing"
    assert raw.raw_kind(url, "/grp/bad") == "missing"


@pytest.mark.parametrize("kind", LOCAL_KINDS)
@pytest.mark.parametrize(
    "value",
    [1 + 2j, object(), np.datetime64("2024-01-01")],
    ids=["complex", "object", "datetime64"],
)
def test_unsupported_attribute_value(tmp_path: Path, kind: str, value: Any) -> None:
    url, kwargs, raw = local_store(tmp_path, kind)
    with nwbstore.open(url, "w", **kwargs) as store:
        with pytest.raises(UnsupportedDtypeError) as info:
            store.root.attrs["bad"] = value
        assert "bad" in str(info.value)
        assert "bad" not in store.root.attrs
    assert "bad" not in raw.raw_attrs(url, "/")


# -- HDF5 family -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["w", "w-"])
def test_family_pattern_without_percent_d(tmp_path: Path, mode: str) -> None:
    url = tmp_path / "f.h5"
    with pytest.raises(NwbStoreError) as info:
        nwbstore.open(url, mode, driver="family", memb_size=1 << 20)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert "%d" in str(info.value) and "f.h5" in str(info.value)
    assert list(tmp_path.iterdir()) == [], "a failed create left a file behind"


# -- S3 --------------------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize(
    ("key", "mode", "fmt"),
    [("f.zarr", "r", None), ("f.zarr", "w", None), ("f.h5", "r", None), ("f", "r", "zarr")],
)
def test_missing_bucket(s3_server: Any, key: str, mode: str, fmt: str | None) -> None:
    bucket = "no-such-bucket-for-nwbstore"
    url = f"s3://{bucket}/{key}"
    with pytest.raises(StoreNotFoundError) as info:
        nwbstore.open(  # type: ignore[arg-type]
            url, mode, format=fmt, storage_options=s3_server.storage_options
        )
    assert isinstance(info.value, FileNotFoundError)
    assert bucket in str(info.value)
    assert bucket not in {b["Name"] for b in s3_server.boto3_client().list_buckets()["Buckets"]}


@pytest.mark.s3
def test_missing_key_in_bucket(s3_server: Any, s3_bucket: str) -> None:
    for key in ("f.zarr", "f.h5", "f"):
        with pytest.raises(StoreNotFoundError) as info:
            nwbstore.open(f"s3://{s3_bucket}/{key}", "r", storage_options=s3_server.storage_options)
        assert key in str(info.value)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("key", "mode"), [("f.zarr", "r"), ("f.zarr", "w"), ("f.h5", "r"), ("f", "r")]
)
def test_wrong_endpoint_fails_fast(key: str, mode: str) -> None:
    port = closed_port()
    endpoint = f"http://127.0.0.1:{port}"
    options = {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
        "skip_instance_cache": True,
    }
    start = time.monotonic()
    with pytest.raises(NwbStoreError) as info:
        nwbstore.open(f"s3://bucket/{key}", mode, storage_options=options)  # type: ignore[arg-type]
    elapsed = time.monotonic() - start
    assert isinstance(info.value, OSError), type(info.value)
    assert endpoint in str(info.value) or f"127.0.0.1:{port}" in str(info.value), info.value
    assert elapsed < 15, f"took {elapsed:.1f} s to report an unreachable endpoint"


# -- optional dependencies -------------------------------------------------------------------


def test_backend_spec_missing_module() -> None:
    spec = BackendSpec("bogus", "nwbstore_no_such_module_xyz:Store", "s3", "test backend")
    with pytest.raises(MissingDependencyError) as info:
        spec.load()
    assert isinstance(info.value, ImportError)
    assert "nwbstore[s3]" in str(info.value)
    assert "nwbstore_no_such_module_xyz" in str(info.value)


@pytest.mark.parametrize("url", ["s3://bucket/f.zarr", "s3://bucket/f.h5"])
def test_missing_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    import importlib

    fsspec_registry = importlib.import_module("fsspec.registry")  # fsspec.registry is a proxy
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs -> ImportError
    # fsspec keeps classes it already imported; forget it so the import is retried.
    monkeypatch.delitem(fsspec_registry._registry, "s3", raising=False)
    start = time.monotonic()
    with pytest.raises(MissingDependencyError) as info:
        nwbstore.open(url, "r", storage_options={"endpoint_url": "http://127.0.0.1:9"})
    assert isinstance(info.value, ImportError)
    assert "nwbstore[s3]" in str(info.value) and "s3fs" in str(info.value)
    assert time.monotonic() - start < 10
