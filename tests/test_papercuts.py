"""Papercuts of issue 8: progress bar, group counts, config sizes, Pickle in info/tree, remote
HDF5 write errors, demo clean-up."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from tqdm import tqdm

import nwbstore
from nwbstore.cli import main
from nwbstore.testing.nwb_samples import build_external_nwb, build_rich_nwb


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rich")
    build_external_nwb(folder / "external.nwb")
    return build_rich_nwb(folder / "rich.nwb", external=folder / "external.nwb")


class _Bars:
    """A tqdm factory that keeps every bar it makes (drawn into a string, never a terminal)."""

    def __init__(self) -> None:
        self.bars: list[tqdm] = []

    def __call__(self, **kwargs: Any) -> tqdm:
        bar = tqdm(file=io.StringIO(), disable=False, **kwargs)
        self.bars.append(bar)
        return bar

    @property
    def bar(self) -> tqdm:
        assert len(self.bars) == 1
        return self.bars[0]


def _h5_dataset_bytes(path: Path) -> int:
    """Decoded bytes of every dataset in an HDF5 file, counted with h5py (links not followed)."""
    total = 0

    def add(_name: str, obj: Any) -> None:
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += obj.size * obj.dtype.itemsize

    with h5py.File(path, "r") as f:
        f.visititems(add)
    return total


def test_progress_reaches_total_on_a_raw_copy(rich: Path, tmp_path: Path) -> None:
    bars = _Bars()
    report = nwbstore.convert(rich, tmp_path / "a.nwb.zarr", fallback="zstd", progress=bars)
    assert report.chunks_raw > 0  # stored (compressed) chunks were counted by decoded size
    assert bars.bar.total == _h5_dataset_bytes(rich)
    assert bars.bar.n == bars.bar.total


def test_progress_reaches_total_on_truncate(rich: Path, tmp_path: Path) -> None:
    bars = _Bars()
    out = tmp_path / "t.nwb"
    nwbstore.convert(rich, out, first_n=10, progress=bars)
    kept = _h5_dataset_bytes(out)  # what the truncated copy holds, counted by h5py
    assert kept < _h5_dataset_bytes(rich)
    assert bars.bar.total == kept
    assert bars.bar.n == bars.bar.total


def test_progress_reaches_total_with_links_resolved_or_converted(
    rich: Path, tmp_path: Path
) -> None:
    plain = _h5_dataset_bytes(rich)
    resolved = _Bars()
    nwbstore.convert(rich, tmp_path / "r.nwb", links="resolve", progress=resolved)
    assert resolved.bar.total > plain  # the linked data is copied in and counted
    assert resolved.bar.n == resolved.bar.total
    converted = _Bars()
    report = nwbstore.convert(rich, tmp_path / "c.nwb.zarr", fallback="zstd", progress=converted)
    assert report.converted_targets
    assert converted.bar.n == converted.bar.total == plain


def test_progress_on_resume_starts_at_what_is_done(
    rich: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nwbstore.convert import engine

    out = tmp_path / "half.nwb.zarr"
    calls = {"n": 0}
    original = engine.copy_values

    def failing(*args: Any, **kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("simulated crash")
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "copy_values", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        nwbstore.convert(rich, out, fallback="zstd", progress=False)
    monkeypatch.setattr(engine, "copy_values", original)
    bars = _Bars()
    nwbstore.convert(rich, out, resume=True, fallback="zstd", progress=bars)
    assert bars.bar.total == _h5_dataset_bytes(rich)
    assert 0 < bars.bar.format_dict["initial"] < bars.bar.total
    assert bars.bar.n == bars.bar.total


def test_progress_is_off_when_stderr_is_not_a_terminal(
    rich: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nwbstore.convert(rich, tmp_path / "p.nwb.zarr", fallback="zstd")  # progress=True default
    assert capsys.readouterr().err == ""
    assert main(["convert", str(rich), str(tmp_path / "q.nwb.zarr"), "--fallback", "zstd"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "converted" in captured.out


def test_progress_is_drawn_on_a_terminal(
    rich: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    nwbstore.convert(rich, tmp_path / "p.nwb.zarr", fallback="zstd")
    assert "100%" in err.getvalue()
    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    assert (
        main(["convert", str(rich), str(tmp_path / "q.nwb.zarr"), "-q", "--fallback", "zstd"]) == 0
    )
    assert quiet.getvalue() == ""


def _h5_group_count(path: Path) -> int:
    """Groups below the root, as h5py's own walk counts them (soft links not followed)."""
    groups: list[str] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: groups.append(name) if isinstance(obj, h5py.Group) else None)
    return len(groups)


def test_report_verify_and_info_count_groups_like_h5py(
    rich: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _h5_group_count(rich)
    assert expected > 10
    out = tmp_path / "g.nwb"
    report = nwbstore.convert(rich, out, progress=False)
    assert _h5_group_count(out) == expected
    result = nwbstore.verify(rich, out)
    assert result.ok
    assert report.groups == result.groups == expected
    assert f"groups {expected}," in str(report)
    assert f": {expected} groups," in str(result)
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert f"groups:    {expected}\n" in info
    links: dict[str, int] = {"SoftLink": 0, "ExternalLink": 0}

    def count_link(_name: str, link: Any) -> None:
        kind = type(link).__name__
        if kind in links:
            links[kind] += 1

    with h5py.File(out, "r") as f:
        f.visititems_links(count_link)
    assert links["SoftLink"] and links["ExternalLink"]
    total = links["SoftLink"] + links["ExternalLink"]
    assert (
        f"links:     {total} ({links['SoftLink']} soft, {links['ExternalLink']} external)\n" in info
    )
    assert report.soft_links == links["SoftLink"] and report.external_links == links["ExternalLink"]


def _config_block(text: str, name: str) -> str:
    """The lines ``nwbstore config`` printed for dataset ``name``."""
    blocks = text.split("\n\n" + name + "\n")
    assert len(blocks) == 2, text
    return blocks[1].split("\n\n\n")[0]


def test_config_shows_string_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("fixed", data=np.array([b"abcdefghi"] * 100, dtype="S9"), chunks=(10,))
        f.create_dataset("vlen", data=["hello"] * 50, dtype=h5py.string_dtype(), chunks=(10,))
        record = np.dtype([("a", "<i4"), ("b", h5py.string_dtype())])
        f.create_dataset("table", shape=(5,), dtype=record)
        assert f["fixed"].nbytes == 900 and f["fixed"].chunks == (10,)
    assert main(["config", str(path)]) == 0
    text = capsys.readouterr().out
    fixed = _config_block(text, "fixed")
    assert "fixed-length bytes, 9 B each" in fixed
    assert "full size of source array : 900 B" in fixed
    assert "disk space usage per chunk : 90 B (uncompressed)" in fixed
    vlen = _config_block(text, "vlen")
    assert "str (variable-length UTF-8)" in vlen
    assert "full size of source array : variable-length (50 values)" in vlen
    assert "expected RAM usage : variable-length (50 values)" in vlen
    assert "disk space usage per chunk : variable-length (10 values)" in vlen
    assert " B\n" not in vlen.replace(" B each", "")  # no made-up pointer sizes
    table = _config_block(text, "table")
    assert "variable-length (5 values, 20 B of fixed-size fields)" in table


def test_describe_dataset_sizes_fixed_unicode() -> None:
    from nwbstore.describe import describe_dataset

    text = describe_dataset("/names", (100,), "<U5", nwbstore.DatasetSettings(chunks=(10,)))
    assert "fixed-length string of 5 characters, 20 B each" in text
    assert "full size of source array : 1.95 KiB" in text  # 100 * 20 B
    assert "disk space usage per chunk : 200 B (uncompressed)" in text


def _legacy_store_with_one_pickle_array(path: Path) -> Path:
    """A Zarr v2 store as hdmf-zarr 0.13 wrote it: plain arrays and one Pickle object array.

    The Pickle chunk is made with ``numcodecs.Pickle().encode`` only; nothing is unpickled.
    """
    import json

    import numcodecs
    import zarr

    g = zarr.open_group(str(path), mode="w", zarr_format=2)
    g.attrs["nwb_version"] = "2.8.0"
    g.create_array("data", data=np.arange(6, dtype="int64"), chunks=(3,))
    g.create_group("units").create_array("ids", data=np.arange(4, dtype="int32"))
    folder = path / "units" / "names"
    folder.mkdir()
    meta = {
        "zarr_format": 2,
        "shape": [2],
        "chunks": [2],
        "dtype": "|O",
        "fill_value": 0,
        "order": "C",
        "filters": [{"id": "pickle", "protocol": 5}],
        "compressor": None,
        "dimension_separator": ".",
    }
    (folder / ".zarray").write_text(json.dumps(meta))
    (folder / ".zattrs").write_text(json.dumps({"zarr_dtype": "str"}))
    (folder / "0").write_bytes(numcodecs.Pickle(protocol=5).encode(np.array(["a", "b"], object)))
    return path


def test_info_and_tree_show_the_rest_of_a_store_with_one_pickle_array(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _legacy_store_with_one_pickle_array(tmp_path / "legacy.zarr")
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "backend:   zarr (Zarr format 2)\n" in out
    assert "groups:    1\n" in out
    assert "datasets:  3\n" in out
    assert "nwb_version: 2.8.0" in out
    assert "data size: 64 B (uncompressed)" in out  # the readable 6 * 8 + 4 * 4 bytes
    assert "1 dataset uses the Pickle codec (not read; pass --allow-pickle): /units/names" in out
    assert main(["info", str(store), "--allow-pickle"]) == 0
    assert "Pickle" not in capsys.readouterr().out
    assert main(["tree", str(store)]) == 0
    tree = capsys.readouterr().out
    assert "    data  (6,) int64" in tree
    assert "        ids  (4,) int32" in tree
    assert "        names  Pickle codec (not read; pass --allow-pickle)" in tree
    assert main(["tree", str(store), "--allow-pickle"]) == 0
    assert "        names  (2,) str" in capsys.readouterr().out
    assert main(["config", str(store)]) == 0
    config = capsys.readouterr().out
    assert "\nunits/ids\n" in config and "\ndata\n" in config
    assert "\nunits/names\n-----------\n  Pickle codec (not read; pass --allow-pickle)" in config
    assert main(["config", str(store), "--allow-pickle"]) == 0
    assert "str (variable-length UTF-8)" in capsys.readouterr().out


@pytest.mark.s3
def test_remote_hdf5_write_error_does_not_suggest_r_plus(
    tmp_path: Path, s3_server: Any, s3_bucket: str
) -> None:
    from nwbstore.errors import ReadOnlyError

    local = tmp_path / "f.h5"
    with h5py.File(local, "w") as f:
        f.create_dataset("data", data=np.arange(10))
    s3_server.filesystem().put(str(local), f"{s3_bucket}/f.h5")
    url = f"s3://{s3_bucket}/f.h5"
    with nwbstore.open(url, storage_options=s3_server.storage_options) as store:
        assert store.backend == "hdf5-remote"
        writes = [
            lambda: store.root.create_group("x"),
            lambda: store["data"].__setitem__(0, 5),
            lambda: store.root.attrs.__setitem__("a", 1),
        ]
        for write in writes:
            with pytest.raises(ReadOnlyError) as info:
                write()
            message = str(info.value)
            assert "r+" not in message
            assert "remote HDF5 is read-only" in message
            assert "Zarr" in message and "download" in message
    with h5py.File(local, "r") as f:
        np.testing.assert_array_equal(f["data"][:], np.arange(10))


def test_demo_removes_its_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tempfile

    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))  # where TemporaryDirectory goes
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "no differences" in out
    assert list(temp_root.iterdir()) == []
    assert "removed" in out


def test_demo_keeps_files_in_workdir_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--workdir", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "w" / "demo.nwb").is_file()
    assert (tmp_path / "w" / "demo.nwb.zarr" / "zarr.json").is_file()
    assert f"kept in {tmp_path / 'w'}" in out


def test_tree_names_string_reference_and_record_dtypes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "types.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("names", data=["a", "b"], dtype=h5py.string_dtype())
        f.create_dataset("refs", data=[f.ref], dtype=h5py.ref_dtype)
        record = np.dtype([("start", "<i4"), ("target", h5py.ref_dtype)])
        f.create_dataset("table", shape=(3,), dtype=record)
        assert f["names"].dtype.kind == f["refs"].dtype.kind == "O"
    assert main(["tree", str(path), "--no-settings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "    names  (2,) str" in lines
    assert "    refs  (1,) reference" in lines
    assert "    table  (3,) {start: int32, target: reference}" in lines
    assert main(["tree", str(path), "--path", "/names"]) == 0
    assert capsys.readouterr().out == "/names  (2,) str\n"
