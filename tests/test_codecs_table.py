"""The codec table: every row maps both ways; byte-compatible rows copy raw chunks across."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin  # noqa: F401  (registers the plugin filters)
import numpy as np
import pytest
import zarr

from nwbstore import DatasetSettings
from nwbstore.codecs import CODEC_TABLE, codec_table_markdown, read_hdf5_filters, row_by_name
from nwbstore.errors import UnsupportedCodecError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DOCS = Path(__file__).resolve().parents[1] / "docs" / "codecs.md"

# HDF5 settings that exercise each HDF5 row, with a dtype the filter accepts
HDF5_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "zlib": ({"compression": "zlib", "compression_opts": 6}, "i4"),
    "shuffle": ({"shuffle": True, "compression": "zlib"}, "i2"),
    "fletcher32": ({"checksum": True}, "f8"),
    "szip": ({"compression": "szip", "compression_opts": {"coding": "ec"}}, "i4"),
    "nbit": ({"filters": ("nbit",)}, "i4"),
    "scaleoffset": ({"filters": (("scaleoffset", {"scale_type": 2, "factor": 0}),)}, "i4"),
    "lzf": ({"compression": "lzf"}, "i4"),
    "blosc": ({"compression": "blosc", "compression_opts": {"cname": "zstd", "clevel": 7}}, "f4"),
    "blosc2": ({"compression": "blosc2", "compression_opts": {"cname": "lz4", "clevel": 5}}, "f4"),
    "bitshuffle": ({"compression": "bitshuffle", "compression_opts": {"cname": "lz4"}}, "u2"),
    "bz2": ({"compression": "bz2", "compression_opts": 7}, "i8"),
    "lz4": ({"compression": "lz4"}, "i4"),
    "zstd": ({"compression": "zstd", "compression_opts": 9}, "u1"),
    "zfp": ({"compression": "zfp", "compression_opts": {"rate": 16}}, "f4"),
    "sz": ({"compression": "sz", "compression_opts": {"absolute": 0.01}}, "f4"),
    "sz3": ({"compression": "sz3", "compression_opts": {"absolute": 0.01}}, "f4"),
    "sperr": ({"compression": "sperr", "compression_opts": {"rate": 16}}, "f4"),
    "fcidecomp": ({"compression": "fcidecomp"}, "u2"),
    "htj2k": ({"compression": "htj2k"}, "u2"),
}
SHAPE, CHUNKS = (64, 48), (32, 24)


def _data(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return np.cumsum(rng.normal(size=SHAPE), axis=0).astype(dt)
    return (np.arange(np.prod(SHAPE)).reshape(SHAPE) % 1000).astype(dt)


def _needs(row_name: str) -> None:
    row = row_by_name(row_name)
    assert row is not None
    for pkg in row.requires:
        if importlib.util.find_spec(pkg) is None:
            pytest.skip(f"{row_name} needs {pkg}, which is not installed")
    if row.hdf5_id is not None and not h5py.h5z.filter_avail(row.hdf5_id):
        pytest.skip(f"HDF5 filter {row.hdf5_id} ({row_name}) is not available in this HDF5")


def _write_h5(path: Path, settings: DatasetSettings, data: np.ndarray) -> h5py.File:
    f = h5py.File(path, "w")
    f.create_dataset("x", data=data, **settings.to_hdf5())
    return f


def test_every_hdf5_filter_has_a_row_and_a_case() -> None:
    hdf5_rows = {r.name for r in CODEC_TABLE if r.hdf5_id is not None}
    assert hdf5_rows == set(HDF5_CASES)
    ids = {r.hdf5_id for r in CODEC_TABLE}
    assert {1, 2, 3, 4, 5, 6, 32000, 32001, 32026, 32008, 307, 32004, 32015, 32013, 32017,
            32024, 32028, 32018, 32033} <= ids  # fmt: skip


@pytest.mark.parametrize("name", sorted(HDF5_CASES))
def test_hdf5_row_writes_and_reads_back(tmp_path: Path, name: str) -> None:
    """HDF5 -> settings -> HDF5: the filter pipeline h5py sees is the one requested."""
    _needs(name)
    kw, dtype = HDF5_CASES[name]
    settings = DatasetSettings(chunks=CHUNKS, **kw)
    with _write_h5(tmp_path / "a.h5", settings, _data(dtype)) as f:
        ds = f["x"]
        assert row_by_name(name).hdf5_id in [fid for fid, *_ in read_hdf5_filters(ds)]
        back = DatasetSettings.from_hdf5(ds)
        if name == "zfp":  # the file keeps only the ZFP header: new options are needed
            assert back.compression_opts["stored_header"] is True
            with pytest.raises(UnsupportedCodecError, match="rate"):
                back.to_hdf5()
            return
        assert back == settings
        with h5py.File(tmp_path / "b.h5", "w") as g:
            g.create_dataset("x", data=ds[...], **back.to_hdf5())
            assert DatasetSettings.from_hdf5(g["x"]) == settings
            pl = g["x"].id.get_create_plist()
            pl0 = ds.id.get_create_plist()
            assert [pl.get_filter(i)[0] for i in range(pl.get_nfilters())] == [
                pl0.get_filter(i)[0] for i in range(pl0.get_nfilters())
            ]


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("name", sorted(HDF5_CASES))
def test_round_trip_through_zarr(tmp_path: Path, name: str, zarr_format: int) -> None:
    """HDF5 -> settings -> Zarr -> settings -> HDF5 gives the same settings (or refuses)."""
    _needs(name)
    kw, dtype = HDF5_CASES[name]
    data = _data(dtype)
    with _write_h5(tmp_path / "a.h5", DatasetSettings(chunks=CHUNKS, **kw), data) as f:
        src = DatasetSettings.from_hdf5(f["x"])
    has_zarr = all(row_by_name(s.name).has_zarr for s in src.pipeline)
    group = zarr.open_group(tmp_path / "z.zarr", mode="w", zarr_format=zarr_format)
    if not has_zarr:
        with pytest.raises(UnsupportedCodecError, match="fallback='drop'") as err:
            src.to_zarr(zarr_format, dtype=dtype)
        assert str(row_by_name(name).hdf5_id) in str(err.value) or name in str(err.value)
        assert "a.h5:/x" in str(err.value)
        return
    arr = group.create_array(
        "x", shape=data.shape, dtype=dtype, **src.to_zarr(zarr_format, dtype=dtype)
    )
    arr[...] = data
    np.testing.assert_array_equal(arr[...], data)
    back = DatasetSettings.from_zarr(zarr.open_array(tmp_path / "z.zarr" / "x", mode="r"))
    assert back.replace(source=None) == src
    with h5py.File(tmp_path / "b.h5", "w") as g:
        g.create_dataset("x", data=arr[...], **back.to_hdf5())
        assert DatasetSettings.from_hdf5(g["x"]) == src


def _chunk_file(root: Path, zarr_format: int, index: tuple[int, ...]) -> Path:
    key = ("c/" + "/".join(map(str, index))) if zarr_format == 3 else ".".join(map(str, index))
    return root / key


RAW_ROWS = sorted(
    name
    for name in HDF5_CASES
    if all(
        row_by_name(s.name).raw_copy
        for s in DatasetSettings(chunks=CHUNKS, **HDF5_CASES[name][0]).pipeline
    )
)


def test_raw_rows_are_the_rows_marked_raw() -> None:
    marked = {r.name for r in CODEC_TABLE if r.raw_copy}
    assert marked == {"zlib", "shuffle", "fletcher32", "blosc", "bz2", "zstd"}
    assert set(RAW_ROWS) == marked


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("name", RAW_ROWS)
def test_raw_chunks_cross_both_ways(tmp_path: Path, name: str, zarr_format: int) -> None:
    """A raw HDF5 chunk decodes through the Zarr pipeline, and a Zarr chunk through HDF5."""
    _needs(name)
    kw, dtype = HDF5_CASES[name]
    data = _data(dtype)
    settings = DatasetSettings(chunks=CHUNKS, **kw)
    zkw = settings.to_zarr(zarr_format, dtype=dtype)
    grid = [(i, j) for i in range(SHAPE[0] // CHUNKS[0]) for j in range(SHAPE[1] // CHUNKS[1])]

    # HDF5 -> Zarr: copy each stored chunk's bytes to the Zarr chunk key, read with zarr
    with _write_h5(tmp_path / "a.h5", settings, data) as f:
        group = zarr.open_group(tmp_path / "z.zarr", mode="w", zarr_format=zarr_format)
        group.create_array("x", shape=SHAPE, dtype=dtype, **zkw)
        for idx in grid:
            offset = tuple(i * c for i, c in zip(idx, CHUNKS, strict=True))
            mask, raw = f["x"].id.read_direct_chunk(offset)
            assert mask == 0
            path = _chunk_file(tmp_path / "z.zarr" / "x", zarr_format, idx)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(raw)
    arr = zarr.open_array(tmp_path / "z.zarr" / "x", mode="r")
    np.testing.assert_array_equal(arr[...], data)

    # Zarr -> HDF5: write with zarr, copy chunk bytes with write_direct_chunk, read with h5py
    group = zarr.open_group(tmp_path / "w.zarr", mode="w", zarr_format=zarr_format)
    warr = group.create_array("x", shape=SHAPE, dtype=dtype, **zkw)
    warr[...] = data
    with h5py.File(tmp_path / "b.h5", "w") as g:
        ds = g.create_dataset("x", shape=SHAPE, dtype=dtype, **settings.to_hdf5())
        for idx in grid:
            raw = _chunk_file(tmp_path / "w.zarr" / "x", zarr_format, idx).read_bytes()
            ds.id.write_direct_chunk(tuple(i * c for i, c in zip(idx, CHUNKS, strict=True)), raw)
        np.testing.assert_array_equal(ds[...], data)


def test_docs_page_is_generated_from_the_table() -> None:
    assert DOCS.read_text(encoding="utf-8") == codec_table_markdown(), (
        "docs/codecs.md is stale: regenerate with `python -m nwbstore.codecs > docs/codecs.md`"
    )


def test_zarr_only_rows_refuse_hdf5_and_name_the_choices() -> None:
    s = DatasetSettings(chunks=(10,), compression="gzip", source="f.zarr/x")
    with pytest.raises(UnsupportedCodecError) as err:
        s.to_hdf5()
    msg = str(err.value)
    assert "f.zarr/x" in msg and "gzip" in msg and "fallback='drop'" in msg and "'zlib'" in msg
    kw = s.to_hdf5(fallback="zlib")
    assert kw["compression"] == "gzip" and kw["compression_opts"] == 4
    assert "compression" not in s.to_hdf5(fallback="drop")
