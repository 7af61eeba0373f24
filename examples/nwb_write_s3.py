"""Write an in-memory NWBFile straight to S3 as Zarr, count the requests, read it back.

Run: python examples/nwb_write_s3.py [--series N]

The example starts its own S3 server on loopback (moto's ThreadedMotoServer, port 0) behind
nwbstore's counting proxy, so it needs no account and shows what the write costs: about one
request per stored object. The NWBFile has ``N`` short TimeSeries and one longer series fed
by a ``GenericDataChunkIterator`` (written buffer by buffer, each chunk PUT once).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import numpy as np
from hdmf.data_utils import GenericDataChunkIterator
from pynwb import NWBFile, TimeSeries

import nwbstore.nwb


class Sine(GenericDataChunkIterator):
    """A generated (samples, channels) int16 recording; only one buffer is ever in memory."""

    def __init__(self, samples: int, channels: int, **kwargs: Any) -> None:
        self.samples, self.channels = samples, channels
        super().__init__(**kwargs)

    def _get_data(self, selection: tuple[slice, ...]) -> np.ndarray:
        t = np.arange(selection[0].start, selection[0].stop)[:, None]
        phase = np.arange(self.channels)[None, selection[1]]
        return (1000 * np.sin(t / 50 + phase)).astype("int16")

    def _get_maxshape(self) -> tuple[int, int]:
        return (self.samples, self.channels)

    def _get_dtype(self) -> np.dtype[Any]:
        return np.dtype("int16")


def build_nwbfile(series: int) -> NWBFile:
    nwbfile = NWBFile(
        session_description="nwbstore example: straight to S3",
        identifier="nwbstore-example-s3",
        session_start_time=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    )
    rng = np.random.default_rng(0)
    for i in range(series):
        data = rng.standard_normal(1000).astype("float32")
        nwbfile.add_acquisition(TimeSeries(name=f"ts{i}", data=data, unit="V", rate=100.0))
    recording = Sine(
        200_000, 16, buffer_shape=(50_000, 16), chunk_shape=(10_000, 16), display_progress=False
    )
    nwbfile.add_acquisition(TimeSeries(name="recording", data=recording, unit="uV", rate=30e3))
    return nwbfile


def main(series: int) -> None:
    from nwbstore.testing.loopback_s3 import loopback_s3

    with loopback_s3("example") as s3:
        proxy, options = s3.proxy, s3.storage_options
        url = s3.url("session.nwb.zarr")
        report = nwbstore.nwb.write(build_nwbfile(series), url, storage_options=options)
        requests = proxy.total
        import s3fs

        objects = len(s3fs.S3FileSystem(**options).find("example/session.nwb.zarr"))
        print(report)
        print(f"{objects} objects stored with {requests} requests ({requests / objects:.2f} each)")

        proxy.reset()
        with nwbstore.nwb.read(url, storage_options=options) as nwbfile:
            opened = proxy.total
            recording = nwbfile.acquisition["recording"].data
            print(f"opened with {opened} requests: {len(nwbfile.acquisition)} series")
            print(f"recording {recording.shape} {recording.dtype}, sample 100: {recording[100, 0]}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write an NWBFile to a loopback S3 server as Zarr with nwbstore.nwb.write."
    )
    parser.add_argument("--series", type=int, default=20, help="short TimeSeries to add (20)")
    return parser


if __name__ == "__main__":
    args = _parser().parse_args()
    if args.series < 0:
        _parser().error("--series must be 0 or more")
    main(args.series)
