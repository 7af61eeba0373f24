"""Run the shipped conformance suite against every backend nwbstore provides."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from nwbstore.testing.conformance import (
    Bypass,
    HDF5Bypass,
    StoreConformance,
    Target,
    ZarrBypass,
    write_reference_hdf5,
)

MEMB_SIZE = 1 << 16  # small members so the test files really span several of them


class TestHDF5Sec2(StoreConformance):
    backend_name = "hdf5"
    store_format = "hdf5"

    @pytest.fixture
    def new_url(self, tmp_path: Path) -> str:
        return str(tmp_path / "f.h5")

    @pytest.fixture
    def bypass(self) -> Bypass:
        return HDF5Bypass()


class TestHDF5Sec2NativeFile(TestHDF5Sec2):
    """Read side on a file written by h5py itself, not by nwbstore."""

    read_side_only = True

    def populate(self, target: Target) -> None:
        write_reference_hdf5(target.url)


class TestHDF5Family(StoreConformance):
    backend_name = "hdf5-family"
    store_format = "hdf5"

    @pytest.fixture
    def new_url(self, tmp_path: Path) -> str:
        return str(tmp_path / "f_%d.h5")

    @pytest.fixture
    def open_kwargs(self) -> dict[str, Any]:
        return {"memb_size": MEMB_SIZE}

    @pytest.fixture
    def bypass(self) -> Bypass:
        return HDF5Bypass()

    def read_kwargs(self, open_kwargs: dict[str, Any]) -> dict[str, Any]:
        # Reading must find memb_size by itself.
        return {k: v for k, v in open_kwargs.items() if k != "memb_size"}

    def sibling_url(self, url: str) -> tuple[str, str]:
        return str(Path(url).with_name("other_%d.h5")), "other_%d.h5"


class TestZarr3Local(StoreConformance):
    backend_name = "zarr"
    store_format = "zarr"

    @pytest.fixture
    def new_url(self, tmp_path: Path) -> str:
        return str(tmp_path / "f.zarr")

    @pytest.fixture
    def bypass(self) -> Bypass:
        return ZarrBypass()

    def test_zarr_format_on_disk(self, target: Target) -> None:
        with self.writing(target) as store:
            store.root.create_group("g")
        assert ZarrBypass().zarr_format(target.url) == target.open_kwargs.get("zarr_format", 3)


class TestZarr2Local(TestZarr3Local):
    @pytest.fixture
    def open_kwargs(self) -> dict[str, Any]:
        return {"zarr_format": 2}

    def read_kwargs(self, open_kwargs: dict[str, Any]) -> dict[str, Any]:
        return {}  # reading detects the format


@pytest.mark.s3
class TestZarr3S3(StoreConformance):
    backend_name = "zarr"
    store_format = "zarr"
    zarr_format = 3

    @pytest.fixture
    def new_url(self, s3_bucket: str) -> str:
        return f"s3://{s3_bucket}/f.zarr"

    @pytest.fixture
    def open_kwargs(self, s3_server: Any) -> dict[str, Any]:
        return {"storage_options": s3_server.storage_options, "zarr_format": self.zarr_format}

    @pytest.fixture
    def bypass(self, s3_server: Any) -> Bypass:
        return ZarrBypass(s3_server.storage_options)

    def test_zarr_format_on_s3(self, target: Target, s3_server: Any) -> None:
        with self.writing(target) as store:
            store.root.create_group("g")
        assert ZarrBypass(s3_server.storage_options).zarr_format(target.url) == self.zarr_format


@pytest.mark.s3
class TestZarr2S3(TestZarr3S3):
    zarr_format = 2


class TestZarrMemory(StoreConformance):
    backend_name = "zarr"
    store_format = "zarr"

    @pytest.fixture
    def new_url(self) -> str:
        return f"memory://conformance-{uuid.uuid4().hex}/f.zarr"

    @pytest.fixture
    def bypass(self) -> Bypass:
        return ZarrBypass()


@pytest.mark.s3
class TestHDF5RemoteReadOnly(StoreConformance):
    """HDF5 over S3, read-only: the file is written locally by h5py and uploaded."""

    backend_name = "hdf5-remote"
    store_format = "hdf5"
    read_only = True

    @pytest.fixture
    def new_url(self, s3_bucket: str) -> str:
        return f"s3://{s3_bucket}/f.h5"

    @pytest.fixture
    def open_kwargs(self, s3_server: Any, tmp_path: Path) -> dict[str, Any]:
        self._server = s3_server
        self._tmp = tmp_path
        return {"storage_options": s3_server.storage_options}

    @pytest.fixture
    def bypass(self, s3_server: Any) -> Bypass:
        return HDF5Bypass(s3_server.storage_options)

    def populate(self, target: Target) -> None:
        local = self._tmp / "upload.h5"
        write_reference_hdf5(str(local))
        self._server.filesystem().put(str(local), target.url)

    def test_write_modes_refused(self, target: Target) -> None:
        import nwbstore
        from nwbstore.errors import ReadOnlyError

        self.populate(target)
        for mode in ("w", "r+", "a"):
            with pytest.raises(ReadOnlyError) as info:
                nwbstore.open(target.url, mode, **target.open_kwargs)
            assert isinstance(info.value, PermissionError)
            assert target.url in str(info.value)
        # nothing was replaced
        assert target.bypass.raw_kind(target.url, "/acq/ts/data") == "dataset"


def test_family_spans_members_and_reads_without_memb_size(tmp_path: Path) -> None:
    import h5py
    import numpy as np

    import nwbstore
    from nwbstore.errors import NwbStoreError

    url = str(tmp_path / "big_%d.h5")
    data = np.arange(100_000, dtype="i8")  # 800 kB over 64 kiB members
    with nwbstore.open(url, "w", memb_size=MEMB_SIZE) as store:
        store.root.create_dataset("x", data=data)
    members = sorted(tmp_path.glob("big_*.h5"))
    assert len(members) > 2, members
    with h5py.File(url, "r", driver="family", memb_size=MEMB_SIZE) as f:
        np.testing.assert_array_equal(f["x"][()], data)
    with nwbstore.open(url, "r") as store:
        assert store.backend == "hdf5-family"
        np.testing.assert_array_equal(store["x"][...], data)
    with nwbstore.open(url, "r", memb_size=MEMB_SIZE) as store:
        assert store["x"].shape == data.shape  # type: ignore[union-attr]
    with pytest.raises(NwbStoreError) as info:
        nwbstore.open(url, "r", memb_size=MEMB_SIZE * 2)
    assert isinstance(info.value, ValueError), type(info.value)
    message = str(info.value)
    assert "memb_size" in message and str(MEMB_SIZE) in message, message
