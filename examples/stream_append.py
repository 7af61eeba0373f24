"""Stream blocks of samples into a Zarr dataset with ``Dataset.append``.

Run: python examples/stream_append.py [OUTPUT_DIR]
(without OUTPUT_DIR the store goes to a temporary folder that is removed at the end).

Blocks of any size are appended along the first axis. nwbstore keeps at most one partial
chunk row in memory, writes each chunk row whole when it fills up, and writes the last
partial row and the new shape at ``flush()`` or ``close()``: that is when another reader
sees them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import zarr

import nwbstore

CHANNELS = 16
CHUNK_ROWS = 1000


def main(outdir: Path) -> None:
    url = outdir / "stream.zarr"
    rng = np.random.default_rng(0)
    settings = nwbstore.DatasetSettings(
        chunks=(CHUNK_ROWS, CHANNELS), maxshape=(None, CHANNELS), compression="zstd"
    )
    with nwbstore.open(url, "w") as store:
        data = store.root.create_dataset(
            "acquisition/ephys/data", shape=(0, CHANNELS), dtype="int16", settings=settings
        )
        for rows in (250, 1000, 2500, 7, 3333):  # smaller, equal, larger, not aligned
            data.append(rng.integers(-500, 500, (rows, CHANNELS), dtype="int16"))
        print(f"appended {data.shape[0]} rows of {CHANNELS} channels")

        store.flush()  # everything so far is now visible to other readers
        seen = zarr.open_array(url / "acquisition/ephys/data", mode="r")
        print(f"after flush another reader sees {seen.shape[0]} rows")

        data.append(np.zeros((1910, CHANNELS), dtype="int16"))  # the stream goes on
        print(f"logical shape before close: {data.shape}")

    stored = zarr.open_array(url / "acquisition/ephys/data", mode="r")
    print(f"after close: {stored.shape} {stored.dtype}, chunks {stored.chunks}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Append blocks of generated ephys samples to a local Zarr store."
    )
    parser.add_argument(
        "outdir",
        nargs="?",
        type=Path,
        help="folder for stream.zarr, kept afterwards (default: a temporary folder, removed "
        "at the end)",
    )
    return parser


if __name__ == "__main__":
    args = _parser().parse_args()
    if args.outdir is None:
        with tempfile.TemporaryDirectory(prefix="nwbstore-stream-") as temp:
            main(Path(temp))
    else:
        if args.outdir.exists() and not args.outdir.is_dir():
            _parser().error(f"{args.outdir} exists and is not a folder")
        args.outdir.mkdir(parents=True, exist_ok=True)
        main(args.outdir)
        print(f"files kept in {args.outdir}")
