"""NWB-aware truncation: tables cut by rows, indexes and regions consistent, valid NWB."""

from __future__ import annotations

import io
import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore.cli import main
from nwbstore.convert.truncation import plan_truncation
from nwbstore.demo import build_example_nwb
from nwbstore.errors import SettingsError
from nwbstore.testing.nwb_samples import build_external_nwb, build_rich_nwb

#: Which trial each unit's ``trial`` region column points at (row 0 points at trial 9).
TRIAL_OF_UNIT = [9, 2, 7, 0, 1, 3]


def _fixture_nwbfile() -> Any:
    """16 electrodes, a 16-channel series, ragged and doubly ragged units, regions, trials."""
    from pynwb import NWBFile, TimeSeries
    from pynwb.ecephys import ElectricalSeries

    rng = np.random.default_rng(1)
    nwbfile = NWBFile(
        session_description="truncate fixture",
        identifier="truncate-fixture",
        session_start_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    device = nwbfile.create_device(name="probe")
    group = nwbfile.create_electrode_group(
        name="shank0", description="shank", location="CA1", device=device
    )
    for i in range(16):
        nwbfile.add_electrode(group=group, location="CA1", x=float(i), y=0.0, z=0.0)
    region = nwbfile.create_electrode_table_region(list(range(16)), "all electrodes")
    voltage = rng.integers(-100, 100, (200, 16), dtype=np.int16)
    nwbfile.add_acquisition(
        ElectricalSeries(name="ElectricalSeries", data=voltage, electrodes=region, rate=1e3)
    )
    nwbfile.add_acquisition(
        TimeSeries(name="stamped", data=rng.random(50), unit="m", timestamps=np.arange(50) / 10)
    )
    nwbfile.add_trial_column(name="outcome", description="trial outcome")
    for i in range(12):
        nwbfile.add_trial(start_time=float(i), stop_time=i + 0.5, outcome=["miss", "hit"][i % 2])
    nwbfile.add_unit_column(name="trial", description="a trial", table=nwbfile.trials)
    nwbfile.add_unit_column(name="nested", description="doubly ragged", index=2)
    for u in range(6):
        nwbfile.add_unit(
            spike_times=np.sort(rng.random(2 + 3 * u)),
            electrodes=[u, 15 - u],
            trial=TRIAL_OF_UNIT[u],
            nested=[[float(u)] * (1 + k) for k in range(u % 3 + 1)],
        )
    return nwbfile


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from hdmf_zarr import NWBZarrIO
    from pynwb import NWBHDF5IO

    folder = tmp_path_factory.mktemp("truncate")
    out = {"hdf5": folder / "fixture.nwb", "zarr": folder / "fixture.nwb.zarr"}
    with NWBHDF5IO(str(out["hdf5"]), "w") as io:
        io.write(_fixture_nwbfile())
    with NWBZarrIO(str(out["zarr"]), "w") as io:
        io.write(_fixture_nwbfile())
    out["demo"] = build_example_nwb(folder / "demo.nwb")
    build_external_nwb(folder / "external.nwb")
    out["rich"] = build_rich_nwb(folder / "rich.nwb", external=folder / "external.nwb")
    # the rich sample as a Zarr store written by nwbstore (a Zarr source that converts today)
    out["rich-zarr"] = folder / "rich.nwb.zarr"
    nwbstore.convert(out["rich"], out["rich-zarr"], fallback="zstd", progress=False)
    return out


# --- reading results directly with h5py / zarr ---------------------------------------------


class _Raw:
    """A truncated result read with h5py or zarr-python, never through nwbstore."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_hdf5 = path.suffix != ".zarr"
        self.root: Any = h5py.File(path, "r") if self.is_hdf5 else zarr.open_group(path, mode="r")

    def close(self) -> None:
        if self.is_hdf5:
            self.root.close()

    def nodes(self) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        if self.is_hdf5:
            self.root.visititems(lambda name, node: found.append(("/" + name, node)))
        else:
            found = [("/" + name, node) for name, node in self.root.members(max_depth=None)]
        return found

    def is_group(self, node: Any) -> bool:
        return isinstance(node, (h5py.Group, zarr.Group))

    def has(self, path: str) -> bool:
        return path.lstrip("/") in self.root

    def __getitem__(self, path: str) -> Any:
        return self.root[path.lstrip("/")]

    def target(self, value: Any) -> str:
        """Path of an object-reference attribute (HDF5 reference or hdmf-zarr encoding)."""
        if isinstance(value, h5py.Reference):
            return str(self.root[value].name)
        ref = value.get("_REFERENCE") or value.get("value")
        return str(ref["path"])

    def rows(self, table: str) -> int:
        return int(self[f"{table}/id"].shape[0])


def _problems(raw: _Raw) -> list[str]:
    """Every inconsistency between tables, indexes, regions and series in ``raw``."""
    problems = []
    for path, node in raw.nodes():
        attrs = dict(node.attrs)
        if raw.is_group(node) and "colnames" in attrs:
            rows = raw.rows(path)
            for column in [str(c) for c in np.atleast_1d(attrs["colnames"])]:
                chain = [f"{path}/{column}"]
                while raw.has(chain[-1] + "_index"):
                    chain.append(chain[-1] + "_index")
                if raw[chain[-1]].shape[0] != rows:
                    problems.append(f"{chain[-1]}: {raw[chain[-1]].shape[0]} rows, table {rows}")
                for index, data in zip(chain[:0:-1], chain[-2::-1], strict=True):
                    values = raw[index][:]
                    end = int(values[-1]) if len(values) else 0
                    if end != raw[data].shape[0]:
                        problems.append(f"{index} ends at {end}, {data} has {raw[data].shape[0]}")
        if not raw.is_group(node) and "table" in attrs and node.shape and node.shape[0]:
            target = raw.target(attrs["table"])
            top = int(np.max(node[:]))
            if top >= raw.rows(target):
                problems.append(f"{path} points at row {top}, {target} has {raw.rows(target)}")
        if raw.is_group(node) and attrs.get("neurodata_type") == "ElectricalSeries":
            channels = node["data"].shape[1]
            if node["electrodes"].shape[0] != channels:
                problems.append(f"{path}: electrodes {node['electrodes'].shape}, {channels} ch")
        if raw.is_group(node) and "data" in node and "timestamps" in node:
            stamps = node["timestamps"]
            data_length = node["data"].shape[0] if node["data"].shape else 0
            # external ImageSeries hold no frames: their timestamps count the file's frames
            if not raw.is_group(stamps) and data_length and stamps.shape[0] != data_length:
                problems.append(f"{path}: {stamps.shape[0]} timestamps, data {node['data'].shape}")
    return problems


def _validate_and_read(path: Path) -> Any:
    """Validate with pynwb and return a summary read through NWBHDF5IO / NWBZarrIO."""
    from pynwb import NWBHDF5IO, validate

    if path.suffix == ".zarr":
        from hdmf_zarr import NWBZarrIO

        io: Any = NWBZarrIO(str(path), "r")
    else:
        io = NWBHDF5IO(str(path), "r")
    with io:
        assert validate(io=io) == []
        nwbfile = io.read()
        units = nwbfile.units
        return {
            "ephys_shape": tuple(nwbfile.acquisition["ElectricalSeries"].data.shape),
            "series_electrodes": list(nwbfile.acquisition["ElectricalSeries"].electrodes.data[:]),
            "electrodes": len(nwbfile.electrodes),
            "units": len(units) if units is not None else 0,
            "spikes": [list(units["spike_times"][i]) for i in range(len(units))]
            if units is not None
            else [],
            "units_df": units.to_dataframe() if units is not None else None,
        }


def _truncate_cli(src: Path, dst: Path, n: int, *extra: str) -> None:
    assert main(["truncate", str(src), str(dst), "-n", str(n), "-q", *extra]) == 0


# --- the reproduction: the demo file ---------------------------------------------


@pytest.mark.parametrize("suffix", [".nwb", ".nwb.zarr"])
def test_demo_truncates_consistently(samples: dict[str, Path], tmp_path: Path, suffix) -> None:
    out = tmp_path / f"s10{suffix}"
    _truncate_cli(samples["demo"], out, 10)  # HDF5 failed: chunk (16,) > shape (10,)
    raw = _Raw(out)
    try:
        assert _problems(raw) == []
        assert raw["acquisition/ElectricalSeries/data"].shape == (10, 16)
        assert raw["acquisition/ElectricalSeries/electrodes"].shape == (16,)  # was 10
        assert raw.rows("/general/extracellular_ephys/electrodes") == 16
        assert raw["acquisition/speed/timestamps"].shape == (10,)
        # spike_times cut where its index says (Zarr kept 3 index entries but cut data to 10)
        index = raw["units/spike_times_index"][:]
        assert raw["units/spike_times"].shape == (int(index[-1]),)
    finally:
        raw.close()
    summary = _validate_and_read(out)
    assert summary["series_electrodes"] == list(range(16))


# --- pynwb / hdmf-zarr fixtures ------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Nested lists of Python numbers, whatever mix of arrays and lists pandas gives."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _check_fixture_result(full_hdf5: Path, out: Path, n: int) -> None:
    from pynwb import NWBHDF5IO

    raw = _Raw(out)
    try:
        assert _problems(raw) == []
        assert raw["acquisition/ElectricalSeries/data"].shape == (n, 16)
        assert raw["acquisition/ElectricalSeries/electrodes"].shape == (16,)
        assert raw.rows("/general/extracellular_ephys/electrodes") == 16
        assert raw["acquisition/stamped/data"].shape == (n,)
        assert raw["acquisition/stamped/timestamps"].shape == (n,)
        assert raw.rows("/units") == n
        # the kept units point at trials up to max(TRIAL_OF_UNIT[:n]): those rows are kept
        assert raw.rows("/intervals/trials") == max(n, max(TRIAL_OF_UNIT[:n]) + 1)
        assert list(raw["units/trial"][:]) == TRIAL_OF_UNIT[:n]
        assert raw["acquisition/ElectricalSeries/starting_time"][()] == 0.0
    finally:
        raw.close()
    summary = _validate_and_read(out)
    with NWBHDF5IO(str(full_hdf5), "r") as io:
        full = io.read().units.to_dataframe()
    got = summary["units_df"]
    assert len(got) == n
    for column in ("spike_times", "nested", "electrodes"):
        for i in range(n):
            expected, value = full[column].iloc[i], got[column].iloc[i]
            if column == "electrodes":
                expected, value = list(expected.index), list(value.index)
            assert _plain(value) == _plain(expected), (column, i)


@pytest.mark.parametrize("suffix", [".nwb", ".nwb.zarr"])
def test_pynwb_hdf5_fixture(samples: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"small{suffix}"
    report = nwbstore.truncate(samples["hdf5"], out, 3, progress=False)
    assert report.datasets > 0
    _check_fixture_result(samples["hdf5"], out, 3)


@pytest.mark.parametrize("suffix", [".nwb", ".nwb.zarr"])
def test_hdmf_zarr_fixture(samples: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"small{suffix}"
    nwbstore.truncate(samples["zarr"], out, 3, progress=False)
    _check_fixture_result(samples["hdf5"], out, 3)


def test_plan_is_the_same_for_hdmf_zarr_and_pynwb_files(samples: dict[str, Path]) -> None:
    with nwbstore.open(samples["hdf5"]) as h5, nwbstore.open(samples["zarr"]) as zs:
        from_hdf5, from_zarr = plan_truncation(h5, 2), plan_truncation(zs, 2)
    assert dict(from_hdf5.lengths) == dict(from_zarr.lengths)
    assert dict(from_hdf5.table_rows) == dict(from_zarr.table_rows)
    lengths = from_hdf5.lengths
    # unit 0 has 1 nested list of 1 value, unit 1 has 2 lists of 1 and 2 values
    assert lengths["/units/nested_index_index"] == 2
    assert lengths["/units/nested_index"] == 3
    assert lengths["/units/nested"] == 4
    assert lengths["/units/spike_times"] == 2 + 5
    assert lengths["/intervals/trials/id"] == 10  # unit 0 points at trial 9
    assert "/general/extracellular_ephys/electrodes/id" not in lengths  # all 16 are kept
    assert "/acquisition/ElectricalSeries/electrodes" not in lengths


def test_zero_rows(samples: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "empty.nwb"
    nwbstore.truncate(samples["hdf5"], out, 0, progress=False)
    with h5py.File(out, "r") as f:
        assert f["acquisition/ElectricalSeries/data"].shape == (0, 16)
        assert f["units/id"].shape == (0,)
        assert f["units/spike_times"].shape == (0,)
        assert f["general/extracellular_ephys/electrodes/id"].shape == (16,)
    raw = _Raw(out)
    try:
        assert _problems(raw) == []
    finally:
        raw.close()


def test_bad_n_fails_before_writing(samples: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "never.nwb"
    with pytest.raises(SettingsError, match="-n"):
        nwbstore.truncate(samples["hdf5"], out, -1, progress=False)
    assert not out.exists()
    assert not Path(str(out) + ".partial").exists()


# --- the rich sample -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nwb", ".nwb.zarr"])
@pytest.mark.parametrize("source", ["rich", "rich-zarr"])
def test_rich_sample(samples: dict[str, Path], tmp_path: Path, source: str, suffix: str) -> None:
    out = tmp_path / f"rich{suffix}"
    # the link target in the source's own format; one in the other format is converted next
    # to the result by the truncation itself (a copy there would be refused as unrelated)
    name = "external.nwb.zarr" if source == "rich-zarr" else "external.nwb"
    if (samples["rich"].parent / name).is_file():
        shutil.copy(samples["rich"].parent / name, tmp_path / name)
    elif (samples["rich"].parent / name).is_dir():
        shutil.copytree(samples["rich"].parent / name, tmp_path / name)
    _truncate_cli(samples[source], out, 3, "--fallback", "zstd")
    raw = _Raw(out)
    try:
        assert _problems(raw) == []
        assert raw["acquisition/ElectricalSeries/data"].shape == (3, 32)
        assert raw.rows("/general/extracellular_ephys/electrodes") == 32
        assert raw["acquisition/TwoPhotonSeries/data"].shape == (3, 32, 32)
        assert raw["acquisition/contiguous/data"].shape == (3,)
        # RoiResponseSeries.rois points at all 5 ROIs: their masks stay
        seg = "processing/ophys/ImageSegmentation/PlaneSegmentation"
        assert raw.rows(seg) == 5
        assert raw[f"{seg}/image_mask"].shape == (5, 32, 32)
        assert raw["processing/ophys/Fluorescence/RoiResponseSeries/data"].shape == (3, 5)
        # intracellular recordings reference all 20 samples of each response
        assert raw["acquisition/response_0/data"].shape == (20,)
        assert raw["stimulus/presentation/stimulus_1/data"].shape == (20,)
        icephys = "/general/intracellular_ephys/intracellular_recordings"
        assert {raw.rows(f"{icephys}/{c}") for c in ("electrodes", "stimuli", "responses")} == {
            raw.rows(icephys)
        }
        assert raw.rows("/units") == 3
        assert raw.rows("/intervals/trials") == 3
        assert raw["processing/behavior/Position/position/data"].shape == (3, 2)
        assert raw["processing/behavior/Position/position/timestamps"].shape == (3,)
        assert raw["file_create_date"].shape == (1,)
    finally:
        raw.close()
    summary = _validate_and_read(out)
    assert summary["ephys_shape"] == (3, 32)
    assert summary["units"] == 3


def test_cli_truncate_with_progress_and_report(
    samples: dict[str, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "cli.nwb"
    assert main(["truncate", str(samples["demo"]), str(out), "-n", "10"]) == 0
    printed = capsys.readouterr().out
    assert "truncated:" in printed
    assert "/general/extracellular_ephys/electrodes: 16 of 16 rows (rows that regions" in printed
    assert "/units: 3 of 3 rows" not in printed  # 3 units, fewer than 10: kept whole
    bars: list[Any] = []

    def bar_factory(**kwargs: Any) -> Any:
        from tqdm import tqdm

        bars.append(tqdm(file=io.StringIO(), disable=False, **kwargs))
        return bars[-1]

    again = tmp_path / "api.nwb"
    nwbstore.truncate(samples["demo"], again, 10, progress=bar_factory)
    assert len(bars) == 1
    expected = bars[0].total
    assert bars[0].n == expected
    written = 0

    def add(_name: str, node: Any) -> None:
        nonlocal written
        if isinstance(node, h5py.Dataset):
            written += node.size * node.dtype.itemsize

    with h5py.File(again, "r") as f:
        f.visititems(add)
    assert expected == written  # the progress bar's total is what the copy holds


def test_cli_truncate_usage_errors(samples: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "never.nwb"
    with pytest.raises(SystemExit) as exc:
        main(["truncate", str(samples["demo"]), str(out), "-n", "-3"])
    assert exc.value.code == 2
    assert "-n '-3': give a whole number of rows" in capsys.readouterr().err
    assert not out.exists()
    assert main(["truncate", str(samples["demo"]), str(out), "-n", "2", "-q", "--verify"]) == 0
    assert "--verify compares whole copies; skipped" in capsys.readouterr().err


# --- stores that are not NWB -----------------------------------------------------------------


def test_plain_hdf5_keeps_first_n_of_every_dataset(tmp_path: Path) -> None:
    src = tmp_path / "plain.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("a", data=np.arange(40), chunks=(16,), maxshape=(None,))
        f.create_dataset("g/b", data=np.ones((30, 4)), chunks=(30, 4), compression="gzip")
        f.create_dataset("short", data=np.arange(3))
    for suffix in (".h5", ".zarr"):
        out = tmp_path / f"cut{suffix}"
        nwbstore.truncate(src, out, 10, progress=False)
        root: Any = h5py.File(out, "r") if suffix == ".h5" else zarr.open_group(out, mode="r")
        assert np.array_equal(root["a"][:], np.arange(10))
        assert root["g/b"].shape == (10, 4)
        assert root["g/b"].chunks == (10, 4)
        assert np.array_equal(root["short"][:], np.arange(3))
        if suffix == ".h5":
            root.close()


def test_external_image_series_and_decomposition_bands(tmp_path: Path) -> None:
    """Datasets not along time stay whole: external files, frame counts, a series' bands."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries
    from pynwb.misc import DecompositionSeries

    nwbfile = NWBFile(
        session_description="extras",
        identifier="extras",
        session_start_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    nwbfile.add_acquisition(
        ImageSeries(
            name="movie",
            external_file=["a.mp4", "b.mp4"],
            starting_frame=[0, 5],
            format="external",
            rate=30.0,
            num_samples=10,
            unit="n.a.",
        )
    )
    nwbfile.add_acquisition(
        ImageSeries(
            name="stamped_movie",
            external_file=["a.mp4"],
            starting_frame=[0],
            format="external",
            timestamps=np.arange(10) / 30,
            unit="n.a.",
        )
    )
    with warnings.catch_warnings():  # "neither source_timeseries nor source_channels"
        warnings.simplefilter("ignore", UserWarning)
        bands = DecompositionSeries(
            name="bands", data=np.ones((40, 1, 8)), metric="power", rate=100.0, description="d"
        )
    for i in range(8):
        bands.add_band(band_name=f"b{i}", band_limits=(i, i + 1.0), band_mean=i + 0.5)
    nwbfile.create_processing_module(name="ecephys", description="d").add(bands)
    src = tmp_path / "extras.nwb"
    with NWBHDF5IO(str(src), "w") as io:
        io.write(nwbfile)
    for suffix in (".nwb", ".nwb.zarr"):
        out = tmp_path / f"extras3{suffix}"
        report = nwbstore.truncate(src, out, 3, progress=False)
        assert any("kept whole: it describes an axis" in line for line in report.truncated)
        raw = _Raw(out)
        try:
            assert _problems(raw) == []
            assert raw["acquisition/movie/external_file"].shape == (2,)
            assert raw["acquisition/movie/num_samples"][()] == 10
            assert raw["acquisition/stamped_movie/timestamps"].shape == (3,)
            assert raw["processing/ecephys/bands/data"].shape == (3, 1, 8)
            assert raw.rows("/processing/ecephys/bands/bands") == 8
        finally:
            raw.close()
        from pynwb import validate

        reader: Any = NWBHDF5IO
        if suffix == ".nwb.zarr":
            from hdmf_zarr import NWBZarrIO as reader
        with reader(str(out), "r") as io:
            assert validate(io=io) == []


def test_series_keep_the_samples_kept_rows_reference(tmp_path: Path) -> None:
    """units -> trials (region) -> a TimeSeries (TimeSeriesReferenceVectorData): a chain."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwbfile = NWBFile(
        session_description="chain",
        identifier="chain",
        session_start_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    series = TimeSeries(name="ts", data=np.arange(100.0), unit="V", timestamps=np.arange(100) / 10)
    nwbfile.add_acquisition(series)
    for i in range(6):
        nwbfile.add_trial(start_time=float(i), stop_time=i + 0.5, timeseries=[series])
    nwbfile.add_unit_column(name="trial", description="a trial", table=nwbfile.trials)
    for trial in (5, 0, 1):
        nwbfile.add_unit(spike_times=[0.1, 0.2], trial=trial)
    src = tmp_path / "chain.nwb"
    with NWBHDF5IO(str(src), "w") as io:
        io.write(nwbfile)
    out = tmp_path / "chain2.nwb"
    nwbstore.truncate(src, out, 2, progress=False)
    with h5py.File(out, "r") as f:
        assert f["units/id"].shape == (2,)
        assert f["intervals/trials/id"].shape == (6,)  # unit 0 points at trial 5
        last = f["intervals/trials/timeseries"][5]
        assert (last["idx_start"], last["count"]) == (50, 5)
        assert f["acquisition/ts/data"].shape == (55,)  # samples 50..54 stay
        assert f["acquisition/ts/timestamps"].shape == (55,)
    with NWBHDF5IO(str(out), "r") as io:
        from pynwb import validate

        assert validate(io=io) == []
        trials = io.read().trials
        assert list(trials["timeseries"][5][0].data) == list(np.arange(50.0, 55.0))
