"""The jobs ``bench_nwb_write.py`` measures, each run in its own process.

``python benchmarks/nwb_write_jobs.py JOB --case small|series [--gb GB] --dst DST
--endpoint URL --out result.json`` builds an in-memory ``NWBFile`` (untimed), writes it to
``--dst`` (a local path, or ``s3://bench/...`` on the counting proxy at ``--endpoint``) and
writes ``{"seconds": ...}`` to ``--out``: the time of the write itself, without the
interpreter start, imports and building the file. Jobs:

- ``nwbstore-zarr``: ``nwbstore.nwb.write`` to ``session.nwb.zarr``;
- ``nwbstore-hdf5``: ``nwbstore.nwb.write`` to ``session.nwb`` (on S3: a local temporary,
  then one PUT or a parallel multipart upload);
- ``hdmf``: hdmf-zarr's ``NWBZarrIO.write``, locally to a path, on S3 to a zarr
  ``FsspecStore`` over s3fs;
- ``pynwb``: pynwb's ``NWBHDF5IO.write``; on S3 written to a local temporary and uploaded
  with ``s3fs.put``, timed together.

Cases: ``small`` (~100 stored objects as Zarr: a few series, an electrodes table, trials,
units, a behavior module) and ``series`` (an ``ElectricalSeries`` of ``--gb`` GB of int16,
384 channels, fed by a ``GenericDataChunkIterator`` that generates its data: memory is
bounded by the iterator's buffer, one second of 30 kHz data).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _s3_bench_common import Job, job_main
from s3_jobs import BLOCK_ROWS, CHANNELS, ephys_block, storage_options, stream_rows

#: Chunks of the iterator-fed series (30,000 rows x 64 channels, 3.84 MB) and its buffer: one
#: second of all channels, a whole number of chunks, so each chunk is written once.
SERIES_CHUNKS = (BLOCK_ROWS, 64)
SERIES_BUFFER = (BLOCK_ROWS, CHANNELS)


def _nwbfile(identifier: str) -> Any:
    from pynwb import NWBFile

    return NWBFile(
        session_description=f"nwbstore write benchmark ({identifier})",
        identifier=identifier,
        session_start_time=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        experimenter=["Doe, Jane"],
        lab="nwbstore",
        institution="nwbstore",
    )


def _electrodes(nwbfile: Any, count: int) -> Any:
    device = nwbfile.create_device(name="probe", description="a silicon probe")
    group = nwbfile.create_electrode_group(
        name="shank0", description="the probe's shank", location="CA1", device=device
    )
    for _ in range(count):
        nwbfile.add_electrode(group=group, location="CA1")
    return nwbfile.create_electrode_table_region(list(range(count)), "all electrodes")


def small_nwbfile() -> Any:
    """A small session: electrodes, an LFP series, 2 series, trials, units, behavior."""
    from pynwb import TimeSeries
    from pynwb.behavior import Position, SpatialSeries
    from pynwb.ecephys import ElectricalSeries

    rng = np.random.default_rng(0)
    nwbfile = _nwbfile("nwbstore-bench-small")
    region = _electrodes(nwbfile, 32)
    lfp = rng.normal(0, 50, size=(10_000, 32)).astype(np.int16)
    nwbfile.add_acquisition(
        ElectricalSeries(name="lfp", data=lfp, electrodes=region, rate=1000.0, conversion=1e-6)
    )
    for k in range(2):
        nwbfile.add_acquisition(
            TimeSeries(name=f"signal{k}", data=rng.normal(size=5_000), unit="V", rate=100.0)
        )
    nwbfile.add_trial_column(name="condition", description="the stimulus condition")
    for t in range(20):
        nwbfile.add_trial(start_time=5.0 * t, stop_time=5.0 * t + 2.0, condition="ab"[t % 2])
    for _ in range(10):
        nwbfile.add_unit(spike_times=np.sort(rng.uniform(0, 100, size=50)))
    behavior = nwbfile.create_processing_module(name="behavior", description="position")
    position = SpatialSeries(
        name="position",
        data=rng.normal(size=(2_000, 2)),
        reference_frame="arena corner",
        timestamps=np.arange(2_000) / 50.0,
    )
    behavior.add(Position(spatial_series=position))
    return nwbfile


def series_iterator(gb: float) -> Any:
    """A ``GenericDataChunkIterator`` of ``gb`` GB of int16 (whole seconds at 30 kHz)."""
    from hdmf.data_utils import GenericDataChunkIterator

    class GeneratedEphys(GenericDataChunkIterator):  # type: ignore[misc]
        """One second of generated ephys, repeated: data made on demand, never held."""

        def __init__(self, rows: int) -> None:
            self._rows = rows
            self._block = ephys_block()
            super().__init__(
                buffer_shape=SERIES_BUFFER, chunk_shape=SERIES_CHUNKS, display_progress=False
            )

        def _get_data(self, selection: tuple[slice, ...]) -> np.ndarray:
            rows = np.arange(*selection[0].indices(self._rows)) % BLOCK_ROWS
            return self._block[rows][:, selection[1]]

        def _get_maxshape(self) -> tuple[int, int]:
            return (self._rows, CHANNELS)

        def _get_dtype(self) -> np.dtype:
            return np.dtype("int16")

    return GeneratedEphys(stream_rows(gb))


def series_nwbfile(gb: float) -> Any:
    """A session with one iterator-fed 384-channel ``ElectricalSeries`` of ``gb`` GB."""
    from pynwb.ecephys import ElectricalSeries

    nwbfile = _nwbfile(f"nwbstore-bench-series-{gb:g}GB")
    region = _electrodes(nwbfile, CHANNELS)
    nwbfile.add_acquisition(
        ElectricalSeries(
            name="ElectricalSeries",
            data=series_iterator(gb),
            electrodes=region,
            rate=30_000.0,
            conversion=1e-6,
        )
    )
    return nwbfile


def _options(args: argparse.Namespace) -> dict[str, Any] | None:
    return storage_options(args.endpoint) if args.dst.startswith("s3://") else None


def job_nwbstore(args: argparse.Namespace, nwbfile: Any) -> dict[str, Any]:
    import nwbstore.nwb

    start = time.perf_counter()
    report = nwbstore.nwb.write(nwbfile, args.dst, storage_options=_options(args), progress=False)
    return {"seconds": time.perf_counter() - start, "report": str(report)}


def job_hdmf(args: argparse.Namespace, nwbfile: Any) -> dict[str, Any]:
    from hdmf_zarr.nwb import NWBZarrIO
    from zarr.storage import FsspecStore

    start = time.perf_counter()
    options = _options(args)
    target: Any = args.dst
    if options is not None:
        target = FsspecStore.from_url(args.dst, storage_options=options, read_only=False)
    with NWBZarrIO(target, mode="w") as io:
        io.write(nwbfile)
    return {"seconds": time.perf_counter() - start}


def job_pynwb(args: argparse.Namespace, nwbfile: Any) -> dict[str, Any]:
    from pynwb import NWBHDF5IO

    options = _options(args)
    if options is None:
        start = time.perf_counter()
        with NWBHDF5IO(args.dst, "w") as io:
            io.write(nwbfile)
        return {"seconds": time.perf_counter() - start}
    import s3fs

    with tempfile.TemporaryDirectory(prefix="nwbstore-bench-") as tmp:
        local = str(Path(tmp) / Path(args.dst).name)
        start = time.perf_counter()
        with NWBHDF5IO(local, "w") as io:
            io.write(nwbfile)
        written = time.perf_counter()
        s3fs.S3FileSystem(**options).put(local, args.dst)
        end = time.perf_counter()
    return {"seconds": end - start, "write_seconds": written - start, "put_seconds": end - written}


WRITERS = {
    "nwbstore-zarr": job_nwbstore,
    "nwbstore-hdf5": job_nwbstore,
    "hdmf": job_hdmf,
    "pynwb": job_pynwb,
}


def _write(writer: Any) -> Job:
    """A job: build the case's ``NWBFile`` (untimed), then write it with ``writer``."""

    def job(args: argparse.Namespace) -> dict[str, Any]:
        warnings.simplefilter("ignore")
        nwbfile = small_nwbfile() if args.case == "small" else series_nwbfile(args.gb)
        result: dict[str, Any] = writer(args, nwbfile)
        if args.case == "series":
            result["raw_bytes"] = stream_rows(args.gb) * CHANNELS * 2
        return result

    return job


JOBS = {name: _write(writer) for name, writer in WRITERS.items()}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dst", required=True, help="a local path or s3://bucket/key")
    parser.add_argument("--case", choices=("small", "series"), required=True)
    parser.add_argument("--gb", type=float, default=2.0, help="series size (case series)")


def main() -> None:
    job_main(JOBS, _arguments, description=__doc__.splitlines()[0], endpoint_required=False)


if __name__ == "__main__":
    main()
