"""Open an NWB file lazily with xarray: one series, a table, the whole tree.

Run: python examples/xarray_open.py [OUTPUT_DIR]

1. writes nwbstore's rich sample NWB file (HDF5, with pynwb) and a Zarr copy of it;
2. opens ``acquisition/ElectricalSeries`` with ``xr.open_dataset(..., engine="nwbstore")``:
   dims ``(time, channel)``, a ``time`` coordinate computed from ``starting_time`` and
   ``rate`` (nothing read), the electrodes table's columns as coordinates on ``channel``;
3. selects 10 ms of two channels by label: only the chunks holding them are read;
4. opens the ``units`` table: ragged ``spike_times`` as a CF contiguous ragged array;
5. opens the Zarr copy as a ``DataTree``, one node per NWB group.

The same calls work on ``s3://`` and ``https://`` URLs (pass ``storage_options=``).
Without OUTPUT_DIR the files go to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

import nwbstore
from nwbstore.errors import CodecTranscodedWarning
from nwbstore.testing.nwb_samples import build_rich_nwb


def main(folder: Path) -> None:
    h5 = build_rich_nwb(folder / "session.nwb", n_samples=30_000)
    zarr_copy = folder / "session.nwb.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodecTranscodedWarning)  # the sample's LZF -> Zstd
        nwbstore.convert(h5, zarr_copy, progress=False, overwrite=True)

    with xr.open_dataset(h5, engine="nwbstore", group="acquisition/ElectricalSeries") as ds:
        data = ds["data"]
        print(f"ElectricalSeries: dims {data.dims}, shape {data.shape}, {data.dtype}")
        print(f"time: {ds.sizes['time']} samples from {float(ds.time[0])} s, computed")
        print(f"channel coordinates: {sorted(str(c) for c in ds.coords if c != 'time')}")
        print(f"stored chunks: {data.encoding['preferred_chunks']}")
        window = data.sel(time=slice(0.5, 0.51), channel=[3, 7])
        print(f"10 ms of channels 3 and 7: shape {window.shape}, mean {float(window.mean()):.3f}")
        print(f"channel 3 is at x={float(ds.x.sel(channel=3))}, in {ds.location.values[3]}")

    with xr.open_dataset(h5, engine="nwbstore", group="units") as units:
        counts = units["spike_times_count"].values
        ends = np.cumsum(counts)
        first = units["spike_times"].values[: ends[0]]
        print(f"units: {units.sizes['id']} units, spikes per unit {counts.tolist()}")
        print(f"unit 0 spike times: {np.round(first, 3).tolist()}")

    with xr.open_datatree(zarr_copy, engine="nwbstore") as tree:
        nodes = list(tree.subtree)
        print(f"Zarr tree: {len(nodes)} groups, e.g. {tree['processing/behavior/speed'].path}")
        speed = tree["processing/behavior/speed"].dataset
        print(f"speed: dims {speed['data'].dims}, time from timestamps: {speed.sizes['time']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", nargs="?", help="keep the files here")
    args = parser.parse_args()
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        main(out)
        print(f"files kept in {out}")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
