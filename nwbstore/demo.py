"""The embedded example behind ``nwbstore demo`` / ``make demo``.

It builds a small but realistic NWB file with pynwb (extracellular recording with an
electrodes table, a TimeSeries whose timestamps are a link to another's, trials with
strings, units with ragged spike times), opens it through nwbstore and prints its tree
with each dataset's settings, converts it to Zarr, verifies the copy and prints the report.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np

__all__ = ["build_example_nwb", "run_demo"]


def build_example_nwb(path: str | Path, *, seed: int = 0) -> Path:
    """Write the demo NWB file to ``path`` (HDF5) and return the path.

    Raises
    ------
    MissingDependencyError
        If pynwb is not installed (``pip install 'nwbstore[nwb]'``).
    """
    from nwbstore.errors import MissingDependencyError

    try:
        from hdmf.backends.hdf5 import H5DataIO
        from pynwb import NWBHDF5IO, NWBFile, TimeSeries
        from pynwb.ecephys import ElectricalSeries
    except ImportError as err:
        raise MissingDependencyError(
            f"the demo needs pynwb ({err.name} is missing): pip install 'nwbstore[nwb]'"
        ) from err

    rng = np.random.default_rng(seed)
    nwbfile = NWBFile(
        session_description="nwbstore demo session",
        identifier="nwbstore-demo",
        session_start_time=datetime(2026, 1, 1, tzinfo=UTC),
        experimenter=["Doe, Jane"],
        lab="nwbstore",
    )
    device = nwbfile.create_device(name="probe", description="16-channel silicon probe")
    group = nwbfile.create_electrode_group(
        name="shank0", description="shank 0", location="CA1", device=device
    )
    for i in range(16):
        nwbfile.add_electrode(group=group, location="CA1", x=float(i), y=0.0, z=0.0)
    region = nwbfile.create_electrode_table_region(list(range(16)), "all electrodes")
    voltage = rng.integers(-2000, 2000, size=(30_000, 16), dtype=np.int16)
    nwbfile.add_acquisition(
        ElectricalSeries(
            name="ElectricalSeries",
            data=H5DataIO(voltage, chunks=(3000, 16), compression="gzip", shuffle=True),
            electrodes=region,
            rate=30_000.0,
            conversion=0.195e-6,
        )
    )
    stamps = np.arange(1000, dtype=np.float64) / 100.0
    speed = TimeSeries(
        name="speed",
        data=H5DataIO(rng.random(1000), chunks=(250,), compression="gzip"),
        unit="m/s",
        timestamps=stamps,
    )
    nwbfile.add_acquisition(speed)
    nwbfile.add_acquisition(
        TimeSeries(name="lick", data=rng.random(1000), unit="a.u.", timestamps=speed)
    )
    nwbfile.add_trial_column(name="outcome", description="trial outcome")
    for i in range(5):
        nwbfile.add_trial(
            start_time=i * 2.0, stop_time=i * 2.0 + 1.5, outcome=["hit", "miss"][i % 2]
        )
    for i in range(3):
        nwbfile.add_unit(spike_times=np.sort(rng.random(5 + i) * 10.0))
    out = Path(path)
    with NWBHDF5IO(str(out), "w") as io:
        io.write(nwbfile)
    return out


def run_demo(workdir: str | Path | None = None, *, out: TextIO | None = None) -> Path | None:
    """Build the example file, print its tree, convert it to Zarr and verify.

    Parameters
    ----------
    workdir
        Folder for the example files, kept afterwards; ``None`` uses a temporary folder that
        is removed at the end.
    out
        Where to print (default: stdout).

    Returns
    -------
    Path or None
        The example NWB file in ``workdir``, or ``None`` when it was temporary.
    """
    stream = out or sys.stdout
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="nwbstore-demo-") as temp:
            _demo_in(Path(temp), stream)
        print(f"\nremoved the example files ({temp}); pass --workdir DIR to keep them", file=stream)
        return None
    base = Path(workdir)
    base.mkdir(parents=True, exist_ok=True)
    src = _demo_in(base, stream)
    print(f"\nexample files kept in {base}: {src.name}, {src.name}.zarr", file=stream)
    return src


def _demo_in(base: Path, stream: TextIO) -> Path:
    import nwbstore
    from nwbstore.tree import format_tree

    src = build_example_nwb(base / "demo.nwb")
    print(f"built {src} ({src.stat().st_size / 1e6:.1f} MB) with pynwb\n", file=stream)
    with nwbstore.open(src) as store:
        print(format_tree(store.root), file=stream)
    dst = base / "demo.nwb.zarr"
    print(f"\nconverting {src.name} -> {dst.name} (Zarr format 3)", file=stream)
    report = nwbstore.convert(src, dst, overwrite=True, progress=False)
    print(report, file=stream)
    result = nwbstore.verify(src, dst)
    print(result, file=stream)
    if not result.ok:
        raise SystemExit(1)
    return src
