"""default_settings, available_compressions and describe_settings."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import nwbstore
from nwbstore.defaults import DatasetConfiguration, GiB, MiB, check_buffer_shape
from nwbstore.describe import describe_settings
from nwbstore.errors import SettingsError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_time_by_channels_keeps_whole_rows() -> None:
    c = nwbstore.default_settings((10_000_000, 384), "i2", "hdf5")
    assert c.chunks[1] == 384
    assert 0.5 * 10 * MiB <= math.prod(c.chunks) * 2 <= 10 * MiB
    assert c.settings.compression == "zlib" and c.settings.compression_opts == {"level": 4}
    assert math.prod(c.buffer_shape) * 2 <= GiB and c.buffer_shape[0] % c.chunks[0] == 0


def test_images_keep_whole_frames_and_zarr_v3_shards() -> None:
    c = nwbstore.default_settings((50_000, 512, 512), "u2", "zarr")
    assert c.chunks[1:] == (512, 512)
    assert c.settings.compression == "zstd" and c.settings.shards is not None
    assert all(s % k == 0 for s, k in zip(c.settings.shards, c.chunks, strict=True))
    assert (
        nwbstore.default_settings((50_000, 512, 512), "u2", "zarr", zarr_format=2).settings.shards
        is None
    )
    assert nwbstore.default_settings((100,), "f8", "zarr").settings.shards is None


def test_buffer_rule_names_axis_and_remainder() -> None:
    with pytest.raises(SettingsError, match=r"axis 0 buffer 250 is not a multiple of chunk 100"):
        check_buffer_shape((250, 4), (100, 4), (1000, 4))
    c = nwbstore.default_settings((1000, 4), "f4")
    with pytest.raises(ValueError, match="axis 0"):
        DatasetConfiguration(
            c.shape, c.dtype, "hdf5", c.settings.replace(chunks=(100, 4)), (250, 4)
        )
    with pytest.raises(SettingsError, match="backend"):
        nwbstore.default_settings((3,), "f4", "tiff")  # type: ignore[arg-type]


def test_available_compressions() -> None:
    assert {"zlib", "zstd", "blosc", "lzf"} <= set(nwbstore.available_compressions("hdf5"))
    assert {"zlib", "zstd", "blosc", "gzip"} <= set(nwbstore.available_compressions("zarr"))
    assert "gzip" not in nwbstore.available_compressions("hdf5")


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(0, 3000), min_size=1, max_size=4),
    dtype=st.sampled_from(["u1", "i2", "f4", "f8", "c16"]),
    chunk_mb=st.sampled_from([0.01, 0.1, 1.0]),
    buffer_gb=st.sampled_from([0.001, 0.01]),
    backend=st.sampled_from(["hdf5", "zarr"]),
)
def test_default_invariants(
    shape: list[int], dtype: str, chunk_mb: float, buffer_gb: float, backend: str
) -> None:
    c = nwbstore.default_settings(tuple(shape), dtype, backend, chunk_mb=chunk_mb,  # type: ignore[arg-type]
                                  buffer_gb=buffer_gb)  # fmt: skip
    item = np.dtype(dtype).itemsize
    chunks = c.chunks
    assert chunks is not None and len(chunks) == len(shape)
    assert math.prod(chunks) * item <= max(chunk_mb * MiB, item)
    assert math.prod(c.buffer_shape) * item <= buffer_gb * GiB or c.buffer_shape == chunks
    check_buffer_shape(c.buffer_shape, chunks, tuple(shape))
    if (
        len(shape) >= 2
        and shape[-1] * item * (shape[-2] if len(shape) >= 3 else 1) <= chunk_mb * MiB
    ):
        assert chunks[-1] == max(shape[-1], 1)  # whole rows / frames kept


@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_defaults_create_real_datasets(tmp_path: Path, backend: str) -> None:
    c = nwbstore.default_settings((5000, 32), "i2", backend, chunk_mb=0.05)  # type: ignore[arg-type]
    data = np.arange(5000 * 32, dtype="i2").reshape(5000, 32)
    if backend == "hdf5":
        with h5py.File(tmp_path / "a.h5", "w") as f:
            f.create_dataset("x", data=data, **c.settings.to_hdf5())
            assert f["x"].chunks == c.chunks and f["x"].compression == "gzip"
    else:
        g = zarr.open_group(tmp_path / "a.zarr", mode="w")
        arr = g.create_array("x", shape=data.shape, dtype="i2", **c.settings.to_zarr(3, dtype="i2"))
        arr[...] = data
        assert arr.chunks == c.chunks and arr.shards == c.settings.shards


def test_describe_settings_on_a_store(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset(
            "acquisition/ts/data", data=np.zeros((3,)), chunks=(3,), compression="gzip"
        )
    with nwbstore.open(str(tmp_path / "a.h5")) as store:
        text = describe_settings(store)
    for part in ("acquisition/ts/data", "dtype : float64", "full shape of source array : (3,)",
                 "full size of source array : 24 B", "buffer shape : (3,)",
                 "expected RAM usage : 24 B", "chunk shape : (3,)",
                 "disk space usage per chunk : 24 B", "compression method : zlib"):  # fmt: skip
        assert part in text
    assert "chunk shape : (3,)" in str(nwbstore.default_settings((3,), "f8"))
