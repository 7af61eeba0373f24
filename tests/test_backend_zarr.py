"""The Zarr backend: local v3/v2, memory and S3 stores, checked with zarr and hdmf-zarr directly."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore import ExternalLink, Reference, SoftLink, reference_dtype, string_dtype
from nwbstore.backends.zarr import ZarrStore
from nwbstore.errors import (
    ContainsNodeError,
    EndpointUnreachableError,
    NodeNotFoundError,
    PickleRefusedError,
    ReadOnlyError,
    StoreExistsError,
    StoreNotFoundError,
    UnknownFormatError,
    UnsupportedDtypeError,
)

FORMATS = [3, 2]


def _zopen(path: Path | str, **kwargs: Any) -> zarr.Group:
    return zarr.open_group(str(path), mode="r", **kwargs)


# -- opening, modes, format detection -----------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_create_local_writes_requested_format(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "f.zarr"
    with nwbstore.open(path, "w", zarr_format=fmt) as store:
        assert isinstance(store, ZarrStore)
        assert store.format == "zarr" and store.backend == "zarr"
        store.root.create_dataset("x", data=np.arange(5))
    marker = "zarr.json" if fmt == 3 else ".zgroup"
    assert (path / marker).exists()
    g = _zopen(path)
    assert g.metadata.zarr_format == fmt
    np.testing.assert_array_equal(g["x"][:], np.arange(5))


@pytest.mark.parametrize("fmt", FORMATS)
def test_reading_detects_format(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "f.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    g.create_array("x", data=np.arange(3))
    # zarr_format=3 is the default of nwbstore.open; an existing v2 store stays v2
    with nwbstore.open(path, "r+") as store:
        assert isinstance(store, ZarrStore)
        assert store.zarr_format == fmt
        store.root.create_group("new")
    assert _zopen(path).metadata.zarr_format == fmt
    assert "new" in _zopen(path)


def test_modes(tmp_path: Path) -> None:
    path = tmp_path / "m.zarr"
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        nwbstore.open(path, "r")
    with pytest.raises(StoreNotFoundError):
        nwbstore.open(path, "r+", format="zarr")
    with nwbstore.open(path, "w-") as store:
        store.root.attrs["a"] = 1
    for mode in ("w-", "x"):
        with pytest.raises(StoreExistsError, match="already exists"):
            nwbstore.open(path, mode)  # type: ignore[arg-type]
    with nwbstore.open(path, "a") as store:
        assert store.root.attrs["a"] == 1
        store.root.attrs["b"] = 2
    with nwbstore.open(path, "w") as store:
        assert "a" not in store.root.attrs
    with nwbstore.open(tmp_path / "new.zarr", "a", zarr_format=2) as store:
        store.root.attrs["c"] = 3
    assert _zopen(tmp_path / "new.zarr").attrs["c"] == 3
    assert (tmp_path / "new.zarr" / ".zgroup").exists()


def test_directory_that_is_not_zarr(tmp_path: Path) -> None:
    path = tmp_path / "plain.zarr"
    path.mkdir()
    (path / "notes.txt").write_text("hello")
    with pytest.raises(UnknownFormatError, match="not a Zarr store"):
        ZarrStore.open_url(str(path), "r")
    with pytest.raises(UnknownFormatError):
        ZarrStore.open_url(str(path), "a")
    with pytest.raises(StoreExistsError, match="would delete"):
        ZarrStore.open_url(str(path), "w")
    assert (path / "notes.txt").exists()


def test_write_in_read_mode(tmp_path: Path) -> None:
    path = tmp_path / "ro.zarr"
    with nwbstore.open(path, "w") as store:
        store.root.create_dataset("x", data=[1, 2])
    with nwbstore.open(path, "r") as store:
        assert not store.capabilities.writable
        with pytest.raises(ReadOnlyError, match="read-only"):
            store.root.create_group("g")
        with pytest.raises(ReadOnlyError):
            store.root.attrs["a"] = 1
        with pytest.raises(ReadOnlyError):
            store["x"][0] = 5
    np.testing.assert_array_equal(_zopen(path)["x"][:], [1, 2])


def test_existing_node(tmp_path: Path) -> None:
    with nwbstore.open(tmp_path / "e.zarr", "w") as store:
        store.root.create_group("g")
        store.root.create_soft_link("l", "/g")
        with pytest.raises(ContainsNodeError, match="exists"):
            store.root.create_group("g")
        with pytest.raises(ContainsNodeError):
            store.root.create_dataset("g", data=[1])
        with pytest.raises(ContainsNodeError):
            store.root.create_group("l")


def test_capabilities(tmp_path: Path) -> None:
    with nwbstore.open(tmp_path / "c.zarr", "w") as store:
        caps = store.capabilities
        assert caps.writable and caps.raw_chunks and caps.resize and caps.compound
        assert caps.soft_links and caps.external_links and caps.references and caps.fixed_bytes


# -- consolidated metadata ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_consolidated_metadata_written_at_close(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "cons.zarr"
    store = nwbstore.open(path, "w", zarr_format=fmt)
    store.root.create_dataset("a/b", data=[1.0, 2.0])
    if fmt == 2:
        assert not (path / ".zmetadata").exists()
    store.close()
    g = zarr.open_consolidated(str(path), zarr_format=fmt)
    assert "a/b" in (g.metadata.consolidated_metadata.flattened_metadata)  # type: ignore[union-attr]
    # a writer adds a node: the next reader sees it through consolidated metadata
    with nwbstore.open(path, "r+") as store:
        store.root.create_dataset("a/c", data=[3])
    g = zarr.open_consolidated(str(path), zarr_format=fmt)
    assert "a/c" in g.metadata.consolidated_metadata.flattened_metadata  # type: ignore[union-attr]
    with nwbstore.open(path, "r") as store:
        assert store.root["a"].keys() == ["b", "c"]


# -- dtypes -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_dtypes_round_trip(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "d.zarr"
    compound = np.array(
        [(1, 2.5, b"ab"), (3, 4.5, b"c")], dtype=[("i", "<i4"), ("f", ">f8"), ("s", "S3")]
    )
    values: dict[str, np.ndarray] = {
        "bool": np.array([True, False]),
        "i1": np.arange(3, dtype="i1"),
        "u8": np.arange(3, dtype="<u8"),
        "be_i4": np.arange(3, dtype=">i4"),
        "be_f8": np.linspace(0, 1, 4).astype(">f8"),
        "f4": np.ones((2, 3), dtype="<f4"),
        "fixed": np.array([b"abc", b"d"], dtype="S3"),
        "compound": compound,
        "empty": np.zeros((0,), dtype="i8"),
        "empty2": np.zeros((0, 3), dtype="f4"),
    }
    with nwbstore.open(path, "w", zarr_format=fmt) as store:
        for name, arr in values.items():
            store.root.create_dataset(name, data=arr)
        store.root.create_dataset("scalar", data=np.float32(1.5))
        store.root.create_dataset("text", data=["a", "bé", ""])
        store.root.create_dataset("text_scalar", data="hello")
        store.root.create_dataset("text_empty", shape=(0,), dtype=str)
    g = _zopen(path)
    for name, arr in values.items():
        got = g[name][...]
        np.testing.assert_array_equal(got, arr, err_msg=name)
        assert g[name].shape == arr.shape
        assert got.dtype == arr.dtype or got.dtype == arr.dtype.newbyteorder("="), name
    if fmt == 3:  # zarr v3 reads native order; the big-endian bytes are kept by the codec
        meta = json.loads((path / "be_i4" / "zarr.json").read_text())
        assert meta["codecs"][0] == {"name": "bytes", "configuration": {"endian": "big"}}
    assert g["scalar"].shape == () and g["scalar"][()] == 1.5
    assert list(g["text"][:]) == ["a", "bé", ""]
    if fmt == 3:
        assert g["text"].metadata.to_dict()["data_type"] == "string"
        assert g["text"].attrs["_DTYPE"] == "str"
    else:
        meta = json.loads((path / "text" / ".zarray").read_text())
        assert meta["dtype"] == "|O"
        assert meta["filters"] == [{"id": "vlen-utf8"}]
        assert g["text"].attrs["zarr_dtype"] == "str"
    with nwbstore.open(path, "r") as store:
        for name, arr in values.items():
            ds = store[name]
            if fmt == 3 and name == "compound":
                # v3 struct fields carry no byte order: big-endian fields come back native
                assert ds.dtype == np.dtype([("i", "<i4"), ("f", "<f8"), ("s", "S3")])
            else:
                assert ds.dtype == arr.dtype, name
            np.testing.assert_array_equal(ds[...], arr)
        text = store["text"]
        assert text.dtype == string_dtype()
        got = text[:]
        assert got.dtype == object and list(got) == ["a", "bé", ""]
        assert store["text_scalar"][()] == "hello"
        assert store["text_empty"].shape == (0,)
        assert store["scalar"].shape == () and store["scalar"][()] == np.float32(1.5)


def test_unsupported_dtype(tmp_path: Path) -> None:
    with nwbstore.open(tmp_path / "u.zarr", "w") as store:
        with pytest.raises(UnsupportedDtypeError, match="'/c'"):
            store.root.create_dataset("c", data=np.array([1 + 2j]))
        nested = np.dtype([("a", [("x", "i4")])])
        with pytest.raises(UnsupportedDtypeError, match="nested"):
            store.root.create_dataset("n", shape=(2,), dtype=nested)


def test_write_resize_append(tmp_path: Path) -> None:
    path = tmp_path / "r.zarr"
    with nwbstore.open(path, "w") as store:
        ds = store.root.create_dataset("x", data=np.arange(4, dtype="i4"))
        assert ds.maxshape == (None,)  # a Zarr array can always grow
        assert ds.settings.maxshape is None  # but no limit was declared: an HDF5 copy is fixed
        ds.append([4, 5])
        ds[0] = 10
        text = store.root.create_dataset("t", data=["a"])
        text.append(["b"])
    g = _zopen(path)
    np.testing.assert_array_equal(g["x"][:], [10, 1, 2, 3, 4, 5])
    assert list(g["t"][:]) == ["a", "b"]


# -- attributes ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_attributes(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "a.zarr"
    with nwbstore.open(path, "w", zarr_format=fmt) as store:
        ds = store.root.create_dataset("x", data=[1])
        attrs = store.root.attrs
        attrs["s"] = "text"
        attrs["i"] = np.int64(3)
        attrs["f"] = np.float32(0.5)
        attrs["b"] = np.bool_(True)
        attrs["arr"] = np.arange(3)
        attrs["strs"] = np.array(["a", "b"], dtype=object)
        attrs["bytes"] = b"raw"
        attrs["nan"] = float("nan")
        attrs[".specloc"] = Reference("/x")
        attrs.update_many({"u1": 1, "u2": [1.5, 2.5]})
        ds.attrs["ref"] = Reference("/x")
        with pytest.raises(ReadOnlyError, match="reserved"):
            attrs["_LINKS"] = []
    g = _zopen(path)
    assert g.attrs["s"] == "text" and g.attrs["i"] == 3 and g.attrs["b"] is True
    assert g.attrs["arr"] == [0, 1, 2] and g.attrs["bytes"] == "raw"
    assert g.attrs[".specloc"] == "x"  # hdmf-zarr stores the spec location as a plain path
    if fmt == 3:
        assert g["x"].attrs["ref"] == {"_REFERENCE": {"source": ".", "path": "/x"}}
    else:
        assert g["x"].attrs["ref"] == {
            "zarr_dtype": "object",
            "value": {"source": ".", "path": "/x"},
        }
    with nwbstore.open(path, "r") as store:
        attrs = store.root.attrs
        assert attrs["s"] == "text"
        assert attrs["i"] == 3 and attrs["b"] is True
        np.testing.assert_array_equal(attrs["arr"], [0, 1, 2])
        assert isinstance(attrs["arr"], np.ndarray)
        assert list(attrs["strs"]) == ["a", "b"]
        assert np.isnan(attrs["nan"])
        assert attrs[".specloc"] == Reference("/x")
        assert store["x"].attrs["ref"] == Reference("/x")
        np.testing.assert_array_equal(attrs["u2"], [1.5, 2.5])
        assert "_DTYPE" not in store["x"].attrs and "zarr_dtype" not in store["x"].attrs


# -- links --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_links_layout_and_following(tmp_path: Path, fmt: int) -> None:
    other = tmp_path / "other.zarr"
    with nwbstore.open(other, "w", zarr_format=fmt) as store:
        store.root.create_dataset("d/data", data=np.arange(3))
    path = tmp_path / "main.zarr"
    with nwbstore.open(path, "w", zarr_format=fmt) as store:
        store.root.create_dataset("g/x", data=np.arange(5))
        store.root.create_soft_link("g/soft", "/g/x")
        store.root.create_external_link("g/ext", "other.zarr", "/d/data")
        store.root.create_soft_link("dangling", "/nope")
    key = "_LINKS" if fmt == 3 else "zarr_link"
    assert _zopen(path)["g"].attrs[key] == [
        {"source": ".", "path": "/g/x", "name": "soft"},
        {"source": "../other.zarr", "path": "/d/data", "name": "ext"},
    ]
    with nwbstore.open(path, "r") as store:
        g = store["g"]
        assert g.keys() == ["ext", "soft", "x"]
        assert g.get_link("soft") == SoftLink("/g/x")
        assert g.get_link("ext") == ExternalLink("other.zarr", "/d/data")
        assert g.get_link("x") is None
        np.testing.assert_array_equal(g["soft"][:], np.arange(5))
        np.testing.assert_array_equal(g["ext"][:], np.arange(3))
        assert dict(store.root.links()) == {"dangling": SoftLink("/nope")}
        with pytest.raises(NodeNotFoundError, match=r"'/dangling'.*'/nope'"):
            store["dangling"]
        assert "_LINKS" not in g.attrs and "zarr_link" not in g.attrs
    with nwbstore.open(path, "r+") as store:
        del store.root["g/soft"]
    assert [e["name"] for e in _zopen(path)["g"].attrs[key]] == ["ext"]


def test_legacy_zarr_link_attribute(tmp_path: Path) -> None:
    path = tmp_path / "legacy.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=2)
    g.create_array("x", data=np.arange(2))
    g.attrs["zarr_link"] = [
        {"source": ".", "path": "/x", "name": "l1"},
        # hdmf-zarr < 0.6 wrote sources relative to the folder holding the store
        {"source": "legacy.zarr", "path": "/x", "name": "l2"},
    ]
    with nwbstore.open(path, "r") as store:
        assert store.root.get_link("l1") == SoftLink("/x")
        assert store.root.get_link("l2") == SoftLink("/x")
        np.testing.assert_array_equal(store["l2"][:], [0, 1])


def test_external_link_urls_kept(tmp_path: Path) -> None:
    path = tmp_path / "u.zarr"
    with nwbstore.open(path, "w") as store:
        store.root.create_external_link("s3", "s3://bucket/x.zarr", "/a")
        store.root.create_external_link("abs", "/data/x.zarr", "/a")
        store.root.create_external_link("up", "../x.zarr", "/a")
        with pytest.raises(NodeNotFoundError, match="dangling"):
            store["abs"]
    links = {e["name"]: e["source"] for e in _zopen(path).attrs["_LINKS"]}
    assert links == {"s3": "s3://bucket/x.zarr", "abs": "/data/x.zarr", "up": "../../x.zarr"}
    with nwbstore.open(path, "r") as store:
        assert store.root.get_link("up") == ExternalLink("../x.zarr", "/a")
        assert store.root.get_link("s3") == ExternalLink("s3://bucket/x.zarr", "/a")


# -- references ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_reference_datasets(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "refs.zarr"
    rows = np.array(
        [(1, Reference("/a"), "x"), (2, Reference("/b"), "yy")],
        dtype=[("i", "i4"), ("r", reference_dtype), ("s", string_dtype())],
    )
    with nwbstore.open(path, "w", zarr_format=fmt) as store:
        store.root.create_dataset("a", data=[1])
        store.root.create_group("b")
        store.root.create_dataset("refs", data=[Reference("/a"), Reference("/b")])
        store.root.create_dataset("table", data=rows)
    g = _zopen(path)
    if fmt == 3:
        assert g["refs"].attrs["_DTYPE"] == "object_reference"
        assert g["refs"].metadata.to_dict()["data_type"] == "string"
        assert list(g["refs"][:]) == ["/a", "/b"]
    else:
        assert g["refs"].attrs["zarr_dtype"] == "object"
        meta = json.loads((path / "refs" / ".zarray").read_text())
        assert meta["filters"] == [{"id": "vlen-utf8"}]
        assert "pickle" not in json.dumps(meta)
        assert [json.loads(s) for s in g["refs"][:]] == [
            {"source": ".", "path": "/a"},
            {"source": ".", "path": "/b"},
        ]
    assert g["table"].attrs["_REFERENCE_FIELDS"] == ["r"]
    assert g["table"].dtype["r"].kind == "U"
    assert list(g["table"][:]["r"]) == ["/a", "/b"]
    with nwbstore.open(path, "r") as store:
        refs = store["refs"]
        assert refs.dtype == reference_dtype
        assert list(refs[:]) == [Reference("/a"), Reference("/b")]
        table = store["table"][:]
        assert list(table["r"]) == [Reference("/a"), Reference("/b")]
        assert list(table["s"]) == ["x", "yy"]
        assert list(table["i"]) == [1, 2]


# -- pickle -------------------------------------------------------------------------------


def test_pickle_codec_refused(tmp_path: Path) -> None:
    """An hdmf-zarr 0.13 object array declares Pickle: refused without unpickling anything."""
    path = tmp_path / "pk.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=2)
    g.create_array("ok", data=np.arange(2))
    (path / "pk").mkdir()
    # metadata only: no chunk holds pickled bytes
    (path / "pk" / ".zarray").write_text(
        json.dumps(
            {
                "zarr_format": 2,
                "shape": [2],
                "chunks": [2],
                "dtype": "|O",
                "fill_value": 0,
                "order": "C",
                "filters": [{"id": "pickle", "protocol": 5}],
                "compressor": None,
                "dimension_separator": ".",
            }
        )
    )
    with nwbstore.open(path, "r") as store:
        assert store.root.keys() == ["ok", "pk"]
        np.testing.assert_array_equal(store["ok"][:], [0, 1])
        with pytest.raises(PickleRefusedError, match="'/pk'"):
            store["pk"]


# -- memory -------------------------------------------------------------------------------


def test_memory_store_shared_by_name() -> None:
    with nwbstore.open("memory://test-zarr-shared", "w") as store:
        store.root.create_dataset("x", data=[1, 2, 3])
    with nwbstore.open("memory://test-zarr-shared", "r") as store:
        np.testing.assert_array_equal(store["x"][:], [1, 2, 3])
    g = zarr.open_group(
        zarr.storage.MemoryStore(
            store_dict=__import__(
                "nwbstore.backends._zarr_storage", fromlist=["MEMORY_STORES"]
            ).MEMORY_STORES["test-zarr-shared"]
        ),
        mode="r",
    )
    np.testing.assert_array_equal(g["x"][:], [1, 2, 3])
    with nwbstore.open("memory://test-zarr-shared", "w") as store:
        assert store.root.keys() == []
    with pytest.raises(StoreNotFoundError):
        nwbstore.open("memory://test-zarr-never-created", "r")


def test_memory_store_v2() -> None:
    with nwbstore.open("memory://test-zarr-v2", "w", zarr_format=2) as store:
        store.root.create_dataset("t", data=["a"])
    with nwbstore.open("memory://test-zarr-v2", "r") as store:
        assert isinstance(store, ZarrStore) and store.zarr_format == 2
        assert list(store["t"][:]) == ["a"]


# -- S3 -----------------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("fmt", FORMATS)
def test_s3_round_trip(s3_server: Any, s3_bucket: str, fmt: int) -> None:
    url = f"s3://{s3_bucket}/dir/f.zarr"
    opts = s3_server.storage_options
    with nwbstore.open(url, "w", zarr_format=fmt, storage_options=opts) as store:
        store.root.create_dataset("g/x", data=np.arange(10))
        store.root.create_soft_link("l", "/g/x")
        store.root.attrs["r"] = Reference("/g")
    fs = s3_server.filesystem()
    keys = fs.ls(f"{s3_bucket}/dir/f.zarr", detail=False)
    assert any(k.endswith("zarr.json" if fmt == 3 else ".zmetadata") for k in keys)
    g = zarr.open_group(url, mode="r", storage_options=opts)
    np.testing.assert_array_equal(g["g/x"][:], np.arange(10))
    with nwbstore.open(url, "r", storage_options=opts) as store:
        assert isinstance(store, ZarrStore) and store.zarr_format == fmt
        np.testing.assert_array_equal(store["l"][:], np.arange(10))
        assert store.root.attrs["r"] == Reference("/g")
        with pytest.raises(ReadOnlyError):
            store.root.create_group("no")


@pytest.mark.s3
def test_s3_external_link_between_stores(s3_server: Any, s3_bucket: str) -> None:
    opts = s3_server.storage_options
    with nwbstore.open(f"s3://{s3_bucket}/b.zarr", "w", storage_options=opts) as store:
        store.root.create_dataset("d", data=[7, 8])
    with nwbstore.open(f"s3://{s3_bucket}/a.zarr", "w", storage_options=opts) as store:
        store.root.create_external_link("e", "b.zarr", "/d")
    with nwbstore.open(f"s3://{s3_bucket}/a.zarr", "r", storage_options=opts) as store:
        np.testing.assert_array_equal(store["e"][:], [7, 8])


@pytest.mark.s3
def test_s3_endpoint_from_environment(
    s3_server: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    opts = {"skip_instance_cache": True}
    url = f"s3://{s3_bucket}/env.zarr"
    with nwbstore.open(url, "w", storage_options=opts) as store:
        store.root.create_dataset("x", data=[1])
    g = zarr.open_group(url, mode="r", storage_options=s3_server.storage_options)
    np.testing.assert_array_equal(g["x"][:], [1])


@pytest.mark.s3
def test_s3_missing_bucket(s3_server: Any) -> None:
    url = "s3://no-such-bucket-zarr/f.zarr"
    for mode in ("r", "w"):
        with pytest.raises(StoreNotFoundError, match="no-such-bucket-zarr"):
            nwbstore.open(url, mode, format="zarr", storage_options=s3_server.storage_options)  # type: ignore[arg-type]


@pytest.mark.s3
def test_s3_missing_store(s3_server: Any, s3_bucket: str) -> None:
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        ZarrStore.open_url(
            f"s3://{s3_bucket}/nothing.zarr", "r", storage_options=s3_server.storage_options
        )


def test_s3_unreachable_endpoint_fails_fast() -> None:
    opts = {
        "endpoint_url": "http://127.0.0.1:9",
        "key": "k",
        "secret": "s",
        "skip_instance_cache": True,
    }
    start = time.monotonic()
    # a network failure, not a missing store (issue 8): its own class, a ConnectionError
    with pytest.raises(EndpointUnreachableError, match=r"127\.0\.0\.1:9"):
        ZarrStore.open_url("s3://bucket/f.zarr", "r", storage_options=opts)
    assert time.monotonic() - start < 15


# -- hdmf-zarr interoperability -----------------------------------------------------------


def _nwbfile_with_linked_timestamps() -> Any:
    from datetime import UTC, datetime

    from pynwb import NWBFile, TimeSeries

    nwbfile = NWBFile(
        session_description="s",
        identifier="id",
        session_start_time=datetime(2024, 1, 1, tzinfo=UTC),
    )
    ts1 = TimeSeries(name="ts1", data=np.arange(4.0), unit="m", timestamps=np.arange(4.0) / 10)
    ts2 = TimeSeries(name="ts2", data=np.arange(4.0) * 2, unit="m", timestamps=ts1)
    nwbfile.add_acquisition(ts1)
    nwbfile.add_acquisition(ts2)
    return nwbfile


def test_reads_links_written_by_hdmf_zarr(tmp_path: Path) -> None:
    pytest.importorskip("pynwb")
    from hdmf_zarr import NWBZarrIO

    path = tmp_path / "hdmf.nwb.zarr"
    with NWBZarrIO(str(path), mode="w") as io:
        io.write(_nwbfile_with_linked_timestamps())
    with nwbstore.open(path, "r") as store:
        link = store["acquisition/ts2"].get_link("timestamps")
        assert link == SoftLink("/acquisition/ts1/timestamps")
        np.testing.assert_allclose(store["acquisition/ts2/timestamps"][:], np.arange(4.0) / 10)
        # hdmf-zarr's plain path reads as the object reference HDF5 NWB files hold there
        assert store.root.attrs[".specloc"] == Reference("/specifications")
    assert zarr.open_group(path, mode="r").attrs[".specloc"] == "specifications"


def test_hdmf_zarr_reads_links_and_references_written_by_nwbstore(tmp_path: Path) -> None:
    pytest.importorskip("pynwb")
    from hdmf_zarr import NWBZarrIO

    src = tmp_path / "src.nwb.zarr"
    nwbfile = _nwbfile_with_linked_timestamps()
    nwbfile.acquisition["ts2"].timestamps  # noqa: B018 - linked to ts1
    with NWBZarrIO(str(src), mode="w") as io:
        io.write(nwbfile)
    # replace the link in a copy by one nwbstore writes, and add a reference dataset
    import shutil

    dst = tmp_path / "copy.nwb.zarr"
    shutil.copytree(src, dst)
    with nwbstore.open(dst, "r+") as store:
        ts2 = store["acquisition/ts2"]
        assert isinstance(ts2, nwbstore.Group)
        del ts2["timestamps"]
        assert "timestamps" not in ts2
        ts2.create_soft_link("timestamps", "/acquisition/ts1/timestamps")
        store.root.attrs["note"] = "touched by nwbstore"
    with NWBZarrIO(str(dst), mode="r") as io:
        read = io.read()
        ts2_read = read.acquisition["ts2"]
        np.testing.assert_allclose(ts2_read.timestamps[:], np.arange(4.0) / 10)
        assert read.acquisition["ts1"].timestamps is ts2_read.timestamps


def test_hdmf_zarr_resolves_nwbstore_link_and_reference(tmp_path: Path) -> None:
    """Plain ZarrIO (no NWB schema) resolves the _LINKS and references nwbstore writes."""
    from hdmf_zarr.backend import ZarrIO

    other = tmp_path / "other.zarr"
    with nwbstore.open(other, "w") as store:
        store.root.create_dataset("d", data=np.arange(3))
    path = tmp_path / "main.zarr"
    with nwbstore.open(path, "w") as store:
        store.root.create_dataset("x", data=np.arange(5))
        store.root.create_soft_link("soft", "/x")
        store.root.create_external_link("ext", "other.zarr", "/d")
        store.root.create_dataset("refs", data=[Reference("/x")])
    with ZarrIO(str(path), mode="r") as io:
        io.open()
        for name, expected in (("soft", np.arange(5)), ("ext", np.arange(3))):
            entry = next(e for e in io._file.attrs["_LINKS"] if e["name"] == name)
            _target, zobj = io.resolve_ref(entry)
            np.testing.assert_array_equal(zobj[:], expected)
        _target, zobj = io.resolve_ref(io._file["refs"][0])
        np.testing.assert_array_equal(zobj[:], np.arange(5))
    assert os.path.isdir(other)


def test_hdmf_zarr_v2_reader_resolves_what_nwbstore_writes(tmp_path: Path) -> None:
    """Zarr v2 output uses the hdmf-zarr 0.13 layout that ZarrV2IO reads (JSON, no Pickle)."""
    from hdmf_zarr.backend_zarrv2 import ZarrV2IO

    path = tmp_path / "v2.zarr"
    with nwbstore.open(path, "w", zarr_format=2) as store:
        store.root.create_dataset("x", data=np.arange(4))
        store.root.create_soft_link("soft", "/x")
        store.root.create_dataset("refs", data=[Reference("/x")])
    with ZarrV2IO(str(path), mode="r") as io:
        io.open()
        entry = io._file.attrs["zarr_link"][0]
        _target, zobj = io.resolve_ref(entry)
        np.testing.assert_array_equal(zobj[:], np.arange(4))
        _target, zobj = io.resolve_ref(io._file["refs"][0])
        np.testing.assert_array_equal(zobj[:], np.arange(4))


@pytest.mark.parametrize("fmt", FORMATS)
def test_declared_maxshape_is_kept_and_enforced(tmp_path: Path, fmt: int) -> None:
    from nwbstore.errors import SettingsError

    path = tmp_path / "ms.zarr"
    settings = nwbstore.DatasetSettings(chunks=(4,), maxshape=(8,))
    with nwbstore.open(path, "w", zarr_format=fmt) as store:
        ds = store.root.create_dataset("fixed", data=np.zeros(4), settings=settings)
        free = store.root.create_dataset(
            "free", data=np.zeros(4), settings=nwbstore.DatasetSettings(chunks=(4,))
        )
        assert ds.maxshape == (8,) and free.maxshape == (None,)
        ds.resize(8)
        with pytest.raises(SettingsError, match="maxshape"):
            ds.resize(9)
    g = _zopen(path)
    assert g["fixed"].shape == (8,) and g["fixed"].chunks == (4,)
    assert g["fixed"].attrs["_NWBSTORE_MAXSHAPE"] == [8]
    assert "_NWBSTORE_MAXSHAPE" not in g["free"].attrs
    with nwbstore.open(path, "r") as store:
        assert store["fixed"].maxshape == (8,)  # type: ignore[union-attr]
        assert "_NWBSTORE_MAXSHAPE" not in store["fixed"].attrs
