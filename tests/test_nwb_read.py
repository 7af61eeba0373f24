"""nwbstore.nwb.read: NWB files (HDF5, family, Zarr v3/v2, local and S3) as lazy NWBFiles.

Files are written by pynwb/hdmf-zarr directly where they can, so reading does not depend on
nwbstore's writer; on the loopback S3 server the requests of opening are counted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hdmf.backends.hdf5 import H5DataIO
from hdmf_zarr import NWBZarrIO
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from test_nwb_write import check_contents, read_directly, small_nwbfile

import nwbstore.nwb
from nwbstore.errors import StoreNotFoundError, UnsupportedOperationError


def _write_hdf5(url: str) -> None:
    with NWBHDF5IO(url, "w") as io:
        io.write(small_nwbfile())


def _write_family(url: str) -> None:
    with (
        h5py.File(url, "w", driver="family", memb_size=32 * 1024) as h5,
        NWBHDF5IO(file=h5, mode="w") as io,
    ):
        io.write(small_nwbfile())


def _write_zarr(url: str) -> None:
    with NWBZarrIO(url, "w") as io:
        io.write(small_nwbfile())


def _write_zarr2(url: str) -> None:
    nwbstore.nwb.write(small_nwbfile(), url, zarr_format=2)  # hdmf-zarr 0.14 cannot write v2


WRITERS: dict[str, tuple[str, Callable[[str], None]]] = {
    "hdf5": ("session.nwb", _write_hdf5),
    "family": ("session_%d.nwb", _write_family),
    "zarr3": ("session.nwb.zarr", _write_zarr),
    "zarr2": ("session.nwb.zarr", _write_zarr2),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_local_files_read_lazily(tmp_path: Path, kind: str) -> None:
    name, write = WRITERS[kind]
    url = str(tmp_path / name)
    write(url)
    with nwbstore.nwb.read(url) as nwbfile:
        check_contents(nwbfile)
        assert nwbfile.read_io is not None
        data = nwbfile.acquisition["ts0"].data
        assert not isinstance(data, np.ndarray)  # lazy: an h5py/zarr dataset
    if kind == "family":
        assert len(list(tmp_path.glob("session_*.nwb"))) > 1  # member size found from file 0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError), nwbstore.nwb.read(str(tmp_path / "none.nwb")):
        pass
    with pytest.raises(ValueError, match="mode"), nwbstore.nwb.read("x.nwb", mode="w"):
        pass


def _growable_file(url: str) -> None:
    nwbfile = NWBFile(
        session_description="append test",
        identifier="nwbstore-append",
        session_start_time=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    )
    if url.endswith(".zarr"):
        from hdmf_zarr import ZarrDataIO

        data: Any = ZarrDataIO(np.zeros(10, "f4"), chunks=(100,))
    else:
        data = H5DataIO(np.zeros(10, "f4"), maxshape=(None,), chunks=(100,))
    nwbfile.add_acquisition(TimeSeries(name="grow", data=data, unit="V", rate=10.0))
    nwbstore.nwb.write(nwbfile, url)


def _append(url: str, storage_options: dict[str, Any] | None = None) -> None:
    with nwbstore.nwb.read(url, mode="a", storage_options=storage_options) as nwbfile:
        data = nwbfile.acquisition["grow"].data
        data.resize((500,))
        data[:500] = np.arange(500, dtype="f4")
        added = TimeSeries(name="added", data=np.arange(7, dtype="i4"), unit="V", rate=1.0)
        nwbfile.add_acquisition(added)
        nwbfile.read_io.write(nwbfile)


@pytest.mark.parametrize("name", ["grow.nwb", "grow.nwb.zarr"])
def test_append_mode_resizes_writes_and_adds(tmp_path: Path, name: str) -> None:
    url = str(tmp_path / name)
    _growable_file(url)
    _append(url)
    with read_directly(url) as io:
        nwbfile = io.read()
        np.testing.assert_array_equal(nwbfile.acquisition["grow"].data[:], np.arange(500))
        np.testing.assert_array_equal(nwbfile.acquisition["added"].data[:], np.arange(7))


# -- object storage ------------------------------------------------------------------------


def _write_zarr_with_hdmf_zarr(url: str, storage_options: dict[str, Any]) -> None:
    """How hdmf-zarr 0.14 users write to S3 today: a hand-made FsspecStore."""
    from zarr.storage import FsspecStore

    store = FsspecStore.from_url(url, storage_options=storage_options, read_only=False)
    with NWBZarrIO(store, mode="w") as io:
        io.write(small_nwbfile())


def _metadata_requests(requests: list[Any]) -> list[Any]:
    return [r for r in requests if r.kind in ("LIST", "HEAD") or r.path.endswith("zarr.json")]


@pytest.mark.s3
@pytest.mark.parametrize("writer", ["hdmf-zarr", "nwbstore"])
def test_s3_zarr_opens_from_consolidated_metadata(counting_s3: Any, writer: str) -> None:
    opts = counting_s3.storage_options
    url = counting_s3.url("session.nwb.zarr")
    if writer == "nwbstore":
        nwbstore.nwb.write(small_nwbfile(), url, storage_options=opts)
    else:
        _write_zarr_with_hdmf_zarr(url, opts)
    counting_s3.reset()
    with nwbstore.nwb.read(url, storage_options=opts) as nwbfile:
        opened = list(counting_s3.proxy.requests)
        check_contents(nwbfile)
    ours = counting_s3.total
    # one listing and the root document: the whole hierarchy comes from it
    assert len(_metadata_requests(opened)) <= 3, [(r.kind, r.path) for r in opened]
    assert {r.kind for r in opened} <= {"LIST", "GET"}
    counting_s3.reset()
    with NWBZarrIO(url, mode="r", storage_options=opts) as io:
        check_contents(io.read())
    theirs = counting_s3.total
    assert ours < theirs, (ours, theirs)


@pytest.mark.s3
def test_s3_hdf5_reads_through_a_file_object(counting_s3: Any, tmp_path: Path) -> None:
    opts = counting_s3.storage_options
    local = tmp_path / "session.nwb"
    _write_hdf5(str(local))
    counting_s3.filesystem().put_file(str(local), f"{counting_s3.bucket}/session.nwb")
    url = counting_s3.url("session.nwb")
    with nwbstore.nwb.read(url, storage_options=opts) as nwbfile:
        check_contents(nwbfile)
    with (
        pytest.raises(UnsupportedOperationError, match="in place"),
        nwbstore.nwb.read(url, storage_options=opts, mode="a"),
    ):
        pass


@pytest.mark.s3
def test_s3_zarr_append_mode(counting_s3: Any, tmp_path: Path) -> None:
    opts = counting_s3.storage_options
    url = counting_s3.url("grow.nwb.zarr")
    _growable_file_s3(url, opts)
    _append(url, opts)
    with read_directly(url, opts) as io:
        nwbfile = io.read()
        np.testing.assert_array_equal(nwbfile.acquisition["grow"].data[:], np.arange(500))
        np.testing.assert_array_equal(nwbfile.acquisition["added"].data[:], np.arange(7))


def _growable_file_s3(url: str, opts: dict[str, Any]) -> None:
    from hdmf_zarr import ZarrDataIO

    nwbfile = NWBFile(
        session_description="append test",
        identifier="nwbstore-append",
        session_start_time=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    )
    data = ZarrDataIO(np.zeros(10, "f4"), chunks=(100,))
    nwbfile.add_acquisition(TimeSeries(name="grow", data=data, unit="V", rate=10.0))
    nwbstore.nwb.write(nwbfile, url, storage_options=opts)


@pytest.mark.s3
def test_s3_zarr_small_datasets_are_read_ahead_once(counting_s3: Any, tmp_path: Path) -> None:
    """hdmf-zarr reads each scalar and small dataset while it builds the NWBFile: nwbstore
    fetches them all in one concurrent batch first, so building it sends nothing more."""
    import zarr

    from nwbstore.backends._zarr_preload import small_chunk_keys
    from nwbstore.nwb.read import _read_when_built
    from nwbstore.testing.nwb_samples import build_rich_nwb

    opts = counting_s3.storage_options
    url = counting_s3.url("rich.nwb.zarr")
    with nwbstore.nwb.read(str(build_rich_nwb(tmp_path / "rich.nwb"))) as local:
        nwbstore.nwb.write(local, url, storage_options=opts)
    group = zarr.open_group(url, mode="r", storage_options=opts)
    ahead = {
        f"/{counting_s3.bucket}/rich.nwb.zarr/{k}"
        for k in small_chunk_keys(group, _read_when_built)
    }
    assert len(ahead) > 20  # the rich sample has dozens of scalars, ids and regions
    counting_s3.reset()
    with nwbstore.nwb.read(url, storage_options=opts) as nwbfile:
        gets = [r.path for r in counting_s3.proxy.requests if r.kind == "GET"]
        assert nwbfile.acquisition["ElectricalSeries"].rate > 0
        assert len(nwbfile.units) == group["units/id"].shape[0]
    root = f"/{counting_s3.bucket}/rich.nwb.zarr/zarr.json"
    assert sorted(gets) == sorted({root, *ahead}), set(gets) ^ {root, *ahead}
    assert counting_s3.counts["LIST"] == 1 and counting_s3.total == len(gets) + 1


@pytest.mark.s3
def test_s3_zarr_store_opens_with_a_listing_and_the_root_document(counting_s3: Any) -> None:
    opts = counting_s3.storage_options
    url = counting_s3.url("s.nwb.zarr")
    nwbstore.nwb.write(small_nwbfile(), url, storage_options=opts)
    counting_s3.reset()
    with nwbstore.open(url, storage_options=opts) as store:
        assert "acquisition" in store.root
    assert dict(counting_s3.counts) == {"LIST": 1, "GET": 1}
