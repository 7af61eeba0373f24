"""Planning a conversion: default transcodes of codecs without counterpart, --strict, fallback."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
import zarr

import nwbstore
from nwbstore.cli import main
from nwbstore.convert.plan import PlanOptions, plan_conversion
from nwbstore.errors import CodecTranscodedWarning, UnsupportedCodecError

DATA = np.arange(4000, dtype="i4").reshape(400, 10) % 97


def _szip_encodes() -> bool:
    info = h5py.h5z.get_filter_info(h5py.h5z.FILTER_SZIP)
    return h5py.h5z.filter_avail(h5py.h5z.FILTER_SZIP) and bool(
        info & h5py.h5z.FILTER_CONFIG_ENCODE_ENABLED
    )


@pytest.fixture
def unmappable(tmp_path: Path) -> Path:
    """An HDF5 file with every kind of filter Zarr has no codec for."""
    path = tmp_path / "unmappable.h5"
    with h5py.File(path, "w") as f:
        kw = {"data": DATA, "chunks": (100, 10)}
        f.create_dataset("lzf", compression="lzf", **kw)
        f.create_dataset("bitshuffle_lz4", **kw, **hdf5plugin.Bitshuffle(cname="lz4"))
        f.create_dataset("bitshuffle_zstd", **kw, **hdf5plugin.Bitshuffle(cname="zstd", clevel=4))
        f.create_dataset(
            "blosc2",
            **kw,
            **hdf5plugin.Blosc2(cname="zstd", clevel=6, filters=hdf5plugin.Blosc2.SHUFFLE),
        )
        f.create_dataset("scaleoffset", data=DATA / 7.0, chunks=(100, 10), scaleoffset=2)
        if _szip_encodes():
            f.create_dataset("szip", compression="szip", **kw)
        f.create_dataset("plain_gzip", compression="gzip", **kw)
    return path


def _v3_codecs(store: Path, name: str) -> list[dict]:
    return json.loads((store / name / "zarr.json").read_text())["codecs"]


def test_default_convert_transcodes_codecs_without_counterpart(
    unmappable: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.zarr"
    with pytest.warns(CodecTranscodedWarning) as caught:
        report = nwbstore.convert(unmappable, out, progress=False)
    # one warning for the whole conversion (others, such as a ResourceWarning of an HTTP session
    # an earlier test left for the garbage collector, may be recorded in the block too)
    transcoded = [w for w in caught if issubclass(w.category, CodecTranscodedWarning)]
    assert len(transcoded) == 1, [str(w.message) for w in caught]
    message = str(transcoded[0].message)
    for name in ("/lzf", "/bitshuffle_lz4", "/bitshuffle_zstd", "/blosc2", "/scaleoffset"):
        assert name in message
    assert "/plain_gzip" not in message and "--strict" in message

    by_path = {t.dataset: t for t in report.transcoded_codecs}
    assert set(by_path) >= {"/lzf", "/bitshuffle_lz4", "/blosc2", "/scaleoffset"}
    assert "/plain_gzip" not in by_path
    assert by_path["/lzf"].source == "lzf" and by_path["/lzf"].target.startswith("zstd(level=1")
    assert "lossy precision kept" in by_path["/scaleoffset"].reason
    assert "codecs transcoded:" in str(report) and "/blosc2: blosc2" in str(report)
    entry = next(e for e in report.to_dict()["transcoded_codecs"] if e["dataset"] == "/lzf")
    assert entry["source"] == "lzf" and entry["reason"].startswith("no counterpart")
    json.dumps(report.to_dict())

    # what zarr itself reads: the closest standard codec, values as h5py decodes them
    assert _v3_codecs(out, "lzf")[1] == {
        "name": "zstd",
        "configuration": {"level": 1, "checksum": False},
    }
    bs_lz4 = _v3_codecs(out, "bitshuffle_lz4")[1]["configuration"]
    assert bs_lz4["cname"] == "lz4" and bs_lz4["shuffle"] == "bitshuffle"
    bs_zstd = _v3_codecs(out, "bitshuffle_zstd")[1]["configuration"]
    assert (bs_zstd["cname"], bs_zstd["clevel"], bs_zstd["shuffle"]) == ("zstd", 4, "bitshuffle")
    b2 = _v3_codecs(out, "blosc2")[1]["configuration"]
    assert (b2["cname"], b2["clevel"], b2["shuffle"]) == ("zstd", 6, "shuffle")
    assert [c["name"] for c in _v3_codecs(out, "scaleoffset")] == ["bytes", "zstd"]
    with h5py.File(unmappable) as f:
        for name in f:
            np.testing.assert_array_equal(zarr.open_array(out / name, mode="r")[...], f[name][...])
    assert nwbstore.verify(unmappable, out).ok


def test_strict_refuses_before_the_destination_exists(unmappable: Path, tmp_path: Path) -> None:
    dst = tmp_path / "strict.zarr"
    with pytest.raises(UnsupportedCodecError, match=r"'/\w+'.*--fallback") as err:
        nwbstore.convert(unmappable, dst, strict=True, progress=False)
    text = str(err.value)
    assert "strict=True" in text and "--strict" in text and "fallback='drop'" in text
    assert err.value.dataset in {"/lzf", "/bitshuffle_lz4", "/bitshuffle_zstd", "/blosc2"}
    assert err.value.target == "zarr" and err.value.default is not None
    # every refused dataset is named, not only the first
    assert text.startswith("5 datasets") or text.startswith("6 datasets")
    for name in ("/lzf", "/bitshuffle_lz4", "/bitshuffle_zstd", "/blosc2", "/scaleoffset"):
        assert name in text
    assert "/plain_gzip" not in text
    assert not dst.exists()


def test_strict_to_hdf5_refuses_a_zarr_only_codec(tmp_path: Path) -> None:
    src = tmp_path / "gz.zarr"
    root = zarr.open_group(src, mode="w")
    root.create_array("a", data=DATA, chunks=(100, 10), compressors=zarr.codecs.GzipCodec())
    dst = tmp_path / "gz.nwb"
    with pytest.raises(UnsupportedCodecError, match=r"'/a'.*gzip"):
        nwbstore.convert(src, dst, strict=True, progress=False)
    assert not dst.exists() and not Path(str(dst) + ".partial").exists()


def test_zarr_only_codecs_become_hdf5_filters(tmp_path: Path) -> None:
    src = tmp_path / "z.zarr"
    root = zarr.open_group(src, mode="w")
    root.create_array(
        "a",
        data=DATA,
        chunks=(100, 10),
        compressors=[zarr.codecs.GzipCodec(level=6), zarr.codecs.Crc32cCodec()],
    )
    dst = tmp_path / "z.nwb"
    with pytest.warns(CodecTranscodedWarning, match="/a"):
        report = nwbstore.convert(src, dst, progress=False)
    [entry] = report.transcoded_codecs
    assert entry.target == "zlib(level=6) -> fletcher32"
    with h5py.File(dst) as f:
        ds = f["a"]
        assert ds.compression == "gzip" and ds.compression_opts == 6 and ds.fletcher32
        np.testing.assert_array_equal(ds[...], DATA)


def test_explicit_fallback_wins_and_does_not_warn(unmappable: Path, tmp_path: Path) -> None:
    # pytest turns CodecTranscodedWarning into an error: none may be emitted here
    report = nwbstore.convert(
        unmappable, tmp_path / "f.zarr", fallback="zstd", strict=True, progress=False
    )
    by_path = {t.dataset: t for t in report.transcoded_codecs}
    assert by_path["/lzf"].reason.startswith("fallback")
    assert by_path["/lzf"].target.startswith("zstd(level=3")


def test_bitshuffle_transcode_copies_raw_back_to_hdf5(unmappable: Path, tmp_path: Path) -> None:
    """Blosc with bit shuffle exists on both sides: the second hop moves stored chunks."""
    mid = tmp_path / "mid.zarr"
    with pytest.warns(CodecTranscodedWarning):
        nwbstore.convert(unmappable, mid, progress=False)
    back = tmp_path / "back.nwb"
    report = nwbstore.convert(mid, back, progress=False)
    assert {"/bitshuffle_lz4", "/bitshuffle_zstd", "/lzf"} <= set(report.datasets_raw)
    assert report.transcoded_codecs == []
    with h5py.File(back) as f, h5py.File(unmappable) as g:
        assert f["bitshuffle_lz4"].id.get_create_plist().get_filter(0)[0] == 32001  # Blosc
        np.testing.assert_array_equal(f["bitshuffle_lz4"][...], g["bitshuffle_lz4"][...])


def test_plan_covers_every_dataset_without_writing(unmappable: Path) -> None:
    with nwbstore.open(unmappable) as store:
        plan = plan_conversion(store.root, PlanOptions(dst_format="zarr"))
        names = {path for _url, path in plan.datasets}
        with h5py.File(unmappable) as f:
            assert names == {f"/{n}" for n in f}
        assert plan.datasets[(store.url, "/plain_gzip")].compression == "zlib"
        assert {t.dataset for t in plan.defaulted()} == names - {"/plain_gzip"}


def test_cli_default_strict_and_messages(
    unmappable: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dst = tmp_path / "cli.zarr"
    assert main(["convert", str(unmappable), str(dst), "--quiet", "--strict"]) == 2
    err = capsys.readouterr().err
    assert "--fallback" in err and "--strict" in err and not dst.exists()
    with pytest.warns(CodecTranscodedWarning):
        assert main(["convert", str(unmappable), str(dst), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {e["dataset"] for e in printed["transcoded_codecs"]} >= {"/lzf", "/blosc2"}


def test_docs_list_every_default_transcode() -> None:
    from nwbstore.codecs import transcode_table_markdown

    docs = Path(__file__).resolve().parents[1] / "docs"
    table = transcode_table_markdown()
    assert table in (docs / "convert.md").read_text(), "regenerate the table in docs/convert.md"
    assert table in (docs / "codecs.md").read_text()


def test_zfp_settings_read_from_a_file_are_transcoded_or_refused(tmp_path: Path) -> None:
    """ZFP keeps only its header in the file: HDF5 -> HDF5 cannot rewrite it as it was."""
    src = tmp_path / "zfp.h5"
    values = np.linspace(0, 1, 10_000).reshape(100, 100)
    with h5py.File(src, "w") as f:
        f.create_dataset("z", data=values, chunks=(50, 50), **hdf5plugin.Zfp(rate=16))
    refused = tmp_path / "refused.nwb"
    with pytest.raises(UnsupportedCodecError, match=r"dataset '/z'.*stored header.*--strict"):
        nwbstore.convert(src, refused, strict=True, progress=False)
    assert not refused.exists() and not Path(str(refused) + ".partial").exists()
    dst = tmp_path / "zstd.nwb"
    with pytest.warns(CodecTranscodedWarning, match="/z"):
        report = nwbstore.convert(src, dst, progress=False)
    assert report.transcoded_codecs[0].target.startswith("zstd(")
    with h5py.File(dst) as f, h5py.File(src) as g:
        assert f["z"].id.get_create_plist().get_filter(0)[0] == 32015  # Zstd
        np.testing.assert_array_equal(f["z"][...], g["z"][...])  # as ZFP decoded them
