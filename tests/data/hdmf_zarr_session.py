"""The small NWB session the hdmf-zarr source tests write with pynwb's and hdmf-zarr's writers.

Plain pynwb (no nwbstore) so that ``make_hdmf_zarr_013_v2.py`` can run it in an environment
with hdmf-zarr 0.13 and zarr 2. ``wrap(array, chunks)`` returns the backend's DataIO
(``H5DataIO`` or ``ZarrDataIO``) for the compressed datasets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

N_CHANNELS = 4
N_SAMPLES = 30


def ts_values() -> np.ndarray:
    """Values of ``acquisition/ts`` (compressed, chunked)."""
    return (np.arange(50 * 2, dtype="f4") * 0.5).reshape(50, 2)


def ecephys_values() -> np.ndarray:
    """Values of ``acquisition/ElectricalSeries``."""
    return (np.arange(N_SAMPLES * N_CHANNELS, dtype="i2") - 40).reshape(N_SAMPLES, N_CHANNELS)


SPIKE_TIMES = [[0.1, 0.25, 0.7], [0.3], [1.5, 1.75]]


def build_session(wrap: Callable[[np.ndarray, tuple[int, ...]], Any]) -> Any:
    """An NWBFile with compressed series, an external-file ImageSeries, an empty series,
    a compressed scalar, trials, units with ragged spike times and electrodes."""
    from hdmf.common import DynamicTableRegion  # noqa: F401 - imported for its side effects
    from pynwb import NWBFile, TimeSeries
    from pynwb.core import ScratchData
    from pynwb.ecephys import ElectricalSeries
    from pynwb.image import ImageSeries

    nwbfile = NWBFile(
        session_description="hdmf-zarr source fixture",
        identifier="nwbstore-hdmf-zarr-fixture",
        session_start_time=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    )
    nwbfile.add_acquisition(
        TimeSeries(name="ts", data=wrap(ts_values(), (8, 2)), unit="m", rate=10.0)
    )
    nwbfile.add_acquisition(
        ImageSeries(
            name="video",
            external_file=["video_a.avi", "video_b.avi"],
            format="external",
            starting_frame=[0, 5],
            timestamps=np.arange(10, dtype="f8") / 30.0,
            unit="n/a",
        )
    )
    nwbfile.add_acquisition(
        TimeSeries(name="empty", data=np.zeros((0, 3), dtype="f8"), unit="V", rate=1.0)
    )
    nwbfile.add_scratch(ScratchData(name="gain", data=np.float64(2.5), description="scalar"))

    device = nwbfile.create_device(name="probe", description="4-channel probe")
    group = nwbfile.create_electrode_group(
        name="shank0", description="shank 0", location="CA1", device=device
    )
    for i in range(N_CHANNELS):
        nwbfile.add_electrode(group=group, location=f"CA{1 + i % 3}", x=float(i), y=0.0, z=0.0)
    region = nwbfile.create_electrode_table_region(list(range(N_CHANNELS)), "all channels")
    nwbfile.add_acquisition(
        ElectricalSeries(
            name="ElectricalSeries",
            data=wrap(ecephys_values(), (10, N_CHANNELS)),
            electrodes=region,
            rate=1000.0,
        )
    )

    nwbfile.add_trial_column(name="label", description="trial label")
    for i, label in enumerate(["go", "no-go", "go"]):
        nwbfile.add_trial(start_time=float(i), stop_time=i + 0.5, label=label)

    for i, times in enumerate(SPIKE_TIMES):
        nwbfile.add_unit(spike_times=times, electrodes=[i, (i + 1) % N_CHANNELS])
    return nwbfile
