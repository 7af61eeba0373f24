"""Interrupted conversions: kill -9 and Ctrl-C, then --resume from the last finished chunk range."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore.backends._hdf5_nodes import HDF5Dataset
from nwbstore.backends.zarr import ZarrDataset
from nwbstore.cli import main
from nwbstore.convert import data, marker
from nwbstore.convert.resuming import resume_hint
from nwbstore.errors import IncompleteStoreError, NwbStoreWarning

ROWS, COLS, CHUNK_ROWS = 4000, 16, 100
N_CHUNKS = ROWS // CHUNK_ROWS
#: One transcode block per chunk, so blocks and chunks count alike.
SMALL_BLOCK = CHUNK_ROWS * COLS * 4
KILL_AT = 15  # the process dies right after this many writes into /big

#: The write paths of both destination backends (decoded values and stored chunks).
_WRITES = (
    (HDF5Dataset, ("_write", "write_stored_chunk")),
    (ZarrDataset, ("_write", "copy_stored_chunk")),
)

_KILLER = textwrap.dedent(
    """
    import os, signal, sys

    import nwbstore
    from nwbstore.backends._hdf5_nodes import HDF5Dataset
    from nwbstore.backends.zarr import ZarrDataset
    from nwbstore.convert import data, marker

    src, dst, raw, kill_at = sys.argv[1], sys.argv[2], sys.argv[3] == "raw", int(sys.argv[4])
    marker.CHECKPOINT_BYTES = 1  # record after every block, so the kill point is exact
    data.BLOCK_BYTES = int(sys.argv[5])
    writes = 0

    def killing(original):
        def wrapper(self, *args, **kwargs):
            global writes
            result = original(self, *args, **kwargs)
            if self.name == "/big":
                writes += 1
                if writes >= kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapper

    for cls, names in ((HDF5Dataset, ("_write", "write_stored_chunk")),
                       (ZarrDataset, ("_write", "copy_stored_chunk"))):
        for name in names:
            setattr(cls, name, killing(getattr(cls, name)))
    nwbstore.convert(src, dst, jobs=1, raw=raw, progress=False)
    """
)


def _values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "a_first": np.arange(50, dtype="f8"),
        "big": rng.integers(-1000, 1000, (ROWS, COLS)).astype("i4"),
        "z_last": np.arange(30, dtype="i2"),
    }


def _h5_source(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        for name, value in _values().items():
            chunks = (CHUNK_ROWS, COLS) if value.ndim == 2 else (10,)
            f.create_dataset(name, data=value, chunks=chunks, compression="gzip")
    return path


def _zarr_source(path: Path) -> Path:
    root = zarr.open_group(path, mode="w")
    for name, value in _values().items():
        chunks = (CHUNK_ROWS, COLS) if value.ndim == 2 else (10,)
        root.create_array(name, data=value, chunks=chunks)
    return path


def _read_dst(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".nwb":
        with h5py.File(path, "r") as f:
            assert "_NWBSTORE_INCOMPLETE" not in f.attrs
            return {k: f[k][...] for k in f}
    root = zarr.open_group(path, mode="r")
    assert "_NWBSTORE_INCOMPLETE" not in root.attrs
    return {k: root[k][...] for k in root.array_keys()}


def _mark_of(path: Path) -> dict[str, Any] | None:
    """The incomplete mark as stored, read with h5py / from zarr.json (None if unreadable)."""
    if path.suffix == ".partial":
        try:
            with h5py.File(path, "r") as f:
                return json.loads(f.attrs["_NWBSTORE_INCOMPLETE"])
        except (OSError, KeyError):
            return None
    meta = json.loads((path / "zarr.json").read_text())
    return json.loads(meta["attributes"]["_NWBSTORE_INCOMPLETE"])


@pytest.fixture
def count_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Count writes into each destination dataset (decoded blocks and stored chunks)."""
    counts: dict[str, int] = {}

    def counting(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[self.name] = counts.get(self.name, 0) + 1
            return original(self, *args, **kwargs)

        return wrapper

    for cls, names in _WRITES:
        for name in names:
            monkeypatch.setattr(cls, name, counting(getattr(cls, name)))
    monkeypatch.setattr(data, "BLOCK_BYTES", SMALL_BLOCK)
    yield counts


def _kill_midway(src: Path, dst: Path, raw: bool, tmp_path: Path) -> None:
    script = tmp_path / "killer.py"
    script.write_text(_KILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(src),
            str(dst),
            "raw" if raw else "decode",
            str(KILL_AT),
            str(SMALL_BLOCK),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr  # really killed by SIGKILL


@pytest.mark.parametrize(
    ("source_kind", "suffix", "raw"),
    [("hdf5", ".nwb.zarr", True), ("zarr", ".nwb", False), ("hdf5", ".nwb", True)],
    ids=["hdf5-to-zarr", "zarr-to-hdf5", "hdf5-to-hdf5"],
)
def test_resume_after_sigkill_continues_from_the_last_recorded_chunk(
    tmp_path: Path, count_writes: dict[str, int], source_kind: str, suffix: str, raw: bool
) -> None:
    src = (_h5_source if source_kind == "hdf5" else _zarr_source)(
        tmp_path / ("src.nwb" if source_kind == "hdf5" else "src.nwb.zarr")
    )
    dst = tmp_path / f"out{suffix}"
    _kill_midway(src, dst, raw, tmp_path)
    where = Path(str(dst) + ".partial") if suffix == ".nwb" else dst
    assert where.exists()
    if suffix == ".nwb":
        assert not dst.exists()
    mark = _mark_of(where)
    if mark is None:  # HDF5 left the file unreadable: resume must restart cleanly
        assert suffix == ".nwb"
        with pytest.warns(NwbStoreWarning, match="restarted"):
            report = nwbstore.convert(src, dst, resume=True, raw=raw, jobs=1, progress=False)
        assert report.resume_note.startswith("restarted")
        assert "restarted" in str(report)
        assert count_writes["/big"] == N_CHUNKS
    else:
        assert mark["completed"] == ["/a_first"]
        done = mark["partial"]["/big"]["done"]
        assert done == KILL_AT - 1  # recorded after every block; the kill came before the last
        report = nwbstore.convert(src, dst, resume=True, raw=raw, jobs=1, progress=False)
        assert "resumed" in report.resume_note
        assert ("/big after 14 stored chunks" if raw else "/big after 14 blocks") in str(report)
        assert count_writes["/big"] == N_CHUNKS - done  # the finished prefix was not rewritten
        assert "/a_first" not in count_writes
    got = _read_dst(dst)
    for name, value in _values().items():
        np.testing.assert_array_equal(got[name], value)
    assert not where.exists() or where == dst


def test_unreadable_partial_restarts_and_says_so(tmp_path: Path) -> None:
    src = _h5_source(tmp_path / "src.nwb")
    dst = tmp_path / "out.nwb"
    (tmp_path / "out.nwb.partial").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.warns(NwbStoreWarning, match=r"restarted: .*out\.nwb\.partial"):
        report = nwbstore.convert(src, dst, resume=True, progress=False)
    assert "restarted" in report.resume_note
    np.testing.assert_array_equal(_read_dst(dst)["big"], _values()["big"])


def test_resume_of_a_complete_or_missing_destination(tmp_path: Path) -> None:
    src = _h5_source(tmp_path / "src.nwb")
    for name in ("new.nwb", "new.nwb.zarr"):
        dst = tmp_path / name
        report = nwbstore.convert(src, dst, resume=True, progress=False)
        assert "nothing to resume" in report.resume_note and "started" in report.resume_note
        np.testing.assert_array_equal(_read_dst(dst)["big"], _values()["big"])
        before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file())
        again = nwbstore.convert(src, dst, resume=True, progress=False)
        assert "already complete" in again.resume_note and "already complete" in str(again)
        after = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file())
        assert after == before


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    writes = {"n": 0}

    def interrupting(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            if self.name == "/big":
                writes["n"] += 1
                if writes["n"] == n:
                    raise KeyboardInterrupt
            return result

        return wrapper

    for cls, names in _WRITES:
        for name in names:
            monkeypatch.setattr(cls, name, interrupting(getattr(cls, name)))


@pytest.mark.parametrize("suffix", [".nwb", ".nwb.zarr"])
def test_ctrl_c_keeps_the_mark_and_progress_then_resume_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    src = _h5_source(tmp_path / "src.nwb")
    dst = tmp_path / f"out{suffix}"
    monkeypatch.setattr(data, "BLOCK_BYTES", SMALL_BLOCK)
    with monkeypatch.context() as m:
        _interrupt_at(m, KILL_AT)
        with pytest.raises(KeyboardInterrupt):  # on worker threads, with the default budget
            nwbstore.convert(src, dst, jobs=2, raw=False, progress=False)
    where = Path(str(dst) + ".partial") if suffix == ".nwb" else dst
    mark = _mark_of(where)
    assert mark is not None
    done = mark["partial"]["/big"]["done"]
    assert 0 < done <= KILL_AT  # saved on the interruption, though no checkpoint was due
    with pytest.raises(IncompleteStoreError):
        nwbstore.open(where)
    report = nwbstore.convert(src, dst, resume=True, raw=False, progress=False)
    assert f"/big after {done} blocks" in report.resume_note
    np.testing.assert_array_equal(_read_dst(dst)["big"], _values()["big"])


def test_cli_ctrl_c_prints_one_line_with_the_resume_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _h5_source(tmp_path / "src.nwb")
    dst = tmp_path / "out.nwb.zarr"
    monkeypatch.setattr(data, "BLOCK_BYTES", SMALL_BLOCK)
    with monkeypatch.context() as m:
        _interrupt_at(m, 3)
        assert main(["convert", str(src), str(dst), "-q", "--no-raw"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "--resume" in err and "--overwrite" in err
    assert resume_hint(str(src), str(dst)) in err
    assert main(["convert", str(src), str(dst), "-q", "--resume"]) == 0
    np.testing.assert_array_equal(_read_dst(dst)["big"], _values()["big"])


def test_prefix_of_out_of_order_tasks_is_contiguous() -> None:
    import threading
    import time

    seen: list[int] = []
    lock = threading.Lock()

    def task(i: int) -> Any:
        def run() -> int:
            time.sleep(0.002 * ((7 * i) % 5))  # finish out of order
            return 10

        return run

    def on_prefix(done: int, nbytes: int, force: bool) -> None:
        with lock:
            seen.append(done)

    data._run((task(i) for i in range(40)), 4, on_prefix)
    assert seen == sorted(seen) and seen[-1] == 40

    seen.clear()

    def failing(i: int) -> Any:
        def run() -> int:
            if i == 20:
                raise RuntimeError("boom")
            return 1

        return run

    with pytest.raises(RuntimeError, match="boom"):
        data._run((failing(i) for i in range(40)), 4, on_prefix)
    assert seen[-1] == 20  # everything before the failed task, never beyond it


def test_checkpoints_are_spaced_by_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress is saved every CHECKPOINT_BYTES, not after each block (each save is a PUT)."""
    src = _h5_source(tmp_path / "src.nwb")
    monkeypatch.setattr(data, "BLOCK_BYTES", SMALL_BLOCK)
    monkeypatch.setattr(marker, "CHECKPOINT_BYTES", 10 * SMALL_BLOCK)
    monkeypatch.setattr(marker, "CHECKPOINT_SECONDS", 1e9)
    saves: list[str] = []
    original = marker.Mark.save

    def counting(self: marker.Mark) -> None:
        saves.append(json.dumps(self.partial))
        original(self)

    monkeypatch.setattr(marker.Mark, "save", counting)
    nwbstore.convert(src, tmp_path / "out.nwb.zarr", raw=False, jobs=1, progress=False)
    partial_saves = [s for s in saves if '"/big"' in s]
    assert len(partial_saves) == N_CHUNKS // 10


def test_ctrl_c_then_resume_on_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: Any, s3_bucket: str
) -> None:
    opts = s3_server.storage_options
    src = _h5_source(tmp_path / "src.nwb")
    url = f"s3://{s3_bucket}/out.nwb.zarr"
    monkeypatch.setattr(data, "BLOCK_BYTES", SMALL_BLOCK)
    with monkeypatch.context() as m:
        _interrupt_at(m, KILL_AT)
        with pytest.raises(KeyboardInterrupt):
            nwbstore.convert(src, url, jobs=1, raw=False, storage_options=opts, progress=False)
    meta = json.loads(s3_server.filesystem().cat_file(f"{s3_bucket}/out.nwb.zarr/zarr.json"))
    mark = json.loads(meta["attributes"]["_NWBSTORE_INCOMPLETE"])
    assert mark["partial"]["/big"]["done"] == KILL_AT - 1  # the interrupted write is not counted
    counts: dict[str, int] = {}

    def counting(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[self.name] = counts.get(self.name, 0) + 1
            return original(self, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(ZarrDataset, "_write", counting(ZarrDataset._write))
    report = nwbstore.convert(
        src, url, resume=True, raw=False, storage_options=opts, progress=False
    )
    assert "/big after 14 blocks" in report.resume_note
    # the block written just before the interrupt is on the server: listed, not written again
    assert report.chunks_skipped == 1
    assert counts["/big"] == N_CHUNKS - KILL_AT
    root = zarr.open_group(url, mode="r", storage_options=opts)
    assert "_NWBSTORE_INCOMPLETE" not in root.attrs
    np.testing.assert_array_equal(root["big"][:], _values()["big"])


def test_resume_recreates_a_dataset_whose_metadata_was_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _h5_source(tmp_path / "src.nwb")
    dst = tmp_path / "out.nwb.zarr"
    monkeypatch.setattr(data, "BLOCK_BYTES", SMALL_BLOCK)
    with monkeypatch.context() as m:
        _interrupt_at(m, KILL_AT)
        with pytest.raises(KeyboardInterrupt):
            nwbstore.convert(src, dst, jobs=1, raw=False, progress=False)
    meta = dst / "big" / "zarr.json"
    meta.write_bytes(meta.read_bytes()[:40])  # as a kill in the middle of writing it leaves it
    report = nwbstore.convert(src, dst, resume=True, raw=False, progress=False)
    assert report.resume_note.startswith("resumed")
    np.testing.assert_array_equal(_read_dst(dst)["big"], _values()["big"])
    # rewritten, not only readable through the consolidated metadata
    np.testing.assert_array_equal(zarr.open_array(dst / "big", mode="r")[:], _values()["big"])


def test_partial_without_a_mark_restarts(tmp_path: Path) -> None:
    src = _h5_source(tmp_path / "src.nwb")
    dst = tmp_path / "out.nwb"
    with h5py.File(tmp_path / "out.nwb.partial", "w") as f:  # killed before the mark was written
        f["stray"] = np.arange(3)
    with pytest.warns(NwbStoreWarning, match="no incomplete mark"):
        report = nwbstore.convert(src, dst, resume=True, progress=False)
    assert report.resume_note.startswith("restarted")
    with h5py.File(dst, "r") as f:
        assert "stray" not in f
        np.testing.assert_array_equal(f["big"][:], _values()["big"])
