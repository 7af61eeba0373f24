"""nwbstore.nwb backend configuration: defaults, printout, validation, configure_backend, CLI.

What is written is checked with h5py and zarr directly, after writing with pynwb's NWBHDF5IO and
hdmf-zarr's NWBZarrIO.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pynwb
import pytest
import zarr
from hdmf.backends.hdf5 import H5DataIO
from hdmf.data_utils import DataChunkIterator, GenericDataChunkIterator
from hdmf_zarr import NWBZarrIO, ZarrDataIO
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.ecephys import LFP, ElectricalSeries
from pynwb.image import ImageSeries

import nwbstore
from nwbstore.cli import main
from nwbstore.errors import NwbStoreWarning, SettingsError, UnsupportedCodecError
from nwbstore.nwb import (
    BackendConfiguration,
    DatasetIOConfiguration,
    configure_backend,
    get_default_backend_configuration,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:The linked table for DynamicTableRegion"),
    pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part"),
]

ES = "processing/ecephys/LFP/ElectricalSeries/data"


def new_file(identifier: str = "cfg") -> NWBFile:
    return NWBFile(
        session_description="A session of my experiment.",
        identifier=identifier,
        session_start_time=datetime(2020, 1, 1, 12, 30, tzinfo=UTC),
    )


def seed_file() -> NWBFile:
    nwbfile = new_file()
    nwbfile.add_acquisition(
        TimeSeries(
            name="MyTimeSeries",
            description="A time series from my experiment.",
            unit="cm/s",
            data=[1.0, 2.0, 3.0],
            timestamps=[0.0, 0.2, 0.4],
        )
    )
    return nwbfile


class ArrayIterator(GenericDataChunkIterator):  # a user's GenericDataChunkIterator
    def __init__(self, array: np.ndarray, **kwargs: Any) -> None:
        self.array = array
        super().__init__(**kwargs)

    def _get_data(self, selection: tuple[slice, ...]) -> np.ndarray:
        return self.array[selection]

    def _get_maxshape(self) -> tuple[int, ...]:
        return self.array.shape

    def _get_dtype(self) -> np.dtype[Any]:
        return self.array.dtype


def rich_file(identifier: str = "rich") -> NWBFile:
    nwbfile = new_file(identifier)
    nwbfile.add_acquisition(
        TimeSeries(name="ts", data=np.arange(1000.0), timestamps=np.arange(1000.0) / 10, unit="m")
    )
    dci = DataChunkIterator(data=np.arange(3000, dtype="int32").reshape(1000, 3), buffer_size=7)
    nwbfile.add_acquisition(TimeSeries(name="dci", data=dci, rate=10.0, unit="a"))
    gdci = ArrayIterator(np.arange(2000, dtype="float32").reshape(500, 4), buffer_shape=(500, 4))
    nwbfile.add_acquisition(TimeSeries(name="gdci", data=gdci, rate=10.0, unit="a"))
    wrapped = H5DataIO(
        np.arange(100.0), chunks=(5,), compression="gzip", compression_opts=2, shuffle=True
    )
    nwbfile.add_acquisition(TimeSeries(name="wrapped", data=wrapped, rate=1.0, unit="a"))
    device = nwbfile.create_device("probe")
    group = nwbfile.create_electrode_group("shank", "a shank", "CA1", device)
    for _ in range(4):
        nwbfile.add_electrode(group=group, location="CA1")
    region = nwbfile.create_electrode_table_region([0, 1, 2, 3], "all electrodes")
    series = ElectricalSeries(
        name="ElectricalSeries",
        data=np.arange(4000, dtype="int16").reshape(1000, 4),
        electrodes=region,
        rate=1000.0,
    )
    module = nwbfile.create_processing_module("ecephys", "LFP")
    module.add(LFP(electrical_series=series))
    nwbfile.add_trial(start_time=0.0, stop_time=1.0)
    nwbfile.add_trial(start_time=1.0, stop_time=2.0)
    nwbfile.add_unit(spike_times=[0.1, 0.2])
    nwbfile.add_unit(spike_times=[0.3])
    return nwbfile


# --- defaults and keys -------------------------------------------------------------------------


def test_keys_and_fixed_fields_of_a_rich_file() -> None:
    nwbfile = rich_file()
    config = get_default_backend_configuration(nwbfile, backend="hdf5")
    assert set(config.dataset_configurations) == {
        "acquisition/ts/data",
        "acquisition/ts/timestamps",
        "acquisition/dci/data",
        "acquisition/gdci/data",
        "acquisition/wrapped/data",
        ES,
        "electrodes/location/data",
        "electrodes/group_name/data",
        "trials/start_time/data",
        "trials/stop_time/data",
        "units/spike_times/data",
        "units/spike_times_index/data",
    }
    # the electrode group column holds containers (references): not configured
    assert config.skipped == {"electrodes/group/data": "object references (a column of containers)"}
    es = config.dataset_configurations[ES]
    series = nwbfile.processing["ecephys"]["LFP"]["ElectricalSeries"]
    assert es.object_id == series.object_id
    assert es.location_in_file == ES
    assert es.dataset_name == "data"
    assert es.dtype == np.dtype("int16")
    assert es.full_shape == (1000, 4)
    assert es.backend == "hdf5"
    suggested = nwbstore.default_settings((1000, 4), "int16", "hdf5")
    assert es.chunk_shape == suggested.settings.chunks
    assert es.buffer_shape == suggested.buffer_shape
    assert es.compression_method == "zlib"
    assert es.compression_options == {"level": 4}
    start = config.dataset_configurations["trials/start_time/data"]
    assert start.object_id == nwbfile.trials["start_time"].object_id
    assert start.dataset_name == "data"
    spikes = config.dataset_configurations["units/spike_times/data"]
    assert spikes.full_shape == (3,)
    assert config.dataset_configurations["acquisition/dci/data"].source_kind == "dci"
    assert config.dataset_configurations["acquisition/dci/data"].full_shape == (1000, 3)
    gdci = config.dataset_configurations["acquisition/gdci/data"]
    assert (gdci.source_kind, gdci.dtype, gdci.full_shape) == ("gdci", np.dtype("f4"), (500, 4))
    text = config.dataset_configurations["electrodes/location/data"]
    assert text.source_kind == "text"
    assert nwbstore.dtypes.is_string_dtype(text.dtype)
    assert "str (variable-length UTF-8)" in str(text)
    assert "variable-length (4 values)" in str(text)


def test_a_generic_iterator_keeps_within_its_own_buffer() -> None:
    nwbfile = new_file()
    array = np.zeros((100_000, 16), "float32")
    small = ArrayIterator(array, buffer_shape=(10_000, 16), chunk_shape=(1000, 16))
    nwbfile.add_acquisition(TimeSeries(name="g", data=small, rate=1.0, unit="a"))
    ds = get_default_backend_configuration(nwbfile, "hdf5").dataset_configurations[
        "acquisition/g/data"
    ]
    default = nwbstore.default_settings((100_000, 16), "float32")
    assert default.buffer_shape == (100_000, 16)  # what an array of this size would get
    assert ds.buffer_shape == (10_000, 16)
    assert ds.chunk_shape == (10_000, 16)  # the default chunk, cut to fit the buffer


def test_wrapped_data_keeps_its_settings_unless_overridden() -> None:
    config = get_default_backend_configuration(rich_file(), backend="hdf5")
    wrapped = config.dataset_configurations["acquisition/wrapped/data"]
    assert wrapped.chunk_shape == (5,)
    assert wrapped.compression_method == "zlib"
    assert wrapped.compression_options == {"level": 2}
    assert wrapped.filter_methods == ("shuffle",)
    zconfig = get_default_backend_configuration(rich_file(), backend="zarr")
    zwrapped = zconfig.dataset_configurations["acquisition/wrapped/data"]
    assert (zwrapped.chunk_shape, zwrapped.compression_method) == ((5,), "zlib")

    nwbfile = new_file()
    data = ZarrDataIO(np.arange(64.0), chunks=(8,), compressors=[zarr.codecs.ZstdCodec(level=9)])
    nwbfile.add_acquisition(TimeSeries(name="z", data=data, rate=1.0, unit="a"))
    z = get_default_backend_configuration(nwbfile, "zarr").dataset_configurations
    assert z["acquisition/z/data"].chunk_shape == (8,)
    assert z["acquisition/z/data"].compression_method == "zstd"
    assert z["acquisition/z/data"].compression_options["level"] == 9


def test_what_is_skipped(tmp_path: Path) -> None:
    nwbfile = new_file()
    first = TimeSeries(name="first", data=np.arange(10.0), timestamps=np.arange(10.0), unit="a")
    nwbfile.add_acquisition(first)
    nwbfile.add_acquisition(TimeSeries(name="linked", data=first, timestamps=first, unit="a"))
    nwbfile.add_acquisition(TimeSeries(name="empty", data=np.zeros((0, 3)), rate=1.0, unit="a"))
    nwbfile.add_acquisition(
        ImageSeries(
            name="movie",
            external_file=["movie.avi"],
            starting_frame=[0],
            format="external",
            timestamps=[0.0, 0.5],
            unit="n.a.",
        )
    )
    config = get_default_backend_configuration(nwbfile, backend="hdf5")
    assert set(config.dataset_configurations) == {
        "acquisition/first/data",
        "acquisition/first/timestamps",
        "acquisition/movie/timestamps",  # the frames are external, their times are not
    }
    assert config.skipped["acquisition/linked/data"] == "a link to another object"
    assert config.skipped["acquisition/linked/timestamps"] == "a link to another object"
    assert config.skipped["acquisition/empty/data"] == "zero-length data"
    assert "acquisition/movie/data" not in config.skipped  # not a dataset of this file at all


def test_object_columns_warn_and_are_left_alone() -> None:
    nwbfile = new_file()
    nwbfile.add_trial_column("note", "mixed values")
    nwbfile.add_trial(start_time=0.0, stop_time=1.0, note={"a": 1})
    nwbfile.add_trial(start_time=1.0, stop_time=2.0, note=3)
    endless = DataChunkIterator(data=iter([np.arange(3.0)] * 4))
    nwbfile.add_acquisition(TimeSeries(name="endless", data=endless, rate=1.0, unit="a"))
    with pytest.warns(NwbStoreWarning) as record:
        config = get_default_backend_configuration(nwbfile, backend="hdf5")
    messages = [str(w.message) for w in record]
    assert any(m.startswith("trials/note/data: not configured") for m in messages)
    assert any("acquisition/endless/data" in m and "unknown length" in m for m in messages)
    assert "trials/note/data" not in config.dataset_configurations
    assert "trials/start_time/data" in config.dataset_configurations


# --- printout ----------------------------------------------------------------------------------

SEED_BLOCK = """acquisition/MyTimeSeries/{field}
{rule}
  dtype : float64
  full shape of source array : (3,)
  full size of source array : 24 B

  buffer shape : (3,)
  expected RAM usage : 24 B

  chunk shape : (3,)
  disk space usage per chunk : 24 B

  compression method : zlib
  compression options : {{'level': 4}}
"""


def test_printout_matches_the_seed_layout() -> None:
    config = get_default_backend_configuration(seed_file(), backend="hdf5")
    expected = (
        "HDF5 dataset configurations\n"
        "---------------------------\n"
        "2 datasets\n"
        "\n"
        + SEED_BLOCK.format(field="data", rule="-" * 29)
        + "\n"
        + SEED_BLOCK.format(field="timestamps", rule="-" * 35)
        + "\n"
    )
    assert str(config) == expected


def test_customization_as_in_the_seed() -> None:
    config = get_default_backend_configuration(seed_file(), backend="hdf5")
    ds = config.dataset_configurations["acquisition/MyTimeSeries/data"]
    ds.chunk_shape = (1,)
    ds.buffer_shape = (2,)
    ds.compression_method = "Zstd"  # NeuroConv's spelling
    ds.compression_options = dict(clevel=3)  # hdf5plugin's option name
    assert str(ds) == (
        "acquisition/MyTimeSeries/data\n"
        "-----------------------------\n"
        "  dtype : float64\n"
        "  full shape of source array : (3,)\n"
        "  full size of source array : 24 B\n"
        "\n"
        "  buffer shape : (2,)\n"
        "  expected RAM usage : 16 B\n"
        "\n"
        "  chunk shape : (1,)\n"
        "  disk space usage per chunk : 8 B\n"
        "\n"
        "  compression method : zstd\n"
        "  compression options : {'level': 3}"
    )
    assert ds.settings == nwbstore.DatasetSettings(
        chunks=(1,), compression="zstd", compression_opts=3
    )


def test_human_sizes_and_zarr_title() -> None:
    nwbfile = new_file()
    data = H5DataIO(np.zeros((30_000, 384), "int16"))
    nwbfile.add_acquisition(TimeSeries(name="big", data=data, rate=1.0, unit="a"))
    config = get_default_backend_configuration(nwbfile, backend="zarr")
    text = str(config)
    assert text.startswith("Zarr dataset configurations\n---------------------------\n1 dataset\n")
    assert "full size of source array : 23.04 MB" in text
    block = config.dataset_configurations["acquisition/big/data"]
    assert f"disk space usage per chunk : {block.chunk_shape[0] * 768 / 1e6:.2f} MB" in text


def test_filters_and_shards_are_printed_on_zarr() -> None:
    nwbfile = new_file()
    nwbfile.add_acquisition(
        TimeSeries(name="s", data=np.zeros((100_000, 64), "int16"), rate=1.0, unit="a")
    )
    config = get_default_backend_configuration(nwbfile, backend="zarr")
    ds = config.dataset_configurations["acquisition/s/data"]
    ds.update(chunk_shape=(1000, 64), buffer_shape=(10_000, 64))
    assert ds.shard_shape == (10_000, 64)  # default shards follow the buffer
    with pytest.raises(SettingsError, match="not valid for delta"):
        ds.filter_methods = ["delta", "shuffle"]  # delta needs its dtype option
    ds.update(filter_methods=["delta", "shuffle"], filter_options=[{"dtype": "<i2"}, None])
    text = str(ds)
    assert "  shard shape : (10000, 64)\n  disk space usage per shard : 1.28 MB" in text
    assert "  filter methods : ['delta', 'shuffle']" in text
    assert "  filter options : [{'dtype': '<i2'}, None]" in text


# --- validation --------------------------------------------------------------------------------


@pytest.fixture
def es_config() -> DatasetIOConfiguration:
    config = get_default_backend_configuration(rich_file(), backend="hdf5")
    ds = config.dataset_configurations[ES]
    ds.update(chunk_shape=(100, 4), buffer_shape=(200, 4))
    return ds


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"chunk_shape": (0, 4)}, r"chunk_shape=\(0, 4\) has axis 0 = 0; every axis must be > 0"),
        ({"buffer_shape": (200, -1)}, r"axis 1 = -1; every axis must be > 0"),
        ({"chunk_shape": (100,)}, r"chunk_shape=\(100,\) has 1 axes but full_shape=\(1000, 4\)"),
        ({"buffer_shape": (200, 4, 1)}, "the rank must match"),
        ({"chunk_shape": (300, 4)}, r"exceeds buffer_shape=\(200, 4\) on axis 0 \(300 > 200\)"),
        ({"buffer_shape": (2000, 4)}, r"exceeds full_shape=\(1000, 4\) on axis 0"),
        ({"buffer_shape": (250, 4)}, r"not a multiple of chunk_shape=\(100, 4\) on axis 0"),
        (
            {"chunk_shape": (100, 2), "buffer_shape": (200, 3)},
            r"buffer_shape=\(200, 3\) is not a multiple of chunk_shape=\(100, 2\) on axis 1",
        ),
        ({"chunk_shape": None}, "contiguous.*cannot be compressed"),
        ({"shard_shape": (200, 4)}, "shard_shape=.*Zarr format 3 only"),
        ({"chunk_shape": (1.5, 4)}, "axis 0 is 1.5, not an integer"),
    ],
)
def test_each_rule_names_the_location(
    es_config: DatasetIOConfiguration, changes: dict[str, Any], rule: str
) -> None:
    before = (es_config.chunk_shape, es_config.buffer_shape)
    with pytest.raises(SettingsError, match=rule) as info:
        es_config.update(**changes)
    assert str(info.value).startswith(f"dataset '{ES}': ")
    assert (es_config.chunk_shape, es_config.buffer_shape) == before  # nothing changed


def test_assignment_is_validated_too(es_config: DatasetIOConfiguration) -> None:
    with pytest.raises(SettingsError, match="must fit in the buffer"):
        es_config.chunk_shape = (400, 4)
    es_config.buffer_shape = (1000, 4)  # full length: need not be a multiple
    es_config.chunk_shape = (300, 4)
    assert (es_config.chunk_shape, es_config.buffer_shape) == ((300, 4), (1000, 4))
    with pytest.raises(SettingsError, match="not a multiple"):
        es_config.buffer_shape = (400, 4)
    es_config.update(chunk_shape=(200, 4), buffer_shape=(400, 4))  # together: fine


def test_rules_on_creation_in_neuroconv_order() -> None:
    base: dict[str, Any] = {
        "object_id": "x",
        "location_in_file": "acquisition/ts/data",
        "dataset_name": "data",
        "dtype": "f8",
        "full_shape": (10,),
        "chunk_shape": (5,),
        "buffer_shape": (10,),
    }
    with pytest.raises(SettingsError, match="dataset_name='timestamps' is not the last part"):
        # the name rule comes first even when the shapes are wrong too
        DatasetIOConfiguration(**{**base, "dataset_name": "timestamps", "chunk_shape": (0,)})
    with pytest.raises(SettingsError, match="axis 0 = 0"):
        DatasetIOConfiguration(**{**base, "chunk_shape": (0,), "buffer_shape": (10, 1)})
    with pytest.raises(SettingsError, match="rank must match"):
        DatasetIOConfiguration(**{**base, "buffer_shape": (10, 1), "chunk_shape": (20,)})
    with pytest.raises(SettingsError, match="exceeds buffer_shape"):
        DatasetIOConfiguration(**{**base, "chunk_shape": (20,), "buffer_shape": (10,)})
    with pytest.raises(SettingsError, match="exceeds full_shape"):
        DatasetIOConfiguration(**{**base, "chunk_shape": (20,), "buffer_shape": (30,)})
    config = DatasetIOConfiguration(**base)
    assert config.settings.chunks == (5,)


def test_fixed_fields_cannot_change(es_config: DatasetIOConfiguration) -> None:
    for name in ("object_id", "location_in_file", "dataset_name", "dtype", "full_shape"):
        with pytest.raises(AttributeError, match=f"{name} is fixed"):
            setattr(es_config, name, getattr(es_config, name))
    with pytest.raises(AttributeError, match="no field 'chunks'"):
        es_config.chunks = (1, 1)  # type: ignore[attr-defined]


def test_compressions_the_backend_cannot_write(es_config: DatasetIOConfiguration) -> None:
    with pytest.raises(UnsupportedCodecError, match=r"compression_method='lzma'") as info:
        es_config.compression_method = "lzma"  # a Zarr codec HDF5 has no filter for
    message = str(info.value)
    assert message.startswith(f"dataset '{ES}': ")
    assert str(nwbstore.available_compressions("hdf5")) in message
    assert info.value.dataset == ES
    zarr_cfg = get_default_backend_configuration(rich_file(), "zarr").dataset_configurations[ES]
    with pytest.raises(UnsupportedCodecError, match=r"available_compressions\('zarr'\)"):
        zarr_cfg.compression_method = "lzf"
    with pytest.raises(SettingsError, match=f"dataset '{ES}': .*unknown option"):
        es_config.compression_options = {"speed": 3}
    assert es_config.compression_method == "zlib"


def test_neuroconv_spellings(es_config: DatasetIOConfiguration) -> None:
    es_config.compression_method = "gzip"  # HDF5's name for its zlib filter
    assert es_config.compression_method == "zlib"
    es_config.compression_options = {"level": 7}
    es_config.compression_method = "Blosc"
    assert es_config.compression_method == "blosc"
    assert es_config.compression_options is None  # the old codec's options are dropped
    es_config.compression_method = None
    assert es_config.settings.compression is None


def test_contiguous_hdf5_and_one_chunk_zarr(tmp_path: Path) -> None:
    nwbfile = seed_file()
    config = get_default_backend_configuration(nwbfile, backend="hdf5")
    ds = config.dataset_configurations["acquisition/MyTimeSeries/data"]
    ds.update(chunk_shape=None, compression_method=None)
    assert "  chunk shape : None (contiguous)" in str(ds)
    configure_backend(nwbfile, config)
    with NWBHDF5IO(tmp_path / "c.nwb", "w") as io:
        io.write(nwbfile)
    with h5py.File(tmp_path / "c.nwb") as f:
        assert f["acquisition/MyTimeSeries/data"].chunks is None
        assert f["acquisition/MyTimeSeries/timestamps"].compression == "gzip"

    zcfg = get_default_backend_configuration(rich_file(), backend="zarr")
    z = zcfg.dataset_configurations["acquisition/ts/data"]
    z.chunk_shape = None
    assert z.chunk_shape == (1000,)  # Zarr is always chunked: one chunk
    gdci = get_default_backend_configuration(rich_file(), "hdf5").dataset_configurations[
        "acquisition/gdci/data"
    ]
    with pytest.raises(SettingsError, match=r"contiguous.*in-memory data"):
        gdci.update(chunk_shape=None, compression_method=None)


def test_dci_and_text_buffer_rules() -> None:
    config = get_default_backend_configuration(rich_file(), backend="hdf5")
    dci = config.dataset_configurations["acquisition/dci/data"]
    dci.update(chunk_shape=(10, 1), buffer_shape=(100, 3))
    with pytest.raises(SettingsError, match="DataChunkIterator yields whole rows"):
        dci.buffer_shape = (100, 2)
    text = config.dataset_configurations["electrodes/location/data"]
    with pytest.raises(SettingsError, match="text is written in one piece"):
        text.update(chunk_shape=(2,), buffer_shape=(2,))


def test_settings_round_trip(es_config: DatasetIOConfiguration) -> None:
    settings = nwbstore.DatasetSettings(
        chunks=(50, 4), compression="zstd", compression_opts=5, shuffle=True
    )
    es_config.settings = settings
    assert es_config.chunk_shape == (50, 4)
    assert es_config.filter_methods == ("shuffle",)
    assert es_config.settings == settings
    again = DatasetIOConfiguration.from_settings(
        settings,
        object_id=es_config.object_id,
        location_in_file=ES,
        dtype="int16",
        full_shape=(1000, 4),
        buffer_shape=(200, 4),
    )
    assert again.settings == settings
    assert again.dataset_name == "data"


# --- configure_backend and write ---------------------------------------------------------------


def edit(config: BackendConfiguration) -> None:
    dc = config.dataset_configurations
    dc[ES].update(chunk_shape=(100, 4), buffer_shape=(300, 4))
    dc["acquisition/dci/data"].update(chunk_shape=(50, 3), buffer_shape=(200, 3))
    dc["acquisition/gdci/data"].update(chunk_shape=(100, 2), buffer_shape=(200, 4))
    dc["acquisition/ts/data"].update(chunk_shape=(64,), buffer_shape=(128,))
    dc["trials/start_time/data"].update(chunk_shape=(1,), buffer_shape=(2,))


def check_values(get: Any) -> None:
    assert (get(ES) == np.arange(4000).reshape(1000, 4)).all()
    assert (get("acquisition/dci/data") == np.arange(3000).reshape(1000, 3)).all()
    assert (get("acquisition/gdci/data") == np.arange(2000).reshape(500, 4)).all()
    assert (get("acquisition/ts/data") == np.arange(1000.0)).all()
    assert (get("intervals/trials/start_time") == [0.0, 1.0]).all()
    assert (get("units/spike_times") == [0.1, 0.2, 0.3]).all()


def test_configure_then_write_hdf5(tmp_path: Path) -> None:
    nwbfile = rich_file()
    config = get_default_backend_configuration(nwbfile, backend="hdf5")
    edit(config)
    config.dataset_configurations["acquisition/wrapped/data"].compression_method = "zstd"
    configure_backend(nwbfile, config)
    path = tmp_path / "configured.nwb"
    with NWBHDF5IO(path, "w") as io:
        io.write(nwbfile)
    with h5py.File(path) as f:
        assert f[ES].chunks == (100, 4)
        assert f[ES].compression == "gzip" and f[ES].compression_opts == 4
        assert f["acquisition/dci/data"].chunks == (50, 3)
        assert f["acquisition/gdci/data"].chunks == (100, 2)
        assert f["acquisition/ts/data"].chunks == (64,)
        assert f["intervals/trials/start_time"].chunks == (1,)
        wrapped = f["acquisition/wrapped/data"]
        assert wrapped.chunks == (5,) and wrapped.shuffle
        assert nwbstore.DatasetSettings.from_hdf5(wrapped).compression == "zstd"
        location = f["general/extracellular_ephys/electrodes/location"]
        assert location.compression == "gzip"
        assert [v.decode() for v in location[:]] == ["CA1"] * 4
        check_values(lambda key: f[key][:])
    with NWBHDF5IO(path, "r") as io:  # pynwb reads it back
        back = io.read()
        assert back.acquisition["ts"].data.shape == (1000,)
    assert pynwb.validate(path=str(path)) == []


def test_configure_then_write_zarr(tmp_path: Path) -> None:
    nwbfile = rich_file()
    config = get_default_backend_configuration(nwbfile, backend="zarr")
    edit(config)
    config.dataset_configurations["acquisition/ts/timestamps"].update(
        compression_method="blosc", filter_methods=["delta"], filter_options=[{"dtype": "<f8"}]
    )
    configure_backend(nwbfile, config)
    path = tmp_path / "configured.nwb.zarr"
    with NWBZarrIO(str(path), "w") as io:
        io.write(nwbfile)
    root = zarr.open_group(path, mode="r")
    assert root[ES].chunks == (100, 4)
    assert type(root[ES].compressors[0]).__name__ == "ZstdCodec"
    assert root[ES].compressors[0].level == 3
    assert root["acquisition/dci/data"].chunks == (50, 3)
    assert root["intervals/trials/start_time"].chunks == (1,)
    stamps = nwbstore.DatasetSettings.from_zarr(root["acquisition/ts/timestamps"])
    assert stamps.compression == "blosc"
    assert [s.name for s in stamps.filters] == ["delta"]
    assert list(root["general/extracellular_ephys/electrodes/location"][:]) == ["CA1"] * 4
    check_values(lambda key: root[key][:])
    with NWBZarrIO(str(path), "r") as io:
        assert io.read().acquisition["ts"].data.shape == (1000,)


def test_zarr_shards_are_written(tmp_path: Path) -> None:
    nwbfile = new_file()
    data = np.arange(200_000, dtype="int16").reshape(50_000, 4)
    nwbfile.add_acquisition(TimeSeries(name="s", data=data, rate=1.0, unit="a"))
    config = get_default_backend_configuration(nwbfile, backend="zarr")
    ds = config.dataset_configurations["acquisition/s/data"]
    ds.update(chunk_shape=(500, 4), buffer_shape=(10_000, 4))
    assert ds.shard_shape == (10_000, 4)
    configure_backend(nwbfile, config)
    with NWBZarrIO(str(tmp_path / "s.zarr"), "w") as io:
        io.write(nwbfile)
    array = zarr.open_array(tmp_path / "s.zarr" / "acquisition/s/data", mode="r")
    assert (array.chunks, array.shards) == ((500, 4), (10_000, 4))
    assert (array[:] == data).all()


def test_buffer_bounds_what_is_held_in_memory() -> None:
    nwbfile = rich_file()
    config = get_default_backend_configuration(nwbfile, backend="hdf5")
    edit(config)
    configure_backend(nwbfile, config)
    # an in-memory array is now read one buffer at a time
    ts = nwbfile.acquisition["ts"].data
    assert isinstance(ts, H5DataIO) and isinstance(ts.data, GenericDataChunkIterator)
    pieces = [chunk.data.shape for chunk in ts.data]
    assert max(pieces) == (128,) and sum(p[0] for p in pieces) == 1000
    # a DataChunkIterator of 7-row pieces is regrouped into 200-row buffers
    dci = nwbfile.acquisition["dci"].data.data
    rows = [chunk.data.shape for chunk in dci]
    assert rows == [(200, 3)] * 5
    # a GenericDataChunkIterator gets the configured buffer
    gdci = nwbfile.acquisition["gdci"].data.data
    assert gdci.buffer_shape == (200, 4) and gdci.chunk_shape == (100, 2)
    assert [c.data.shape for c in gdci] == [(200, 4), (200, 4), (100, 4)]


def test_other_files_datasets_are_rewritten_with_the_configuration(tmp_path: Path) -> None:
    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as f:
        f.create_dataset("x", data=np.arange(10_000, dtype="int32"), chunks=(10_000,))
    src = h5py.File(source, "r")
    try:
        nwbfile = new_file()
        nwbfile.add_acquisition(TimeSeries(name="fromfile", data=src["x"], rate=1.0, unit="a"))
        config = get_default_backend_configuration(nwbfile, backend="zarr")
        ds = config.dataset_configurations["acquisition/fromfile/data"]
        assert ds.source_kind == "h5py"
        ds.update(chunk_shape=(1000,), buffer_shape=(2000,))
        configure_backend(nwbfile, config)
        assert nwbfile.acquisition["fromfile"].data.data.buffer_shape == (2000,)
        with NWBZarrIO(str(tmp_path / "out.zarr"), "w") as io:
            io.write(nwbfile)
    finally:
        src.close()
    array = zarr.open_array(tmp_path / "out.zarr" / "acquisition/fromfile/data", mode="r")
    assert array.chunks == (1000,)
    assert (array[:] == np.arange(10_000)).all()


def test_configure_twice_rewraps(tmp_path: Path) -> None:
    nwbfile = seed_file()
    configure_backend(nwbfile, get_default_backend_configuration(nwbfile, "hdf5"))
    config = get_default_backend_configuration(nwbfile, "hdf5")
    ds = config.dataset_configurations["acquisition/MyTimeSeries/data"]
    ds.update(chunk_shape=(1,), buffer_shape=(2,))
    configure_backend(nwbfile, config)
    data = nwbfile.acquisition["MyTimeSeries"].fields["data"]
    assert isinstance(data, H5DataIO) and not isinstance(data.data, H5DataIO)
    with NWBHDF5IO(tmp_path / "twice.nwb", "w") as io:
        io.write(nwbfile)
    with h5py.File(tmp_path / "twice.nwb") as f:
        assert f["acquisition/MyTimeSeries/data"].chunks == (1,)
        assert list(f["acquisition/MyTimeSeries/data"][:]) == [1.0, 2.0, 3.0]


# --- bad input ---------------------------------------------------------------------------------


def test_configuration_of_another_file_is_refused() -> None:
    config = get_default_backend_configuration(seed_file(), backend="hdf5")
    other = seed_file()  # the same structure, other objects
    with pytest.raises(SettingsError, match="made for another file") as info:
        configure_backend(other, config)
    assert "acquisition/MyTimeSeries/data" in str(info.value)
    assert other.acquisition["MyTimeSeries"].fields["data"] == [1.0, 2.0, 3.0]  # untouched


def test_a_location_that_does_not_exist() -> None:
    nwbfile = seed_file()
    config = get_default_backend_configuration(nwbfile, backend="hdf5")
    ds = config.dataset_configurations["acquisition/MyTimeSeries/data"]
    moved = DatasetIOConfiguration(
        object_id=ds.object_id,
        location_in_file="acquisition/Renamed/data",
        dataset_name="data",
        dtype="f8",
        full_shape=(3,),
        chunk_shape=(3,),
        buffer_shape=(3,),
    )
    config.dataset_configurations = {"acquisition/Renamed/data": moved}
    with pytest.raises(SettingsError, match=r"'acquisition/Renamed/data' does not exist.*"):
        configure_backend(nwbfile, config)
    unknown = DatasetIOConfiguration(
        object_id="not-an-id",
        location_in_file="acquisition/Nope/data",
        dataset_name="data",
        dtype="f8",
        full_shape=(3,),
        chunk_shape=(3,),
        buffer_shape=(3,),
    )
    config.dataset_configurations = {"acquisition/Nope/data": unknown}
    with pytest.raises(SettingsError, match="another file: object id not-an-id"):
        configure_backend(nwbfile, config)
    config.dataset_configurations = {"acquisition/Other/data": unknown}
    with pytest.raises(SettingsError, match="keyed by location_in_file"):
        configure_backend(nwbfile, config)


def test_bad_backend_values() -> None:
    with pytest.raises(SettingsError, match="backend='s3'"):
        get_default_backend_configuration(seed_file(), backend="s3")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="zarr_format=4"):
        get_default_backend_configuration(seed_file(), backend="zarr", zarr_format=4)


def test_zarr_format_2_has_no_shards() -> None:
    nwbfile = new_file()
    nwbfile.add_acquisition(
        TimeSeries(name="s", data=np.zeros((100_000, 64), "int16"), rate=1.0, unit="a")
    )
    config = get_default_backend_configuration(nwbfile, backend="zarr", zarr_format=2)
    ds = config.dataset_configurations["acquisition/s/data"]
    assert ds.shard_shape is None
    with pytest.raises(SettingsError, match="Zarr format 3 only"):
        ds.shard_shape = ds.buffer_shape


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_config_prints_the_other_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plain.nwb"
    with NWBHDF5IO(path, "w") as io:
        io.write(rich_file())
    assert main(["config", str(path)]) == 0
    plain = capsys.readouterr().out
    assert "Zarr dataset configurations" not in plain
    assert main(["config", str(path), "--backend", "zarr"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(plain.rstrip("\n"))  # the existing output comes first, unchanged
    assert f"Default configuration on Zarr of {path}" in out
    assert "Zarr dataset configurations\n---------------------------\n" in out
    assert f"{ES}\n{'-' * len(ES)}\n  dtype : int16\n" in out
    assert "compression method : zstd" in out

    zpath = tmp_path / "plain.nwb.zarr"
    with NWBZarrIO(str(zpath), "w") as io:
        io.write(rich_file("zarr"))
    assert main(["config", str(zpath), "--backend", "hdf5"]) == 0
    out = capsys.readouterr().out
    assert "HDF5 dataset configurations" in out
    assert "units/spike_times/data" in out


def test_stored_datasets_are_skipped_on_append(tmp_path: Path) -> None:
    path = tmp_path / "stored.nwb"
    with NWBHDF5IO(path, "w") as io:
        io.write(seed_file())
    with NWBHDF5IO(path, "a") as io:
        nwbfile = io.read()
        nwbfile.add_acquisition(TimeSeries(name="new", data=np.arange(5.0), rate=1.0, unit="a"))
        with warnings.catch_warnings():
            warnings.simplefilter("error", NwbStoreWarning)
            config = get_default_backend_configuration(nwbfile, "hdf5")
        assert set(config.dataset_configurations) == {"acquisition/new/data"}
        assert "acquisition/MyTimeSeries/data" in config.skipped
        whole = get_default_backend_configuration(nwbfile, "hdf5", include_stored=True)
        assert "acquisition/MyTimeSeries/data" in whole.dataset_configurations
        configure_backend(nwbfile, config)
        io.write(nwbfile)
    with h5py.File(path) as f:
        assert f["acquisition/new/data"].compression == "gzip"


def test_wrapped_iterators_and_resizable_data(tmp_path: Path) -> None:
    nwbfile = new_file()
    dci = DataChunkIterator(np.arange(3000.0).reshape(1000, 3), buffer_size=10)
    gz = H5DataIO(dci, compression="gzip", compression_opts=1)
    nwbfile.add_acquisition(TimeSeries(name="a", data=gz, rate=1.0, unit="a"))
    chunked = H5DataIO(np.arange(10.0), maxshape=(None,), chunks=(4,))
    nwbfile.add_acquisition(TimeSeries(name="b", data=chunked, rate=1.0, unit="a"))
    growable = H5DataIO(np.arange(10.0), maxshape=(None,))
    nwbfile.add_acquisition(TimeSeries(name="c", data=growable, rate=1.0, unit="a"))
    config = get_default_backend_configuration(nwbfile, "hdf5")
    a, b, c = (config.dataset_configurations[f"acquisition/{n}/data"] for n in "abc")
    # the iterator's own chunk guess is not a choice: the default chunk, the wrapper's codec
    assert (a.source_kind, a.compression_options) == ("dci", {"level": 1})
    assert a.chunk_shape == nwbstore.default_settings((1000, 3), "f8").settings.chunks
    assert (b.chunk_shape, b.compression_method, b.maxshape) == ((4,), None, (None,))
    assert (c.compression_method, c.maxshape) == ("zlib", (None,))  # defaults, still resizable
    configure_backend(nwbfile, config)
    with NWBHDF5IO(tmp_path / "w.nwb", "w") as io:
        io.write(nwbfile)
    with h5py.File(tmp_path / "w.nwb") as f:
        assert f["acquisition/a/data"].compression_opts == 1
        assert (f["acquisition/a/data"][:] == np.arange(3000.0).reshape(1000, 3)).all()
        assert f["acquisition/b/data"].maxshape == (None,)
        assert f["acquisition/b/data"].chunks == (4,)
        assert f["acquisition/c/data"].maxshape == (None,)
        assert f["acquisition/c/data"].compression == "gzip"


def test_zarr_without_compression_and_hdf5_without_the_filter(tmp_path: Path) -> None:
    nwbfile = seed_file()
    config = get_default_backend_configuration(nwbfile, "zarr")
    config.dataset_configurations["acquisition/MyTimeSeries/data"].compression_method = None
    configure_backend(nwbfile, config)
    with NWBZarrIO(str(tmp_path / "n.zarr"), "w") as io:
        io.write(nwbfile)
    array = zarr.open_array(tmp_path / "n.zarr/acquisition/MyTimeSeries/data", mode="r")
    assert array.compressors == ()
    hdf5 = get_default_backend_configuration(seed_file(), "hdf5")
    ds = hdf5.dataset_configurations["acquisition/MyTimeSeries/data"]
    with pytest.raises(UnsupportedCodecError, match="dataset 'acquisition/MyTimeSeries/data': "):
        ds.update(filter_methods=["delta"], filter_options=[{"dtype": "<f8"}])
    assert ds.filter_methods == ()


def test_cli_config_backend_on_s3(
    tmp_path: Path, s3_server: Any, s3_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    zpath, hpath = tmp_path / "s3.nwb.zarr", tmp_path / "s3.nwb"
    with NWBZarrIO(str(zpath), "w") as io:
        io.write(seed_file())
    with NWBHDF5IO(hpath, "w") as io:
        io.write(seed_file())
    fs = s3_server.filesystem()
    fs.put(str(zpath), f"{s3_bucket}/s3.nwb.zarr", recursive=True)
    fs.put_file(str(hpath), f"{s3_bucket}/s3.nwb")
    options = json.dumps(s3_server.storage_options)
    for key, backend in (("s3.nwb.zarr", "hdf5"), ("s3.nwb", "zarr")):
        url = f"s3://{s3_bucket}/{key}"
        assert main(["config", url, "--backend", backend, "--storage-options", options]) == 0
        out = capsys.readouterr().out
        title = "HDF5" if backend == "hdf5" else "Zarr"
        assert f"Default configuration on {title} of {url}\n\n{title} dataset configurations" in out
        assert "acquisition/MyTimeSeries/timestamps\n" in out
        assert "2 datasets" in out


def test_a_file_read_back_has_the_same_locations(tmp_path: Path) -> None:
    path = tmp_path / "back.nwb.zarr"
    written = rich_file()
    with NWBZarrIO(str(path), "w") as io:
        io.write(written)
    before = set(get_default_backend_configuration(rich_file(), "zarr").dataset_configurations)
    with NWBZarrIO(str(path), "r") as io:
        nwbfile = io.read()
        assert get_default_backend_configuration(nwbfile, "hdf5").dataset_configurations == {}
        whole = get_default_backend_configuration(nwbfile, "hdf5", include_stored=True)
        assert set(whole.dataset_configurations) == before  # trials stay trials/, not intervals/
        es = whole.dataset_configurations[ES]
        assert (es.source_kind, es.full_shape) == ("zarr", (1000, 4))
        assert whole.dataset_configurations["electrodes/location/data"].source_kind == "text"


@pytest.mark.filterwarnings("ignore:No cached namespaces", "ignore:Inferred dtype from zarr")
def test_cli_config_backend_needs_an_nwb_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.arange(5)
    zarr.open_group(tmp_path / "plain.zarr", mode="w")["x"] = np.arange(5)
    for name in ("plain.h5", "plain.zarr"):
        assert main(["config", str(tmp_path / name), "--backend", "zarr"]) == 2
        captured = capsys.readouterr()
        assert "x\n-\n" in captured.out  # the stored settings are still printed first
        assert "cannot read it as an NWB file" in captured.err
        assert "--backend needs an NWB file" in captured.err
