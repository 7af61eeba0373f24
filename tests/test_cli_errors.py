"""Command-line errors and the options around them: exit codes, --chunks by rank or path,
--verify leaving a failed output marked incomplete, --memb-size, --allow-incomplete,
BrokenPipe and Ctrl-C, and the three S3 failures as three error classes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore.cli import main
from nwbstore.convert.chunks_option import ChunksRule, chunks_for, parse_chunks
from nwbstore.demo import build_example_nwb
from nwbstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    IncompleteStoreError,
    NwbStoreError,
    SettingsError,
)
from nwbstore.nodes import INCOMPLETE_ATTR

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_example_nwb(tmp_path_factory.mktemp("demo") / "demo.nwb")


def _zarr_chunks(path: Path) -> dict[str, tuple[int, ...]]:
    root = zarr.open_group(path, mode="r")
    return {
        name: tuple(arr.chunks)
        for name, arr in root.members(max_depth=None)
        if isinstance(arr, zarr.Array) and arr.ndim > 0
    }


# -- --chunks ------------------------------------------------------------------------------


def test_help_example_chunks_applies_to_2d_datasets_only(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.zarr"
    assert run(["convert", str(demo), str(out), "-q", "--chunks", "1000,16"]) == 0
    chunks = _zarr_chunks(out)
    with h5py.File(demo, "r") as f:
        two_d = [n for n, c in chunks.items() if f[n].ndim == 2]
        one_d = {n: c for n, c in chunks.items() if f[n].ndim == 1}
    assert two_d and all(
        chunks[n] == (1000, min(16, zarr.open_array(out / n).shape[1])) for n in two_d
    )
    assert one_d and all(len(c) == 1 for c in one_d.values())
    assert chunks["acquisition/ElectricalSeries/data"] == (1000, 16)


def test_chunks_by_rank_and_by_path(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.zarr"
    args = ["--chunks", "500", "--chunks", "acquisition/speed/data=100", "--chunks", "2000,8"]
    assert run(["convert", str(demo), str(out), "-q", *args]) == 0
    chunks = _zarr_chunks(out)
    assert chunks["acquisition/ElectricalSeries/data"] == (2000, 8)
    assert chunks["acquisition/speed/data"] == (100,)
    assert chunks["acquisition/speed/timestamps"] == (500,)


def test_chunks_option_rules() -> None:
    rule = parse_chunks(["1000,16", "a/b=7", "auto"])
    assert isinstance(rule, ChunksRule)
    assert chunks_for("/x", 2, rule) == (1000, 16)
    assert chunks_for("/a/b", 1, rule) == (7,)
    assert chunks_for("/y", 1, rule) == "auto"
    assert chunks_for("/y", 3, (10,)) is None  # a shape leaves other ranks alone
    assert chunks_for("/s", 0, rule) is None
    assert parse_chunks(["auto"]) == "auto"
    assert parse_chunks([]) is None
    with pytest.raises(SettingsError, match="a/b"):
        chunks_for("/a/b", 2, rule)
    with pytest.raises(SettingsError, match="two shapes"):
        parse_chunks(["10", "20"])
    with pytest.raises(SettingsError, match="positive"):
        parse_chunks(["0,16"])


def test_bad_chunk_path_fails_before_the_destination_exists(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.zarr"
    assert run(["convert", str(demo), str(out), "-q", "--chunks", "no/such=10"]) == 2
    assert not out.exists()


# -- --verify ------------------------------------------------------------------------------


def _corrupt_chunk_file(path: Path, index: int = 1) -> Path:
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(
            "data", data=np.arange(4000, dtype="f8"), chunks=(1000,), compression="gzip"
        )
        offset = ds.id.get_chunk_info(index).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    return path


@pytest.mark.parametrize("suffix", [".zarr", ".nwb"])
def test_failed_verify_leaves_output_marked_incomplete(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _corrupt_chunk_file(tmp_path / "src.h5")
    out = tmp_path / f"out{suffix}"
    assert run(["convert", str(src), str(out), "-q", "--verify"]) == 1
    captured = capsys.readouterr()
    assert "chunk index (1,)" in captured.out
    assert "marked incomplete" in captured.err and "Traceback" not in captured.err
    with pytest.raises(IncompleteStoreError):
        nwbstore.open(out)
    assert "verify found 1 differences" in json.loads(_root_attr(out, INCOMPLETE_ATTR))["failed"]
    assert run(["info", str(out)]) == 2
    assert run(["info", str(out), "--allow-incomplete"]) == 0


def _root_attr(path: Path, name: str) -> str:
    """A root attribute read with zarr-python or h5py directly (not through nwbstore)."""
    if path.suffix == ".zarr":  # consolidated metadata must not hide the mark either
        return str(zarr.open_group(path, mode="r").attrs[name])
    with h5py.File(path, "r") as f:
        value = f.attrs[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def test_verify_success_keeps_output_complete(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "ok.zarr"
    assert run(["convert", str(demo), str(out), "-q", "--verify"]) == 0
    nwbstore.open(out).close()


def test_verify_names_the_corrupt_chunk_in_the_source(tmp_path: Path) -> None:
    src = _corrupt_chunk_file(tmp_path / "src.h5", index=3)
    good = tmp_path / "good.h5"
    with h5py.File(good, "w") as f:
        f.create_dataset("data", data=np.arange(4000, dtype="f8"), chunks=(1000,))
    report = nwbstore.verify(src, good)
    assert not report.ok
    assert (
        report.differences == [report.differences[0]]
        and "/data: chunk index (3,) cannot be read in the source" in report.differences[0]
    )


# -- --memb-size, --allow-incomplete ---------------------------------------------------------


def test_memb_size_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pattern = str(tmp_path / "fam_%d.h5")
    with h5py.File(pattern, "w", driver="family", memb_size=64 * 1024) as f:
        f.create_dataset("data", data=np.arange(50_000, dtype="i4"))
    assert run(["info", pattern, "--memb-size", "64KiB"]) == 0
    assert run(["info", pattern, "--memb-size", "65536"]) == 0
    assert run(["info", pattern, "--memb-size", "1MiB"]) == 2
    assert "65536" in capsys.readouterr().err
    copy = tmp_path / "copy.zarr"
    assert run(["convert", pattern, str(tmp_path / "no.zarr"), "-q", "--memb-size", "1MiB"]) == 2
    assert not (tmp_path / "no.zarr").exists()
    assert run(["convert", pattern, str(copy), "-q", "--memb-size", "64KiB"]) == 0
    assert run(["verify", pattern, str(copy), "--memb-size", "64KiB"]) == 0
    assert zarr.open_array(copy / "data", mode="r")[-1] == 49_999


def test_allow_incomplete_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _corrupt_chunk_file(tmp_path / "src.h5")
    marked = tmp_path / "marked.zarr"
    assert run(["convert", str(src), str(marked), "-q", "--verify"]) == 1
    again = tmp_path / "again.nwb"
    assert run(["convert", str(marked), str(again), "-q"]) == 2
    assert "incomplete" in capsys.readouterr().err
    assert run(["tree", str(marked), "--allow-incomplete"]) == 0
    assert run(["convert", str(marked), str(again), "-q", "--allow-incomplete", "--no-raw"]) == 2
    assert "chunk index (1,)" in capsys.readouterr().err  # the damaged chunk came along


# -- main(): exit codes, BrokenPipe, Ctrl-C --------------------------------------------------


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit status" in out and "130" in out and "differences" in out


def test_usage_errors_exit_2(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = str(tmp_path / "o.zarr")
    for bad in (["--chunks", "1000,x"], ["--compression", "zstd:abc"], ["--jobs", "-3"]):
        assert run(["convert", str(demo), out, *bad]) == 2
        err = capsys.readouterr().err
        assert "usage:" in err and "Traceback" not in err
    assert not Path(out).exists()


@pytest.mark.parametrize("suffix", [".zarr", ".nwb"])
def test_os_errors_are_one_line(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _corrupt_chunk_file(tmp_path / "src.h5")
    not_a_dir = tmp_path / "afile"
    not_a_dir.write_text("a file, not a directory")
    assert run(["convert", str(src), str(not_a_dir / f"x{suffix}"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "Not a directory" in err and "damaged" not in err


def test_keyboard_interrupt_is_one_line(
    demo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import nwbstore.tree

    def interrupted(*_args: Any, **_kwargs: Any) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(nwbstore.tree, "iter_tree", interrupted)
    assert run(["tree", str(demo)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nwbstore tree: ")


def test_broken_pipe_ends_quietly(demo: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nwbstore.cli", "tree", str(demo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)  # like `| head -c 10`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""


def test_genuine_bug_keeps_a_way_to_its_traceback(
    demo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import nwbstore.tree

    def broken(*_args: Any, **_kwargs: Any) -> str:
        raise ValueError("an internal mistake")

    monkeypatch.setattr(nwbstore.tree, "iter_tree", broken)
    assert run(["tree", str(demo)]) == 2
    assert "NWBSTORE_TRACEBACK" in capsys.readouterr().err
    monkeypatch.setenv("NWBSTORE_TRACEBACK", "1")
    with pytest.raises(ValueError, match="internal mistake"):
        main(["tree", str(demo)])


# -- S3: three failures, three classes, no credentials in messages ---------------------------


def test_three_s3_failures_are_three_classes() -> None:
    classes = {BucketNotFoundError, EndpointUnreachableError, AccessDeniedError}
    assert issubclass(BucketNotFoundError, FileNotFoundError)
    assert issubclass(EndpointUnreachableError, ConnectionError)
    assert issubclass(AccessDeniedError, PermissionError)
    for cls in classes:
        assert issubclass(cls, NwbStoreError)
        assert not any(issubclass(cls, other) for other in classes - {cls})


def test_endpoint_credentials_never_shown(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {
        "endpoint_url": f"http://user:pa55word@127.0.0.1:{port}",
        "key": "AKIAEXAMPLEKEY",
        "secret": "very-secret-value",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    with pytest.raises(EndpointUnreachableError) as info:
        nwbstore.open("s3://bucket/x.zarr", storage_options=options)
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text
    assert run(["info", "s3://bucket/x.zarr", "--storage-options", json.dumps(options)]) == 2
    text += capsys.readouterr().err
    for secret in ("pa55word", "AKIAEXAMPLEKEY", "very-secret-value"):
        assert secret not in text
