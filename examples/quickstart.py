"""Quickstart: the same code writes and reads HDF5 and Zarr.

Run: python examples/quickstart.py [output-dir]
"""

from __future__ import annotations

import sys
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


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    main(target)
