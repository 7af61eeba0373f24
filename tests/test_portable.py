"""``codecs="portable"`` (``--portable``): output an independent Zarr implementation reads.

tensorstore (Google's C++ Zarr implementation) knows only the core Zarr v3 codecs and the
standard Zarr v2 compressors: it is the reader these tests use.
"""

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
from nwbstore.errors import CodecTranscodedWarning
from nwbstore.portability import non_portable_codecs

ts = pytest.importorskip("tensorstore")

DATA = (np.arange(6000, dtype="i2").reshape(600, 10) * 7) % 1013
V3_CORE = {"bytes", "transpose", "gzip", "blosc", "zstd", "crc32c", "sharding_indexed"}
V2_STANDARD = {"zlib", "gzip", "blosc", "zstd", "bz2", "lz4"}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.h5"
    with h5py.File(path, "w") as f:
        kw = {"data": DATA, "chunks": (100, 10)}
        f.create_dataset(
            "gzip_shuffle_fletcher", compression="gzip", shuffle=True, fletcher32=True, **kw
        )
        f.create_dataset("gzip", compression="gzip", compression_opts=6, **kw)
        f.create_dataset("lzf", compression="lzf", **kw)
        f.create_dataset("blosc", **kw, **hdf5plugin.Blosc(cname="zstd", clevel=5))
        f.create_dataset("zstd", **kw, **hdf5plugin.Zstd(clevel=4))
        f.create_dataset("contiguous", data=DATA)
    return path


def _ts_read(store: Path, name: str, zarr_format: int) -> np.ndarray:
    spec = {
        "driver": "zarr3" if zarr_format == 3 else "zarr",
        "kvstore": {"driver": "file", "path": str(store / name)},
    }
    return np.asarray(ts.open(spec).result().read().result())


def _codec_names(store: Path, name: str, zarr_format: int) -> set[str]:
    if zarr_format == 3:
        meta = json.loads((store / name / "zarr.json").read_text())
        return {c["name"] for c in meta["codecs"]}
    meta = json.loads((store / name / ".zarray").read_text())
    names = {f["id"] for f in meta["filters"] or []}
    if meta["compressor"] is not None:
        names.add(meta["compressor"]["id"])
    return names


def test_default_output_uses_codecs_tensorstore_refuses(source: Path, tmp_path: Path) -> None:
    """The gap: zarr-python's numcodecs.* extensions are not core Zarr v3 codecs."""
    out = tmp_path / "default.zarr"
    with pytest.warns(CodecTranscodedWarning, match="/lzf"):
        nwbstore.convert(source, out, progress=False)
    names = _codec_names(out, "gzip_shuffle_fletcher", 3)
    assert {"numcodecs.shuffle", "numcodecs.zlib", "numcodecs.fletcher32"} <= names
    with pytest.raises(ValueError, match=r"numcodecs\.shuffle"):
        _ts_read(out, "gzip_shuffle_fletcher", 3)
    with nwbstore.open(out) as store:
        _rule, found = non_portable_codecs(store)
    listed = dict(found)
    assert listed["/gzip_shuffle_fletcher"] == [
        "numcodecs.shuffle",
        "numcodecs.zlib",
        "numcodecs.fletcher32",
    ]
    assert listed["/gzip"] == ["numcodecs.zlib"]
    assert "/blosc" not in listed and "/zstd" not in listed and "/lzf" not in listed


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_portable_output_reads_in_tensorstore(
    source: Path, tmp_path: Path, zarr_format: int
) -> None:
    out = tmp_path / f"portable{zarr_format}.zarr"
    with pytest.warns(CodecTranscodedWarning, match="/lzf"):
        report = nwbstore.convert(
            source, out, codecs="portable", zarr_format=zarr_format, progress=False
        )
    with h5py.File(source) as f:
        for name in f:
            names = _codec_names(out, name, zarr_format)
            if zarr_format == 3:
                assert names <= V3_CORE, (name, names)
            else:
                assert len(names) <= 1 and names <= V2_STANDARD, (name, names)
            np.testing.assert_array_equal(_ts_read(out, name, zarr_format), f[name][...])
    # HDF5 Blosc and Zstd chunks already fit: they are still copied raw
    assert {"/blosc", "/zstd"} <= set(report.datasets_raw)
    by_path = {t.dataset: t for t in report.transcoded_codecs}
    gsf = by_path["/gzip_shuffle_fletcher"]
    assert "portable" in gsf.reason and gsf.target.startswith("blosc(cname='zlib', clevel=4")
    if zarr_format == 3:
        assert gsf.target.endswith("-> crc32c") and "fletcher32 -> crc32c" in gsf.reason
        assert by_path["/gzip"].target == "gzip(level=6)"
    else:
        assert "fletcher32 dropped" in gsf.reason and "crc32c" not in gsf.target
        assert "/gzip" not in by_path  # a lone zlib is a standard v2 compressor: raw copy
        assert "/gzip" in report.datasets_raw
    assert "/contiguous" not in by_path
    with nwbstore.open(out) as store:
        assert non_portable_codecs(store)[1] == []
    assert nwbstore.verify(source, out).ok


def test_portable_hdf5_uses_only_builtin_filters(tmp_path: Path) -> None:
    src = tmp_path / "z.zarr"
    root = zarr.open_group(src, mode="w")
    root.create_array(
        "blosc",
        data=DATA,
        chunks=(100, 10),
        compressors=zarr.codecs.BloscCodec(cname="lz4", shuffle="shuffle"),
    )
    root.create_array("zstd", data=DATA, chunks=(100, 10), compressors=zarr.codecs.ZstdCodec())
    dst = tmp_path / "p.nwb"
    report = nwbstore.convert(src, dst, codecs="portable", progress=False)
    assert {t.dataset for t in report.transcoded_codecs} == {"/blosc", "/zstd"}
    with h5py.File(dst) as f:
        for name in ("blosc", "zstd"):
            plist = f[name].id.get_create_plist()
            ids = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
            assert ids <= {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE}, (name, ids)
            np.testing.assert_array_equal(f[name][...], DATA)
        assert f["blosc"].shuffle and f["blosc"].compression == "gzip"
    with nwbstore.open(dst) as store:
        assert non_portable_codecs(store)[1] == []
    with nwbstore.open(src) as store:
        assert dict(non_portable_codecs(store)[1]) == {}  # blosc, zstd: core Zarr v3


def test_cli_portable_and_info_section(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default, portable = tmp_path / "d.zarr", tmp_path / "p.zarr"
    with pytest.warns(CodecTranscodedWarning):
        assert main(["convert", str(source), str(default), "-q"]) == 0
        assert main(["convert", str(source), str(portable), "-q", "--portable"]) == 0
    capsys.readouterr()
    assert main(["info", str(default)]) == 0
    out = capsys.readouterr().out
    assert "datasets:  6" in out  # the rest of info is unchanged
    assert "non-portable codecs (2 dataset(s)" in out
    assert "/gzip_shuffle_fletcher: numcodecs.shuffle, numcodecs.zlib" in out
    assert main(["info", str(portable)]) == 0
    assert "codecs:    portable (Zarr v3 core codecs only" in capsys.readouterr().out
    assert main(["info", str(source)]) == 0
    out = capsys.readouterr().out
    assert "/blosc: Blosc (32001)" in out and "/lzf: lzf (32000)" in out
    assert "/gzip:" not in out


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nwbstore.testing.nwb_samples import build_external_nwb, build_rich_nwb

    folder = tmp_path_factory.mktemp("rich")
    build_external_nwb(folder / "external.nwb")
    return build_rich_nwb(folder / "rich.nwb", external=folder / "external.nwb")


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_portable_nwb_file_reads_in_tensorstore_and_nwbzarrio(
    rich: Path, tmp_path: Path, zarr_format: int
) -> None:
    """A pynwb-written file (gzip+shuffle, Zstd, Blosc, LZF, Fletcher32): every numeric array
    of the portable output reads in tensorstore with h5py's values; hdmf-zarr reads the file."""
    from hdmf_zarr import NWBZarrIO, NWBZarrV2IO

    out = tmp_path / "rich.nwb.zarr"
    with pytest.warns(CodecTranscodedWarning, match="lzf|TwoPhotonSeries"):
        nwbstore.convert(rich, out, codecs="portable", zarr_format=zarr_format, progress=False)
    meta_name = "zarr.json" if zarr_format == 3 else ".zarray"
    checked = 0
    with h5py.File(rich) as f:
        for meta in out.rglob(meta_name):
            name = meta.parent.relative_to(out).as_posix()
            info = json.loads(meta.read_text())
            if zarr_format == 3 and info.get("node_type") != "array":
                continue
            if name not in f or f[name].dtype.kind not in "biuf" or f[name].dtype.names:
                continue  # strings and references: tensorstore has no such data types
            if f[name].ndim == 0:
                continue
            names = _codec_names(out, name, zarr_format)
            assert names <= (V3_CORE if zarr_format == 3 else V2_STANDARD), (name, names)
            np.testing.assert_array_equal(_ts_read(out, name, zarr_format), f[name][...])
            checked += 1
    assert checked >= 10
    reader = NWBZarrIO if zarr_format == 3 else NWBZarrV2IO
    with reader(str(out), "r") as io:
        nwbfile = io.read()
        with h5py.File(rich) as f:
            np.testing.assert_array_equal(
                nwbfile.acquisition["ElectricalSeries"].data[:],
                f["acquisition/ElectricalSeries/data"][...],
            )


def _spec(name: str, **opts: object):
    from nwbstore.codecs import make_spec

    return make_spec(name, opts or None)


@pytest.mark.parametrize(
    ("pipeline", "zarr_format", "expected"),
    [
        # the rows of the --portable table in docs/convert.md
        (
            ("shuffle", ("zlib", {"level": 6})),
            3,
            [("blosc", {"cname": "zlib", "clevel": 6, "shuffle": 1, "blocksize": 0})],
        ),
        (
            ("shuffle", ("zlib", {"level": 6})),
            2,
            [("blosc", {"cname": "zlib", "clevel": 6, "shuffle": 1, "blocksize": 0})],
        ),
        ((("zlib", {"level": 6}),), 3, [("gzip", {"level": 6})]),
        ((("zlib", {"level": 6}),), 2, [("zlib", {"level": 6})]),
        (
            ("shuffle", ("zstd", {"level": 5})),
            3,
            [("blosc", {"cname": "zstd", "clevel": 5, "shuffle": 1, "blocksize": 0})],
        ),
        ((("zstd", {"level": 5}), "fletcher32"), 3, [("zstd", None), ("crc32c", None)]),
        ((("zstd", {"level": 5}), "fletcher32"), 2, [("zstd", None)]),
        ((("bz2", {"level": 9}),), 3, [("zstd", {"level": 9, "checksum": False})]),
        ((("bz2", {"level": 9}),), 2, [("bz2", {"level": 9})]),
        (("lzma",), 2, [("zstd", {"level": 9, "checksum": False})]),
        (
            (("lz4", {}),),
            3,
            [("blosc", {"cname": "lz4", "clevel": 5, "shuffle": 0, "blocksize": 0})],
        ),
        ((("lz4", {}),), 2, [("lz4", None)]),
        ((("blosc", {"cname": "zstd"}),), 3, [("blosc", {"cname": "zstd"})]),
        (("delta", ("zstd", {"level": 5})), 3, [("zstd", {"level": 5})]),
    ],
)
def test_portable_rules(pipeline: tuple, zarr_format: int, expected: list) -> None:
    from nwbstore.codecs import non_portable_stages, plan_pipeline, portable_flavour

    specs = []
    for item in pipeline:
        name, opts = (item, {}) if isinstance(item, str) else item
        specs.append(_spec(name, dtype="<i2", **opts) if name == "delta" else _spec(name, **opts))
    plan = plan_pipeline(tuple(specs), "zarr", zarr_format=zarr_format, portable=True)
    assert [s.name for s in plan.pipeline] == [name for name, _ in expected]
    for spec, (_name, opts) in zip(plan.pipeline, expected, strict=True):
        for key, value in (opts or {}).items():
            assert spec.options[key] == value, (spec, key)
    assert plan.portable == (plan.pipeline != tuple(specs)) and not plan.defaulted
    assert non_portable_stages(plan.pipeline, portable_flavour("zarr", zarr_format)) == []


def test_default_zarr_store_made_portable(source: Path, tmp_path: Path) -> None:
    """Zarr -> Zarr: an existing zarr-python store becomes readable by tensorstore."""
    first = tmp_path / "first.zarr"
    with pytest.warns(CodecTranscodedWarning):
        nwbstore.convert(source, first, progress=False)
    fixed = tmp_path / "fixed.zarr"
    report = nwbstore.convert(first, fixed, codecs="portable", progress=False)
    assert {t.dataset for t in report.transcoded_codecs} == {"/gzip_shuffle_fletcher", "/gzip"}
    assert {"/blosc", "/zstd", "/lzf"} <= set(report.datasets_raw)
    with h5py.File(source) as f:
        for name in f:
            np.testing.assert_array_equal(_ts_read(fixed, name, 3), f[name][...])


def test_sharded_portable_output_reads_in_tensorstore(source: Path, tmp_path: Path) -> None:
    from nwbstore import DatasetSettings

    out = tmp_path / "sharded.zarr"
    settings = DatasetSettings(
        chunks=(100, 10), shards=(300, 10), compression="zlib", shuffle=True, checksum=True
    )
    with pytest.warns(CodecTranscodedWarning, match="/lzf"):
        nwbstore.convert(
            source, out, codecs="portable", settings={"gzip": settings}, progress=False
        )
    [codec] = json.loads((out / "gzip" / "zarr.json").read_text())["codecs"]
    assert codec["name"] == "sharding_indexed"
    inner = {c["name"] for c in codec["configuration"]["codecs"]}
    index = {c["name"] for c in codec["configuration"]["index_codecs"]}
    assert inner == {"bytes", "blosc", "crc32c"} and index <= V3_CORE
    with h5py.File(source) as f:
        np.testing.assert_array_equal(_ts_read(out, "gzip", 3), f["gzip"][...])


def test_portable_reaches_converted_link_targets(tmp_path: Path) -> None:
    """An external link into HDF5 converts its target too: with the same codecs option."""
    target = tmp_path / "target.h5"
    with h5py.File(target, "w") as f:
        f.create_dataset("data", data=DATA, chunks=(100, 10), compression="gzip", shuffle=True)
    main_file = tmp_path / "main.h5"
    with h5py.File(main_file, "w") as f:
        f["linked"] = h5py.ExternalLink("target.h5", "/data")
    out = tmp_path / "main.nwb.zarr"
    report = nwbstore.convert(main_file, out, codecs="portable", progress=False)
    assert report.converted_targets, report
    converted = tmp_path / "target.nwb.zarr"
    assert _codec_names(converted, "data", 3) <= V3_CORE
    np.testing.assert_array_equal(_ts_read(converted, "data", 3), DATA)
