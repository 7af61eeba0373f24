"""Realistic NWB files for tests, examples and benchmarks, built with pynwb.

:func:`build_rich_nwb` writes an HDF5 NWB file with most of what real sessions hold:
extracellular ephys with an electrodes table, units with ragged spike times, optical
physiology (plane segmentation and ROI responses), intracellular ephys tables, behavior,
trials with string columns, data compressed with gzip+shuffle, Zstd, Blosc, LZF and
Fletcher32, a contiguous dataset, a soft link between timestamps and an external link into a
second file.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["build_external_nwb", "build_rich_nwb"]


def _nwbfile(identifier: str) -> Any:
    from pynwb import NWBFile

    return NWBFile(
        session_description=f"nwbstore sample {identifier}",
        identifier=identifier,
        session_start_time=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        experimenter=["Doe, Jane"],
        lab="nwbstore",
        institution="nwbstore",
    )


def build_external_nwb(path: str | Path) -> Path:
    """Write a small NWB file whose ``acquisition/external_ts`` other files link to."""
    from pynwb import NWBHDF5IO, TimeSeries

    nwbfile = _nwbfile("nwbstore-external")
    nwbfile.add_acquisition(
        TimeSeries(name="external_ts", data=np.arange(50, dtype="f4"), unit="V", rate=10.0)
    )
    out = Path(path)
    with NWBHDF5IO(str(out), "w") as io:
        io.write(nwbfile)
    return out


def _add_ecephys(nwbfile: Any, rng: np.random.Generator, n_samples: int, codec: Any) -> None:
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb.ecephys import ElectricalSeries

    device = nwbfile.create_device(name="probe", description="32-channel probe")
    group = nwbfile.create_electrode_group(
        name="shank0", description="shank 0", location="CA1", device=device
    )
    nwbfile.add_electrode_column(name="label", description="channel label")
    for i in range(32):
        nwbfile.add_electrode(
            group=group, location="CA1", x=float(i), y=0.0, z=0.0, label=f"ch{i:02d}"
        )
    region = nwbfile.create_electrode_table_region(list(range(32)), "all electrodes")
    data = rng.integers(-500, 500, size=(n_samples, 32), dtype=np.int16)
    nwbfile.add_acquisition(
        ElectricalSeries(
            name="ElectricalSeries",
            data=H5DataIO(data, chunks=(min(n_samples, 4096), 32), **codec),
            electrodes=region,
            rate=30_000.0,
        )
    )
    for i in range(4):
        nwbfile.add_unit(
            spike_times=np.sort(rng.random(3 + 4 * i) * 10.0),
            electrodes=[i],
            obs_intervals=[[0.0, 10.0]],
        )


def _add_ophys(nwbfile: Any, rng: np.random.Generator, codec: Any) -> None:
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb.ophys import (
        Fluorescence,
        ImageSegmentation,
        OpticalChannel,
        RoiResponseSeries,
        TwoPhotonSeries,
    )

    device = nwbfile.create_device(name="microscope", description="2p")
    channel = OpticalChannel(name="green", description="GCaMP", emission_lambda=520.0)
    plane = nwbfile.create_imaging_plane(
        name="plane0",
        optical_channel=channel,
        description="L2/3",
        device=device,
        excitation_lambda=920.0,
        imaging_rate=30.0,
        indicator="GCaMP6f",
        location="V1",
    )
    frames = rng.integers(0, 4000, size=(40, 32, 32), dtype=np.uint16)
    movie = TwoPhotonSeries(
        name="TwoPhotonSeries",
        data=H5DataIO(frames, chunks=(10, 32, 32), compression="lzf"),
        imaging_plane=plane,
        rate=30.0,
        unit="a.u.",
    )
    nwbfile.add_acquisition(movie)
    module = nwbfile.create_processing_module(name="ophys", description="processed 2p")
    seg = ImageSegmentation()
    module.add(seg)
    ps = seg.create_plane_segmentation(
        name="PlaneSegmentation", description="ROIs", imaging_plane=plane, reference_images=movie
    )
    for i in range(5):
        mask = np.zeros((32, 32), dtype="f4")
        mask[i * 5 : i * 5 + 4, i * 5 : i * 5 + 4] = 1.0
        ps.add_roi(image_mask=mask)
    rois = ps.create_roi_table_region(region=list(range(5)), description="all ROIs")
    fl = Fluorescence(name="Fluorescence")
    module.add(fl)
    fl.add_roi_response_series(
        RoiResponseSeries(
            name="RoiResponseSeries",
            data=H5DataIO(rng.random((40, 5)).astype("f4"), chunks=(20, 5), **codec),
            rois=rois,
            unit="a.u.",
            rate=30.0,
        )
    )


def _add_icephys(nwbfile: Any) -> None:
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    device = nwbfile.create_device(name="amplifier", description="patch amp")
    electrode = nwbfile.create_icephys_electrode(
        name="icephys_electrode", description="patch pipette", device=device
    )
    for i in range(2):
        stim = CurrentClampStimulusSeries(
            name=f"stimulus_{i}",
            data=np.ones(20, dtype="f4") * i,
            electrode=electrode,
            rate=1000.0,
            gain=1.0,
            starting_time=float(i),
        )
        resp = CurrentClampSeries(
            name=f"response_{i}",
            data=np.linspace(0, 1, 20, dtype="f4"),
            electrode=electrode,
            rate=1000.0,
            gain=1.0,
            starting_time=float(i),
        )
        nwbfile.add_intracellular_recording(electrode=electrode, stimulus=stim, response=resp)
    nwbfile.add_icephys_simultaneous_recording(recordings=[0, 1])


def _add_behavior(nwbfile: Any, rng: np.random.Generator, codec: Any) -> None:
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import TimeSeries
    from pynwb.behavior import Position, SpatialSeries

    stamps = np.arange(200, dtype="f8") / 50.0
    module = nwbfile.create_processing_module(name="behavior", description="behavior")
    position = Position(name="Position")
    module.add(position)
    position.add_spatial_series(
        SpatialSeries(
            name="position",
            data=H5DataIO(rng.random((200, 2)), chunks=(50, 2), fletcher32=True),
            reference_frame="arena corner",
            timestamps=H5DataIO(stamps, chunks=(100,), **codec),
        )
    )
    speed = TimeSeries(name="speed", data=rng.random(200), unit="m/s", timestamps=stamps)
    module.add(speed)
    # timestamps=<TimeSeries> makes pynwb write a soft link to speed's timestamps
    module.add(TimeSeries(name="lick", data=rng.random(200), unit="a.u.", timestamps=speed))


def build_rich_nwb(
    path: str | Path,
    *,
    external: str | Path | None = None,
    n_samples: int = 20_000,
    seed: int = 0,
) -> Path:
    """Write the rich sample NWB file (HDF5) to ``path`` and return the path.

    Parameters
    ----------
    path
        Output file.
    external
        An NWB file made by :func:`build_external_nwb`; its ``external_ts`` data is linked
        (an HDF5 external link, relative to ``path``'s directory). ``None``: no external link.
    n_samples
        Samples of the 32-channel ElectricalSeries (2 bytes each per channel).
    seed
        Random seed, so files are reproducible.
    """
    with warnings.catch_warnings():
        # hdmf warns that lzf/plugin filters are less portable than gzip: that is the point
        warnings.filterwarnings("ignore", message=".*compression may not be available")
        return _build_rich_nwb(Path(path), external, n_samples, seed)


def _build_rich_nwb(out: Path, external: str | Path | None, n_samples: int, seed: int) -> Path:
    import hdf5plugin
    from pynwb import NWBHDF5IO, TimeSeries

    rng = np.random.default_rng(seed)
    nwbfile = _nwbfile("nwbstore-rich")
    gzip_shuffle = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    zstd = {"allow_plugin_filters": True, **hdf5plugin.Zstd(clevel=3)}
    blosc = {
        "allow_plugin_filters": True,
        **hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
    }
    _add_ecephys(nwbfile, rng, n_samples, gzip_shuffle)
    _add_ophys(nwbfile, rng, zstd)
    _add_icephys(nwbfile)
    _add_behavior(nwbfile, rng, blosc)
    nwbfile.add_trial_column(name="outcome", description="trial outcome")
    for i in range(6):
        nwbfile.add_trial(
            start_time=i * 2.0, stop_time=i * 2.0 + 1.5, outcome=["hit", "miss"][i % 2]
        )
    # a contiguous (unchunked) dataset
    nwbfile.add_acquisition(
        TimeSeries(name="contiguous", data=rng.random(500), unit="V", rate=100.0)
    )
    if external is None:
        with NWBHDF5IO(str(out), "w") as io:
            io.write(nwbfile)
        return out
    with NWBHDF5IO(str(external), "r") as ext_io:
        ext = ext_io.read()
        nwbfile.add_acquisition(
            TimeSeries(
                name="linked_ts",
                data=ext.acquisition["external_ts"].data,  # an h5py dataset: written as a link
                unit="V",
                rate=10.0,
            )
        )
        with NWBHDF5IO(str(out), "w") as io:
            io.write(nwbfile, link_data=True)
    return out
