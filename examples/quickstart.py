"""Quickstart: the same code writes and reads HDF5 and Zarr.

Run: python examples/quickstart.py [OUTPUT_DIR]
(without OUTPUT_DIR the files go to a temporary folder that is removed at the end).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import nwbstore


def main(outdir: Path) -> None:
    for name in ("quickstart.h5", "quickstart.zarr"):
        url = outdir / name
        with nwbstore.open(url, "w") as store:
            raw = store.root.create_group("acquisition/raw")
            ds = raw.create_dataset("data", data=np.arange(1000, dtype="int16").reshape(100, 10))
            ds.attrs["unit"] = "volts"
            raw.create_dataset("timestamps", data=np.linspace(0, 1, 100))
            store.root.create_soft_link("acquisition/alias", "/acquisition/raw/timestamps")
            store.root.attrs["description"] = "nwbstore quickstart"
            store.root.attrs["main_series"] = nwbstore.Reference("/acquisition/raw/data")

        with nwbstore.open(url) as store:
            data = store["acquisition/raw/data"]
            print(f"{url.name}: backend {store.backend}, data {data.shape} {data.dtype}")
            print("  first row:", data[0].tolist())
            print("  link:", store.root.get_link("acquisition/alias"))
            print("  reference:", store.root.attrs["main_series"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write the same small NWB-like layout to HDF5 and Zarr with nwbstore and "
        "read it back."
    )
    parser.add_argument(
        "outdir",
        nargs="?",
        type=Path,
        help="folder for quickstart.h5 and quickstart.zarr, kept afterwards "
        "(default: a temporary folder, removed at the end)",
    )
    return parser


if __name__ == "__main__":
    args = _parser().parse_args()
    if args.outdir is None:
        with tempfile.TemporaryDirectory(prefix="nwbstore-quickstart-") as temp:
            main(Path(temp))
    else:
        if args.outdir.exists() and not args.outdir.is_dir():
            _parser().error(f"{args.outdir} exists and is not a folder")
        args.outdir.mkdir(parents=True, exist_ok=True)
        main(args.outdir)
        print(f"files kept in {args.outdir}")
