"""Read an NWB file on S3 without downloading it, and count what each step costs.

Run: python examples/remote_read.py [--latency-ms MS]

The example starts its own S3 server on loopback (moto's ThreadedMotoServer) behind
nwbstore's counting proxy, which waits ``MS`` milliseconds before each request (a remote
link's round trip), uploads nwbstore's rich sample NWB file (written by pynwb) and then:

1. opens it cold and walks the whole tree: a few requests, metadata bytes only;
2. reads 10 ms of two channels: the chunks holding them, concurrent range GETs, one round;
3. opens it again: the metadata catalog cached by the first open makes it one request;
4. builds the ``pynwb.NWBFile`` with ``nwbstore.nwb.read``: the catalog holds the tree, and
   the small values pynwb reads that the walk did not (ids, strings, scalars) cost a few
   block requests this first time; they join the catalog when the file is closed;
5. writes the catalog next to the file (``nwbstore index``): another user's first open is
   then two requests in one round (the probe and the catalog);
6. opens the series lazily in xarray: physical units, time and channel coordinates.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

import nwbstore
import nwbstore.nwb
from nwbstore.catalog import index
from nwbstore.testing.loopback_s3 import LoopbackS3, loopback_s3
from nwbstore.testing.nwb_samples import build_rich_nwb

SERIES = "acquisition/ElectricalSeries"


def _cost(s3: LoopbackS3, what: str) -> None:
    proxy = s3.proxy
    print(
        f"{what}: {proxy.total} requests in {proxy.rounds()} rounds, {proxy.bytes_out / 1e6:.2f} MB"
    )
    proxy.reset()


def main(latency_ms: float, folder: Path) -> None:
    local = build_rich_nwb(folder / "session.nwb", n_samples=30_000)
    print(f"sample file: {local.stat().st_size / 1e6:.2f} MB")
    os.environ["NWBSTORE_CACHE_DIR"] = str(folder / "cache-user-1")
    with loopback_s3("example", latency=latency_ms / 1000) as s3:
        options = s3.storage_options
        s3.proxy.reset()
        import s3fs

        s3fs.S3FileSystem(**options).put_file(str(local), "example/session.nwb")
        url = s3.url("session.nwb")
        s3.proxy.reset()

        with nwbstore.open(url, storage_options=options) as store:
            nodes: list[str] = []
            store.root.visit(nodes.append)
            _cost(s3, f"cold open + walk of {len(nodes)} nodes")
            window = store.root[f"{SERIES}/data"][15_000:15_301, [3, 7]]
            _cost(s3, f"10 ms of channels 3 and 7, sum {int(window.sum())}")

        with nwbstore.open(url, storage_options=options) as store:
            store.root.visit(lambda name: None)
            _cost(s3, "warm open + walk (catalog cached)")

        with nwbstore.nwb.read(url, storage_options=options) as nwbfile:
            series = nwbfile.acquisition["ElectricalSeries"]
            _cost(s3, f"NWBFile with {len(nwbfile.acquisition)} acquisitions")
            print(f"  {series.name}: {series.data.shape} {series.data.dtype}, {series.rate} Hz")

        report = index(url, storage_options=options)
        print(f"nwbstore index: {report.spans} spans, {report.metadata_bytes / 1e3:.0f} kB")
        s3.proxy.reset()
        os.environ["NWBSTORE_CACHE_DIR"] = str(folder / "cache-user-2")  # another user
        with nwbstore.open(url, storage_options=options) as store:
            store.root.visit(lambda name: None)
            _cost(s3, "another user's first open + walk (catalog next to the file)")

        with xr.open_dataset(url, engine="nwbstore", group=SERIES, storage_options=options) as ds:
            _cost(s3, f"xarray open_dataset: dims {ds['data'].dims}")
            volts = ds["data"].isel(time=slice(15_000, 15_301), channel=[3, 7]).values
            _cost(s3, f"xarray slice in volts, max {float(np.abs(volts).max()):.6f}")

    with h5py.File(local, "r") as f:  # the same numbers from the local file
        raw = f[f"{SERIES}/data"][15_000:15_301, [3, 7]]
        print(f"local h5py: sum {int(raw.sum())}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Read an NWB file from a loopback S3 server with nwbstore and xarray."
    )
    parser.add_argument(
        "--latency-ms", type=float, default=10.0, help="delay per request in ms (10)"
    )
    return parser


if __name__ == "__main__":
    args = _parser().parse_args()
    if args.latency_ms < 0:
        _parser().error("--latency-ms must be 0 or more")
    with tempfile.TemporaryDirectory() as tmp:
        main(args.latency_ms, Path(tmp))
