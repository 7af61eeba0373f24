"""Unit tests of the HDF5 backend; results are checked with h5py directly."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np
import pytest

import nwbstore
from nwbstore.backends.hdf5 import HDF5Store
from nwbstore.errors import (
    NodeNotFoundError,
    ReadOnlyError,
    SettingsError,
    StoreExistsError,
    StoreNotFoundError,
    UnknownFormatError,
    UnsupportedDtypeError,
    UnsupportedOperationError,
)
from nwbstore.links import ExternalLink, Reference, SoftLink
from nwbstore.settings import DatasetSettings


def _settings_ready() -> bool:
    try:
        DatasetSettings().to_hdf5()
    except NotImplementedError:
        return False
    return True


needs_settings = pytest.mark.skipif(
    not _settings_ready(), reason="DatasetSettings.to_hdf5/from_hdf5 not implemented yet"
)


# -- opening and modes ------------------------------------------------------------------------


def test_write_then_read_with_h5py(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with nwbstore.open(path, "w") as store:
        assert isinstance(store, HDF5Store)
        assert (store.format, store.backend, store.mode) == ("hdf5", "hdf5", "w")
        caps = store.capabilities
        assert caps.writable and caps.raw_chunks and caps.resize and caps.references
        assert caps.compound and caps.fixed_bytes and caps.soft_links and caps.external_links
        assert store.h5file.driver == "sec2"
        store.root.create_dataset("g/x", data=np.arange(6, dtype="i2").reshape(2, 3))
    with h5py.File(path, "r") as f:
        assert isinstance(f["g"], h5py.Group)
        np.testing.assert_array_equal(f["g/x"][...], np.arange(6).reshape(2, 3))
        assert f["g/x"].dtype == np.dtype("i2")
    with nwbstore.open(path) as store:
        assert not store.capabilities.writable
        with pytest.raises(ReadOnlyError, match="read-only"):
            store.root.create_group("nope")
        with pytest.raises(ReadOnlyError):
            store["g/x"][0, 0] = 5
        with pytest.raises(ReadOnlyError):
            store.root.attrs["a"] = 1


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_missing_file(tmp_path: Path, mode: str) -> None:
    with pytest.raises(StoreNotFoundError, match=r"missing[.]h5") as info:
        nwbstore.open(tmp_path / "missing.h5", mode)  # type: ignore[arg-type]
    assert isinstance(info.value, FileNotFoundError)


def test_missing_parent_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="parent directory"):
        nwbstore.open(tmp_path / "no" / "dir.h5", "w")


@pytest.mark.parametrize("mode", ["w-", "x"])
def test_exclusive_create(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "a.h5"
    with nwbstore.open(path, mode) as store:  # type: ignore[arg-type]
        store.root.attrs["made"] = "once"
    with pytest.raises(StoreExistsError, match=r"a[.]h5") as info:
        nwbstore.open(path, mode)  # type: ignore[arg-type]
    assert isinstance(info.value, FileExistsError)
    with h5py.File(path, "r") as f:
        assert f.attrs["made"] == "once"


def test_w_replaces_and_a_appends(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with nwbstore.open(path, "a") as store:  # creates
        store.root.create_dataset("x", data=[1, 2])
    with nwbstore.open(path, "a") as store:  # keeps
        assert "x" in store
        store.root.create_dataset("y", data=[3])
    with nwbstore.open(path, "r+") as store:
        store["x"][0] = 10
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["x", "y"]
        assert f["x"][0] == 10
    with nwbstore.open(path, "w") as store:
        assert len(store.root) == 0
    with h5py.File(path, "r") as f:
        assert list(f) == []


@pytest.mark.parametrize("mode", ["r", "r+", "a"])
def test_not_hdf5(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("not an HDF5 file " * 100)
    with pytest.raises(UnknownFormatError, match="not an HDF5 file"):
        nwbstore.open(path, mode)  # type: ignore[arg-type]


def test_directory_is_not_hdf5(tmp_path: Path) -> None:
    (tmp_path / "d.h5").mkdir()
    with pytest.raises(UnknownFormatError, match="directory"):
        nwbstore.open(tmp_path / "d.h5")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied_is_read_only_error(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    h5py.File(path, "w").close()
    path.chmod(0o444)
    try:
        with pytest.raises(ReadOnlyError, match=r"a[.]h5"):
            nwbstore.open(path, "r+")
    finally:
        path.chmod(0o644)


def test_bad_driver_and_memb_size(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="driver='mpio'"):
        nwbstore.open(tmp_path / "a.h5", "w", driver="mpio")
    with pytest.raises(SettingsError, match="memb_size applies to HDF5 families"):
        nwbstore.open(tmp_path / "a.h5", "w", memb_size=1024)


def test_close_twice_closes_h5py_file(tmp_path: Path) -> None:
    store = nwbstore.open(tmp_path / "a.h5", "w")
    h5 = store.h5file  # type: ignore[attr-defined]
    store.close()
    store.close()
    assert store.closed and not h5.id.valid
    with pytest.raises(ReadOnlyError, match="closed"):
        store.root.create_group("g")


def test_plugin_filters_need_no_import_by_the_user(tmp_path: Path) -> None:
    path = tmp_path / "zstd.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(1000), chunks=(100,), **hdf5plugin.Zstd())
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    code = (
        "import sys, nwbstore\n"
        "with nwbstore.open(sys.argv[1]) as s:\n"
        "    print(int(s['x'][:].sum()))\n"
    )
    env = {**os.environ, "HDF5_PLUGIN_PATH": str(empty)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sum(range(1000)))
    assert "plugin" not in out.stderr


# -- family driver ----------------------------------------------------------------------------


def _members(tmp_path: Path, prefix: str = "fam_") -> list[Path]:
    return sorted(tmp_path.glob(f"{prefix}*.h5"), key=lambda p: int(p.stem.split("_")[-1]))


@pytest.mark.parametrize("n", [10, 20_000], ids=["one-member", "many-members"])
def test_family_write_then_read_without_memb_size(tmp_path: Path, n: int) -> None:
    pattern = str(tmp_path / "fam_%d.h5")
    with nwbstore.open(pattern, "w", memb_size=16 * 1024) as store:
        assert store.backend == "hdf5-family"
        store.root.create_dataset("x", data=np.arange(n))
    members = _members(tmp_path)
    assert (len(members) > 1) == (n > 10)
    if len(members) > 1:
        assert os.path.getsize(members[0]) == 16 * 1024
    # h5py needs the member size; nwbstore finds it in the superblock
    with h5py.File(pattern, "r", driver="family", memb_size=16 * 1024) as f:
        np.testing.assert_array_equal(f["x"][:], np.arange(n))
    with nwbstore.open(pattern) as store:
        assert store.backend == "hdf5-family"
        assert store.memb_size == 16 * 1024  # type: ignore[attr-defined]
        np.testing.assert_array_equal(store["x"][:], np.arange(n))
    with nwbstore.open(pattern, memb_size=16 * 1024) as store:  # the right size is accepted
        assert store["x"].shape == (n,)


def test_family_append_without_memb_size(tmp_path: Path) -> None:
    pattern = str(tmp_path / "fam_%d.h5")
    with nwbstore.open(pattern, "w", memb_size=8192) as store:
        store.root.create_dataset("x", data=np.arange(10))
    for mode in ("a", "r+"):
        with nwbstore.open(pattern, mode) as store:  # type: ignore[arg-type]
            store.root.create_dataset(f"y_{mode}", data=np.arange(5000))
    assert len(_members(tmp_path)) > 1
    with h5py.File(pattern, "r", driver="family", memb_size=8192) as f:
        assert sorted(f) == ["x", "y_a", "y_r+"]
        assert f["y_r+"][-1] == 4999


def test_family_wrong_memb_size(tmp_path: Path) -> None:
    pattern = str(tmp_path / "fam_%d.h5")
    with nwbstore.open(pattern, "w", memb_size=8192) as store:
        store.root.create_dataset("x", data=np.arange(5000))
    with pytest.raises(SettingsError, match=r"members of 8192 bytes.*memb_size=4096"):
        nwbstore.open(pattern, memb_size=4096)


def test_family_needs_memb_size_to_create(tmp_path: Path) -> None:
    for mode in ("w", "a", "x"):
        with pytest.raises(SettingsError, match="needs memb_size"):
            nwbstore.open(tmp_path / "fam_%d.h5", mode)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_family_missing_member_zero(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match=r"fam_0[.]h5"):
        nwbstore.open(tmp_path / "fam_%d.h5")


def test_family_exclusive_create(tmp_path: Path) -> None:
    pattern = tmp_path / "fam_%d.h5"
    nwbstore.open(pattern, "x", memb_size=4096).close()
    with pytest.raises(StoreExistsError, match=r"fam_0[.]h5"):
        nwbstore.open(pattern, "w-", memb_size=4096)


def test_family_pattern_rule(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"plain.h5.*%d"):
        nwbstore.open(tmp_path / "plain.h5", "w", driver="family", memb_size=4096)
    with pytest.raises(SettingsError, match=r"%d"):
        nwbstore.open(tmp_path / "fam_%s.h5", "w", memb_size=4096)


def test_family_zero_padded_pattern(tmp_path: Path) -> None:
    pattern = str(tmp_path / "fam_%03d.h5")
    with nwbstore.open(pattern, "w", memb_size=4096) as store:
        store.root.create_dataset("x", data=np.arange(2000))
    assert (tmp_path / "fam_000.h5").exists() and (tmp_path / "fam_001.h5").exists()
    with nwbstore.open(pattern) as store:
        assert store["x"][-1] == 1999


# -- remote (loopback S3) ---------------------------------------------------------------------


def _sample_file(path: Path) -> None:
    with h5py.File(path, "w") as f:
        g = f.create_group("acq")
        g.create_dataset("data", data=np.arange(100_000, dtype="f4"), chunks=(10_000,))
        f.create_dataset("names", data=["alpha", "béta"], dtype=h5py.string_dtype())
        f.create_dataset("refs", data=[g.ref, f["names"].ref], dtype=h5py.ref_dtype)
        f.attrs["title"] = "remote"
        f.attrs["target"] = g.ref


@pytest.mark.s3
def test_remote_read(tmp_path: Path, s3_server: Any, s3_bucket: str) -> None:
    local = tmp_path / "f.h5"
    _sample_file(local)
    s3_server.filesystem().put(str(local), f"{s3_bucket}/f.h5")
    url = f"s3://{s3_bucket}/f.h5"
    store = nwbstore.open(url, storage_options=s3_server.storage_options)
    try:
        assert (store.backend, store.format, store.mode) == ("hdf5-remote", "hdf5", "r")
        assert not store.capabilities.writable
        np.testing.assert_array_equal(store["acq/data"][5:10], np.arange(5, 10, dtype="f4"))
        assert store["acq/data"][:].sum() == np.arange(100_000, dtype="f4").sum()
        assert store["names"][:].tolist() == ["alpha", "béta"]
        assert store["refs"][:].tolist() == [Reference("/acq"), Reference("/names")]
        assert store.root.attrs["title"] == "remote"
        assert store.root.attrs["target"] == Reference("/acq")
        chunks = list(store["acq/data"].iter_stored_chunks())  # type: ignore[union-attr]
        assert [c.index for c in chunks] == [(i,) for i in range(10)]
        np.testing.assert_array_equal(
            np.frombuffer(chunks[3].data, dtype="f4"), np.arange(30_000, 40_000, dtype="f4")
        )
        with pytest.raises(ReadOnlyError):
            store.root.create_group("x")
        fileobj = store._fileobj  # type: ignore[attr-defined]
    finally:
        store.close()
    assert fileobj.closed


@pytest.mark.s3
@pytest.mark.parametrize("mode", ["w", "a", "r+"])
def test_remote_write_modes_refused(s3_server: Any, s3_bucket: str, mode: str) -> None:
    with pytest.raises(ReadOnlyError, match=r"remote HDF5 is read-only.*Zarr"):
        nwbstore.open(
            f"s3://{s3_bucket}/f.h5",
            mode,  # type: ignore[arg-type]
            storage_options=s3_server.storage_options,
        )


@pytest.mark.s3
def test_remote_missing(s3_server: Any, s3_bucket: str) -> None:
    with pytest.raises(StoreNotFoundError, match=r"missing[.]h5"):
        nwbstore.open(f"s3://{s3_bucket}/missing.h5", storage_options=s3_server.storage_options)


@pytest.mark.s3
def test_remote_not_hdf5(s3_server: Any, s3_bucket: str) -> None:
    s3_server.filesystem().pipe(f"{s3_bucket}/bad.h5", b"no signature here" * 100)
    with pytest.raises(UnknownFormatError, match="not an HDF5 file"):
        nwbstore.open(f"s3://{s3_bucket}/bad.h5", storage_options=s3_server.storage_options)


# -- links ------------------------------------------------------------------------------------


def test_soft_links(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with nwbstore.open(path, "w") as store:
        root = store.root
        root.create_dataset("data/x", data=[1, 2, 3])
        root.create_soft_link("alias", "/data/x")
        root.create_soft_link("grp/dangling", "/nowhere")
        assert root.get_link("alias") == SoftLink("/data/x")
        assert root.get_link("data") is None
        assert root.get_link("data/x") is None
        assert root["alias"][:].tolist() == [1, 2, 3]
        with pytest.raises(NodeNotFoundError, match=r"'/grp/dangling'.*'/nowhere'"):
            root["grp/dangling"]
        assert dict(root.links()) == {"alias": SoftLink("/data/x")}
        seen: list[str] = []
        root.visititems(lambda name, _node: seen.append(name))
        assert seen == ["data", "data/x", "grp"]  # links are not followed
    with h5py.File(path, "r") as f:
        link = f.get("alias", getlink=True)
        assert isinstance(link, h5py.SoftLink) and link.path == "/data/x"
        assert f.get("grp/dangling", getlink=True).path == "/nowhere"
        assert isinstance(f.get("data", getlink=True), h5py.HardLink)


def test_external_links_relative_to_linking_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    with h5py.File(tmp_path / "sub" / "target.h5", "w") as f:
        f.create_dataset("grp/y", data=np.arange(4))
    path = tmp_path / "sub" / "main.h5"
    with nwbstore.open(path, "w") as store:
        store.root.create_external_link("ext", "target.h5", "/grp/y")
        store.root.create_external_link("broken", "missing.h5", "/z")
    with h5py.File(path, "r") as f:
        link = f.get("ext", getlink=True)
        assert isinstance(link, h5py.ExternalLink)
        assert (link.filename, link.path) == ("target.h5", "/grp/y")
    monkeypatch.chdir(tmp_path)  # resolution must not depend on the working directory
    with nwbstore.open(path) as store:
        assert store.root.get_link("ext") == ExternalLink("target.h5", "/grp/y")
        assert store["ext"][:].tolist() == [0, 1, 2, 3]
        with pytest.raises(NodeNotFoundError, match=r"'/broken'.*'/z'.*missing.h5"):
            store["broken"]


def test_delete(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with nwbstore.open(path, "w") as store:
        store.root.create_dataset("x", data=[1])
        store.root.create_soft_link("l", "/x")
        del store.root["l"]
        del store.root["x"]
        with pytest.raises(NodeNotFoundError):
            del store.root["x"]
    with h5py.File(path, "r") as f:
        assert list(f) == []


# -- references -------------------------------------------------------------------------------


def test_reference_datasets_and_attributes(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with nwbstore.open(path, "w") as store:
        root = store.root
        root.create_dataset("units/spikes", data=[0.1, 0.2])
        root.create_group("units/meta")
        refs = root.create_dataset(
            "refs", data=[Reference("/units/spikes"), Reference("/units/meta")]
        )
        assert nwbstore.dtypes.is_reference_dtype(refs.dtype)
        assert refs[:].tolist() == [Reference("/units/spikes"), Reference("/units/meta")]
        assert refs[1] == Reference("/units/meta")
        refs[0] = Reference("/units")
        root.create_dataset("one", data=Reference("/units"))
        root.attrs["ref"] = Reference("/units/spikes")
        root.attrs["refs"] = [Reference("/units"), Reference("/units/meta")]
        with pytest.raises(NodeNotFoundError, match="'/nope'"):
            root.create_dataset("bad", data=[Reference("/nope")])
        with pytest.raises(NodeNotFoundError, match="'/nope'"):
            root.attrs["bad"] = Reference("/nope")
        assert "bad" not in root.attrs
    with h5py.File(path, "r") as f:
        assert h5py.check_dtype(ref=f["refs"].dtype) is h5py.Reference
        assert [f[r].name for r in f["refs"][:]] == ["/units", "/units/meta"]
        assert f[f["one"][()]].name == "/units"
        assert f[f.attrs["ref"]].name == "/units/spikes"
        assert [f[r].name for r in f.attrs["refs"]] == ["/units", "/units/meta"]
    with nwbstore.open(path) as store:
        assert store["one"][()] == Reference("/units")
        assert store.root.attrs["ref"] == Reference("/units/spikes")
        assert store.root.attrs["refs"].tolist() == [Reference("/units"), Reference("/units/meta")]


def test_null_reference_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("r", data=[f.ref, h5py.Reference()], dtype=h5py.ref_dtype)
    with nwbstore.open(path) as store:
        assert store["r"][:].tolist() == [Reference("/"), None]


def test_compound_with_string_and_reference_fields(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    dt = np.dtype(
        [("idx", "i4"), ("label", nwbstore.string_dtype()), ("target", nwbstore.reference_dtype)]
    )
    with nwbstore.open(path, "w") as store:
        store.root.create_group("electrodes")
        rows = np.empty(2, dtype=dt)
        rows["idx"] = [0, 1]
        rows["label"] = ["a", "bé"]
        rows["target"] = [Reference("/electrodes"), Reference("/")]
        ds = store.root.create_dataset("table", data=rows)
        assert ds.dtype.names == ("idx", "label", "target")
        ds[1] = (7, "z", Reference("/electrodes"))
    with h5py.File(path, "r") as f:
        raw = f["table"]
        assert h5py.check_dtype(vlen=raw.dtype["label"]) is str
        assert h5py.check_dtype(ref=raw.dtype["target"]) is h5py.Reference
        assert raw["idx"].tolist() == [0, 7]
        assert [f[r].name for r in raw["target"]] == ["/electrodes", "/electrodes"]
    with nwbstore.open(path) as store:
        got = store["table"][:]
        assert got["label"].tolist() == ["a", "z"]
        assert got["target"].tolist() == [Reference("/electrodes")] * 2
        row = store["table"][0]
        assert (int(row["idx"]), row["label"], row["target"]) == (0, "a", Reference("/electrodes"))


# -- strings and other dtypes -----------------------------------------------------------------


def test_strings(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with nwbstore.open(path, "w") as store:
        s = store.root.create_dataset("s", data=["a", "héllo"])
        assert nwbstore.dtypes.is_string_dtype(s.dtype)
        s[0] = "b"
        store.root.create_dataset("scalar", data="one")
        store.root.create_dataset("empty", shape=(0,), dtype=str)
        store.root.create_dataset("fixed", data=np.array([b"ab", b"c"]))
    with h5py.File(path, "r") as f:
        assert h5py.check_string_dtype(f["s"].dtype).encoding == "utf-8"
        assert f["s"].asstr()[:].tolist() == ["b", "héllo"]
        assert f["scalar"].asstr()[()] == "one"
        assert f["empty"].shape == (0,)
        assert f["fixed"].dtype == np.dtype("S2")
    with nwbstore.open(path) as store:
        got = store["s"][:]
        assert got.dtype == object and got.tolist() == ["b", "héllo"]
        assert all(type(x) is str for x in got)
        assert store["scalar"][()] == "one" and store["scalar"].shape == ()
        assert store["empty"][:].shape == (0,)
        assert store["fixed"].dtype == np.dtype("S2")
        assert store["fixed"][:].tolist() == [b"ab", b"c"]


def test_vlen_ascii_written_by_h5py_reads_as_str(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("a", data=[b"x", b"yz"], dtype=h5py.string_dtype("ascii"))
    with nwbstore.open(path) as store:
        assert store["a"][:].tolist() == ["x", "yz"]
        assert nwbstore.dtypes.is_string_dtype(store["a"].dtype)


def test_bool_float16_and_scalars(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with nwbstore.open(path, "w") as store:
        store.root.create_dataset("b", data=np.array([True, False]))
        store.root.create_dataset("h", data=np.ones(3, dtype="f2"))
        store.root.create_dataset("z", data=np.float64(2.5))
        store.root.create_dataset("fill", shape=(2, 2), dtype="i4")
    with h5py.File(path, "r") as f:
        assert f["b"].id.get_type().get_class() == h5py.h5t.ENUM
        assert f["b"].dtype == np.dtype(bool)
        assert f["h"].dtype == np.dtype("f2")
        assert f["z"][()] == 2.5
        assert f["fill"][...].tolist() == [[0, 0], [0, 0]]
    with nwbstore.open(path) as store:
        assert store["b"].dtype == np.dtype(bool)
        assert store["b"][:].tolist() == [True, False]
        assert store["z"][()] == 2.5


def test_unsupported_dtype(tmp_path: Path) -> None:
    with nwbstore.open(tmp_path / "a.h5", "w") as store:
        with pytest.raises(UnsupportedDtypeError, match="'/c'"):
            store.root.create_dataset("c", data=np.ones(2, dtype="c16"))
        with pytest.raises(UnsupportedDtypeError, match="'/o'"):
            store.root.create_dataset("o", shape=(2,), dtype=object)


# -- attributes -------------------------------------------------------------------------------


def test_attribute_values(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    values: dict[str, Any] = {
        "int": 3,
        "float": 1.5,
        "bool": True,
        "str": "héllo",
        "np_scalar": np.int16(7),
        "array": np.arange(4, dtype="u1"),
        "list_num": [1.0, 2.5],
        "list_str": ["a", "bb"],
        "empty": [],
    }
    with nwbstore.open(path, "w") as store:
        ds = store.root.create_dataset("x", data=[1])
        ds.attrs.update_many(values)
        with pytest.raises(UnsupportedDtypeError, match="'none'"):
            ds.attrs["none"] = None
        with pytest.raises(UnsupportedDtypeError, match="json"):
            ds.attrs["dict"] = {"a": 1}
        with pytest.raises(UnsupportedDtypeError, match="mixes types"):
            ds.attrs["mixed"] = [1, "a"]
        ds.attrs["gone"] = 1
        del ds.attrs["gone"]
    with h5py.File(path, "r") as f:
        attrs = f["x"].attrs
        assert sorted(attrs) == sorted(values)
        assert attrs["int"] == 3 and attrs["float"] == 1.5 and bool(attrs["bool"]) is True
        assert attrs["str"] == "héllo"
        assert attrs["np_scalar"].dtype == np.dtype("i2")
        assert attrs["array"].dtype == np.dtype("u1")
        assert h5py.check_string_dtype(attrs.get_id("list_str").dtype).encoding == "utf-8"
        assert attrs["list_str"].tolist() == ["a", "bb"]
    with nwbstore.open(path) as store:
        got = dict(store["x"].attrs)
        assert got["int"] == 3 and got["float"] == 1.5 and got["bool"]
        assert got["str"] == "héllo" and type(got["str"]) is str
        assert got["np_scalar"] == 7 and got["np_scalar"].dtype == np.dtype("i2")
        np.testing.assert_array_equal(got["array"], np.arange(4))
        assert got["list_num"].tolist() == [1.0, 2.5]
        assert got["list_str"].dtype == object and got["list_str"].tolist() == ["a", "bb"]
        assert got["empty"].shape == (0,)


def test_fixed_length_string_attributes_read_as_str(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.attrs["s"] = np.bytes_(b"fixed")
        f.attrs["arr"] = np.array([b"ab", b"c"])
        f.attrs["vlen_bytes"] = np.array([b"x"], dtype=h5py.string_dtype("ascii"))
    with nwbstore.open(path) as store:
        attrs = store.root.attrs
        assert attrs["s"] == "fixed" and type(attrs["s"]) is str
        assert attrs["arr"].tolist() == ["ab", "c"]
        assert attrs["vlen_bytes"].tolist() == ["x"]


# -- stored chunks and settings ---------------------------------------------------------------


def test_stored_chunks_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    data = np.arange(25, dtype="i4")
    with h5py.File(path, "w") as f:
        f.create_dataset("src", data=data, chunks=(10,), compression="gzip")
        f.create_dataset("dst", shape=(25,), dtype="i4", chunks=(10,), compression="gzip")
        f.create_dataset("contig", data=data)
    with nwbstore.open(path, "r+") as store:
        chunks = list(store["src"].iter_stored_chunks())
        assert [c.index for c in chunks] == [(0,), (1,), (2,)]
        assert all(c.filter_mask == 0 for c in chunks)
        # HDF5 "gzip" is a zlib stream; edge chunks are stored full size
        first = np.frombuffer(zlib.decompress(chunks[0].data), dtype="i4")
        np.testing.assert_array_equal(first, data[:10])
        assert len(zlib.decompress(chunks[2].data)) == 10 * 4
        for chunk in chunks:
            store["dst"].write_stored_chunk(chunk.index, chunk.data)
        with pytest.raises(SettingsError, match="outside the chunk grid"):
            store["dst"].write_stored_chunk((3,), chunks[0].data)
        with pytest.raises(UnsupportedOperationError, match="contiguous"):
            list(store["contig"].iter_stored_chunks())
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["dst"][:], data)


class _H5pyKwargs(DatasetSettings):
    """Settings whose HDF5 form is given directly as h5py keyword arguments."""

    def to_hdf5(self) -> dict[str, Any]:
        return {"chunks": (4,), "maxshape": (None,), "compression": "gzip", "fillvalue": -1}


def test_settings_are_passed_to_h5py(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    with nwbstore.open(path, "w") as store:
        store.root.create_dataset("x", shape=(6,), dtype="i4", settings=_H5pyKwargs())
    with h5py.File(path, "r") as f:
        ds = f["x"]
        assert (ds.chunks, ds.maxshape, ds.compression) == ((4,), (None,), "gzip")
        assert ds.fillvalue == -1 and ds[:].tolist() == [-1] * 6


@needs_settings
def test_resize_and_append(tmp_path: Path) -> None:
    path = tmp_path / "a.h5"
    settings = DatasetSettings(chunks=(4,), maxshape=(None,))
    with nwbstore.open(path, "w") as store:
        ds = store.root.create_dataset("x", data=np.arange(3), settings=settings)
        ds.append([3, 4])
        ds.resize((6,))
        assert ds.shape == (6,) and ds.maxshape == (None,)
    with h5py.File(path, "r") as f:
        assert f["x"].maxshape == (None,)
        assert f["x"][:5].tolist() == [0, 1, 2, 3, 4]
