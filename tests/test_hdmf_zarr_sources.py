"""Stores written by the field's own writers convert in every direction.

Fixtures: the session of ``tests/data/hdmf_zarr_session.py`` written by hdmf-zarr 0.14's
``NWBZarrIO`` (Zarr v3, Blosc-compressed series, every other array Zstd-compressed, scalars
included), by pynwb's ``NWBHDF5IO`` (gzip+shuffle) and, committed, by hdmf-zarr 0.13 with
zarr 2 (Zarr v2, JSON object codec, no Pickle; see ``tests/data/make_hdmf_zarr_013_v2.py``);
plus plain zarr stores with a compressed 0-d array and chunks larger than the shape.
Results are checked with h5py and zarr directly, read back with ``NWBHDF5IO``/``NWBZarrIO``/
``NWBZarrV2IO`` and validated with ``pynwb.validate``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401 - readers of the HDF5 results need the Zstd/Blosc filters
import numcodecs
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore import DatasetSettings
from nwbstore.errors import SettingsError

DATA = Path(__file__).parent / "data"
V2_FIXTURE = DATA / "hdmf_zarr_013_v2.nwb.zarr"


def _load_session() -> Any:
    spec = importlib.util.spec_from_file_location(
        "hdmf_zarr_session", DATA / "hdmf_zarr_session.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SESSION = _load_session()
KINDS = {"hdf5": ".nwb", "zarr3": ".nwb.zarr", "zarr2": ".v2.nwb.zarr"}


# -- fixtures written by pynwb and hdmf-zarr --------------------------------------------------


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from hdmf.backends.hdf5 import H5DataIO
    from hdmf_zarr import NWBZarrIO, ZarrDataIO
    from pynwb import NWBHDF5IO

    folder = tmp_path_factory.mktemp("sources")
    v3 = folder / "hdmf_zarr_014.nwb.zarr"

    def zarr_io(values: np.ndarray, chunks: tuple[int, ...]) -> Any:
        codec = zarr.codecs.BloscCodec(cname="zstd", clevel=3)
        return ZarrDataIO(values, chunks=chunks, compressors=codec)

    with NWBZarrIO(str(v3), "w") as io:
        io.write(SESSION.build_session(zarr_io))
    h5 = folder / "pynwb.nwb"

    def hdf5_io(values: np.ndarray, chunks: tuple[int, ...]) -> Any:
        return H5DataIO(values, chunks=chunks, compression="gzip", shuffle=True)

    with NWBHDF5IO(str(h5), "w") as io:
        io.write(SESSION.build_session(hdf5_io))
    return {"zarr3": v3, "hdf5": h5, "zarr2": V2_FIXTURE}


def test_fixtures_are_what_the_writers_write(sources: dict[str, Path]) -> None:
    """The cases this file is about really are in the fixtures."""
    scalar = json.loads((sources["zarr3"] / "scratch" / "gain" / "zarr.json").read_text())
    assert scalar["shape"] == [] and any(c["name"] == "zstd" for c in scalar["codecs"])
    video = json.loads((sources["zarr3"] / "acquisition/video/data/zarr.json").read_text())
    assert video["shape"] == [0, 0, 0] and video["chunk_grid"]["configuration"]["chunk_shape"]
    legacy = json.loads(
        (V2_FIXTURE / "general/extracellular_ephys/electrodes/group/.zarray").read_text()
    )
    assert legacy["zarr_format"] == 2 and legacy["filters"][0]["id"] == "json2"
    assert not any('"pickle"' in p.read_text() for p in V2_FIXTURE.rglob(".zarray")), (
        "the v2 fixture must hold no Pickle codec"
    )


# -- reading results without nwbstore ---------------------------------------------------------


def _norm_text(values: Any) -> Any:
    arr = np.asarray(values, dtype=object)
    return (
        np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(arr)
        if arr.size
        else arr
    )


def _h5_datasets(path: Path) -> dict[str, tuple[tuple[int, ...], str, Any]]:
    out: dict[str, tuple[tuple[int, ...], str, Any]] = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, obj: Any) -> None:
            if not isinstance(obj, h5py.Dataset) or name.startswith("specifications"):
                return
            dt = obj.dtype
            if h5py.check_ref_dtype(dt) is not None or dt.names is not None:
                out["/" + name] = (obj.shape, "reference", None)
            elif h5py.check_string_dtype(dt) is not None or dt.kind in "OSU":
                out["/" + name] = (obj.shape, "text", _norm_text(obj[()]))
            else:
                out["/" + name] = (obj.shape, dt.newbyteorder("=").str, obj[()])

        f.visititems(visit)
    return out


def _zarr_datasets(path: Path) -> dict[str, tuple[tuple[int, ...], str, Any]]:
    out: dict[str, tuple[tuple[int, ...], str, Any]] = {}
    for meta in [*path.rglob("zarr.json"), *path.rglob(".zarray")]:
        rel = meta.parent.relative_to(path).as_posix()
        if rel.startswith("specifications") or rel == ".":
            continue
        doc = json.loads(meta.read_text())
        if meta.name == "zarr.json" and doc.get("node_type") != "array":
            continue
        attrs = doc.get("attributes")
        if attrs is None:
            zattrs = meta.parent / ".zattrs"
            attrs = json.loads(zattrs.read_text()) if zattrs.exists() else {}
        marker = attrs.get("_DTYPE", attrs.get("zarr_dtype"))
        shape = tuple(doc["shape"])
        if marker in ("object", "object_reference", "region") or isinstance(marker, list):
            out["/" + rel] = (shape, "reference", None)
            continue
        try:
            arr = zarr.open_array(str(path), path=rel, mode="r")
        except (TypeError, ValueError):  # zarr 3 cannot open hdmf-zarr 0.13 object arrays
            out["/" + rel] = (shape, "text", None)
            continue
        values = arr[...]
        if arr.dtype.kind in "OSUT" or marker in ("str", "bytes", "utf8", "ascii"):
            out["/" + rel] = (shape, "text", _norm_text(values))
        else:
            out["/" + rel] = (shape, np.dtype(arr.dtype).newbyteorder("=").str, np.asarray(values))
    return out


def _datasets(path: Path) -> dict[str, tuple[tuple[int, ...], str, Any]]:
    return _h5_datasets(path) if path.is_file() else _zarr_datasets(path)


def _assert_same_datasets(src: Path, dst: Path) -> None:
    before, after = _datasets(src), _datasets(dst)
    assert sorted(before) == sorted(after)
    for path, (shape, kind, values) in before.items():
        shape2, kind2, values2 = after[path]
        assert shape2 == shape, path
        assert kind2 == kind, path
        if values is not None and values2 is not None:
            np.testing.assert_array_equal(values2, values, err_msg=path)


# -- reading results with pynwb ---------------------------------------------------------------


def _io(path: Path) -> Any:
    from hdmf_zarr import NWBZarrIO, NWBZarrV2IO
    from pynwb import NWBHDF5IO

    if path.is_file():
        return NWBHDF5IO(str(path), "r")
    if (path / ".zgroup").exists():
        return NWBZarrV2IO(str(path), "r")
    return NWBZarrIO(str(path), "r")


def _check_session(path: Path) -> None:
    with _io(path) as io:
        nwb = io.read()
        np.testing.assert_array_equal(nwb.acquisition["ts"].data[:], SESSION.ts_values())
        es = nwb.acquisition["ElectricalSeries"]
        np.testing.assert_array_equal(es.data[:], SESSION.ecephys_values())
        np.testing.assert_array_equal(es.electrodes.data[:], np.arange(SESSION.N_CHANNELS))
        electrodes = nwb.electrodes.to_dataframe()
        assert list(electrodes["location"]) == ["CA1", "CA2", "CA3", "CA1"]
        assert {g.name for g in electrodes["group"]} == {"shank0"}
        video = nwb.acquisition["video"]
        assert list(video.external_file[:]) == ["video_a.avi", "video_b.avi"]
        assert 0 in video.data.shape
        assert tuple(nwb.acquisition["empty"].data.shape) == (0, 3)
        assert float(nwb.scratch["gain"].data[()]) == 2.5
        assert list(nwb.trials["label"][:]) == ["go", "no-go", "go"]
        units = nwb.units
        for i, times in enumerate(SESSION.SPIKE_TIMES):
            np.testing.assert_array_equal(units["spike_times"][i], times)
            assert list(units["electrodes"][i].index) == [i, (i + 1) % SESSION.N_CHANNELS]


def _validation(path: Path) -> list[str]:
    from pynwb import validate

    with _io(path) as io:
        return sorted(str(e) for e in validate(io=io))


def _convert(src: Path, dst_kind: str, folder: Path) -> Path:
    dst = folder / ("out" + KINDS[dst_kind])
    zarr_format = 2 if dst_kind == "zarr2" else 3
    report = nwbstore.convert(src, dst, zarr_format=zarr_format, progress=False)
    assert report.datasets > 20
    return dst


DIRECTIONS = [
    ("zarr3", "hdf5"),
    ("zarr3", "zarr3"),
    ("zarr3", "zarr2"),
    ("hdf5", "zarr3"),
    ("hdf5", "zarr2"),
    ("zarr2", "hdf5"),
    ("zarr2", "zarr3"),
]


@pytest.mark.parametrize(("src_kind", "dst_kind"), DIRECTIONS)
def test_writers_stores_convert(
    sources: dict[str, Path], tmp_path: Path, src_kind: str, dst_kind: str
) -> None:
    src = sources[src_kind]
    dst = _convert(src, dst_kind, tmp_path)
    _assert_same_datasets(src, dst)
    assert nwbstore.verify(src, dst).differences == []
    _check_session(dst)
    assert set(_validation(dst)) <= set(_validation(src))


def test_hdf5_to_zarr_and_back(sources: dict[str, Path], tmp_path: Path) -> None:
    middle = _convert(sources["hdf5"], "zarr3", tmp_path)
    back = tmp_path / "back.nwb"
    nwbstore.convert(middle, back, progress=False)
    _assert_same_datasets(sources["hdf5"], back)
    _check_session(back)
    assert _validation(back) == _validation(sources["hdf5"])


def test_zarr_to_hdf5_empty_and_scalar_layout(sources: dict[str, Path], tmp_path: Path) -> None:
    """Empty datasets become contiguous (as pynwb writes them); scalars keep their value."""
    dst = _convert(sources["zarr3"], "hdf5", tmp_path)
    with h5py.File(dst, "r") as f:
        video = f["acquisition/video/data"]
        assert video.shape == (0, 0, 0) and video.chunks is None and video.dtype == np.uint8
        empty = f["acquisition/empty/data"]
        assert empty.shape == (0, 3) and empty.chunks is None
        assert f["scratch/gain"].shape == () and f["scratch/gain"][()] == 2.5
        ts = f["acquisition/ts/data"]
        assert ts.chunks == (8, 2)
        assert ts.id.get_create_plist().get_filter(0)[0] == 32001  # Blosc, as the source


# -- plain zarr stores: compressed scalars, chunks larger than the shape ---------------------


def _plain_store(path: Path, zarr_format: int) -> dict[str, np.ndarray]:
    values = {
        "scalar": np.array(3.25),
        "long_chunk": np.arange(10, dtype="i4"),
        "wide": np.arange(15, dtype="u2").reshape(3, 5),
        "empty1d": np.zeros((0,), dtype="f8"),
        "empty2d": np.zeros((0, 4), dtype="f4"),
        "empty3d": np.zeros((0, 0, 0), dtype="u1"),
    }
    chunks = {
        "scalar": (),
        "long_chunk": (64,),
        "wide": (8, 8),
        "empty1d": (1000,),
        "empty2d": (5, 4),
        "empty3d": (1, 1, 1),
    }
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    for name, arr in values.items():
        codec: Any = zarr.codecs.ZstdCodec(level=3) if zarr_format == 3 else numcodecs.Zstd(level=3)
        z = root.create_array(
            name, shape=arr.shape, dtype=arr.dtype, chunks=chunks[name], compressors=[codec]
        )
        if arr.size or arr.ndim == 0:
            z[...] = arr
    text = root.create_array("labels", shape=(3,), dtype=str, chunks=(8,))
    text[...] = np.array(["a", "bb", "ccc"], dtype=object)
    values["labels"] = np.array(["a", "bb", "ccc"], dtype=object)
    with warnings.catch_warnings():  # consolidated metadata, as hdmf-zarr writes it
        warnings.simplefilter("ignore", zarr.errors.ZarrUserWarning)
        zarr.consolidate_metadata(str(path), zarr_format=zarr_format)
    return values


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_plain_zarr_to_hdf5_clips_chunks(tmp_path: Path, zarr_format: int) -> None:
    src = tmp_path / "plain.zarr"
    values = _plain_store(src, zarr_format)
    dst = tmp_path / "plain.nwb"
    nwbstore.convert(src, dst, progress=False)
    with h5py.File(dst, "r") as f:
        assert f["scalar"].shape == () and f["scalar"][()] == 3.25
        assert f["long_chunk"].chunks == (10,)
        assert f["long_chunk"].id.get_create_plist().get_filter(0)[0] == 32015  # Zstd kept
        assert f["wide"].chunks == (3, 5)
        for name in ("empty1d", "empty2d", "empty3d"):
            assert f[name].shape == values[name].shape and f[name].chunks is None
        for name, arr in values.items():
            got = f[name].asstr()[()] if name == "labels" else f[name][()]
            np.testing.assert_array_equal(got, arr, err_msg=name)
            if name != "labels":
                assert f[name].dtype == arr.dtype, name
    # and back to Zarr: the clipped chunks are a valid Zarr layout too
    back = tmp_path / "back.zarr"
    nwbstore.convert(dst, back, zarr_format=zarr_format, progress=False)
    group = zarr.open_group(str(back), mode="r")
    for name, arr in values.items():
        np.testing.assert_array_equal(np.asarray(group[name][...], dtype=arr.dtype), arr)


@pytest.mark.parametrize(("src_format", "dst_format"), [(3, 3), (3, 2), (2, 3), (2, 2)])
def test_plain_zarr_to_zarr_keeps_values(tmp_path: Path, src_format: int, dst_format: int) -> None:
    src = tmp_path / "plain.zarr"
    values = _plain_store(src, src_format)
    dst = tmp_path / "out.zarr"
    nwbstore.convert(src, dst, zarr_format=dst_format, progress=False)
    group = zarr.open_group(str(dst), mode="r", zarr_format=dst_format)
    for name, arr in values.items():
        got = group[name]
        assert got.shape == arr.shape, name
        np.testing.assert_array_equal(np.asarray(got[...], dtype=arr.dtype), arr, err_msg=name)


def test_failing_dataset_is_named(tmp_path: Path) -> None:
    from nwbstore.errors import UnsupportedDtypeError

    src = tmp_path / "plain.zarr"
    _plain_store(src, 3)
    bad = {"/wide": DatasetSettings(chunks=(3, 5), fill_value="abc")}  # h5py cannot store it
    with pytest.raises(UnsupportedDtypeError, match=r"^dataset '/wide' of .*plain\.zarr: ") as info:
        nwbstore.convert(src, tmp_path / "out.nwb", settings=bad, progress=False)
    assert isinstance(info.value, TypeError)  # the class of the original error is kept
    rank = {"/wide": DatasetSettings(chunks=(2, 2, 2))}  # a 3-D chunk for a 2-D dataset
    with pytest.raises(ValueError, match=r"^dataset '/wide' of .*plain\.zarr: "):
        nwbstore.convert(src, tmp_path / "out2.nwb", settings=rank, progress=False)


# -- DatasetSettings.for_shape ----------------------------------------------------------------


def test_for_shape_clips_fixed_axes_only() -> None:
    fixed = DatasetSettings(chunks=(200, 8), compression="zlib")
    assert fixed.for_shape((10, 4), "hdf5").chunks == (10, 4)
    assert fixed.for_shape((10, 4), "zarr") == fixed
    growing = DatasetSettings(chunks=(100, 4), maxshape=(None, 4))
    assert growing.for_shape((10, 4), "hdf5").chunks == (100, 4)
    bounded = DatasetSettings(chunks=(100, 4), maxshape=(500, 4))
    assert bounded.for_shape((10, 4), "hdf5").chunks == (100, 4)


def test_for_shape_empty_and_scalar() -> None:
    s = DatasetSettings(chunks=(1, 1, 1), compression="zstd", compression_opts=5, shuffle=True)
    empty = s.for_shape((0, 0, 0), "hdf5")
    assert empty.chunks is None and empty.pipeline == () and empty.maxshape is None
    scalar = DatasetSettings(chunks=(), compression="zstd").for_shape((), "hdf5")
    assert scalar.chunks is None and scalar.compression is None
    growing = DatasetSettings(chunks=(4, 2), maxshape=(None, 2)).for_shape((0, 2), "hdf5")
    assert growing.chunks == (4, 2) and growing.maxshape == (None, 2)


def test_replace_compression_drops_its_options() -> None:
    s = DatasetSettings(chunks=(4,), compression="zstd", compression_opts=7)
    assert s.replace(compression=None).compression_opts is None
    assert (
        s.replace(compression="zlib").compression_opts
        == DatasetSettings(chunks=(4,), compression="zlib").compression_opts
    )
    assert s.replace(chunks=(8,)).compression_opts == s.compression_opts
    with pytest.raises(SettingsError, match="without a compression"):
        DatasetSettings(chunks=(4,), compression_opts=3)


def test_vlen_strings_with_blosc_become_zstd_in_hdf5(tmp_path: Path) -> None:
    """HDF5's Blosc filter crashes the process on vlen data (SIGFPE); Zstd is used instead."""
    path = tmp_path / "strings.h5"
    settings = DatasetSettings(chunks=(2,), compression="blosc", compression_opts={"clevel": 7})
    with nwbstore.open(path, "w") as store:
        store.root.create_dataset("s", data=["x", "yy", "zzz"], settings=settings)
        store.root.create_dataset("n", data=np.arange(3), settings=settings)
    with h5py.File(path, "r") as f:
        assert f["s"].asstr()[()].tolist() == ["x", "yy", "zzz"]
        plist = f["s"].id.get_create_plist()
        assert plist.get_filter(0)[0] == 32015 and tuple(plist.get_filter(0)[2]) == (7,)
        assert f["n"].id.get_create_plist().get_filter(0)[0] == 32001  # numbers keep Blosc


def test_v2_fixture_specs_read_as_scalars() -> None:
    with nwbstore.open(V2_FIXTURE) as store:
        spec = store["specifications/core"]
        version = next(iter(spec))
        ns = store[f"specifications/core/{version}/namespace"]
        assert ns.shape == ()
        assert json.loads(ns[()])["namespaces"][0]["name"] == "core"


def test_hdf5_backend_fits_settings_to_the_shape(tmp_path: Path) -> None:
    """nwbstore.open(...).create_dataset takes Zarr-style settings an HDF5 file refuses."""
    path = tmp_path / "fit.h5"
    zstd = DatasetSettings(chunks=(100,), compression="zstd")
    with nwbstore.open(path, "w") as store:
        store.root.create_dataset("long", data=np.arange(5), settings=zstd)
        store.root.create_dataset("empty", shape=(0,), dtype="f4", settings=zstd)
        grow = zstd.replace(maxshape=(None,))
        store.root.create_dataset("grow", shape=(0,), dtype="f4", settings=grow)
    with h5py.File(path, "r") as f:
        assert f["long"].chunks == (5,) and f["long"][()].tolist() == [0, 1, 2, 3, 4]
        assert f["empty"].chunks is None and f["empty"].shape == (0,)
        assert f["grow"].chunks == (100,) and f["grow"].maxshape == (None,)
        assert f["grow"].id.get_create_plist().get_filter(0)[0] == 32015


def test_v2_fixture_object_arrays_read_safely(tmp_path: Path) -> None:
    from nwbstore.errors import ReadOnlyError
    from nwbstore.links import Reference

    copy = tmp_path / "legacy.nwb.zarr"
    shutil.copytree(V2_FIXTURE, copy)
    with nwbstore.open(copy, "r+") as store:
        group = store["general/extracellular_ephys/electrodes/group"]
        refs = group[:]
        assert all(isinstance(r, Reference) for r in refs)
        assert {r.path for r in refs} == {"/general/extracellular_ephys/shank0"}
        start = store["session_start_time"][...]
        assert "2026-01-01T12:00:00" in str(np.asarray(start).ravel()[0])
        with pytest.raises(ReadOnlyError, match=r"hdmf-zarr 0\.13"):
            group.attrs["note"] = "x"
        with pytest.raises(ReadOnlyError, match=r"hdmf-zarr 0\.13"):
            group[0:1] = refs[:1]
