"""Iterative write of a large memory-mapped array, then a dataset allocated empty and filled later.

Run: python examples/nwb_iterative_write.py [OUTPUT_DIR] [--rows N] [--iterator generic|datachunk]
                                            [--url URL ...]

The two writes of PyNWB's advanced I/O tutorial, with ``nwbstore.nwb``:

1. **Iterative write.** A (rows, 32) int16 recording lives in a ``numpy.memmap`` in a temporary
   folder, the "large binary file". It is wrapped in a ``GenericDataChunkIterator`` (or, with
   ``--iterator datachunk``, the tutorial's generator in a ``DataChunkIterator``) and written with
   ``nwbstore.nwb.write``, to HDF5 and to Zarr. Only one buffer of rows is read into memory
   at a time: the peak traced memory of the write (``tracemalloc``) is printed beside the data
   size; it stays flat whatever ``--rows`` is: a few buffers plus what pynwb, hdmf and zarr
   hold whatever the data (about 0.5 MiB for HDF5 and 2 MiB for Zarr).
2. **User-defined write.** The same file holds a TimeSeries allocated empty with room to grow
   (``H5DataIO(shape=(0, 10), maxshape=(None, 10))``; Zarr arrays can always grow). The file
   is opened again with ``nwbstore.nwb.read(url, mode="a")``, the dataset resized and written
   block by block, and read back.

Without OUTPUT_DIR the files go to a temporary folder that is removed at the end. ``--url``
(repeatable) chooses the destinations instead of ``iterative.nwb`` and ``iterative.nwb.zarr``;
an ``s3://`` URL takes its endpoint and credentials from ``$AWS_ENDPOINT_URL``,
``$AWS_ACCESS_KEY_ID`` and ``$AWS_SECRET_ACCESS_KEY`` (HDF5 on S3 cannot be changed in place,
so the fill-later step is skipped there, and it is uploaded from a local temporary: below
32 MiB in one PUT that s3fs reads whole, above in 16 MiB parts, 8 at a time).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from hdmf.backends.hdf5 import H5DataIO
from hdmf.data_utils import DataChunkIterator, GenericDataChunkIterator
from pynwb import NWBFile, TimeSeries

import nwbstore.nwb

CHANNELS = 32
DTYPE = np.dtype("int16")


def fill_memmap(path: Path, rows: int, block: int = 65_536) -> np.memmap[Any, Any]:
    """Create the "large binary file": sample ``(r, c)`` holds ``(7 * r + c) % 30_000``.

    Written block by block, so creating it does not hold the array in memory either.
    """
    array: np.memmap[Any, Any] = np.memmap(path, dtype=DTYPE, mode="w+", shape=(rows, CHANNELS))
    for start in range(0, rows, block):
        stop = min(start + block, rows)
        r = np.arange(start, stop, dtype=np.int64)[:, None]
        array[start:stop] = (7 * r + np.arange(CHANNELS)[None, :]) % 30_000
    array.flush()
    return array


class MemmapIterator(GenericDataChunkIterator):
    """Serve a memory-mapped array buffer by buffer (hdmf asks for one selection at a time)."""

    def __init__(self, path: Path, shape: tuple[int, int], **kwargs: Any) -> None:
        self.path, self.full_shape = path, shape
        super().__init__(**kwargs)

    def _get_data(self, selection: tuple[slice, ...]) -> np.ndarray:
        array = np.memmap(self.path, dtype=DTYPE, mode="r", shape=self.full_shape)
        # read the buffer into memory, as a reader of any file format would; it is what
        # tracemalloc counts (pages of the memory map itself are not Python allocations)
        return np.array(array[selection])

    def _get_maxshape(self) -> tuple[int, int]:
        return self.full_shape

    def _get_dtype(self) -> np.dtype[Any]:
        return DTYPE


def iter_largearray(path: Path, shape: tuple[int, int]) -> Iterator[np.ndarray]:
    """The tutorial's generator: one row at a time, the file reopened for every row."""
    for i in range(shape[0]):
        array = np.memmap(path, dtype=DTYPE, mode="r", shape=shape)
        row = np.array(array[i])
        del array  # reopened per row so that no pages accumulate
        yield row


def recording_data(url: str, path: Path, rows: int, buffer_rows: int, kind: str) -> Any:
    """The recording as an iterator over the memory map: chunks and buffers of ``buffer_rows``."""
    shape = (rows, CHANNELS)
    chunk_shape = (min(buffer_rows, rows), CHANNELS)
    if kind == "generic":
        return MemmapIterator(
            path, shape, buffer_shape=chunk_shape, chunk_shape=chunk_shape, display_progress=False
        )
    # DataChunkIterator stacks buffer_size rows of the generator into one chunk of data. It
    # recommends no chunk shape, and hdmf would then make the whole series one HDF5 chunk:
    # say which chunks to write, as the tutorial's H5DataIO does
    iterator = DataChunkIterator(
        data=iter_largearray(path, shape), maxshape=shape, dtype=DTYPE, buffer_size=buffer_rows
    )
    if url.endswith(".zarr"):
        from hdmf_zarr import ZarrDataIO

        return ZarrDataIO(iterator, chunks=chunk_shape)
    return H5DataIO(iterator, chunks=chunk_shape)


def empty_growable(url: str) -> Any:
    """A float dataset of shape (0, 10) that can grow along its first axis, NaN where unset."""
    if url.endswith(".zarr"):
        from hdmf_zarr import ZarrDataIO

        # Zarr arrays can always be resized: no maxshape; start from an empty array
        return ZarrDataIO(np.empty((0, 10), "f8"), chunks=(1000, 10), fillvalue=np.nan)
    return H5DataIO(
        shape=(0, 10),  # initial shape; set the full shape if it is known
        dtype=np.dtype("f8"),
        maxshape=(None, 10),  # the time axis can grow
        chunks=(1000, 10),
        fillvalue=np.nan,
    )


def build_nwbfile(url: str, recording: Any) -> NWBFile:
    nwbfile = NWBFile(
        session_description="demonstrate iterative and user-defined writes",
        identifier="nwbstore-iterative-write",
        session_start_time=datetime(2017, 4, 3, 11, tzinfo=UTC),
    )
    nwbfile.add_acquisition(
        TimeSeries(name="recording", data=recording, unit="uV", starting_time=0.0, rate=30e3)
    )
    nwbfile.add_acquisition(
        TimeSeries(
            name="filled_later",
            data=empty_growable(url),
            unit="SIunit",
            starting_time=0.0,
            rate=10.0,
        )
    )
    return nwbfile


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    raise AssertionError("unreachable")


def write_iteratively(
    url: str, memmap: Path, rows: int, buffer_rows: int, kind: str, options: dict[str, Any]
) -> None:
    recording = recording_data(url, memmap, rows, buffer_rows, kind)
    nwbfile = build_nwbfile(url, recording)
    data_bytes = rows * CHANNELS * DTYPE.itemsize
    buffer_bytes = min(buffer_rows, rows) * CHANNELS * DTYPE.itemsize
    tracemalloc.start()
    try:
        report = nwbstore.nwb.write(nwbfile, url, storage_options=options, overwrite=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(report)
    print(
        f"{url}: {rows} x {CHANNELS} int16 ({data_bytes} bytes, {_size(data_bytes)}) written "
        f"from buffers of {buffer_bytes} bytes ({_size(buffer_bytes)}); "
        f"peak traced memory {peak} bytes ({_size(peak)}, {peak / buffer_bytes:.1f} buffers)"
    )


def fill_later(url: str, options: dict[str, Any]) -> None:
    """The tutorial's user-defined write: resize the empty dataset, write blocks, leave a gap."""
    with nwbstore.nwb.read(url, mode="a", storage_options=options) as nwbfile:
        data = nwbfile.acquisition["filled_later"].data
        print(f"{url}: filled_later allocated as {data.shape}")
        data.resize((8, 10))  # allocate space: the initial shape was (0, 10)
        data[0:3, :] = 1  # 1s in timesteps 0-2
        data[3:6, :] = 2  # 2s in timesteps 3-5; timesteps 6 and 7 stay the fill value
    with nwbstore.nwb.read(url, storage_options=options) as nwbfile:
        recording = nwbfile.acquisition["recording"].data
        filled = nwbfile.acquisition["filled_later"].data[:]
        last = recording.shape[0] - 1
        print(f"{url}: read back recording {recording.shape} {recording.dtype}, ", end="")
        print(f"sample ({last}, 3) = {recording[last, 3]}")
        print(f"{url}: filled_later {filled.shape}, first column {filled[:, 0].tolist()}")


def _options(url: str) -> dict[str, Any]:
    if "://" not in url:
        return {}
    options: dict[str, Any] = {}
    for key, var in (("key", "AWS_ACCESS_KEY_ID"), ("secret", "AWS_SECRET_ACCESS_KEY")):
        if os.environ.get(var):
            options[key] = os.environ[var]
    if os.environ.get("AWS_ENDPOINT_URL"):
        options["endpoint_url"] = os.environ["AWS_ENDPOINT_URL"]
    return options


def main(outdir: Path, urls: list[str], rows: int, buffer_rows: int, kind: str) -> None:
    urls = urls or [str(outdir / "iterative.nwb"), str(outdir / "iterative.nwb.zarr")]
    with tempfile.TemporaryDirectory(prefix="nwbstore-memmap-") as scratch:
        memmap = Path(scratch) / "large_array.dat"
        fill_memmap(memmap, rows)
        for url in urls:
            options = _options(url)
            write_iteratively(url, memmap, rows, buffer_rows, kind, options)
            if "://" in url and not url.endswith(".zarr"):
                print(f"{url}: HDF5 on object storage cannot be changed in place; not filled")
                continue
            fill_later(url, options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write a memory-mapped array iteratively with nwbstore.nwb.write (HDF5 and "
        "Zarr), printing the peak traced memory, then fill an empty dataset later in mode 'a'."
    )
    parser.add_argument(
        "outdir",
        nargs="?",
        type=Path,
        help="folder for the files, kept afterwards (default: a temporary folder)",
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows of 32 channels (100000)")
    parser.add_argument(
        "--buffer-rows", type=int, default=10_000, help="rows per buffer and chunk (10000)"
    )
    parser.add_argument("--iterator", choices=["generic", "datachunk"], default="generic")
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        help="destination, repeatable (default: iterative.nwb, iterative.nwb.zarr in the folder)",
    )
    return parser


if __name__ == "__main__":
    args = _parser().parse_args()
    if args.rows < 1 or args.buffer_rows < 1:
        _parser().error("--rows and --buffer-rows must be 1 or more")
    if args.outdir is None:
        with tempfile.TemporaryDirectory(prefix="nwbstore-iterative-") as temp:
            main(Path(temp), args.url, args.rows, args.buffer_rows, args.iterator)
    else:
        if args.outdir.exists() and not args.outdir.is_dir():
            _parser().error(f"{args.outdir} exists and is not a folder")
        args.outdir.mkdir(parents=True, exist_ok=True)
        main(args.outdir, args.url, args.rows, args.buffer_rows, args.iterator)
        print(f"files kept in {args.outdir}")
