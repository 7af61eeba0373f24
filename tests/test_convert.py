"""Conversion between backends: faithful content, raw chunk copies, links, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore.cli import main
from nwbstore.errors import (
    IncompleteStoreError,
    StoreExistsError,
    UnsupportedCodecError,
)
from nwbstore.testing.nwb_samples import build_external_nwb, build_rich_nwb


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rich")
    build_external_nwb(folder / "external.nwb")
    return build_rich_nwb(folder / "rich.nwb", external=folder / "external.nwb")


def _read_nwb_hdf5(path: Path) -> dict:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        return _summary(io.read())


def _read_nwb_zarr(path: Path, zarr_format: int = 3) -> dict:
    """Read through hdmf-zarr (v3: NWBZarrIO, v2: NWBZarrV2IO), validating with pynwb first."""
    from hdmf_zarr import NWBZarrIO, NWBZarrV2IO
    from pynwb import validate

    reader = NWBZarrIO if zarr_format == 3 else NWBZarrV2IO
    with reader(str(path), "r") as io:
        assert validate(io=io) == []
        return _summary(io.read())


def _summary(nwbfile) -> dict:
    """Content a user looks at, read through pynwb."""
    ecephys = nwbfile.acquisition["ElectricalSeries"]
    behavior = nwbfile.processing["behavior"]
    ophys = nwbfile.processing["ophys"]
    return {
        "identifier": nwbfile.identifier,
        "ephys_sum": int(np.asarray(ecephys.data[:1000], dtype=np.int64).sum()),
        "ephys_shape": tuple(ecephys.data.shape),
        "electrode_labels": list(nwbfile.electrodes["label"][:]),
        "electrode_of_series": list(ecephys.electrodes.data[:]),
        "spike_counts": [len(nwbfile.units["spike_times"][i]) for i in range(len(nwbfile.units))],
        "trial_outcomes": list(nwbfile.trials["outcome"][:]),
        "lick_timestamps_is_speeds": behavior["lick"].timestamps[:5].tolist()
        == behavior["speed"].timestamps[:5].tolist(),
        "roi_response_sum": float(
            np.asarray(ophys["Fluorescence"]["RoiResponseSeries"].data[:]).sum()
        ),
        "movie_sum": int(np.asarray(nwbfile.acquisition["TwoPhotonSeries"].data[:]).sum()),
        "icephys_rows": len(nwbfile.intracellular_recordings),
        "linked_ts": np.asarray(nwbfile.acquisition["linked_ts"].data[:]).tolist(),
        "position_sum": float(np.asarray(behavior["Position"]["position"].data[:]).sum()),
    }


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_rich_nwb_to_zarr_and_back(rich: Path, tmp_path: Path, zarr_format: int) -> None:
    expected = _read_nwb_hdf5(rich)
    out = tmp_path / "rich.nwb.zarr"
    # LZF has no Zarr codec: the caller chooses what it becomes (here zstd)
    report = nwbstore.convert(rich, out, zarr_format=zarr_format, fallback="zstd", progress=False)
    assert report.datasets > 50 and report.references > 0
    assert report.soft_links >= 1 and report.external_links == 1
    # raw copies happened for the byte-compatible codecs (gzip+shuffle, zstd, blosc, fletcher32)
    assert report.chunks_raw > 0
    assert "/acquisition/ElectricalSeries/data" in report.datasets_raw
    assert nwbstore.verify(rich, out).ok
    group = zarr.open_group(out, mode="r")
    assert group.metadata.zarr_format == zarr_format
    assert group.attrs[".specloc"] == "specifications"  # hdmf-zarr's plain-path form
    assert _read_nwb_zarr(out, zarr_format) == expected
    back = tmp_path / "back.nwb"
    nwbstore.convert(out, back, progress=False)
    assert nwbstore.verify(rich, back).ok
    assert _read_nwb_hdf5(back) == expected
    from pynwb import validate

    assert validate(path=str(back)) == []
    with h5py.File(back, "r") as f:  # an object reference again, as pynwb writes it
        assert isinstance(f.attrs[".specloc"], h5py.Reference)
        assert f[f.attrs[".specloc"]].name == "/specifications"


def test_hdf5_to_hdf5_keeps_filters_and_links(rich: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy.nwb"
    report = nwbstore.convert(rich, out, progress=False)
    assert report.chunks_raw > 0
    with h5py.File(rich) as a, h5py.File(out) as b:
        for path in (
            "acquisition/ElectricalSeries/data",
            "processing/ophys/Fluorescence/RoiResponseSeries/data",
            "processing/behavior/Position/position/timestamps",
        ):
            pa, pb = a[path].id.get_create_plist(), b[path].id.get_create_plist()
            fa = [pa.get_filter(i)[:3] for i in range(pa.get_nfilters())]
            fb = [pb.get_filter(i)[:3] for i in range(pb.get_nfilters())]
            assert [f[0] for f in fa] == [f[0] for f in fb], path
            assert a[path].chunks == b[path].chunks
        link = b.get("processing/behavior/lick/timestamps", getlink=True)
        assert isinstance(link, h5py.SoftLink)
        ext = b.get("acquisition/linked_ts/data", getlink=True)
        # rebased so it still reaches the target from the new file's directory
        assert isinstance(ext, h5py.ExternalLink)
        assert (out.parent / ext.filename).resolve() == (rich.parent / "external.nwb").resolve()
        assert b["acquisition/linked_ts/data"][:3].tolist() == [0, 1, 2]
    assert _read_nwb_hdf5(out) == _read_nwb_hdf5(rich)


def test_resolve_links_makes_one_self_contained_file(rich: Path, tmp_path: Path) -> None:
    out = tmp_path / "standalone.nwb"
    report = nwbstore.convert(rich, out, links="resolve", progress=False)
    assert report.resolved_links and report.external_links == 0
    with h5py.File(out) as f:
        assert f.get("acquisition/linked_ts/data", getlink=True).__class__ is h5py.HardLink
        assert f["acquisition/linked_ts/data"][:5].tolist() == [0, 1, 2, 3, 4]
    assert nwbstore.verify(rich, out, links="resolve").ok


def test_external_link_into_other_format_converts_the_target(rich: Path, tmp_path: Path) -> None:
    out = tmp_path / "rich.nwb.zarr"
    report = nwbstore.convert(rich, out, fallback="zstd", progress=False)
    assert report.converted_targets, report
    target = tmp_path / "external.nwb.zarr"
    assert (target / "zarr.json").exists()
    links = zarr.open_group(out, mode="r")["acquisition/linked_ts"].attrs["_LINKS"]
    assert links == [
        {"name": "data", "source": "../external.nwb.zarr", "path": "/acquisition/external_ts/data"}
    ]
    with nwbstore.open(out) as store:
        assert store["acquisition/linked_ts/data"][:3].tolist() == [0, 1, 2]


def test_transcode_with_global_compression(rich: Path, tmp_path: Path) -> None:
    out = tmp_path / "zstd.nwb.zarr"
    report = nwbstore.convert(rich, out, compression="zstd:5", progress=False)
    assert report.chunks_transcoded > 0
    arr = zarr.open_array(out / "acquisition/ElectricalSeries/data", mode="r")
    names = [type(c).__name__ for c in arr.compressors]
    assert names == ["ZstdCodec"] or "Zstd" in str(arr.compressors)
    assert nwbstore.verify(rich, out).ok


def test_destination_exists_is_refused(rich: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.nwb.zarr"
    nwbstore.convert(rich, out, fallback="zstd", progress=False)
    with pytest.raises(StoreExistsError, match="overwrite"):
        nwbstore.convert(rich, out, fallback="zstd", progress=False)
    nwbstore.convert(rich, out, fallback="zstd", overwrite=True, progress=False)


def test_unmappable_codec_raises_with_strict_unless_a_fallback_is_chosen(tmp_path: Path) -> None:
    src = tmp_path / "lzf.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("a", data=np.arange(1000, dtype="f4"), chunks=(100,), compression="lzf")
    with pytest.raises(UnsupportedCodecError, match=r"'/a'.*lzf.*fallback"):
        nwbstore.convert(src, tmp_path / "a.zarr", strict=True, progress=False)
    assert not (tmp_path / "a.zarr").exists()  # refused before the destination was created
    report = nwbstore.convert(src, tmp_path / "b.zarr", fallback="zstd", progress=False)
    assert report.chunks_transcoded >= 1
    assert nwbstore.verify(src, tmp_path / "b.zarr").ok
    arr = zarr.open_array(tmp_path / "b.zarr" / "a", mode="r")
    assert "Zstd" in str(arr.compressors)


def test_interrupted_conversion_is_marked_and_resumable(
    rich: Path, tmp_path: Path, monkeypatch
) -> None:
    from nwbstore.convert import engine

    out = tmp_path / "half.nwb.zarr"
    calls = {"n": 0}
    original = engine.copy_values

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("simulated crash")
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "copy_values", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        nwbstore.convert(rich, out, fallback="zstd", progress=False)
    with pytest.raises(IncompleteStoreError, match="resume"):
        nwbstore.open(out)
    monkeypatch.setattr(engine, "copy_values", original)
    report = nwbstore.convert(rich, out, resume=True, fallback="zstd", progress=False)
    assert report.datasets > 0
    assert nwbstore.verify(rich, out).ok


def test_interrupted_hdf5_destination_does_not_exist_under_its_name(
    rich: Path, tmp_path: Path, monkeypatch
) -> None:
    from nwbstore.convert import engine

    out = tmp_path / "half.nwb"

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(engine, "copy_values", crash)
    with pytest.raises(RuntimeError):
        nwbstore.convert(rich, out, progress=False)
    assert not out.exists()
    assert (tmp_path / "half.nwb.partial").exists()


def test_cli_convert_verify_links_truncate(rich: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli.nwb.zarr"
    assert main(["convert", str(rich), str(out), "--quiet", "--fallback", "zstd"]) == 0
    assert main(["verify", str(rich), str(out)]) == 0
    assert "no differences" in capsys.readouterr().out
    assert main(["links", str(out)]) == 0
    assert "soft link" in capsys.readouterr().out
    small = tmp_path / "small.nwb"
    assert main(["truncate", str(rich), str(small), "-n", "100", "--json", "-q"]) == 0
    with h5py.File(small) as f:
        assert f["acquisition/ElectricalSeries/data"].shape == (100, 32)
        ref = f["general/intracellular_ephys/intracellular_recordings/responses/response"][0]
        assert f[ref["timeseries"]].name.startswith("/acquisition/response_")
    # a difference makes verify exit 1 and name it
    with nwbstore.open(small, "r+") as store:
        store["acquisition/ElectricalSeries/data"][0, 0] = 12345
    capsys.readouterr()
    assert main(["verify", str(rich), str(small)]) == 1
    assert "ElectricalSeries" in capsys.readouterr().out


def test_broken_external_link_is_reported_not_fatal(tmp_path: Path, capsys) -> None:
    src = tmp_path / "broken.h5"
    with h5py.File(src, "w") as f:
        f["dangling"] = h5py.ExternalLink("gone.h5", "/x")
        f.create_dataset("ok", data=[1, 2, 3])
    report = nwbstore.convert(src, tmp_path / "out.h5", progress=False)
    assert any("dangling" in b for b in report.broken_links)
    assert main(["links", str(tmp_path / "out.h5")]) == 1
    assert "BROKEN" in capsys.readouterr().out


def test_memory_is_bounded_by_chunks_not_dataset(tmp_path: Path) -> None:
    """A 400 MB dataset converts with far less than 400 MB of extra memory."""
    import threading

    import psutil

    src = tmp_path / "big.h5"
    with h5py.File(src, "w") as f:
        ds = f.create_dataset(
            "data", shape=(25_000, 2048), dtype="i8", chunks=(500, 2048), **hdf5plugin.Zstd()
        )
        block = np.arange(500 * 2048, dtype="i8").reshape(500, 2048)
        for i in range(0, 25_000, 500):
            ds[i : i + 500] = block
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        nwbstore.convert(src, tmp_path / "big.zarr", raw=False, progress=False)
    finally:
        done.set()
        sampler.join()
    assert (peak - base) < 200 * 2**20, f"grew by {(peak - base) / 2**20:.0f} MiB"
    assert json.loads((tmp_path / "big.zarr" / "data" / "zarr.json").read_text())["shape"] == [
        25_000,
        2048,
    ]


def test_distributed_scheduler_copies_on_workers(rich: Path, tmp_path: Path) -> None:
    """scheduler= spreads block copies over a LocalCluster on loopback."""
    from dask.distributed import Client, LocalCluster

    out = tmp_path / "dask.nwb.zarr"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        report = nwbstore.convert(rich, out, scheduler=client, fallback="zstd", progress=False)
        assert client.run(lambda: 1)  # the workers were alive during the run
    assert report.chunks_transcoded > 0
    assert nwbstore.verify(rich, out).ok
    with pytest.raises(nwbstore.errors.SettingsError, match="Zarr destination"):
        nwbstore.convert(rich, tmp_path / "x.nwb", scheduler="tcp://127.0.0.1:1", progress=False)


def test_convert_to_s3_and_back(rich: Path, tmp_path: Path, s3_server, s3_bucket) -> None:
    """Straight to object storage with the caller's storage_options on every call."""
    url = f"s3://{s3_bucket}/rich.nwb.zarr"
    opts = s3_server.storage_options
    report = nwbstore.convert(
        rich, url, fallback="zstd", links="resolve", storage_options=opts, progress=False
    )
    assert report.chunks_raw > 0
    fs = s3_server.filesystem()
    root = json.loads(fs.cat(f"{s3_bucket}/rich.nwb.zarr/zarr.json"))
    assert "consolidated_metadata" in root and "_NWBSTORE_INCOMPLETE" not in root["attributes"]
    assert nwbstore.verify(rich, url, storage_options=opts, links="resolve").ok
    back = tmp_path / "back.nwb"
    nwbstore.convert(url, back, storage_options=opts, progress=False)
    assert _read_nwb_hdf5(back) == _read_nwb_hdf5(rich)


def test_cli_config_prints_layout(rich: Path, capsys) -> None:
    assert main(["config", str(rich)]) == 0
    out = capsys.readouterr().out
    block = out.split("acquisition/ElectricalSeries/data\n", 1)[1].split("\n\n\n", 1)[0]
    assert "chunk shape : (4096, 32)" in block
    assert "compression method : zlib" in block and "shuffle" in block


def test_corrupt_chunk_names_dataset_and_chunk(tmp_path: Path) -> None:
    from nwbstore.errors import CorruptChunkError

    src = tmp_path / "corrupt.h5"
    with h5py.File(src, "w") as f:
        ds = f.create_dataset(
            "data", data=np.arange(4000, dtype="f8"), chunks=(1000,), compression="gzip"
        )
        offset = ds.id.get_chunk_info(2).byte_offset
    with open(src, "r+b") as fh:  # scribble over the third chunk's deflate stream
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    with pytest.raises(CorruptChunkError, match=r"chunk index \(2,\) of dataset '/data'"):
        nwbstore.convert(src, tmp_path / "out.zarr", raw=False, progress=False)


def test_maxshape_round_trips_between_formats(tmp_path: Path) -> None:
    """Declared limits travel; a Zarr array without one becomes a fixed-size HDF5 dataset."""
    src = tmp_path / "a.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("fixed", data=np.arange(10), chunks=(5,))
        f.create_dataset("grows", data=np.arange(10), chunks=(5,), maxshape=(None,))
        f.create_dataset("capped", data=np.zeros((4, 3)), chunks=(2, 3), maxshape=(8, 3))
    zarr_copy = tmp_path / "b.zarr"
    nwbstore.convert(src, zarr_copy, progress=False)
    back = tmp_path / "c.h5"
    nwbstore.convert(zarr_copy, back, progress=False)
    with h5py.File(back, "r") as f:
        assert f["fixed"].maxshape == (10,)
        assert f["grows"].maxshape == (None,)
        assert f["capped"].maxshape == (8, 3)
    plain = zarr.open_group(tmp_path / "plain.zarr", mode="w")
    plain.create_array("x", data=np.arange(6), chunks=(3,))
    nwbstore.convert(tmp_path / "plain.zarr", tmp_path / "plain.h5", progress=False)
    with h5py.File(tmp_path / "plain.h5", "r") as f:
        assert f["x"].maxshape == (6,) and f["x"].chunks == (3,)
