"""The runnable examples in examples/ run as they are documented."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import zarr

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == expect, done.stderr
    return done


def test_quickstart(tmp_path: Path) -> None:
    out = run(str(EXAMPLES / "quickstart.py"), str(tmp_path)).stdout
    assert "quickstart.h5: backend hdf5" in out
    assert "quickstart.zarr: backend zarr" in out
    assert f"files kept in {tmp_path}" in out
    with h5py.File(tmp_path / "quickstart.h5") as f:
        assert f["acquisition/raw/data"][0, 3] == 3
        assert f.get("acquisition/alias", getlink=True).path == "/acquisition/raw/timestamps"
    group = zarr.open_group(tmp_path / "quickstart.zarr", mode="r")
    assert group["acquisition/raw/data"][0, 3] == 3
    links = group["acquisition"].attrs["_LINKS"]
    assert links == [{"name": "alias", "source": ".", "path": "/acquisition/raw/timestamps"}]


def test_quickstart_without_a_folder_cleans_up(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "quickstart.zarr: backend zarr" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_stream_append(tmp_path: Path) -> None:
    out = run(str(EXAMPLES / "stream_append.py"), str(tmp_path)).stdout
    assert "appended 7090 rows of 16 channels" in out
    assert "after flush another reader sees 7090 rows" in out
    assert "after close: (9000, 16) int16, chunks (1000, 16)" in out
    assert f"files kept in {tmp_path}" in out
    stored = zarr.open_array(tmp_path / "stream.zarr/acquisition/ephys/data", mode="r")
    assert stored.shape == (9000, 16)
    assert not stored[7090:].any() and stored[:7090].any()


def test_stream_append_without_a_folder_cleans_up(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "stream_append.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "after close: (9000, 16)" in done.stdout and "files kept" not in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_examples_print_usage(tmp_path: Path) -> None:
    for script in ("quickstart.py", "s3_zarr.py", "stream_append.py"):
        helped = run(str(EXAMPLES / script), "--help")
        assert helped.stdout.startswith("usage:")
    missing = run(str(EXAMPLES / "s3_zarr.py"), expect=2)
    assert "usage:" in missing.stderr and "url" in missing.stderr
    wrong = run(str(EXAMPLES / "s3_zarr.py"), str(tmp_path / "x.zarr"), expect=2)
    assert "s3://bucket/prefix" in wrong.stderr
    (tmp_path / "file").write_text("")
    not_dir = run(str(EXAMPLES / "quickstart.py"), str(tmp_path / "file"), expect=2)
    assert "not a folder" in not_dir.stderr


def test_s3_zarr(s3_server, s3_bucket) -> None:
    url = f"s3://{s3_bucket}/example.zarr"
    out = run(str(EXAMPLES / "s3_zarr.py"), url, s3_server.endpoint_url).stdout
    assert "500 samples" in out
    assert "created bucket" not in out
    fs = s3_server.filesystem()
    assert fs.exists(f"{s3_bucket}/example.zarr/zarr.json")
    assert fs.exists(f"{s3_bucket}/example.zarr/acquisition/speed/data/zarr.json")


def test_s3_zarr_creates_the_bucket(s3_server) -> None:
    bucket = f"example-{uuid.uuid4().hex[:12]}"
    client = s3_server.boto3_client()
    assert bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    out = run(str(EXAMPLES / "s3_zarr.py"), f"s3://{bucket}/example.zarr", s3_server.endpoint_url)
    assert f"created bucket {bucket}" in out.stdout
    assert "500 samples" in out.stdout
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "example.zarr/zarr.json" in keys


def test_nwb_write_s3() -> None:
    """The example starts its own loopback S3 server; about one request per stored object."""
    import re

    out = run(str(EXAMPLES / "nwb_write_s3.py"), "--series", "5").stdout
    assert "wrote s3://example/session.nwb.zarr (Zarr v3)" in out
    found = re.search(r"(\d+) objects stored with (\d+) requests", out)
    assert found is not None, out
    objects, requests = int(found[1]), int(found[2])
    assert requests <= 1.05 * objects + 5
    assert "6 series" in out and "recording (200000, 16) int16, sample 100: 909" in out
    assert run(str(EXAMPLES / "nwb_write_s3.py"), "--help").stdout.startswith("usage:")


def test_nwb_configure(tmp_path: Path) -> None:
    out = run(str(EXAMPLES / "nwb_configure.py"), str(tmp_path)).stdout
    assert out.startswith("HDF5 dataset configurations\n")
    assert "acquisition/MyTimeSeries/data\n-----------------------------\n" in out
    assert "  buffer shape : (20000, 8)\n  expected RAM usage : 640.00 KB" in out
    assert "written: chunks=(10000, 8) compression=zstd(level=5" in out
    with h5py.File(tmp_path / "configured.nwb") as f:
        assert f["acquisition/MyTimeSeries/data"].chunks == (10_000, 8)
    out = run(str(EXAMPLES / "nwb_configure.py"), str(tmp_path), "--backend", "zarr").stdout
    assert out.startswith("Zarr dataset configurations\n")
    array = zarr.open_array(tmp_path / "configured.nwb.zarr/acquisition/MyTimeSeries/data")
    assert array.chunks == (10_000, 8)
    assert array.compressors[0].level == 5
    assert run(str(EXAMPLES / "nwb_configure.py"), "--help").stdout.startswith("usage:")
