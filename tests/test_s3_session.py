"""One aiobotocore session for the s3fs instances of a remote HDF5 open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

import nwbstore
from nwbstore.backends._s3_retries import shared_session_options


def test_options_share_one_session_unless_the_caller_chose() -> None:
    first = shared_session_options({"anon": True})
    second = shared_session_options({})
    assert first["session"] is second["session"] and first["anon"] is True
    mine = object()
    assert shared_session_options({"session": mine})["session"] is mine
    assert "session" not in shared_session_options({"profile": "lab"})
    options = {"key": "k"}
    shared_session_options(options)
    assert options == {"key": "k"}  # not changed


def test_remote_hdf5_open_reads_through_one_session(counting_s3: Any, tmp_path: Path) -> None:
    local = tmp_path / "f.h5"
    with h5py.File(local, "w") as f:
        f.create_dataset("x", data=np.arange(40_000, dtype="i4"), chunks=(10_000,))
    counting_s3.filesystem().put_file(str(local), f"{counting_s3.bucket}/f.h5")
    url = f"s3://{counting_s3.bucket}/f.h5"
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        assert np.array_equal(store["x"][5_000:25_000], np.arange(5_000, 25_000))
        shared = shared_session_options({})["session"]
        engine = store._remote.fs  # the chunk reader's own s3fs instance
        h5py_file = store._fileobj._f._inner  # GcPausedFile > CatalogFile > S3File
        assert engine.session is shared and h5py_file.fs.session is shared
