"""The source of a conversion is never written; --overwrite replaces only a finished result."""

from __future__ import annotations

import hashlib
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
from nwbstore.convert.overlap import overlaps
from nwbstore.errors import SameSourceAndDestinationError, StoreExistsError


def _h5_source(path: Path, seed: int = 0, external: Path | None = None) -> Path:
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=rng.integers(0, 1000, (400, 8)), chunks=(50, 8))
        f.create_dataset("t", data=np.arange(400, dtype="f8") + seed, chunks=(100,))
        f["grp/x"] = np.array([seed, seed + 1])
        if external is not None:
            f["ext"] = h5py.ExternalLink(os.path.relpath(external, path.parent), "/t")
    return path


def _digest(path: Path) -> str:
    """Hash of every file under ``path`` (or of the file), with relative names."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return h.hexdigest()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(item.relative_to(path)).encode())
        h.update(item.read_bytes())
    return h.hexdigest()


@pytest.fixture
def h5src(tmp_path: Path) -> Path:
    return _h5_source(tmp_path / "s.nwb")


@pytest.fixture
def zsrc(h5src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "s.nwb.zarr"
    nwbstore.convert(h5src, out, progress=False)
    return out


# -- the source is refused as a destination ------------------------------------------------


@pytest.mark.parametrize("resume", [False, True])
def test_hdf5_source_as_destination_is_refused_and_untouched(h5src: Path, resume: bool) -> None:
    before = _digest(h5src)
    with pytest.raises(SameSourceAndDestinationError, match="choose another destination") as err:
        nwbstore.convert(h5src, h5src, overwrite=True, resume=resume, progress=False)
    assert str(h5src) in str(err.value)
    assert isinstance(err.value, ValueError)
    assert _digest(h5src) == before
    assert not Path(str(h5src) + ".partial").exists()


def test_zarr_source_spelled_differently_is_refused(
    zsrc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _digest(zsrc)
    monkeypatch.chdir(tmp_path)
    for spelling in ("./s.nwb.zarr", "s.nwb.zarr/", str(zsrc) + "/", "sub/../s.nwb.zarr"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(SameSourceAndDestinationError):
            nwbstore.convert("s.nwb.zarr", spelling, overwrite=True, progress=False)
    link = tmp_path / "alias.nwb.zarr"
    link.symlink_to(zsrc, target_is_directory=True)
    with pytest.raises(SameSourceAndDestinationError, match="alias"):
        nwbstore.convert(zsrc, link, overwrite=True, progress=False)
    assert _digest(zsrc) == before
    root = zarr.open_group(zsrc, mode="r")
    assert int(np.asarray(root["data"][:]).sum()) > 0


def test_destination_inside_or_around_the_source_is_refused(
    zsrc: Path, h5src: Path, tmp_path: Path
) -> None:
    before = _digest(zsrc)
    with pytest.raises(SameSourceAndDestinationError, match="lies inside"):
        nwbstore.convert(zsrc, zsrc / "copy.nwb.zarr", progress=False)
    assert not (zsrc / "copy.nwb.zarr").exists()
    with pytest.raises(SameSourceAndDestinationError, match="contains"):
        nwbstore.convert(h5src, tmp_path, format="zarr", overwrite=True, progress=False)
    assert h5src.exists()
    assert _digest(zsrc) == before


def test_cli_refuses_source_as_destination(h5src: Path, zsrc: Path, capsys) -> None:
    h5_before, z_before = _digest(h5src), _digest(zsrc)
    assert main(["convert", str(h5src), str(h5src), "--overwrite", "-q"]) == 2
    err = capsys.readouterr().err
    assert "choose another destination" in err and "Traceback" not in err
    zarr_copy = str(zsrc.parent / "." / zsrc.name)
    assert main(["convert", str(zsrc), zarr_copy, "--overwrite", "-q"]) == 2
    assert main(["truncate", str(h5src), str(h5src), "-n", "10", "--overwrite", "-q"]) == 2
    assert _digest(h5src) == h5_before and _digest(zsrc) == z_before


def test_overlap_rules_for_object_storage() -> None:
    assert overlaps("s3://b/x.nwb.zarr", "s3://b/x.nwb.zarr/")
    assert overlaps("s3://b/x.nwb.zarr", "s3://b/x.nwb.zarr/inner.zarr")
    assert overlaps("s3://b/dir/x.nwb.zarr", "s3://b/dir")
    assert overlaps("s3://b/dir/x.nwb", "s3://b")
    assert not overlaps("s3://b/x.nwb.zarr", "s3://b/x.nwb.zarr2")
    assert not overlaps("s3://b/x.nwb.zarr", "s3://other/x.nwb.zarr")
    assert not overlaps("s3://b/x.nwb", "/b/x.nwb")


def test_s3_source_as_destination_is_refused(h5src: Path, s3_server, s3_bucket: str) -> None:
    opts = s3_server.storage_options
    url = f"s3://{s3_bucket}/s.nwb.zarr"
    nwbstore.convert(h5src, url, storage_options=opts, progress=False)
    fs = s3_server.filesystem()
    keys = sorted(fs.find(f"{s3_bucket}/s.nwb.zarr"))
    for dst in (url + "/", f"s3://{s3_bucket}/s.nwb.zarr/sub.nwb.zarr", f"s3://{s3_bucket}/"):
        with pytest.raises(SameSourceAndDestinationError):
            nwbstore.convert(
                url, dst, format="zarr", storage_options=opts, overwrite=True, progress=False
            )
    assert sorted(s3_server.filesystem().find(f"{s3_bucket}/s.nwb.zarr")) == keys


# -- overwrite replaces only at the end ----------------------------------------------------


class _Crash(RuntimeError):
    pass


def _crash_after(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    from nwbstore.convert import engine

    original = engine.copy_values
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] > n:
            raise _Crash("simulated failure in the middle of an overwrite")
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "copy_values", failing)


@pytest.mark.parametrize("suffix", [".nwb", ".nwb.zarr"])
def test_failed_overwrite_leaves_the_old_destination_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    old_src = _h5_source(tmp_path / "old.nwb", seed=1)
    new_src = _h5_source(tmp_path / "new.nwb", seed=2)
    dst = tmp_path / f"out{suffix}"
    nwbstore.convert(old_src, dst, progress=False)
    before = _digest(dst)
    with monkeypatch.context() as m:
        _crash_after(m, 1)
        with pytest.raises(_Crash):
            nwbstore.convert(new_src, dst, overwrite=True, progress=False)
    assert _digest(dst) == before
    with h5py.File(old_src, "r") as f:
        expected = f["t"][:]
    if suffix == ".nwb":
        with h5py.File(dst, "r") as f:
            np.testing.assert_array_equal(f["t"][:], expected)
    else:
        np.testing.assert_array_equal(zarr.open_array(dst / "t", mode="r")[:], expected)
    with nwbstore.open(dst) as store:  # still complete
        np.testing.assert_array_equal(store["t"][:], expected)

    # the next overwrite clears the leftovers and replaces
    nwbstore.convert(new_src, dst, overwrite=True, progress=False)
    with h5py.File(new_src, "r") as f:
        expected = f["t"][:]
    if suffix == ".nwb":
        with h5py.File(dst, "r") as f:
            np.testing.assert_array_equal(f["t"][:], expected)
    else:
        np.testing.assert_array_equal(zarr.open_array(dst / "t", mode="r")[:], expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["old.nwb", "new.nwb", f"out{suffix}"]
    )


def test_failed_overwrite_on_s3_leaves_the_old_destination_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server, s3_bucket: str
) -> None:
    opts = s3_server.storage_options
    old_src = _h5_source(tmp_path / "old.nwb", seed=1)
    new_src = _h5_source(tmp_path / "new.nwb", seed=2)
    url = f"s3://{s3_bucket}/out.nwb.zarr"
    nwbstore.convert(old_src, url, storage_options=opts, progress=False)
    fs = s3_server.filesystem()
    before = {k: fs.cat_file(k) for k in fs.find(f"{s3_bucket}/out.nwb.zarr")}
    with monkeypatch.context() as m:
        _crash_after(m, 1)
        with pytest.raises(_Crash):
            nwbstore.convert(new_src, url, storage_options=opts, overwrite=True, progress=False)
    fs = s3_server.filesystem()
    assert {k: fs.cat_file(k) for k in fs.find(f"{s3_bucket}/out.nwb.zarr")} == before

    nwbstore.convert(new_src, url, storage_options=opts, overwrite=True, progress=False)
    root = zarr.open_group(url, mode="r", storage_options=opts)
    with h5py.File(new_src, "r") as f:
        np.testing.assert_array_equal(root["t"][:], f["t"][:])
        np.testing.assert_array_equal(root["data"][:], f["data"][:])
    assert "_NWBSTORE_INCOMPLETE" not in root.attrs
    listed = s3_server.filesystem().ls(s3_bucket, detail=False)
    assert listed == [f"{s3_bucket}/out.nwb.zarr"]  # no temporaries left


def test_overwrite_with_temporary_name_keeps_link_urls_relative_to_the_final_store(
    tmp_path: Path,
) -> None:
    target = _h5_source(tmp_path / "target.nwb", seed=5)
    src = _h5_source(tmp_path / "s.nwb", external=target)
    dst = tmp_path / "out.nwb"
    nwbstore.convert(src, dst, progress=False)
    nwbstore.convert(src, dst, overwrite=True, progress=False)
    with h5py.File(dst, "r") as f:
        link = f.get("ext", getlink=True)
        assert isinstance(link, h5py.ExternalLink)
        assert link.filename == "target.nwb"
        np.testing.assert_array_equal(f["ext"][:], np.arange(400) + 5.0)
    zdst = tmp_path / "out.nwb.zarr"
    nwbstore.convert(src, zdst, progress=False)
    nwbstore.convert(src, zdst, overwrite=True, progress=False)
    links = json.loads((zdst / "zarr.json").read_text())["attributes"]["_LINKS"]
    assert all("nwbstore-new" not in json.dumps(entry) for entry in links)
    with nwbstore.open(zdst) as store:
        np.testing.assert_array_equal(store["ext"][:], np.arange(400) + 5.0)


def test_stale_partial_blocks_a_plain_rerun_and_overwrite_clears_it(
    h5src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = tmp_path / "out.nwb"
    with monkeypatch.context() as m:
        _crash_after(m, 1)
        with pytest.raises(_Crash):
            nwbstore.convert(h5src, dst, progress=False)
    partial = tmp_path / "out.nwb.partial"
    assert partial.exists() and not dst.exists()
    with pytest.raises(StoreExistsError, match=r"--resume.*--overwrite"):
        nwbstore.convert(h5src, dst, progress=False)
    assert main(["convert", str(h5src), str(dst), "--overwrite", "-q"]) == 0
    assert not partial.exists()
    with h5py.File(dst, "r") as f, h5py.File(h5src, "r") as s:
        np.testing.assert_array_equal(f["data"][:], s["data"][:])
        assert "_NWBSTORE_INCOMPLETE" not in f.attrs


def test_interrupted_overwrite_is_resumed_into_its_temporary_store_then_swapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_src = _h5_source(tmp_path / "old.nwb", seed=1)
    new_src = _h5_source(tmp_path / "new.nwb", seed=2)
    dst = tmp_path / "out.nwb.zarr"
    nwbstore.convert(old_src, dst, progress=False)
    with monkeypatch.context() as m:
        _crash_after(m, 2)
        with pytest.raises(_Crash):
            nwbstore.convert(new_src, dst, overwrite=True, progress=False)
    temporary = tmp_path / ".out.nwb.zarr.nwbstore-new"
    assert temporary.is_dir()  # hidden sibling, carrying the incomplete mark
    assert "_NWBSTORE_INCOMPLETE" in zarr.open_group(temporary, mode="r").attrs
    report = nwbstore.convert(new_src, dst, resume=True, progress=False)
    assert "resumed" in report.resume_note
    assert not temporary.exists()
    with h5py.File(new_src, "r") as f:
        np.testing.assert_array_equal(zarr.open_array(dst / "data", mode="r")[:], f["data"][:])
        np.testing.assert_array_equal(zarr.open_array(dst / "grp/x", mode="r")[:], f["grp/x"][:])


def test_resume_moves_a_finished_result_left_under_its_temporary_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nwbstore.convert import staging

    old_src = _h5_source(tmp_path / "old.nwb", seed=1)
    new_src = _h5_source(tmp_path / "new.nwb", seed=2)
    dst = tmp_path / "out.nwb.zarr"
    nwbstore.convert(old_src, dst, progress=False)

    def crash(new: str, final: str) -> None:
        raise _Crash("died while swapping")

    with monkeypatch.context() as m:
        m.setattr(staging, "_swap_local", crash)
        with pytest.raises(_Crash):
            nwbstore.convert(new_src, dst, overwrite=True, progress=False)
    with h5py.File(old_src, "r") as f:  # the old store is still in place
        np.testing.assert_array_equal(zarr.open_array(dst / "t", mode="r")[:], f["t"][:])
    report = nwbstore.convert(new_src, dst, resume=True, progress=False)
    assert "moved to" in report.resume_note
    assert not (tmp_path / ".out.nwb.zarr.nwbstore-new").exists()
    with h5py.File(new_src, "r") as f:
        np.testing.assert_array_equal(zarr.open_array(dst / "t", mode="r")[:], f["t"][:])


@pytest.mark.parametrize("suffix", [".nwb", ".nwb.zarr"])
def test_overwrite_from_a_source_with_a_corrupt_chunk_keeps_the_old_destination(
    tmp_path: Path, suffix: str
) -> None:
    from nwbstore.errors import CorruptChunkError

    old_src = _h5_source(tmp_path / "old.nwb", seed=1)
    bad = tmp_path / "bad.nwb"
    with h5py.File(bad, "w") as f:
        f.create_dataset("a", data=np.arange(100.0))
        f.create_dataset("data", data=np.arange(4000.0), chunks=(500,), compression="gzip")
        info = f["data"].id.get_chunk_info(3)
    with open(bad, "r+b") as fh:  # garbage in the middle of one gzip chunk
        fh.seek(info.byte_offset + 10)
        fh.write(b"\xff" * 40)
    dst = tmp_path / f"out{suffix}"
    nwbstore.convert(old_src, dst, progress=False)
    before = _digest(dst)
    with pytest.raises(CorruptChunkError, match="data"):
        nwbstore.convert(bad, dst, overwrite=True, raw=False, progress=False)
    assert _digest(dst) == before
    with nwbstore.open(dst) as store, h5py.File(old_src, "r") as f:
        np.testing.assert_array_equal(store["data"][:], f["data"][:])


def test_s3_swap_stopped_before_the_root_metadata_never_looks_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server, s3_bucket: str
) -> None:
    import s3fs

    opts = s3_server.storage_options
    old_src = _h5_source(tmp_path / "old.nwb", seed=1)
    new_src = _h5_source(tmp_path / "new.nwb", seed=2)
    url = f"s3://{s3_bucket}/out.nwb.zarr"
    nwbstore.convert(old_src, url, storage_options=opts, progress=False)
    original = s3fs.S3FileSystem.copy
    calls = {"n": 0}

    def copy_then_die(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the body is in place, the root metadata is next
            raise _Crash("connection lost while moving the new store into place")
        return original(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(s3fs.S3FileSystem, "copy", copy_then_die)
        with pytest.raises(_Crash):
            nwbstore.convert(new_src, url, storage_options=opts, overwrite=True, progress=False)
    fs = s3_server.filesystem()
    assert not fs.exists(f"{s3_bucket}/out.nwb.zarr/zarr.json")  # not a store: not complete
    with pytest.raises(nwbstore.errors.NwbStoreError):
        nwbstore.open(url, storage_options=opts)
    report = nwbstore.convert(new_src, url, resume=True, storage_options=opts, progress=False)
    assert "moved to" in report.resume_note
    root = zarr.open_group(url, mode="r", storage_options=opts)
    with h5py.File(new_src, "r") as f:
        np.testing.assert_array_equal(root["data"][:], f["data"][:])
    listed = s3_server.filesystem().ls(s3_bucket, detail=False)
    assert listed == [f"{s3_bucket}/out.nwb.zarr"]
