"""The runnable examples in examples/ run as they are documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import zarr

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quickstart(tmp_path: Path) -> None:
    out = run(str(EXAMPLES / "quickstart.py"), str(tmp_path))
    assert "quickstart.h5: backend hdf5" in out
    assert "quickstart.zarr: backend zarr" in out
    with h5py.File(tmp_path / "quickstart.h5") as f:
        assert f["acquisition/raw/data"][0, 3] == 3
        assert f.get("acquisition/alias", getlink=True).path == "/acquisition/raw/timestamps"
    group = zarr.open_group(tmp_path / "quickstart.zarr", mode="r")
    assert group["acquisition/raw/data"][0, 3] == 3
    links = group["acquisition"].attrs["_LINKS"]
    assert links == [{"name": "alias", "source": ".", "path": "/acquisition/raw/timestamps"}]


def test_s3_zarr(s3_server, s3_bucket) -> None:
    url = f"s3://{s3_bucket}/example.zarr"
    out = run(str(EXAMPLES / "s3_zarr.py"), url, s3_server.endpoint_url)
    assert "500 samples" in out
    fs = s3_server.filesystem()
    assert fs.exists(f"{s3_bucket}/example.zarr/zarr.json")
    assert fs.exists(f"{s3_bucket}/example.zarr/acquisition/speed/data/zarr.json")
