"""External links across formats: converted targets reused only when they are that source's
finished conversion, options reach the targets, and ``verify`` follows links."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore.cli import main
from nwbstore.convert.identity import SOURCE_ATTR
from nwbstore.errors import LinkTargetConflictError

LINK = "/acquisition/linked/data"


def _write_target(path: Path, values: np.ndarray, **io_kwargs: Any) -> None:
    """An NWB file (pynwb) whose ``acquisition/ts`` other files link to."""
    from datetime import UTC, datetime

    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwbfile = NWBFile("target", "target-id", datetime(2024, 1, 1, tzinfo=UTC))
    data = H5DataIO(values, chunks=(8,), **io_kwargs) if io_kwargs else values
    nwbfile.add_acquisition(TimeSeries(name="ts", data=data, unit="V", rate=10.0))
    if path.exists():
        path.unlink()
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)


def _write_main(path: Path, target: Path) -> None:
    """An NWB file linking to the target's data, as in the PyNWB linking tutorial."""
    from datetime import UTC, datetime

    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    with NWBHDF5IO(str(target), "r") as io_target:
        linked = io_target.read().acquisition["ts"]
        nwbfile = NWBFile("main", "main-id", datetime(2024, 1, 1, tzinfo=UTC))
        nwbfile.add_acquisition(
            TimeSeries(
                name="linked", data=H5DataIO(linked.data, link_data=True), unit="V", rate=10.0
            )
        )
        with NWBHDF5IO(str(path), "w", manager=io_target.manager) as io:
            io.write(nwbfile)


def _pair(folder: Path, values: np.ndarray, **io_kwargs: Any) -> tuple[Path, Path]:
    target, main_file = folder / "target.nwb", folder / "main.nwb"
    _write_target(target, values, **io_kwargs)
    _write_main(main_file, target)
    with h5py.File(main_file) as f:  # pynwb really wrote an external link
        assert isinstance(f.get(LINK, getlink=True), h5py.ExternalLink)
    return main_file, target


def _linked_through_pynwb_zarr(path: Path) -> np.ndarray:
    from hdmf_zarr import NWBZarrIO

    with NWBZarrIO(str(path), "r") as io:
        return np.asarray(io.read().acquisition["linked"].data[:])


def _rewrite_target(target: Path, values: np.ndarray) -> None:
    """Change the target's content (new values) and its modification time."""
    before = os.stat(target).st_mtime_ns
    _write_target(target, values)
    if os.stat(target).st_mtime_ns == before:  # coarse file-system clocks
        os.utime(target, ns=(before + 1_000_000, before + 1_000_000))


def test_stale_target_is_reconverted_and_pynwb_reads_new_samples(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    main_file, target = _pair(src, np.arange(40, dtype="f4"))
    out = tmp_path / "out" / "main.nwb.zarr"
    out.parent.mkdir()
    first = nwbstore.convert(main_file, out, progress=False)
    sibling = out.parent / "target.nwb.zarr"
    assert [line.split(":")[0] for line in first.converted_targets] == ["converted"]
    np.testing.assert_array_equal(_linked_through_pynwb_zarr(out), np.arange(40, dtype="f4"))
    # the record of what the target was converted from sits on its root, read with zarr
    record = json.loads(zarr.open_group(sibling, mode="r").attrs[SOURCE_ATTR])
    assert record["url"] == os.path.realpath(target)
    assert record["size"] == os.path.getsize(target)
    with h5py.File(target) as f:
        assert record["object_id"] == f.attrs["object_id"]
    with nwbstore.open(sibling) as store:  # hidden from users, like the incomplete mark
        assert SOURCE_ATTR not in store.root.attrs

    again = nwbstore.convert(main_file, out, overwrite=True, progress=False)
    assert again.converted_targets[0].startswith("reused (identity matched)")

    new_values = np.arange(100, 140, dtype="f4")
    _rewrite_target(target, new_values)
    third = nwbstore.convert(main_file, out, overwrite=True, progress=False)
    assert third.converted_targets[0].startswith("reconverted (stale)")
    np.testing.assert_array_equal(_linked_through_pynwb_zarr(out), new_values)
    assert nwbstore.verify(main_file, out).ok


def test_verify_follows_external_links_and_names_a_stale_target(tmp_path: Path, capsys) -> None:
    main_file, target = _pair(tmp_path, np.arange(40, dtype="f4"))
    out = tmp_path / "main.nwb.zarr"
    nwbstore.convert(main_file, out, progress=False)
    result = nwbstore.verify(main_file, out)
    assert result.ok and result.links >= 1
    assert main(["links", str(out)]) == 0  # a fresh conversion is not stale
    _rewrite_target(target, np.arange(40, dtype="f4") * 2)  # the converted target is now stale
    result = nwbstore.verify(main_file, out)
    assert not result.ok
    assert any(LINK in d and "values differ" in d for d in result.differences), result.differences
    capsys.readouterr()
    assert main(["verify", str(main_file), str(out)]) == 1
    assert LINK in capsys.readouterr().out
    # `nwbstore links` flags the link into the stale conversion too
    assert main(["links", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "stale" in printed and "target.nwb.zarr" in printed and "convert it again" in printed


def test_verify_reports_a_broken_link_as_a_difference(tmp_path: Path) -> None:
    main_file, _ = _pair(tmp_path, np.arange(40, dtype="f4"))
    out = tmp_path / "main.nwb.zarr"
    nwbstore.convert(main_file, out, progress=False)
    import shutil

    shutil.rmtree(tmp_path / "target.nwb.zarr")
    result = nwbstore.verify(main_file, out)
    assert any(LINK in d and "broken" in d for d in result.differences), result.differences


def _files(folder: Path) -> list[tuple[Path, bytes]]:
    return sorted((p.relative_to(folder), p.read_bytes()) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", ["zarr store", "plain file"])
def test_unrelated_file_at_the_sibling_name_is_refused_and_untouched(
    tmp_path: Path, kind: str
) -> None:
    main_file, _ = _pair(tmp_path, np.arange(40, dtype="f4"))
    sibling = tmp_path / "target.nwb.zarr"
    if kind == "zarr store":
        zarr.open_group(sibling, mode="w").create_array("mine", data=np.arange(5))
    else:
        sibling.write_bytes(b"my notes")
    before = sorted(
        (p.relative_to(tmp_path), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()
    )
    out = tmp_path / "main.nwb.zarr"
    with pytest.raises(LinkTargetConflictError) as info:
        nwbstore.convert(main_file, out, progress=False)
    message = str(info.value)
    assert str(sibling) in message and LINK in message and "remove it" in message
    after = sorted(
        (p.relative_to(tmp_path), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()
    )
    assert after == before  # nothing written: not the user's file, not the destination
    assert not out.exists()


def test_a_conversion_of_another_source_is_refused(tmp_path: Path) -> None:
    """An nwbstore conversion, but of a different file, is not ours to replace."""
    main_file, _ = _pair(tmp_path, np.arange(40, dtype="f4"))
    other = tmp_path / "elsewhere"
    other.mkdir()
    _write_target(other / "target.nwb", np.arange(3, dtype="f4"))
    nwbstore.convert(other / "target.nwb", tmp_path / "target.nwb.zarr", progress=False)
    with pytest.raises(LinkTargetConflictError, match="another destination"):
        nwbstore.convert(main_file, tmp_path / "main.nwb.zarr", progress=False)


def test_fallback_and_compression_reach_the_target_conversion(tmp_path: Path) -> None:
    # LZF has no Zarr counterpart: the target needs the fallback the user chose
    main_file, _ = _pair(tmp_path, np.arange(40, dtype="f4"), compression="lzf")
    out = tmp_path / "main.nwb.zarr"
    report = nwbstore.convert(main_file, out, fallback="lz4", zarr_format=2, progress=False)
    assert report.converted_targets[0].startswith("converted")
    meta = json.loads((tmp_path / "target.nwb.zarr/acquisition/ts/data/.zarray").read_text())
    assert meta["compressor"]["id"] == "lz4"
    group = zarr.open_group(tmp_path / "target.nwb.zarr", mode="r")
    np.testing.assert_array_equal(group["acquisition/ts/data"][:], np.arange(40))

    out2 = tmp_path / "again" / "main.nwb.zarr"
    out2.parent.mkdir()
    nwbstore.convert(main_file, out2, fallback="drop", compression="gzip:3", progress=False)
    codecs = json.loads(
        (out2.parent / "target.nwb.zarr/acquisition/ts/data/zarr.json").read_text()
    )["codecs"]
    assert any(c["name"] == "gzip" and c["configuration"]["level"] == 3 for c in codecs), codecs


def test_every_convert_option_is_handed_to_target_conversions() -> None:
    """New keyword options of convert() flow to target conversions without being listed."""
    import inspect

    from nwbstore.convert.engine import _NOT_FOR_TARGETS, convert

    params = set(inspect.signature(convert).parameters)
    assert params >= _NOT_FOR_TARGETS
    assert {"fallback", "compression", "chunks", "raw", "allow_pickle", "zarr_format"} <= (
        params - _NOT_FOR_TARGETS
    )


def test_zarr_to_hdf5_target_is_converted_reused_and_reconverted(tmp_path: Path) -> None:
    from hdmf_zarr import NWBZarrIO
    from pynwb import NWBHDF5IO

    made = tmp_path / "made"
    made.mkdir()
    zarr_target = tmp_path / "target.nwb.zarr"

    def write_zarr_target(values: np.ndarray) -> None:
        # a pynwb file in Zarr (hdmf-zarr reads it back below)
        _write_target(made / "t.nwb", values)
        nwbstore.convert(made / "t.nwb", zarr_target, overwrite=True, progress=False)
        with NWBZarrIO(str(zarr_target), "r") as io:
            np.testing.assert_array_equal(io.read().acquisition["ts"].data[:], values)

    write_zarr_target(np.arange(20, dtype="f8"))
    main_zarr = tmp_path / "main.nwb.zarr"
    with nwbstore.open(main_zarr, "w") as store:
        group = store.root.require_group("acquisition").require_group("linked")
        group.create_external_link("data", "target.nwb.zarr", "/acquisition/ts/data")
    out_dir = tmp_path / "h5"
    out_dir.mkdir()
    out = out_dir / "main.nwb"
    report = nwbstore.convert(main_zarr, out, progress=False)
    assert report.converted_targets[0].startswith("converted")
    with h5py.File(out) as f:
        link = f.get(LINK, getlink=True)
        assert isinstance(link, h5py.ExternalLink) and link.filename == "target.nwb"
        np.testing.assert_array_equal(f[LINK][:], np.arange(20))
    with NWBHDF5IO(str(out_dir / "target.nwb"), "r") as io:  # the target is a real NWB file
        np.testing.assert_array_equal(io.read().acquisition["ts"].data[:], np.arange(20))

    again = nwbstore.convert(main_zarr, out, overwrite=True, progress=False)
    assert again.converted_targets[0].startswith("reused (identity matched)")

    write_zarr_target(np.arange(20, dtype="f8") + 7)
    assert not nwbstore.verify(main_zarr, out).ok  # the HDF5 target is stale now
    third = nwbstore.convert(main_zarr, out, overwrite=True, progress=False)
    assert third.converted_targets[0].startswith("reconverted (stale)")
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f[LINK][:], np.arange(20) + 7)
    assert nwbstore.verify(main_zarr, out).ok


def test_links_in_a_cycle_convert_and_verify(tmp_path: Path) -> None:
    """a.h5 and b.h5 link to each other: each is converted once, verify ends."""
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = np.arange(4)
        f["to_b"] = h5py.ExternalLink("b.h5", "/")
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["y"] = np.arange(3)
        f["to_a"] = h5py.ExternalLink("a.h5", "/")
    out = tmp_path / "out" / "a.zarr"
    out.parent.mkdir()
    report = nwbstore.convert(tmp_path / "a.h5", out, progress=False)
    assert len(report.converted_targets) == 1
    with nwbstore.open(out) as store:
        assert store["to_b/y"][:].tolist() == [0, 1, 2]
    assert nwbstore.verify(tmp_path / "a.h5", out).ok


def test_targets_in_object_storage_are_judged_by_etag(
    tmp_path: Path, s3_server: Any, s3_bucket: str
) -> None:
    """Source and its link target on S3: the record holds the ETag; a new upload is stale."""
    main_file, target = _pair(tmp_path, np.arange(40, dtype="f4"))
    fs = s3_server.filesystem()
    fs.put(str(main_file), f"{s3_bucket}/src/main.nwb")
    fs.put(str(target), f"{s3_bucket}/src/target.nwb")
    opts = s3_server.storage_options
    out = tmp_path / "out" / "main.nwb.zarr"
    out.parent.mkdir()
    src_url = f"s3://{s3_bucket}/src/main.nwb"
    first = nwbstore.convert(src_url, out, storage_options=opts, progress=False)
    assert first.converted_targets[0].startswith("converted")
    record = json.loads(
        zarr.open_group(out.parent / "target.nwb.zarr", mode="r").attrs[SOURCE_ATTR]
    )
    assert record["url"] == f"s3://{s3_bucket}/src/target.nwb"
    assert record["etag"] == fs.info(f"{s3_bucket}/src/target.nwb")["ETag"].strip('"')
    again = nwbstore.convert(src_url, out, storage_options=opts, overwrite=True, progress=False)
    assert again.converted_targets[0].startswith("reused (identity matched)")
    assert nwbstore.verify(src_url, out, storage_options=opts).ok

    _write_target(target, np.arange(40, dtype="f4") - 5)
    fs.put(str(target), f"{s3_bucket}/src/target.nwb")
    assert not nwbstore.verify(src_url, out, storage_options=opts).ok
    third = nwbstore.convert(src_url, out, storage_options=opts, overwrite=True, progress=False)
    assert third.converted_targets[0].startswith("reconverted (stale)")
    np.testing.assert_array_equal(_linked_through_pynwb_zarr(out), np.arange(40) - 5)

    # destination in object storage: the target's conversion goes beside it, record included
    dst_url = f"s3://{s3_bucket}/out/main.nwb.zarr"
    report = nwbstore.convert(main_file, dst_url, storage_options=opts, progress=False)
    assert report.converted_targets[0].startswith("converted")
    root = json.loads(fs.cat(f"{s3_bucket}/out/target.nwb.zarr/zarr.json"))
    assert json.loads(root["attributes"][SOURCE_ATTR])["url"] == os.path.realpath(target)
    assert "_NWBSTORE_INCOMPLETE" not in root["attributes"]
    again = nwbstore.convert(
        main_file, dst_url, storage_options=opts, overwrite=True, progress=False
    )
    assert again.converted_targets[0].startswith("reused (identity matched)")
    assert nwbstore.verify(main_file, dst_url, storage_options=opts).ok


def test_cli_refuses_an_unrelated_target_without_a_traceback(tmp_path: Path, capsys) -> None:
    main_file, _ = _pair(tmp_path, np.arange(40, dtype="f4"))
    (tmp_path / "target.nwb.zarr").write_bytes(b"not a store")
    capsys.readouterr()
    assert main(["convert", str(main_file), str(tmp_path / "main.nwb.zarr"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "target.nwb.zarr" in err and "Traceback" not in err and "remove it" in err


def test_a_truncated_copy_links_to_the_whole_target(tmp_path: Path) -> None:
    main_file, _ = _pair(tmp_path, np.arange(40, dtype="f4"))
    out = tmp_path / "small.nwb.zarr"
    report = nwbstore.convert(main_file, out, first_n=10, raw=False, progress=False)
    assert report.converted_targets[0].startswith("converted")
    with nwbstore.open(out) as store:
        assert store[LINK].shape == (40,)
    record = json.loads(zarr.open_group(out, mode="r").attrs[SOURCE_ATTR])
    assert record["first_n"] == 10  # the truncated copy says so; its whole target does not
    full = nwbstore.convert(main_file, tmp_path / "full.nwb.zarr", progress=False)
    assert full.converted_targets[0].startswith("reused (identity matched)")
