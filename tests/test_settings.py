"""DatasetSettings: validation, equality/JSON, and mapping between real HDF5 and Zarr."""

from __future__ import annotations

from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from nwbstore import DatasetSettings
from nwbstore.errors import SettingsError, UnsupportedCodecError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"chunks": (10, 20), "maxshape": (100, 5)}, r"axis 1 chunk 20 is larger than maxshape 5"),
        ({"chunks": (10,), "maxshape": (100, 5)}, r"rank must match"),
        ({"chunks": (10, 0)}, r"chunks=\(10, 0\): axis 1 is 0; it must be positive"),
        ({"chunks": (10, 10), "shards": (25, 10)}, r"axis 0 shard 25 is not a multiple of chunk"),
        ({"chunks": (10,), "compression": "snappy9"}, r"not a known codec; choose one of .*zstd"),
        ({"chunks": (10,), "compression": "zlib", "compression_opts": -1}, r"level=-1 .* 0 to 9"),
        ({"chunks": (10,), "compression": "blosc", "compression_opts": {"clevel": 11}}, "clevel"),
        ({"chunks": (10,), "compression": "zstd", "compression_opts": {"lvl": 3}}, "unknown opt"),
        ({"compression": "zstd"}, r"need a chunked layout"),
        ({"chunks": (10,), "compression_opts": 3}, r"without a compression"),
        ({"chunks": (10,), "compression": "shuffle"}, r"use shuffle=True"),
    ],
)
def test_bad_settings_raise_specific_value_errors(kwargs: dict, pattern: str) -> None:
    with pytest.raises(SettingsError, match=pattern) as err:
        DatasetSettings(**kwargs)
    assert isinstance(err.value, ValueError)


def test_normalisation_equality_hash_json() -> None:
    a = DatasetSettings(chunks=[100, 4], compression="deflate", compression_opts=4, shuffle=True)
    b = DatasetSettings(chunks=(100, 4), compression="zlib", filters=("shuffle",))
    assert a == b and hash(a) == hash(b) and {a, b} == {a}
    assert a.compression_opts == {"level": 4}
    assert DatasetSettings.from_json(a.to_json()) == a
    nan = DatasetSettings(chunks=(3,), fill_value=float("nan"), checksum=True)
    assert nan == DatasetSettings.from_json(nan.to_json()) and nan.checksum == "fletcher32"
    assert DatasetSettings(chunks=(3,), fill_value=0).fill_value is None
    with pytest.raises(SettingsError, match="unknown settings field"):
        DatasetSettings.from_dict({"chunk": (3,)})


def test_str_is_readable() -> None:
    text = str(DatasetSettings(chunks=(1000, 16), shards=(4000, 16), compression="zstd",
                               shuffle=True, checksum=True))  # fmt: skip
    for part in ("chunk shape : (1000, 16)", "shard shape : (4000, 16)", "zstd", "level=3",
                 "shuffle", "fletcher32"):  # fmt: skip
        assert part in text


def test_zarr_zstd_shuffle_becomes_equivalent_hdf5(tmp_path: Path) -> None:
    """The issue's pin: Zarr zstd + shuffle, chunks (1000, 16) -> same chunks and pipeline."""
    group = zarr.open_group(tmp_path / "a.zarr", mode="w")
    from zarr.codecs import ZstdCodec
    from zarr.codecs.numcodecs import Shuffle

    arr = group.create_array("x", shape=(5000, 16), dtype="i2", chunks=(1000, 16),
                             compressors=[Shuffle(elementsize=2), ZstdCodec(level=5)])  # fmt: skip
    data = (np.arange(80000) % 3000).astype("i2").reshape(5000, 16)
    arr[...] = data
    with h5py.File(tmp_path / "a.h5", "w") as f:
        ds = f.create_dataset("x", data=arr[...], **DatasetSettings.from_zarr(arr).to_hdf5())
        assert ds.chunks == (1000, 16)
        assert ds.shuffle is True and ds.compression == "unknown"  # h5py's own view
        pl = ds.id.get_create_plist()
        filters = [pl.get_filter(i)[:3] for i in range(pl.get_nfilters())]
        assert filters == [(2, 1, (2,)), (hdf5plugin.ZSTD_ID, 1, (5,))]
        np.testing.assert_array_equal(ds[...], data)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_no_default_compressor_is_added(tmp_path: Path, zarr_format: int) -> None:
    group = zarr.open_group(tmp_path / "a.zarr", mode="w", zarr_format=zarr_format)
    s = DatasetSettings(chunks=(10,))
    arr = group.create_array("x", shape=(30,), dtype="f8", **s.to_zarr(zarr_format, dtype="f8"))
    assert tuple(arr.compressors) == () and tuple(arr.filters) == ()
    assert DatasetSettings.from_zarr(arr).replace(source=None) == s


def test_unknown_hdf5_filter_and_fallbacks(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("z", data=np.ones((64, 48), "f4"), chunks=(32, 24),
                         **hdf5plugin.Zfp(rate=8))  # fmt: skip
        s = DatasetSettings.from_hdf5(f["z"])
    with pytest.raises(UnsupportedCodecError) as err:
        s.to_zarr(3)
    msg = str(err.value)
    assert "a.h5:/z" in msg and "32013" in msg and "fallback='drop'" in msg and "'zstd'" in msg
    assert s.to_zarr(3, fallback="drop")["compressors"] is None
    assert [c.to_dict()["name"] for c in s.to_zarr(3, fallback="zstd")["compressors"]] == ["zstd"]


def test_zarr_v2_shuffle_needs_dtype() -> None:
    with pytest.raises(SettingsError, match="dtype"):
        DatasetSettings(chunks=(4,), shuffle=True).to_zarr(2)


ZARR_PIPE = st.lists(
    st.sampled_from(["shuffle", ("delta", {"dtype": "<i4"}), "fletcher32"]), max_size=2
)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    data=st.data(),
    compression=st.sampled_from([None, "zlib", "zstd", "blosc", "bz2", "lz4", "gzip", "lzma"]),
    shuffle=st.booleans(),
    checksum=st.sampled_from([False, True, "crc32c"]),
    zarr_format=st.sampled_from([2, 3]),
)
def test_random_settings_round_trip_through_real_zarr(
    shape: list[int], data: st.DataObject, compression: str | None, shuffle: bool,
    checksum: bool | str, zarr_format: int,
) -> None:  # fmt: skip
    chunks = tuple(data.draw(st.integers(1, s)) for s in shape)
    fill = data.draw(st.sampled_from([None, 7]))
    s = DatasetSettings(chunks=chunks, compression=compression, shuffle=shuffle,
                        checksum=checksum, fill_value=fill)  # fmt: skip
    assert DatasetSettings.from_json(s.to_json()) == s
    group = zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=zarr_format)
    arr = group.create_array("x", shape=tuple(shape), dtype="<i4",
                             **s.to_zarr(zarr_format, dtype="<i4"))  # fmt: skip
    values = np.arange(np.prod(shape), dtype="<i4").reshape(shape)
    arr[...] = values
    np.testing.assert_array_equal(arr[...], values)
    assert DatasetSettings.from_zarr(arr).replace(source=None) == s
    if all(p.name not in ("gzip", "lzma", "crc32c") for p in s.pipeline):
        kw = s.to_hdf5()
        with h5py.File("mem.h5", "w", driver="core", backing_store=False) as f:
            f.create_dataset("x", data=values, **kw)
            assert DatasetSettings.from_hdf5(f["x"]).replace(source=None) == s
