"""Remote HDF5 that cannot be read right fails loudly: truncated objects, data in other files.

Files go to moto's S3 server (loopback) behind the counting proxy; the same files opened
locally show that the refusal is about reading remotely, not about the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import nwbstore
from nwbstore.errors import CorruptStoreError, NwbStoreError, UnsupportedOperationError

pytestmark = pytest.mark.s3


def _upload(s3: Any, local: Path, key: str) -> str:
    s3.filesystem().put_file(str(local), f"{s3.bucket}/{key}")
    return str(s3.url(key))


def test_a_truncated_remote_file_is_reported_as_damaged(counting_s3: Any, tmp_path: Path) -> None:
    whole = tmp_path / "whole.h5"
    with h5py.File(whole, "w") as f:
        f.create_dataset("data", data=np.arange(200_000, dtype=np.int64), chunks=(10_000,))
        f.create_group("group").attrs["note"] = "x" * 100
    cut = tmp_path / "cut.h5"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    url = _upload(counting_s3, cut, "cut.h5")
    options = counting_s3.storage_options
    with (
        pytest.raises(CorruptStoreError, match=r"cut\.h5") as info,
        nwbstore.open(url, storage_options=options) as store,
    ):
        store.root.visit(lambda name: None)
    assert "truncated" in str(info.value).lower() or "damaged" in str(info.value).lower()


def _virtual_and_external(where: Path) -> Path:
    source = where / "source.h5"
    with h5py.File(source, "w") as f:
        f.create_dataset("x", data=np.arange(100, dtype=np.float64))
    raw = where / "raw.bin"
    np.arange(50, dtype=np.int32).tofile(raw)
    path = where / "links.h5"
    layout = h5py.VirtualLayout(shape=(100,), dtype=np.float64)
    layout[:] = h5py.VirtualSource(str(source), "x", shape=(100,))
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("virtual", layout, fillvalue=-1)
        f.create_dataset("external", shape=(50,), dtype=np.int32, external=[(str(raw), 0, 200)])
        f.create_dataset("plain", data=np.arange(5))
    return path


@pytest.mark.parametrize("name", ["virtual", "external"])
def test_data_in_other_files_is_refused_remotely_and_read_locally(
    counting_s3: Any, tmp_path: Path, name: str
) -> None:
    path = _virtual_and_external(tmp_path)
    with nwbstore.open(path) as store:  # locally, the named files are there: values are right
        local = store.root[name][...]
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(local, f[name][...])
    url = _upload(counting_s3, path, "links.h5")
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        np.testing.assert_array_equal(store.root["plain"][...], np.arange(5))
        with pytest.raises(UnsupportedOperationError, match=f"'/{name}'.*Download") as info:
            store.root[name][...]
    assert isinstance(info.value, NwbStoreError)
    assert "links.h5" in str(info.value)
