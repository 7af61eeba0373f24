"""Remote HDF5 reads every layout current writers produce, with h5py's local values.

One file per HDF5 format version (``libver``): superblock 0 (h5py's default, old-style
groups, v1 B-tree chunk indexes) up to superblock 3 (new-style compact and dense groups and
attribute storage, creation order, and the v1.10 chunk indexes: single chunk, fixed array,
extensible array, v2 B-tree). Each is read on moto's S3 server through nwbstore (chunk reader
and h5py) and compared, dataset by dataset and attribute by attribute, with h5py's read of
the local file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import nwbstore

pytestmark = pytest.mark.s3


def _write(path: Path, libver: str) -> Path:
    rng = np.random.default_rng(7)
    with h5py.File(path, "w", libver=(libver, "latest"), track_order=libver == "latest") as f:
        f.attrs["format"] = libver
        f.create_dataset("contiguous", data=rng.standard_normal(1000))
        f.create_dataset("compact", data=np.arange(10, dtype=np.int32),
                         dcpl=_compact())  # fmt: skip
        f.create_dataset("single_chunk", data=rng.integers(0, 9, (40, 5)), chunks=(40, 5))
        f.create_dataset(
            "fixed", data=rng.integers(-500, 500, (3000, 7), dtype=np.int16), chunks=(256, 4),
            compression="gzip", shuffle=True,
        )  # fmt: skip
        grow = f.create_dataset("extensible", shape=(0,), maxshape=(None,), chunks=(100,),
                                dtype=np.float32)  # fmt: skip
        grow.resize((2345,))
        grow[:] = rng.standard_normal(2345).astype(np.float32)
        both = f.create_dataset("btree2", shape=(0, 0), maxshape=(None, None), chunks=(50, 3),
                                dtype=np.int64, compression="lzf")  # fmt: skip
        both.resize((333, 11))
        both[:] = rng.integers(0, 10**9, (333, 11))
        many = f.create_group("dense_group")
        for i in range(40):  # past the compact-storage limit: dense links and attributes
            many.create_dataset(f"d{i:02d}", data=i)
            many.attrs[f"a{i:02d}"] = np.arange(i % 5 + 1)
        many.attrs["text"] = "über"
    return path


def _compact() -> Any:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    return dcpl


def _everything(f: Any) -> dict[str, Any]:
    """Every dataset's values and every node's attributes, read through ``f``."""
    seen: dict[str, Any] = {"/@": dict(f.attrs)}

    def visit(name: str, node: Any) -> None:
        seen[f"{name}@"] = dict(node.attrs)
        if not hasattr(node, "keys"):
            seen[name] = node[()]

    f.visititems(visit)
    return seen


@pytest.mark.parametrize("libver", ["earliest", "v108", "v110", "latest"])
def test_every_layout_reads_remotely_as_h5py_reads_it_locally(
    counting_s3: Any, tmp_path: Path, libver: str
) -> None:
    local = _write(tmp_path / f"{libver}.h5", libver)
    counting_s3.filesystem().put_file(str(local), f"{counting_s3.bucket}/{libver}.h5")
    with h5py.File(local, "r") as f:
        expected = _everything(f)
        layouts = {
            name: f[name].id.get_create_plist().get_layout() for name in ("fixed", "compact")
        }
    assert layouts == {"fixed": h5py.h5d.CHUNKED, "compact": h5py.h5d.COMPACT}
    url = counting_s3.url(f"{libver}.h5")
    with nwbstore.open(url, storage_options=counting_s3.storage_options, catalog=False) as store:
        got = _everything(store.root)
        window = store.root["fixed"][1000:2100:3, [0, 6]]  # the chunk reader, a strided slice
        chunked = ("single_chunk", "fixed", "extensible", "btree2")
        readers = {name: store.chunk_reader(store.h5file[name]) for name in chunked}
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if key.endswith("@"):
            assert got[key].keys() == value.keys(), key
            for name in value:
                np.testing.assert_array_equal(got[key][name], value[name], err_msg=f"{key}{name}")
        else:
            np.testing.assert_array_equal(got[key], value, err_msg=key)
    np.testing.assert_array_equal(window, expected["fixed"][1000:2100:3, [0, 6]])
    # every chunk index type is read by nwbstore's chunk reader, not left to h5py
    assert all(reader is not None for reader in readers.values()), readers
