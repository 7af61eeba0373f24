"""Use a TimeSeries of another NWB file: link its data (external link) or copy it.

Run: python examples/nwb_link_timeseries.py [OUTPUT_DIR] [--backend hdf5|zarr|both]

PyNWB's linking tutorial with ``nwbstore.nwb``, on HDF5 and on Zarr (local):

1. file A holds ``test_timeseries1`` (100 x 10 samples with their timestamps);
2. A is opened with ``nwbstore.nwb.read`` and kept open while the other files are written;
3. file B has a new TimeSeries whose data is A's dataset, written with ``link_data=True``:
   B stores an external link to A's data (an HDF5 ``ExternalLink``, an hdmf-zarr ``_LINKS``
   entry), and B also holds A's whole TimeSeries, added as it is (a container from another
   file is always linked, as in pynwb);
4. file C is the same new TimeSeries written with ``link_data=False``: the data is copied.

The links are shown with h5py/zarr, and B is read back with pynwb (``NWBHDF5IO`` /
``hdmf_zarr.NWBZarrIO``). Without OUTPUT_DIR the files go to a temporary folder that is
removed at the end.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pynwb import NWBFile, TimeSeries

import nwbstore.nwb

START = datetime(2017, 4, 3, 11, tzinfo=UTC)
DATA = np.arange(1000).reshape((100, 10))
TIMESTAMPS = np.arange(100, dtype=float)


def new_nwbfile(identifier: str) -> NWBFile:
    return NWBFile(
        session_description="demonstrate external files",
        identifier=identifier,
        session_start_time=START,
    )


def write_a(url: str) -> None:
    nwbfile = new_nwbfile("external1")
    nwbfile.add_acquisition(
        TimeSeries(name="test_timeseries1", data=DATA, unit="SIunit", timestamps=TIMESTAMPS)
    )
    nwbstore.nwb.write(nwbfile, url, overwrite=True)


def write_b_and_c(a_url: str, b_url: str, c_url: str) -> None:
    with nwbstore.nwb.read(a_url) as nwbfile_a:  # kept open: B and C use its objects
        timeseries_1 = nwbfile_a.acquisition["test_timeseries1"]
        for url, link_data in ((b_url, True), (c_url, False)):
            nwbfile = new_nwbfile("external_linkdataset" if link_data else "copied_dataset")
            nwbfile.add_acquisition(
                TimeSeries(
                    name="test_timeseries4",
                    data=timeseries_1.data,  # <- the dataset of file A
                    unit="SIunit",
                    timestamps=TIMESTAMPS,  # our own timestamps
                )
            )
            if link_data:
                nwbfile.add_acquisition(timeseries_1)  # <- the whole TimeSeries of file A
            report = nwbstore.nwb.write(nwbfile, url, link_data=link_data, overwrite=True)
            print(report)


def show_hdf5(b_url: str, c_url: str) -> None:
    import h5py

    with h5py.File(b_url, "r") as b:
        link = b["acquisition/test_timeseries4"].get("data", getlink=True)
        print(f"B: acquisition/test_timeseries4/data is {_h5link(link)}")
        whole = b["acquisition"].get("test_timeseries1", getlink=True)
        print(f"B: acquisition/test_timeseries1 is {_h5link(whole)}")
    with h5py.File(c_url, "r") as c:
        link = c["acquisition/test_timeseries4"].get("data", getlink=True)
        data = c["acquisition/test_timeseries4/data"]
        print(f"C: acquisition/test_timeseries4/data is {_h5link(link)}, {data.shape} {data.dtype}")


def _h5link(link: Any) -> str:
    import h5py

    if isinstance(link, h5py.ExternalLink):
        return f"an ExternalLink to {link.filename}:{link.path}"
    return f"a {type(link).__name__} (the data is in this file)"


def show_zarr(b_url: str, c_url: str) -> None:
    import zarr

    def links(url: str, path: str) -> list[Any]:
        """The hdmf-zarr ``_LINKS`` entries of the group at ``path``."""
        attrs = zarr.open_group(f"{url}/{path}", mode="r").attrs
        return list(attrs.get("_LINKS") or [])  # type: ignore[arg-type]

    for entry in links(b_url, "acquisition/test_timeseries4"):
        print(f"B: acquisition/test_timeseries4 _LINKS entry {entry}")
    for entry in links(b_url, "acquisition"):
        print(f"B: acquisition _LINKS entry {entry}")
    data = zarr.open_array(f"{c_url}/acquisition/test_timeseries4/data", mode="r")
    copied_links = len(links(c_url, "acquisition/test_timeseries4"))
    print(
        f"C: acquisition/test_timeseries4/data is an array {data.shape} {data.dtype}, "
        f"{copied_links} links"
    )


def read_b(b_url: str, zarr: bool) -> None:
    if zarr:
        from hdmf_zarr import NWBZarrIO

        io: Any = NWBZarrIO(b_url, mode="r")
    else:
        from pynwb import NWBHDF5IO

        io = NWBHDF5IO(b_url, mode="r")
    with io:
        nwbfile = io.read()
        for name in ("test_timeseries4", "test_timeseries1"):
            data = nwbfile.acquisition[name].data
            print(
                f"B read with {type(io).__name__}: {name} {data.shape}, row 99 {data[99].tolist()}"
            )


def run(outdir: Path, backend: str) -> None:
    ext = ".nwb.zarr" if backend == "zarr" else ".nwb"
    a_url, b_url, c_url = (
        str(outdir / f"{name}{ext}")
        for name in ("external1_example", "external_linkdataset_example", "copied_example")
    )
    write_a(a_url)
    write_b_and_c(a_url, b_url, c_url)
    if backend == "zarr":
        show_zarr(b_url, c_url)
    else:
        show_hdf5(b_url, c_url)
    read_b(b_url, zarr=backend == "zarr")


def main(outdir: Path, backend: str) -> None:
    for each in ("hdf5", "zarr") if backend == "both" else (backend,):
        run(outdir, each)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Link (link_data=True) or copy (link_data=False) a TimeSeries of another "
        "NWB file with nwbstore.nwb.write, on HDF5 and Zarr."
    )
    parser.add_argument(
        "outdir",
        nargs="?",
        type=Path,
        help="folder for the files, kept afterwards (default: a temporary folder)",
    )
    parser.add_argument("--backend", choices=["hdf5", "zarr", "both"], default="both")
    return parser


if __name__ == "__main__":
    args = _parser().parse_args()
    if args.outdir is None:
        with tempfile.TemporaryDirectory(prefix="nwbstore-links-") as temp:
            main(Path(temp), args.backend)
    else:
        if args.outdir.exists() and not args.outdir.is_dir():
            _parser().error(f"{args.outdir} exists and is not a folder")
        args.outdir.mkdir(parents=True, exist_ok=True)
        main(args.outdir, args.backend)
        print(f"files kept in {args.outdir}")
