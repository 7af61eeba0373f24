"""Edit an NWB backend configuration, then write the file (NeuroConv's workflow, with nwbstore).

Run: python examples/nwb_configure.py [OUTPUT_DIR] [--backend hdf5|zarr]
(without OUTPUT_DIR the file goes to a temporary folder that is removed at the end).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pynwb import NWBHDF5IO, NWBFile, TimeSeries

from nwbstore.nwb import configure_backend, get_default_backend_configuration


def build_nwbfile() -> NWBFile:
    nwbfile = NWBFile(
        session_description="A session of my experiment.",
        identifier="nwbstore-configure-example",
        session_start_time=datetime(2020, 1, 1, 12, 30, tzinfo=UTC),
    )
    rng = np.random.default_rng(0)
    nwbfile.add_acquisition(
        TimeSeries(
            name="MyTimeSeries",
            description="A time series from my experiment.",
            unit="cm/s",
            data=rng.normal(size=(100_000, 8)).astype("float32"),
            rate=1000.0,
        )
    )
    return nwbfile


def main(outdir: Path, backend: str) -> Path:
    nwbfile = build_nwbfile()
    config = get_default_backend_configuration(nwbfile, backend=backend)  # type: ignore[arg-type]
    print(config)

    data = config.dataset_configurations["acquisition/MyTimeSeries/data"]
    # a chunk of 10,000 samples, written from a buffer of 20,000 (memory held while writing)
    data.update(chunk_shape=(10_000, 8), buffer_shape=(20_000, 8))
    data.compression_method = "zstd"
    data.compression_options = {"level": 5}
    print("edited:")
    print(data)

    configure_backend(nwbfile, config)
    warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
    if backend == "hdf5":
        path = outdir / "configured.nwb"
        with NWBHDF5IO(path, mode="w") as io:
            io.write(nwbfile)
        import h5py

        import nwbstore

        with h5py.File(path) as f:
            written = f["acquisition/MyTimeSeries/data"]
            codecs = nwbstore.DatasetSettings.from_hdf5(written).describe_compression()
            print(f"written: chunks={written.chunks} compression={codecs}")
    else:
        from hdmf_zarr import NWBZarrIO

        path = outdir / "configured.nwb.zarr"
        with NWBZarrIO(str(path), mode="w") as io:
            io.write(nwbfile)
        import zarr

        written = zarr.open_array(path / "acquisition/MyTimeSeries/data", mode="r")
        print(f"written: chunks={written.chunks} compressors={written.compressors}")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Print the default backend configuration of an NWBFile, edit one dataset "
        "and write the file with pynwb / hdmf-zarr."
    )
    parser.add_argument(
        "outdir",
        nargs="?",
        type=Path,
        help="folder for the file, kept afterwards (default: a temporary folder)",
    )
    parser.add_argument("--backend", choices=["hdf5", "zarr"], default="hdf5")
    return parser


if __name__ == "__main__":
    args = _parser().parse_args()
    if args.outdir is None:
        with tempfile.TemporaryDirectory(prefix="nwbstore-configure-") as temp:
            main(Path(temp), args.backend)
    else:
        if args.outdir.exists() and not args.outdir.is_dir():
            _parser().error(f"{args.outdir} exists and is not a folder")
        args.outdir.mkdir(parents=True, exist_ok=True)
        print(f"file kept at {main(args.outdir, args.backend)}")
