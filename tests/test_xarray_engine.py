"""The ``nwbstore`` xarray engine: NWB dims and coordinates, CF decoding, tables, laziness.

Values are checked against h5py / zarr reads of the same files (and pynwb for ragged columns).
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr

import nwbstore
import nwbstore.nwb
from nwbstore.errors import CodecTranscodedWarning, NodeNotFoundError
from nwbstore.testing.nwb_samples import build_external_nwb, build_rich_nwb
from nwbstore.xarray import NwbstoreBackendEntrypoint

ENGINE = NwbstoreBackendEntrypoint()
ES = "acquisition/ElectricalSeries"


def _text(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).tolist()]


def _ephys_nwbfile() -> Any:
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBFile
    from pynwb.ecephys import ElectricalSeries

    nwbfile = NWBFile(
        session_description="xarray engine test",
        identifier="nwbstore-xarray",
        session_start_time=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    )
    device = nwbfile.create_device(name="probe")
    group = nwbfile.create_electrode_group(
        name="shank0", description="shank", location="CA1", device=device
    )
    nwbfile.add_electrode_column(name="label", description="custom column")
    for i in range(8):
        nwbfile.add_electrode(
            group=group, location=["CA1", "CA3"][i % 2], x=float(i), y=2.0, z=-1.0, label=f"c{i}"
        )
    rng = np.random.default_rng(1)
    region = nwbfile.create_electrode_table_region([1, 3, 4, 6], "four of eight")
    nwbfile.add_acquisition(
        ElectricalSeries(
            name="ElectricalSeries",
            data=H5DataIO(rng.integers(-100, 100, size=(1000, 4), dtype=np.int16), chunks=(250, 4)),
            electrodes=region,
            starting_time=2.0,
            rate=1000.0,
            conversion=0.5,
            offset=0.25,
            channel_conversion=[1.0, 2.0, 0.5, 4.0],
        )
    )
    stamps = np.sort(rng.random(50)) * 10
    region2 = nwbfile.create_electrode_table_region([0, 1], "two")
    nwbfile.add_acquisition(
        ElectricalSeries(
            name="stamped",
            data=rng.random((50, 2)),
            electrodes=region2,
            timestamps=stamps,
        )
    )
    for i in range(3):
        nwbfile.add_unit(spike_times=np.sort(rng.random(2 + 3 * i)) * 5)
    return nwbfile


@pytest.fixture(scope="module")
def ephys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pynwb import NWBHDF5IO

    path = tmp_path_factory.mktemp("ephys") / "ephys.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(_ephys_nwbfile())
    return path


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("rich")
    ext = build_external_nwb(folder / "ext.nwb")
    h5 = build_rich_nwb(folder / "rich.nwb", external=ext, n_samples=5000)
    out = {"hdf5": h5}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecTranscodedWarning)  # lzf -> zstd
        for fmt in (3, 2):
            dst = folder / f"rich-v{fmt}.nwb.zarr"
            nwbstore.convert(h5, dst, zarr_format=fmt, progress=False)
            out[f"zarr{fmt}"] = dst
    return out


def test_engine_is_registered() -> None:
    assert "nwbstore" in xr.backends.list_engines()


def test_electrical_series_dims_time_and_channel(ephys: Path) -> None:
    with xr.open_dataset(ephys, engine="nwbstore", group=ES) as ds:
        assert ds["data"].dims == ("time", "channel")
        np.testing.assert_allclose(ds["time"].values, 2.0 + np.arange(1000) / 1000.0)
        assert isinstance(ds.xindexes["time"], xr.indexes.RangeIndex)  # computed, not read
        with h5py.File(ephys) as f:
            region = f[f"{ES}/electrodes"][:]
            table = f["general/extracellular_ephys/electrodes"]
            np.testing.assert_array_equal(ds["channel"].values, region)
            for col in ("location", "group_name", "label"):
                assert _text(ds[col].values) == _text(table[col][:][region])
                assert col in ds.coords and ds[col].dims == ("channel",)
            for col in ("x", "y", "z"):
                np.testing.assert_array_equal(ds[col].values, table[col][:][region])
        assert _text(ds["group"].values) == ["/general/extracellular_ephys/shank0"] * 4
        assert ds["channel"].attrs["table"] == "/general/extracellular_ephys/electrodes"
        assert ds["data"].encoding["preferred_chunks"] == {"time": 250, "channel": 4}
        assert ds["data"].encoding["chunksizes"] == (250, 4)
        # label-based selection works on the coordinates
        assert ds["data"].sel(channel=4).dims == ("time",)
        window = ds["data"].sel(time=slice(2.1, 2.2))  # both ends included, as in pandas
        assert window.sizes["time"] == 101
        np.testing.assert_allclose(window["time"].values[[0, -1]], [2.1, 2.2])
        assert isinstance(window.xindexes["time"], xr.indexes.RangeIndex)
        assert ds["data"].sel(time=slice(None, 2.0045)).sizes["time"] == 5
        assert float(ds["time"].sel(time=2.5004, method="nearest")) == pytest.approx(2.5)


def test_timestamps_become_the_time_coordinate(ephys: Path) -> None:
    with xr.open_dataset(ephys, engine="nwbstore", group="acquisition/stamped") as ds:
        with h5py.File(ephys) as f:
            np.testing.assert_array_equal(ds["time"].values, f["acquisition/stamped/timestamps"])
            np.testing.assert_array_equal(ds["data"].values, f["acquisition/stamped/data"])
        assert "timestamps" not in ds.variables
        assert ds["data"].dims == ("time", "channel")


def test_long_timestamps_stay_lazy(ephys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nwbstore.xarray import _group

    monkeypatch.setattr(_group, "INDEX_COORD_MAX", 49)  # the series has 50 timestamps
    with xr.open_dataset(ephys, engine="nwbstore", group="acquisition/stamped") as ds:
        stamps = ds["timestamps"]
        assert stamps.dims == ("time",) and "timestamps" in ds.coords
        assert "time" not in ds.xindexes
        assert not stamps.variable._in_memory  # not read at open
        with h5py.File(ephys) as f:
            np.testing.assert_array_equal(stamps.values, f["acquisition/stamped/timestamps"])


def test_conversion_offset_and_channel_conversion(ephys: Path) -> None:
    with h5py.File(ephys) as f:
        raw = f[f"{ES}/data"][:]
        cc = f[f"{ES}/channel_conversion"][:]
        conversion, offset = f[f"{ES}/data"].attrs["conversion"], f[f"{ES}/data"].attrs["offset"]
    with xr.open_dataset(ephys, engine="nwbstore", group=ES) as ds:
        expected = raw * cc[np.newaxis, :] * conversion + offset
        np.testing.assert_allclose(ds["data"].values, expected, rtol=1e-6)
        assert ds["data"].encoding["scale_factor"] == conversion
        assert ds["data"].encoding["add_offset"] == offset
        # a subselection takes the matching channel factors
        np.testing.assert_allclose(
            ds["data"].isel(time=slice(10, 20), channel=[3, 1]).values,
            expected[10:20][:, [3, 1]],
            rtol=1e-6,
        )
        np.testing.assert_allclose(ds["data"].isel(channel=2).values, expected[:, 2], rtol=1e-6)
    with xr.open_dataset(ephys, engine="nwbstore", group=ES, mask_and_scale=False) as ds:
        assert ds["data"].dtype == np.int16
        np.testing.assert_array_equal(ds["data"].values, raw)
        assert ds["data"].attrs["scale_factor"] == conversion
        assert ds["data"].attrs["add_offset"] == offset
        np.testing.assert_array_equal(ds["channel_conversion"].values, cc)


def test_series_written_to_zarr_by_nwb_write(tmp_path: Path) -> None:
    url = tmp_path / "ephys.nwb.zarr"
    nwbstore.nwb.write(_ephys_nwbfile(), url, progress=False)
    root = zarr.open_group(url, mode="r")
    raw = root[f"{ES}/data"][...]
    cc = root[f"{ES}/channel_conversion"][...]
    with xr.open_dataset(url, engine="nwbstore", group=ES) as ds:
        assert ds["data"].dims == ("time", "channel")
        np.testing.assert_allclose(ds["data"].values, raw * cc * 0.5 + 0.25, rtol=1e-6)
        np.testing.assert_array_equal(ds["channel"].values, root[f"{ES}/electrodes"][...])
        assert _text(ds["label"].values) == ["c1", "c3", "c4", "c6"]
    with xr.open_dataset(url, engine="nwbstore", group="units") as units:
        index = root["units/spike_times_index"][...]
        np.testing.assert_array_equal(units["spike_times_count"], np.diff(index, prepend=0))


def test_outer_indexing_with_arrays_on_two_axes(ephys: Path) -> None:
    with h5py.File(ephys) as f:
        raw = f[f"{ES}/data"][:]
    with xr.open_dataset(ephys, engine="nwbstore", group=ES, mask_and_scale=False) as ds:
        got = ds["data"][[900, 5, 5, 40], [3, 0]].values
    np.testing.assert_array_equal(got, raw[[900, 5, 5, 40]][:, [3, 0]])


def test_units_ragged_spike_times_as_cf_ragged_array(ephys: Path) -> None:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(ephys), "r") as io:
        expected = [np.asarray(v) for v in io.read().units["spike_times"][:]]
    with xr.open_dataset(ephys, engine="nwbstore", group="units") as ds:
        counts = ds["spike_times_count"]
        assert counts.dims == ("id",)
        assert counts.attrs["sample_dimension"] == "spike_times_obs"
        assert ds["spike_times"].dims == ("spike_times_obs",)
        np.testing.assert_array_equal(counts.values, [len(v) for v in expected])
        np.testing.assert_array_equal(counts[1:].values, [len(v) for v in expected[1:]])
        assert int(counts[2]) == len(expected[2])
        ends = np.cumsum(counts.values)
        values = ds["spike_times"].values
        for i, want in enumerate(expected):
            np.testing.assert_array_equal(values[ends[i] - len(want) : ends[i]], want)
        np.testing.assert_array_equal(ds["id"].values, np.arange(3))


def _h5_groups(path: Path) -> set[str]:
    groups = {"/"}
    with h5py.File(path) as f:

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group):
                groups.add("/" + name)

        f.visititems(visit)  # h5py does not follow soft links here either
    return groups


def _check_rich_tree(tree: xr.DataTree, read: Any) -> None:
    """Values of the tree against ``read(path)`` (h5py or zarr, not nwbstore)."""
    es = tree[ES].dataset
    np.testing.assert_array_equal(es["data"].values, read(f"{ES}/data"))
    assert es["data"].dims == ("time", "channel")
    np.testing.assert_allclose(es["time"].values, np.arange(5000) / 30_000.0)
    movie = tree["acquisition/TwoPhotonSeries"].dataset
    assert movie["data"].dims == ("time", "x", "y")
    np.testing.assert_array_equal(movie["data"].values, read("acquisition/TwoPhotonSeries/data"))
    pos = tree["processing/behavior/Position/position"].dataset
    np.testing.assert_array_equal(
        pos["data"].values, read("processing/behavior/Position/position/data")
    )
    np.testing.assert_array_equal(
        pos["time"].values, read("processing/behavior/Position/position/timestamps")
    )
    lick = tree["processing/behavior/lick"].dataset  # timestamps through a soft link
    np.testing.assert_array_equal(lick["time"].values, read("processing/behavior/speed/timestamps"))
    assert lick["time"].attrs["link_target"] == "/processing/behavior/speed/timestamps"
    trials = tree["intervals/trials"].dataset
    assert _text(trials["outcome"].values) == _text(read("intervals/trials/outcome"))
    np.testing.assert_array_equal(trials["start_time"].values, read("intervals/trials/start_time"))
    units = tree["units"].dataset
    np.testing.assert_array_equal(units["spike_times"].values, read("units/spike_times"))
    index = np.asarray(read("units/spike_times_index"))
    np.testing.assert_array_equal(units["spike_times_count"].values, np.diff(index, prepend=0))
    rois = tree["processing/ophys/Fluorescence/RoiResponseSeries"].dataset
    np.testing.assert_array_equal(
        rois["data"].values, read("processing/ophys/Fluorescence/RoiResponseSeries/data")
    )
    # references resolved to target paths: the compound response column and link attributes
    resp = tree["general/intracellular_ephys/intracellular_recordings/responses"].dataset
    assert _text(resp["response_timeseries"].values) == [
        "/acquisition/response_0",
        "/acquisition/response_1",
    ]
    # an untyped group takes dims from its typed ancestor's spec (NWBFile's general)
    assert tree["general"].dataset["experimenter"].dims == ("num_experimenters",)
    plane = tree["processing/ophys/ImageSegmentation/PlaneSegmentation"].dataset
    assert plane.attrs["imaging_plane"] == "/general/optophysiology/plane0"
    assert tree.attrs.get("nwb_version") or tree["/"].dataset.attrs["nwb_version"]


def test_open_datatree_rich_sample_hdf5(rich: dict[str, Path]) -> None:
    with h5py.File(rich["hdf5"]) as f, xr.open_datatree(rich["hdf5"], engine="nwbstore") as tree:
        assert {node.path for node in tree.subtree} == _h5_groups(rich["hdf5"])
        _check_rich_tree(tree, lambda p: f[p][()])
        linked = tree["acquisition/linked_ts"]["data"]  # an external link, read through
        assert linked.attrs["link_target"] == "ext.nwb::/acquisition/external_ts/data"
        with h5py.File(rich["hdf5"].parent / "ext.nwb") as ext:
            np.testing.assert_array_equal(linked.values, ext["acquisition/external_ts/data"])


@pytest.mark.parametrize("fmt", [3, 2])
def test_open_datatree_rich_sample_zarr(rich: dict[str, Path], fmt: int) -> None:
    path = rich[f"zarr{fmt}"]
    root = zarr.open_group(path, mode="r")
    with xr.open_datatree(path, engine="nwbstore") as tree:
        assert {node.path for node in tree.subtree} == _h5_groups(rich["hdf5"])
        _check_rich_tree(tree, lambda p: root[p][...])


@pytest.mark.s3
def test_open_datatree_rich_sample_on_s3(
    rich: dict[str, Path], s3_server: Any, s3_bucket: str
) -> None:
    opts = s3_server.storage_options
    fs = s3_server.filesystem()
    fs.put_file(str(rich["hdf5"]), f"{s3_bucket}/rich.nwb")
    with (
        h5py.File(rich["hdf5"]) as f,
        xr.open_datatree(
            f"s3://{s3_bucket}/rich.nwb", engine="nwbstore", storage_options=opts
        ) as tree,
    ):
        _check_rich_tree(tree, lambda p: f[p][()])
    url = f"s3://{s3_bucket}/rich.nwb.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecTranscodedWarning)
        nwbstore.convert(rich["hdf5"], url, storage_options=opts, progress=False)
    root = zarr.open_group(rich["zarr3"], mode="r")
    with xr.open_datatree(url, engine="nwbstore", storage_options=opts) as tree:
        _check_rich_tree(tree, lambda p: root[p][...])


@pytest.mark.s3
def test_open_reads_no_series_chunks(counting_s3: Any) -> None:
    opts = counting_s3.storage_options
    url = counting_s3.url("ephys.nwb.zarr")
    nwbstore.nwb.write(_ephys_nwbfile(), url, storage_options=opts, progress=False)

    def data_gets() -> list[str]:
        return [
            r.path
            for r in counting_s3.proxy.requests
            if r.kind == "GET" and "/acquisition/ElectricalSeries/data/" in r.path
        ]

    counting_s3.reset()
    ds = xr.open_dataset(url, engine="nwbstore", group=ES, storage_options=opts)
    try:
        assert data_gets() == []
        assert counting_s3.total > 0  # it did open through the proxy
        window = ds["data"].isel(time=slice(0, 10)).values
        assert window.shape == (10, 4)
        assert data_gets() != []
    finally:
        ds.close()


def test_hdf5_open_reads_no_data(ephys: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Count reads through the Store interface: opening reads only small coordinates."""
    reads: list[tuple[str, Any]] = []
    store = nwbstore.open(ephys)
    dataset_cls = type(store[f"{ES}/data"])
    original = dataset_cls.__getitem__

    def counted(self: Any, selection: Any) -> Any:
        reads.append((self.name, selection))
        return original(self, selection)

    monkeypatch.setattr(dataset_cls, "__getitem__", counted)
    with store, xr.open_dataset(store, engine="nwbstore", group=ES) as ds:
        assert f"/{ES}/data" not in {name for name, _ in reads}
        ds["data"][:3].values  # noqa: B018 - the read under test
        assert f"/{ES}/data" in {name for name, _ in reads}


def test_plain_groups_use_stored_dimension_names(tmp_path: Path) -> None:
    v3 = zarr.open_group(tmp_path / "plain.zarr", mode="w")
    v3.create_array("a", data=np.arange(6).reshape(2, 3), dimension_names=["row", "col"])
    v3.create_array("b", data=np.arange(4))
    v2 = zarr.open_group(tmp_path / "plain2.zarr", mode="w", zarr_format=2)
    arr = v2.create_array("a", data=np.arange(6).reshape(3, 2))
    arr.attrs["_ARRAY_DIMENSIONS"] = ["t", "k"]
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["g/a"] = np.arange(5)
        f["g/b"] = np.ones((2, 2))
        f.create_group("other")
        f["g"].attrs["other"] = "an attribute"
        f["g/other"] = h5py.SoftLink("/other")  # a link to a group, named like the attribute
        f["g/alias"] = h5py.SoftLink("/other")
    with xr.open_dataset(tmp_path / "plain.zarr", engine="nwbstore") as ds:
        assert ds["a"].dims == ("row", "col") and ds["b"].dims == ("dim_0",)
        np.testing.assert_array_equal(ds["a"].values, np.arange(6).reshape(2, 3))
    with xr.open_dataset(tmp_path / "plain2.zarr", engine="nwbstore") as ds:
        assert ds["a"].dims == ("t", "k") and "_ARRAY_DIMENSIONS" not in ds["a"].attrs
    with xr.open_dataset(tmp_path / "plain.h5", engine="nwbstore", group="g") as ds:
        assert ds["a"].dims == ("dim_0",)
        assert ds["b"].dims == ("b_dim_0", "dim_1")  # dim_0 is taken with another size
        assert ds.attrs["alias"] == "/other"
        assert ds.attrs["other"] == "an attribute" and ds.attrs["other_link"] == "/other"
        np.testing.assert_array_equal(ds["a"].values, np.arange(5))


def test_bad_group_names_the_group(ephys: Path) -> None:
    with pytest.raises(NodeNotFoundError, match=r"'acquisition/nope'.*not found"):
        xr.open_dataset(ephys, engine="nwbstore", group="acquisition/nope")
    with pytest.raises(KeyError, match="is a dataset, not a group"):
        xr.open_dataset(ephys, engine="nwbstore", group=f"{ES}/data")


def test_guess_can_open(ephys: Path, rich: dict[str, Path], tmp_path: Path) -> None:
    assert ENGINE.guess_can_open(str(ephys))
    assert ENGINE.guess_can_open("s3://bucket/session.nwb")
    assert ENGINE.guess_can_open("https://example.org/x.nwb.zarr")
    assert ENGINE.guess_can_open(rich["zarr3"]) and ENGINE.guess_can_open(rich["zarr2"])
    renamed = tmp_path / "session.zarr"
    rich["zarr3"].rename(renamed)
    try:
        assert ENGINE.guess_can_open(renamed)
    finally:
        renamed.rename(rich["zarr3"])
    plain = zarr.open_group(tmp_path / "plain.zarr", mode="w")
    plain.attrs["x"] = 1
    assert not ENGINE.guess_can_open(tmp_path / "plain.zarr")
    h5 = tmp_path / "data.bin"
    with h5py.File(h5, "w") as f:
        f["x"] = 1
    assert ENGINE.guess_can_open(h5)
    (tmp_path / "notes.txt").write_text("hello")
    assert not ENGINE.guess_can_open(tmp_path / "notes.txt")
    assert not ENGINE.guess_can_open(tmp_path / "missing.h5")
    assert not ENGINE.guess_can_open(object())


def test_hdf5_family_file(tmp_path: Path) -> None:
    from pynwb import NWBHDF5IO

    pattern = str(tmp_path / "family_%d.nwb")
    with (
        h5py.File(pattern, "w", driver="family", memb_size=64 * 1024) as f,
        NWBHDF5IO(file=f, mode="w") as io,
    ):
        io.write(_ephys_nwbfile())
    assert len(list(tmp_path.glob("family_*.nwb"))) > 1
    with (
        h5py.File(pattern, "r", driver="family", memb_size=64 * 1024) as f,
        xr.open_dataset(pattern, engine="nwbstore", group=ES, mask_and_scale=False) as ds,
    ):
        np.testing.assert_array_equal(ds["data"].values, f[f"{ES}/data"][:])
        np.testing.assert_array_equal(ds["channel"].values, f[f"{ES}/electrodes"][:])


def test_dask_chunks_follow_the_stored_chunks(ephys: Path) -> None:
    with xr.open_dataset(ephys, engine="nwbstore", group=ES, chunks={}) as ds:
        assert ds["data"].chunks == ((250,) * 4, (4,))
        with h5py.File(ephys) as f:
            np.testing.assert_array_equal(
                ds["data"].isel(time=slice(240, 260)).compute().values,
                f[f"{ES}/data"][240:260] * f[f"{ES}/channel_conversion"][:] * 0.5 + 0.25,
            )


def test_async_load(ephys: Path) -> None:
    import asyncio

    with h5py.File(ephys) as f:
        raw = f[f"{ES}/data"][100:110, 1:3]
    with xr.open_dataset(ephys, engine="nwbstore", group=ES, mask_and_scale=False) as ds:
        window = ds["data"].isel(time=slice(100, 110), channel=slice(1, 3))
        loaded = asyncio.run(window.load_async())
        np.testing.assert_array_equal(loaded.values, raw)


def test_roi_region_is_the_second_axis_coordinate(rich: dict[str, Path]) -> None:
    group = "processing/ophys/Fluorescence/RoiResponseSeries"
    with (
        h5py.File(rich["hdf5"]) as f,
        xr.open_dataset(rich["hdf5"], engine="nwbstore", group=group) as ds,
    ):
        assert ds["data"].dims == ("time", "num_ROIs")
        np.testing.assert_array_equal(ds["num_ROIs"].values, f[f"{group}/rois"][:])
        assert ds["num_ROIs"].attrs["table"] == (
            "/processing/ophys/ImageSegmentation/PlaneSegmentation"
        )


def test_datatree_child_dims_that_clash_with_a_parent_index_are_renamed(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "nested.zarr", mode="w")
    root.create_array("t", data=np.arange(3.0), dimension_names=["t"])
    child = root.create_group("child")
    child.create_array("t", data=np.arange(5.0), dimension_names=["t"])
    child.create_array("w", data=np.arange(5), dimension_names=["t"])
    same = root.create_group("same")
    same.create_array("t", data=np.arange(3.0), dimension_names=["t"])
    same.create_array("u", data=np.arange(3), dimension_names=["t"])
    with xr.open_datatree(tmp_path / "nested.zarr", engine="nwbstore") as tree:
        assert tree["child"]["w"].dims == ("t_child",)
        np.testing.assert_array_equal(tree["child"]["t_child"].values, np.arange(5.0))
        assert tree["same"]["u"].dims == ("t",)  # equal to the parent's index: kept


def _every_plain_dataset_equal(tree: xr.DataTree, h5: h5py.File) -> int:
    """Each variable named like a non-compound dataset of its group equals h5py's values."""
    checked = 0
    for node in tree.subtree:
        group = h5[node.path]
        for name, var in node.dataset.variables.items():
            obj = group.get(str(name))
            if not isinstance(obj, h5py.Dataset) or obj.dtype.names:
                continue
            want = obj[()]
            if h5py.check_dtype(ref=obj.dtype) is not None:
                want = np.vectorize(lambda r: h5[r].name, otypes=[object])(want)
            if obj.dtype.kind in "OS":
                assert _text(np.ravel(var.values)) == _text(np.ravel(want)), (node.path, name)
            else:
                np.testing.assert_array_equal(var.values, want, err_msg=f"{node.path}/{name}")
            checked += 1
    return checked


def test_every_dataset_of_the_rich_sample_matches_h5py(rich: dict[str, Path]) -> None:
    with (
        h5py.File(rich["hdf5"]) as f,
        xr.open_datatree(rich["hdf5"], engine="nwbstore", mask_and_scale=False) as tree,
    ):
        assert _every_plain_dataset_equal(tree, f) >= 85  # of 97: the rest are renamed


_EXTENSION_WRITER = """
import os, sys
from datetime import UTC, datetime
import numpy as np
import pynwb
from pynwb import NWBHDF5IO, NWBFile
from pynwb.spec import NWBDatasetSpec, NWBGroupSpec, NWBNamespaceBuilder

folder = sys.argv[1]
ns = NWBNamespaceBuilder(doc="test", name="ndx-widgets", version="0.1.0", author="a", contact="a@b")
ns.include_type("TimeSeries", namespace="core")
data = NWBDatasetSpec(name="data", doc="d", dtype="float", dims=[["num_times", "num_widgets"]],
                      shape=[[None, None]])
ns.add_spec("ndx-widgets.extensions.yaml", NWBGroupSpec(
    neurodata_type_def="WidgetSeries", neurodata_type_inc="TimeSeries", doc="w", datasets=[data]))
ns.export("ndx-widgets.namespace.yaml", outdir=folder)
pynwb.load_namespaces(os.path.join(folder, "ndx-widgets.namespace.yaml"))
WidgetSeries = pynwb.get_class("WidgetSeries", "ndx-widgets")
start = datetime(2026, 1, 1, tzinfo=UTC)
f = NWBFile(session_description="x", identifier="x", session_start_time=start)
f.add_acquisition(WidgetSeries(name="widgets", data=np.ones((10, 3)), unit="u", rate=5.0))
with NWBHDF5IO(os.path.join(folder, "widgets.nwb"), "w") as io:
    io.write(f)  # caches the extension's namespace in /specifications
"""


def test_extension_dims_come_from_the_namespace_cached_in_the_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    import pynwb

    # written in another process: this one's pynwb never hears of the extension
    subprocess.run(
        [sys.executable, "-c", _EXTENSION_WRITER, str(tmp_path)], check=True, timeout=120
    )
    zarr_copy = tmp_path / "widgets.nwb.zarr"
    nwbstore.convert(tmp_path / "widgets.nwb", zarr_copy, progress=False)
    for url in (tmp_path / "widgets.nwb", zarr_copy):
        with xr.open_dataset(url, engine="nwbstore", group="acquisition/widgets") as ds:
            assert ds["data"].dims == ("time", "num_widgets"), url
            np.testing.assert_allclose(ds["time"].values, np.arange(10) / 5.0)
    assert "ndx-widgets" not in pynwb.get_type_map().namespace_catalog.namespaces


@pytest.mark.parametrize("fmt", ["hdf5", "zarr3"])
def test_reverse_negative_strided_empty_and_vectorized_keys(
    rich: dict[str, Path], fmt: str
) -> None:
    with h5py.File(rich["hdf5"]) as f:
        raw = f[f"{ES}/data"][:]
    with xr.open_dataset(rich[fmt], engine="nwbstore", group=ES) as ds:
        d = ds["data"]
        np.testing.assert_array_equal(d[::-1, -3].values, raw[::-1, -3])
        np.testing.assert_array_equal(d[-5:, [-1, 0]].values, raw[-5:][:, [-1, 0]])
        np.testing.assert_array_equal(d[100:2000:7, 3:9:2].values, raw[100:2000:7, 3:9:2])
        assert d[0:0].values.shape == (0, 32) and d[[], 0].values.shape == (0,)
        assert int(d[-1, -1]) == raw[-1, -1]
        points = d.isel(time=xr.Variable("p", [1, 5, 9]), channel=xr.Variable("p", [0, 1, 2]))
        np.testing.assert_array_equal(points.values, raw[[1, 5, 9], [0, 1, 2]])


def test_closing_the_tree_or_the_root_dataset_closes_the_file(ephys: Path, tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "copy.nwb"
    shutil.copy(ephys, path)
    tree = xr.open_datatree(path, engine="nwbstore")
    with pytest.raises(OSError):  # HDF5's file lock: nwbstore still reads it
        h5py.File(path, "a")
    tree.close()
    with h5py.File(path, "a"):
        pass
    groups = ENGINE.open_groups_as_dict(path, group="acquisition")
    assert set(groups) == {"/", "/ElectricalSeries", "/stamped"}
    assert groups["/ElectricalSeries"]["data"].dims == ("time", "channel")
    groups["/"].close()
    with h5py.File(path, "a"):
        pass


def test_a_series_and_a_table_write_to_zarr_with_xarray(ephys: Path, tmp_path: Path) -> None:
    with xr.open_dataset(ephys, engine="nwbstore", group=ES) as ds:
        ds.to_zarr(tmp_path / "es.zarr", mode="w", consolidated=False)
        with xr.open_zarr(tmp_path / "es.zarr", consolidated=False) as back:
            assert back["data"].dims == ("time", "channel")
            np.testing.assert_allclose(back["data"].values, ds["data"].values, rtol=1e-6)
            np.testing.assert_allclose(back["time"].values, ds["time"].values)
            assert _text(back["location"].values) == _text(ds["location"].values)
    with xr.open_dataset(ephys, engine="nwbstore", group="units") as units:
        units.to_zarr(tmp_path / "units.zarr", mode="w", consolidated=False)
        with xr.open_zarr(tmp_path / "units.zarr", consolidated=False) as back:
            assert back["spike_times_count"].attrs["sample_dimension"] == "spike_times_obs"
            np.testing.assert_array_equal(back["spike_times"].values, units["spike_times"].values)
