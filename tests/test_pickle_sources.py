"""Legacy sources whose object arrays carry the Pickle codec (hdmf-zarr <= 0.13).

The fixtures reproduce that legacy format: a Zarr v2 group whose object arrays have
``numcodecs.Pickle`` as their object codec (first filter) and a Blosc compressor. zarr-python 3
cannot write such arrays, so the ``.zarray`` documents are written as JSON and each chunk is
``Blosc(Pickle(protocol).encode(chunk))``, exactly the bytes zarr 2 stored. nwbstore itself
never writes Pickle, and these tests never unpickle anything.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import h5py
import numcodecs
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import nwbstore
from nwbstore.backends._pickle_reader import decode_pickle, decode_pickled_array
from nwbstore.cli import main
from nwbstore.errors import PickleRefusedError, ReadOnlyError
from nwbstore.links import Reference

NAMES = ["alpha", "beta", "", "delta", "épsilon"]
TABLE_DTYPE = [
    {"name": "idx", "dtype": "int32"},
    {"name": "label", "dtype": "utf8"},
    {"name": "target", "dtype": "object"},
]


def _ref(path: str) -> dict[str, Any]:
    return {"source": ".", "path": path, "object_id": "oid-" + path, "source_object_id": "src"}


def _write_legacy_array(
    root: Path,
    name: str,
    values: list[Any],
    *,
    chunks: int,
    attrs: dict[str, Any],
    protocol: int = 5,
    compressor: Any = None,
) -> dict[str, Any]:
    """Write a 1-D v2 object array as zarr 2 did with ``object_codec=numcodecs.Pickle()``."""
    folder = root / name
    folder.mkdir(parents=True)
    comp = numcodecs.Blosc() if compressor is None else compressor
    meta = {
        "zarr_format": 2,
        "shape": [len(values)],
        "chunks": [chunks],
        "dtype": "|O",
        "fill_value": 0,
        "order": "C",
        "filters": [{"id": "pickle", "protocol": protocol}],
        "compressor": comp.get_config() if comp else None,
        "dimension_separator": ".",
    }
    (folder / ".zarray").write_text(json.dumps(meta))
    (folder / ".zattrs").write_text(json.dumps(attrs))
    codec = numcodecs.Pickle(protocol=protocol)
    for i in range(math.ceil(len(values) / chunks)):
        chunk = np.empty(chunks, dtype=object)
        chunk.fill(0)  # zarr 2 pads edge chunks with the fill value
        part = values[i * chunks : (i + 1) * chunks]
        for j, v in enumerate(part):
            chunk[j] = v
        data = codec.encode(chunk)
        (folder / str(i)).write_bytes(comp.encode(data) if comp else data)
    return meta


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """An hdmf-zarr 0.13-style store: strings, references and a compound column in Pickle."""
    path = tmp_path / "legacy.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=2)
    g.create_array("data", data=np.arange(6, dtype="int64"))
    g.attrs["nwb_version"] = "2.8.0"
    metas = {
        "names": _write_legacy_array(
            path, "names", NAMES, chunks=2, attrs={"zarr_dtype": "str", "note": "kept"}
        ),
        "refs": _write_legacy_array(
            path,
            "refs",
            [_ref("/data"), _ref("/names"), _ref("/data")],
            chunks=2,
            attrs={"zarr_dtype": "object"},
            protocol=2,
        ),
        "table": _write_legacy_array(
            path,
            "table",
            [[0, "first", _ref("/data")], [1, "second", _ref("/names")]],
            chunks=4,
            attrs={"zarr_dtype": TABLE_DTYPE},
            protocol=4,
        ),
    }
    # hdmf-zarr 0.13 consolidated its metadata; zarr 3 cannot parse these entries
    docs: dict[str, Any] = {".zgroup": {"zarr_format": 2}, ".zattrs": dict(g.attrs)}
    docs["data/.zarray"] = json.loads((path / "data" / ".zarray").read_text())
    for name, meta in metas.items():
        docs[f"{name}/.zarray"] = meta
        docs[f"{name}/.zattrs"] = json.loads((path / name / ".zattrs").read_text())
    (path / ".zmetadata").write_text(json.dumps({"zarr_consolidated_format": 1, "metadata": docs}))
    return path


# -- refused by default ---------------------------------------------------------------------


def test_default_open_refuses_naming_dataset_and_opt_in(legacy: Path) -> None:
    with nwbstore.open(legacy, "r") as store:
        assert store.root.keys() == ["data", "names", "refs", "table"]
        np.testing.assert_array_equal(store["data"][:], np.arange(6))
        for name in ("names", "refs", "table"):
            with pytest.raises(PickleRefusedError, match=f"'/{name}'") as info:
                store[name]
            message = str(info.value)
            assert "allow_pickle=True" in message and "--allow-pickle" in message
            assert "without running any code" in message


def test_default_convert_refuses(legacy: Path, tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(PickleRefusedError, match=r"'/names'.*allow_pickle=True"):
        nwbstore.convert(legacy, tmp_path / "out.nwb.zarr", progress=False)
    assert main(["convert", str(legacy), str(tmp_path / "cli.nwb.zarr"), "-q"]) == 2
    assert "--allow-pickle" in capsys.readouterr().err


# -- opt-in reading -------------------------------------------------------------------------


def test_opt_in_reads_values(legacy: Path) -> None:
    with nwbstore.open(legacy, "r", allow_pickle=True) as store:
        names = store["names"]
        assert names.shape == (5,) and names.chunks == (2,)
        assert nwbstore.dtypes.is_string_dtype(names.dtype)
        assert list(names[:]) == NAMES
        assert list(names[1:4]) == NAMES[1:4]
        assert names[-1] == NAMES[-1]
        assert list(names[::2]) == NAMES[::2]
        assert list(names[::-1]) == NAMES[::-1]
        assert list(names[[0, 3]]) == [NAMES[0], NAMES[3]]
        assert dict(names.attrs) == {"note": "kept"}
        refs = store["refs"]
        assert nwbstore.dtypes.is_reference_dtype(refs.dtype)
        assert list(refs[:]) == [Reference("/data"), Reference("/names"), Reference("/data")]
        table = store["table"][:]
        assert table.dtype.names == ("idx", "label", "target")
        assert list(table["idx"]) == [0, 1]
        assert list(table["label"]) == ["first", "second"]
        assert list(table["target"]) == [Reference("/data"), Reference("/names")]


def test_opt_in_datasets_are_read_only(legacy: Path) -> None:
    with nwbstore.open(legacy, "r+", allow_pickle=True) as store:
        names = store["names"]
        with pytest.raises(ReadOnlyError, match=r"'/names'.*Pickle.*--allow-pickle"):
            names[0] = "changed"
        with pytest.raises(ReadOnlyError, match="'/names'"):
            names.attrs["note"] = "changed"
        with pytest.raises(ReadOnlyError, match="'/names'"):
            names.resize((9,))
    assert json.loads((legacy / "names" / ".zattrs").read_text()) == {
        "zarr_dtype": "str",
        "note": "kept",
    }
    chunk = numcodecs.Blosc().decode((legacy / "names" / "0").read_bytes())
    assert chunk == numcodecs.Pickle(protocol=5).encode(np.array(NAMES[:2], dtype=object))


def test_real_hdmf_zarr_reference_objects(tmp_path: Path) -> None:
    """hdmf-zarr pickled its ``ZarrReference`` dict subclass: recognised, never imported."""
    from hdmf_zarr.utils import ZarrReference

    path = tmp_path / "zr.zarr"
    g = zarr.open_group(str(path), mode="w", zarr_format=2)
    g.create_array("x", data=np.arange(3))
    refs = [ZarrReference(source=".", path="/x"), ZarrReference(source="other.zarr", path="/y")]
    _write_legacy_array(path, "refs", refs, chunks=2, attrs={"zarr_dtype": "object"})
    with nwbstore.open(path, "r", allow_pickle=True) as store:
        assert list(store["refs"][:]) == [Reference("/x"), Reference("/y", "other.zarr")]


# -- conversion with the opt-in ---------------------------------------------------------------


def _all_metadata_text(path: Path) -> str:
    return "".join(
        p.read_text() for p in path.rglob("*") if p.name in ("zarr.json", ".zarray", ".zattrs")
    )


def test_convert_opt_in_to_zarr_v3(legacy: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.nwb.zarr"
    report = nwbstore.convert(legacy, dst, allow_pickle=True, progress=False)
    assert report.unpickled == ["/names", "/refs", "/table"]
    assert "decoded from Pickle" in str(report) and "/refs" in str(report)
    assert report.to_dict()["unpickled"] == ["/names", "/refs", "/table"]
    g = zarr.open_group(str(dst), mode="r")
    assert g.metadata.zarr_format == 3
    assert list(g["names"][:]) == NAMES
    assert g["refs"].attrs["_DTYPE"] == "object_reference"
    assert list(g["refs"][:]) == ["/data", "/names", "/data"]
    table = g["table"][:]
    assert g["table"].attrs["_REFERENCE_FIELDS"] == ["target"]
    assert list(table["idx"]) == [0, 1] and list(table["label"]) == ["first", "second"]
    assert list(table["target"]) == ["/data", "/names"]
    assert g["names"].attrs["note"] == "kept"
    assert "pickle" not in _all_metadata_text(dst).lower()
    assert "pickle" not in (dst / "zarr.json").read_text().lower()


def test_convert_opt_in_to_hdf5(legacy: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.nwb"
    report = nwbstore.convert(legacy, dst, allow_pickle=True, progress=False)
    assert report.unpickled == ["/names", "/refs", "/table"]
    with h5py.File(dst, "r") as f:
        assert [s.decode() for s in f["names"][:]] == NAMES
        assert [f[r].name for r in f["refs"][:]] == ["/data", "/names", "/data"]
        table = f["table"][:]
        assert list(table["idx"]) == [0, 1]
        assert [s.decode() for s in table["label"]] == ["first", "second"]
        assert [f[r].name for r in table["target"]] == ["/data", "/names"]
        texts: list[str] = []
        f.visititems(lambda _n, o: texts.extend(f"{k}={v}" for k, v in o.attrs.items()))
        assert not any("pickle" in t.lower() for t in texts)
        assert f["names"].attrs["note"] == "kept"


def test_cli_convert_and_verify_allow_pickle(legacy: Path, tmp_path: Path) -> None:
    dst = tmp_path / "cli.nwb.zarr"
    assert main(["convert", str(legacy), str(dst), "-q", "--allow-pickle"]) == 0
    assert list(zarr.open_group(str(dst), mode="r")["names"][:]) == NAMES
    assert main(["verify", str(legacy), str(dst), "--allow-pickle"]) == 0
    assert main(["verify", str(legacy), str(dst)]) == 2


# -- hostile and unsupported streams --------------------------------------------------------


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _legacy_with_chunk(tmp_path: Path, chunk: bytes) -> Path:
    path = tmp_path / "hostile.zarr"
    zarr.open_group(str(path), mode="w", zarr_format=2)
    (path / "evil").mkdir()
    meta = {
        "zarr_format": 2,
        "shape": [1],
        "chunks": [1],
        "dtype": "|O",
        "fill_value": 0,
        "order": "C",
        "filters": [{"id": "pickle", "protocol": 2}],
        "compressor": None,
        "dimension_separator": ".",
    }
    (path / "evil" / ".zarray").write_text(json.dumps(meta))
    (path / "evil" / "0").write_bytes(chunk)
    return path


def test_malicious_global_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    # GLOBAL 'os system', the command, TUPLE1, REDUCE, STOP: built by hand, opcode by opcode
    stream = b"\x80\x02cos\nsystem\n" + _unicode(command) + b"\x85R."
    path = _legacy_with_chunk(tmp_path, stream)
    with nwbstore.open(path, "r", allow_pickle=True) as store:
        ds = store["evil"]
        with pytest.raises(PickleRefusedError, match=r"'/evil'.*global 'os\.system'"):
            ds[:]
    with pytest.raises(PickleRefusedError, match=r"global 'os\.system'"):
        nwbstore.convert(path, tmp_path / "out.nwb.zarr", allow_pickle=True, progress=False)
    assert not marker.exists()


def test_malicious_stream_inside_a_real_array_is_refused(tmp_path: Path) -> None:
    """A legitimate ndarray pickle whose element is a call to ``builtins.eval``."""
    marker = tmp_path / "pwned2"
    good = numcodecs.Pickle(protocol=4).encode(np.array(["placeholder"], dtype=object))
    text = b"\x8c\x0bplaceholder"
    assert text in good
    evil = b"\x8c\x08builtins\x8c\x04eval\x93" + _unicode(f"open({str(marker)!r}, 'w')") + b"\x85R"
    stream = good.replace(text, evil)  # the FRAME length goes stale; nothing relies on it
    with pytest.raises(PickleRefusedError, match=r"global 'builtins\.eval'"):
        decode_pickle(stream, "x")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("stream", "what"),
    [
        (b"(Vecho hi\nios\nsystem\n.", "opcode INST"),
        (b"\x80\x02(o.", "opcode OBJ"),
        (b"\x80\x04)}\x92.", "opcode NEWOBJ_EX"),
        (b"\x80\x02\x82\x01.", "opcode EXT1"),
        (b"Pfoo\n.", "opcode PERSID"),
        (b"\x80\x02X\x03\x00\x00\x00fooQ.", "opcode BINPERSID"),
        (b"\x80\x05\x97.", "opcode NEXT_BUFFER"),
        (b"\x80\x02c__builtin__\nset\n]\x85R.", "global '__builtin__.set'"),
        (b"\x80\x02cnumpy\nndarray\n)\x81.", "NEWOBJ of a class other than"),
        (b"\x80\x02]h\x05.", "memo entry 5"),
        (b"\x80\x02N", "malformed"),
        (b"\x80\x02K\x01.", "int where an array belongs"),
    ],
)
def test_unsupported_streams_refused(stream: bytes, what: str) -> None:
    with pytest.raises(PickleRefusedError, match=what):
        decode_pickled_array(stream, "dataset '/x' in test")


def test_self_containing_list_refused() -> None:
    # EMPTY_LIST, BINPUT 0, BINGET 0, APPEND: a list that holds itself
    with pytest.raises(PickleRefusedError, match="contains itself"):
        decode_pickle(b"\x80\x02]q\x00h\x00a.", "x")


# -- the decoder against numcodecs.Pickle ---------------------------------------------------

_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.binary(max_size=8)
)
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(_values, min_size=0, max_size=8),
    protocol=st.integers(min_value=2, max_value=5),
    two_d=st.booleans(),
)
def test_decoder_matches_numcodecs_pickle(values: list[Any], protocol: int, two_d: bool) -> None:
    arr = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        arr[i] = v
    if two_d and len(values) % 2 == 0 and values:
        arr = arr.reshape(2, -1)
    encoded = numcodecs.Pickle(protocol=protocol).encode(arr)
    decoded = decode_pickled_array(encoded, "hypothesis")
    assert decoded.dtype == object and decoded.shape == arr.shape
    assert decoded.tolist() == arr.tolist()
