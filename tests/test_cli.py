"""The command line: demo, info, tree, config."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest

from nwbstore.cli import main
from nwbstore.demo import build_example_nwb


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_example_nwb(tmp_path_factory.mktemp("demo") / "demo.nwb")


def test_demo_prints_tree_with_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ElectricalSeries/" in out
    # the chunking pynwb wrote is what the tree reports
    with h5py.File(tmp_path / "demo.nwb") as f:
        chunks = f["acquisition/ElectricalSeries/data"].chunks
    assert f"chunks={chunks}" in out
    assert "timestamps -> /acquisition/speed/timestamps" in out


def test_info(demo_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(demo_file)]) == 0
    out = capsys.readouterr().out
    assert "backend:   hdf5" in out
    assert "identifier: nwbstore-demo" in out


def test_tree_of_missing_file_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tree", str(tmp_path / "nope.nwb")]) == 2
    assert "does not exist" in capsys.readouterr().err
