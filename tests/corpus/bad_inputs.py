"""A corpus of bad inputs, each built in a temporary directory, with the error it must give.

Nothing here is committed as a binary file: every case writes its input with h5py, zarr or
plain file operations and then damages it (truncation, flipped bits, broken JSON, scribbled
chunk bytes). Each :class:`BadInput` says what the Python API must raise (class and a message
fragment) and which command line must exit with which status, printing no traceback.

S3 cases use the loopback moto server (``Context.s3``), an IAM-enforcing one for invalid
credentials (``Context.iam``), and an endpoint nothing listens on for the network case.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = ["CASES", "BadInput", "Built", "Context"]


@dataclass(frozen=True)
class Context:
    """Where a case builds its input and which servers it may use."""

    tmp: Path
    s3: Any = None  # tests.conftest.S3Server, for S3 cases
    iam: Any = None  # an IAM-enforcing server (endpoint_url, bucket), for bad credentials


@dataclass
class Built:
    """A built bad input: the API call that must fail and the CLI arguments that must."""

    api: Callable[[], object] | None
    cli: list[str] | None
    env: Mapping[str, str] = field(default_factory=dict)  # for the no-credentials case
    #: The error may name a different path than the input (e.g. a member inside it).
    names: str | None = None
    #: Objects that must live while the case runs (a listening socket).
    keep: Any = None


@dataclass(frozen=True)
class BadInput:
    """One case of the corpus.

    Attributes
    ----------
    name
        Test id.
    build
        Makes the input under ``Context.tmp`` and returns what to call.
    error
        Class the Python API raises (``None``: the case is CLI-only, e.g. a bad flag).
    fragment
        Text the message (API and CLI) contains.
    exit_code
        The CLI's status: 2 bad input or usage, 1 a difference.
    needs
        ``"s3"`` or ``"iam"`` if the case needs that server.
    """

    name: str
    build: Callable[[Context], Built]
    error: type[BaseException] | None
    fragment: str
    exit_code: int = 2
    needs: str | None = None


# -- helpers -------------------------------------------------------------------------------


def _open(url: str | Path, **kwargs: Any) -> Callable[[], object]:
    def call() -> object:
        import nwbstore

        with nwbstore.open(url, "r", **kwargs) as store:
            store.root.visititems(lambda _name, _node: None)
            return store.url

    return call


def _walk(url: str | Path, **kwargs: Any) -> Callable[[], object]:
    """Open and read every node's metadata (what ``tree`` does)."""

    def call() -> object:
        import nwbstore
        from nwbstore.tree import format_tree

        with nwbstore.open(url, "r", **kwargs) as store:
            return format_tree(store.root)

    return call


def _verify(src: Path, dst: Path) -> Callable[[], object]:
    def call() -> object:
        import nwbstore

        report = nwbstore.verify(src, dst)
        if not report.ok:
            raise _Differences("; ".join(report.differences))
        return report

    return call


class _Differences(AssertionError):
    """Raised by the corpus when ``verify`` found differences (its "error" class)."""


def _h5_sample(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs["nwb_version"] = "2.8.0"
        grp = f.create_group("acquisition/ts")
        grp.create_dataset("data", data=np.arange(4000, dtype="f8"), chunks=(1000,))
        grp.attrs["description"] = "a group with a dataset"
        f.create_dataset("identifier", data="corpus")
    return path


def _flip(path: Path, start: int, stop: int) -> None:
    raw = bytearray(path.read_bytes())
    for i in range(start, stop):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def _object_header_offset(path: Path, name: str) -> int:
    with h5py.File(path, "r") as f:
        return int(h5py.h5o.get_info(f[name].id).addr)  # type: ignore[attr-defined]


def _zarr_sample(path: Path, zarr_format: int = 3, **array_kwargs: Any) -> Path:
    import zarr

    root = zarr.open_group(path, mode="w", zarr_format=zarr_format)  # type: ignore[arg-type]
    grp = root.create_group("acquisition")
    arr = grp.create_array("data", shape=(4000,), chunks=(1000,), dtype="f8", **array_kwargs)
    arr[:] = np.arange(4000, dtype="f8")
    return path


def _rewrite_json(doc: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    meta = json.loads(doc.read_text())
    edit(meta)
    doc.write_text(json.dumps(meta))


def _scribble_chunk(path: Path) -> None:
    with open(path, "r+b") as fh:
        size = os.path.getsize(path)
        fh.seek(max(0, size // 2 - 8))
        fh.write(b"\xa5" * min(32, size))


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _s3_options(endpoint: str, key: str = "testing", secret: str = "testing") -> dict[str, Any]:
    return {
        "endpoint_url": endpoint,
        "key": key,
        "secret": secret,
        "client_kwargs": {"region_name": "us-east-1"},
        "skip_instance_cache": True,
    }


def _cli_s3(command: str, url: str, options: dict[str, Any]) -> list[str]:
    return [command, url, "--storage-options", json.dumps(options)]


# -- HDF5 ------------------------------------------------------------------------------------


def _truncated_hdf5(ctx: Context) -> Built:
    path = _h5_sample(ctx.tmp / "cut.nwb")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return Built(_open(path), ["info", str(path)])


def _flipped_superblock(ctx: Context) -> Built:
    path = _h5_sample(ctx.tmp / "flipped.nwb")
    _flip(path, 8, 24)  # versions, sizes: right after the signature
    return Built(_open(path), ["tree", str(path)])


def _flipped_object_header(ctx: Context) -> Built:
    path = _h5_sample(ctx.tmp / "header.nwb")
    offset = _object_header_offset(path, "acquisition/ts/data")
    _flip(path, offset, offset + 16)
    return Built(_walk(path), ["tree", str(path)])


def _flipped_group_header(ctx: Context) -> Built:
    path = _h5_sample(ctx.tmp / "group.nwb")
    offset = _object_header_offset(path, "acquisition/ts")
    _flip(path, offset, offset + 16)
    return Built(_walk(path), ["config", str(path)])


def _flipped_header_convert(ctx: Context) -> Built:
    import nwbstore

    path = _h5_sample(ctx.tmp / "header.nwb")
    offset = _object_header_offset(path, "acquisition/ts/data")
    _flip(path, offset, offset + 16)
    out = ctx.tmp / "out.zarr"

    def call() -> object:
        return nwbstore.convert(path, out, progress=False)

    return Built(call, ["convert", str(path), str(out), "-q"], names="/acquisition/ts/data")


def _flipped_header_verify(ctx: Context) -> Built:
    good = _h5_sample(ctx.tmp / "good.nwb")
    path = _h5_sample(ctx.tmp / "header.nwb")
    offset = _object_header_offset(path, "acquisition/ts/data")
    _flip(path, offset, offset + 16)
    return Built(_verify(good, path), ["verify", str(good), str(path)], names="header.nwb")


def _hdf5_corrupt_chunk_source(ctx: Context) -> Built:
    """A corrupt gzip chunk: a decoding conversion names the dataset and the chunk."""
    import nwbstore

    path = ctx.tmp / "chunk.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(
            "data", data=np.arange(4000, dtype="f8"), chunks=(1000,), compression="gzip"
        )
        offset = ds.id.get_chunk_info(2).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    out = ctx.tmp / "out.zarr"

    def call() -> object:
        return nwbstore.convert(path, out, raw=False, progress=False)

    return Built(call, ["convert", str(path), str(out), "-q", "--no-raw"])


def _hdf5_corrupt_chunk_verify(ctx: Context) -> Built:
    """A raw copy carries a corrupt gzip chunk along; ``convert --verify`` must catch it."""
    path = ctx.tmp / "chunk.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(
            "data", data=np.arange(4000, dtype="f8"), chunks=(1000,), compression="gzip"
        )
        offset = ds.id.get_chunk_info(1).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    out = ctx.tmp / "copy.zarr"
    return Built(None, ["convert", str(path), str(out), "-q", "--verify"])


def _empty_file(ctx: Context) -> Built:
    path = ctx.tmp / "empty.nwb"
    path.write_bytes(b"")
    return Built(_open(path), ["info", str(path)])


def _empty_file_no_extension(ctx: Context) -> Built:
    path = ctx.tmp / "empty"
    path.write_bytes(b"")
    return Built(_open(path), ["info", str(path)])


def _text_file(ctx: Context) -> Built:
    path = ctx.tmp / "notes.txt"
    path.write_text("not NWB at all\n" * 50)
    return Built(_open(path), ["info", str(path)])


def _text_file_nwb_extension(ctx: Context) -> Built:
    path = ctx.tmp / "notes.nwb"
    path.write_text("not NWB at all\n" * 50)
    return Built(_open(path), ["tree", str(path)])


def _directory_named_nwb(ctx: Context) -> Built:
    path = ctx.tmp / "session.nwb"
    path.mkdir()
    (path / "readme.txt").write_text("a folder")
    return Built(_open(path), ["info", str(path)])


def _missing_path(ctx: Context) -> Built:
    path = ctx.tmp / "nowhere.nwb"
    return Built(_open(path), ["info", str(path)])


def _missing_source_convert(ctx: Context) -> Built:
    path = ctx.tmp / "nowhere.zarr"
    out = ctx.tmp / "out.nwb"

    def call() -> object:
        import nwbstore

        return nwbstore.convert(path, out, progress=False)

    return Built(call, ["convert", str(path), str(out), "-q"])


def _hdf5_with_format_zarr(ctx: Context) -> Built:
    path = _h5_sample(ctx.tmp / "real.nwb")
    return Built(_open(path, format="zarr"), ["info", str(path), "--format", "zarr"])


def _zarr_with_format_hdf5(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "real.zarr")
    return Built(_open(path, format="hdf5"), ["info", str(path), "--format", "hdf5"])


def _family_wrong_memb_size(ctx: Context) -> Built:
    pattern = str(ctx.tmp / "fam_%d.h5")
    with h5py.File(pattern, "w", driver="family", memb_size=1 << 16) as f:
        f.create_dataset("data", data=np.arange(50_000, dtype="i4"))
    return Built(
        _open(pattern, memb_size=1 << 20), ["info", pattern, "--memb-size", "1MiB"], names="fam_"
    )


def _incomplete_store(ctx: Context) -> Built:
    from nwbstore.nodes import INCOMPLETE_ATTR

    path = _zarr_sample(ctx.tmp / "half.zarr")
    _rewrite_json(
        path / "zarr.json",
        lambda m: m.setdefault("attributes", {}).update(
            {INCOMPLETE_ATTR: json.dumps({"completed": []})}
        ),
    )
    return Built(_open(path), ["info", str(path)])


# -- Zarr ------------------------------------------------------------------------------------


def _broken_root_zarr_json(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "broken.zarr")
    doc = path / "zarr.json"
    doc.write_text(doc.read_text()[:-7])
    return Built(_open(path), ["info", str(path)], names="zarr.json")


def _broken_array_zarr_json(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "broken.zarr")
    doc = path / "acquisition" / "data" / "zarr.json"
    doc.write_text("{" + doc.read_text()[:20])
    return Built(_walk(path), ["tree", str(path)], names="acquisition/data")


def _wrong_node_type(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "node.zarr")
    _rewrite_json(path / "acquisition" / "zarr.json", lambda m: m.update(node_type="folder"))
    return Built(_walk(path), ["tree", str(path)], names="acquisition")


def _root_wrong_node_type(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "rootnode.zarr")
    _rewrite_json(path / "zarr.json", lambda m: m.update(node_type=7))
    return Built(_open(path), ["info", str(path)], names="zarr.json")


def _unknown_chunk_key_encoding(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "keys.zarr")
    _rewrite_json(
        path / "acquisition" / "data" / "zarr.json",
        lambda m: m.update(chunk_key_encoding={"name": "spiral"}),
    )
    return Built(_walk(path), ["config", str(path)], names="acquisition/data")


def _wrong_shape_type(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "shape.zarr")
    _rewrite_json(path / "acquisition" / "data" / "zarr.json", lambda m: m.update(shape="big"))
    return Built(_walk(path), ["tree", str(path)], names="acquisition/data")


def _unknown_data_type(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "dtype.zarr")
    _rewrite_json(
        path / "acquisition" / "data" / "zarr.json", lambda m: m.update(data_type="float128x")
    )
    return Built(_walk(path), ["tree", str(path)], names="acquisition/data")


def _broken_zarray(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "v2.zarr", zarr_format=2)
    doc = path / "acquisition" / "data" / ".zarray"
    doc.write_text(doc.read_text().replace('"shape"', '"shape'))
    return Built(_walk(path), ["tree", str(path)], names="acquisition/data")


def _zarray_wrong_types(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "v2types.zarr", zarr_format=2)
    _rewrite_json(path / "acquisition" / "data" / ".zarray", lambda m: m.update(chunks="many"))
    return Built(_walk(path), ["tree", str(path)], names="acquisition/data")


def _broken_zgroup(ctx: Context) -> Built:
    path = _zarr_sample(ctx.tmp / "v2group.zarr", zarr_format=2)
    (path / ".zgroup").write_text("{zarr_format: 2")
    return Built(_open(path), ["info", str(path)], names=".zgroup")


def _broken_zattrs(where: str) -> Callable[[Context], Built]:
    def build(ctx: Context) -> Built:
        path = _zarr_sample(ctx.tmp / "v2attrs.zarr", zarr_format=2)
        node = path / where
        (node / ".zattrs").write_text('{"description": "cut off')
        return Built(_walk(path), ["tree", str(path)], names=".zattrs")

    return build


def _empty_directory(ctx: Context) -> Built:
    path = ctx.tmp / "nothing"
    path.mkdir()
    return Built(_open(path), ["info", str(path)])


def _zarr_root_array(ctx: Context) -> Built:
    import zarr

    path = ctx.tmp / "array.zarr"
    zarr.create_array(path, shape=(4,), dtype="i4")
    return Built(_open(path), ["info", str(path)])


def _corrupt_zarr_chunk(codec: str) -> Callable[[Context], Built]:
    """A Zarr source whose chunk 2 holds scribbled bytes; verify against a good copy."""

    def build(ctx: Context) -> Built:
        import numcodecs
        import zarr
        from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

        compressors: dict[str, Any] = {
            "zlib": numcodecs.Zlib(level=1),
            "gzip": GzipCodec(level=1),
            "zstd": ZstdCodec(level=1),
            "blosc": BloscCodec(cname="lz4"),
        }
        fmt = 2 if codec == "zlib" else 3
        good = _zarr_sample(ctx.tmp / "good.zarr", zarr_format=fmt, compressors=compressors[codec])
        bad = _zarr_sample(ctx.tmp / "bad.zarr", zarr_format=fmt, compressors=compressors[codec])
        arr = zarr.open_array(bad / "acquisition" / "data", mode="r")
        assert arr.nchunks == 4
        key = "acquisition/data/" + ("2" if fmt == 2 else "c/2")
        _scribble_chunk(bad / key)
        return Built(_verify(good, bad), ["verify", str(good), str(bad)], names="acquisition/data")

    return build


# -- S3 --------------------------------------------------------------------------------------


def _s3_missing_bucket(ctx: Context) -> Built:
    url = "s3://no-such-bucket-corpus/session.nwb.zarr"
    options = ctx.s3.storage_options
    return Built(_open(url, storage_options=options), _cli_s3("info", url, options))


def _s3_missing_bucket_hdf5(ctx: Context) -> Built:
    url = "s3://no-such-bucket-corpus/session.nwb"
    options = ctx.s3.storage_options
    return Built(_open(url, storage_options=options), _cli_s3("tree", url, options))


def _s3_missing_key(ctx: Context) -> Built:
    import uuid

    bucket = f"corpus-{uuid.uuid4().hex[:8]}"
    ctx.s3.boto3_client().create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/not-there.nwb.zarr"
    options = ctx.s3.storage_options
    return Built(_open(url, storage_options=options), _cli_s3("info", url, options))


def _s3_unreachable(ctx: Context) -> Built:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    url = "s3://bucket/session.nwb.zarr"
    options = _s3_options(endpoint)
    return Built(_open(url, storage_options=options), _cli_s3("info", url, options))


def _s3_silent_endpoint(ctx: Context) -> Built:
    """An endpoint that accepts connections and never answers: a read timeout."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    options = {
        **_s3_options(f"http://127.0.0.1:{sock.getsockname()[1]}"),
        "config_kwargs": {"read_timeout": 1, "connect_timeout": 1},
    }
    url = "s3://bucket/session.nwb.zarr"
    return Built(_open(url, storage_options=options), _cli_s3("info", url, options), keep=sock)


def _http_unreachable(ctx: Context) -> Built:
    url = f"http://127.0.0.1:{_closed_port()}/session.nwb"
    return Built(_open(url), ["info", url])


def _s3_unresolvable_host(ctx: Context) -> Built:
    url = "s3://bucket/session.nwb"
    options = _s3_options("http://no-such-host.invalid")
    return Built(_open(url, storage_options=options), _cli_s3("info", url, options))


def _s3_bad_credentials(ctx: Context) -> Built:
    url = f"s3://{ctx.iam.bucket}/session.nwb.zarr"
    options = _s3_options(ctx.iam.endpoint_url, key="AKIANOSUCHKEY0000000", secret="s3cr3t-x")
    return Built(_open(url, storage_options=options), _cli_s3("info", url, options))


def _s3_bad_credentials_hdf5(ctx: Context) -> Built:
    url = f"s3://{ctx.iam.bucket}/session.nwb"
    options = _s3_options(ctx.iam.endpoint_url, key="AKIANOSUCHKEY0000000", secret="s3cr3t-x")
    return Built(_open(url, storage_options=options), _cli_s3("tree", url, options))


def _s3_convert_into_missing_bucket(ctx: Context) -> Built:
    import nwbstore

    src = _h5_sample(ctx.tmp / "good.nwb")
    url = "s3://no-such-bucket-corpus/out.nwb.zarr"
    options = ctx.s3.storage_options

    def call() -> object:
        return nwbstore.convert(src, url, storage_options=options, progress=False)

    cli = ["convert", str(src), url, "-q", "--storage-options", json.dumps(options)]
    return Built(call, cli, names="no-such-bucket-corpus")


def _s3_no_credentials(ctx: Context) -> Built:
    url = "s3://some-bucket/session.nwb.zarr"
    options = {"endpoint_url": ctx.s3.endpoint_url, "skip_instance_cache": True}
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(ctx.tmp / "no-credentials"),
        "AWS_CONFIG_FILE": str(ctx.tmp / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return Built(_open(url, storage_options=options), _cli_s3("info", url, options), env=env)


# -- command-line values ---------------------------------------------------------------------


def _cli_value(*extra: str, command: str = "convert") -> Callable[[Context], Built]:
    def build(ctx: Context) -> Built:
        src = _h5_sample(ctx.tmp / "good.nwb")
        if command == "convert":
            args = ["convert", str(src), str(ctx.tmp / "out.zarr"), "-q", *extra]
        elif command == "truncate":
            args = ["truncate", str(src), str(ctx.tmp / "out.zarr"), "-q", *extra]
        else:
            args = [command, str(src), *extra]
        return Built(None, args)

    return build


def _chunks_wrong_rank_for_path(ctx: Context) -> Built:
    import nwbstore

    src = _h5_sample(ctx.tmp / "good.nwb")
    out = ctx.tmp / "out.zarr"

    def call() -> object:
        return nwbstore.convert(src, out, chunks={"acquisition/ts/data": (100, 4)}, progress=False)

    return Built(
        call,
        ["convert", str(src), str(out), "-q", "--chunks", "acquisition/ts/data=100,4"],
        names="acquisition/ts/data",
    )


def _chunks_unknown_path(ctx: Context) -> Built:
    import nwbstore

    src = _h5_sample(ctx.tmp / "good.nwb")
    out = ctx.tmp / "out.zarr"

    def call() -> object:
        return nwbstore.convert(src, out, chunks={"acquisition/nope": (100,)}, progress=False)

    return Built(call, ["convert", str(src), str(out), "-q", "--chunks", "acquisition/nope=100"])


def _verify_differs(ctx: Context) -> Built:
    a = _h5_sample(ctx.tmp / "a.nwb")
    b = _h5_sample(ctx.tmp / "b.nwb")
    with h5py.File(b, "r+") as f:
        f["acquisition/ts/data"][5] = -1.0
    return Built(_verify(a, b), ["verify", str(a), str(b)], names="acquisition/ts/data")


def _store_errors() -> dict[str, type[BaseException]]:
    from nwbstore import errors

    return {name: getattr(errors, name) for name in errors.__all__}


_E = _store_errors()

#: The corpus. Fragments are checked in the API message and on the CLI's stderr.
CASES: list[BadInput] = [
    # HDF5 damage
    BadInput("hdf5-truncated", _truncated_hdf5, _E["CorruptStoreError"], "truncated"),
    BadInput("hdf5-flipped-superblock", _flipped_superblock, _E["CorruptStoreError"], "damaged"),
    BadInput(
        "hdf5-flipped-dataset-header", _flipped_object_header, _E["CorruptStoreError"], "damaged"
    ),
    BadInput(
        "hdf5-flipped-group-header", _flipped_group_header, _E["CorruptStoreError"], "damaged"
    ),
    BadInput(
        "hdf5-flipped-header-convert",
        _flipped_header_convert,
        _E["CorruptStoreError"],
        "damaged",
    ),
    BadInput(
        "hdf5-flipped-header-verify",
        _flipped_header_verify,
        _Differences,
        "cannot be read",
        exit_code=1,
    ),
    BadInput(
        "hdf5-corrupt-chunk-decoded",
        _hdf5_corrupt_chunk_source,
        _E["CorruptChunkError"],
        "chunk index (2,)",
    ),
    BadInput(
        "hdf5-corrupt-chunk-raw-copy-verify",
        _hdf5_corrupt_chunk_verify,
        None,
        "chunk index (1,)",
        exit_code=1,
    ),
    # not NWB at all
    BadInput("empty-file-nwb", _empty_file, _E["UnknownFormatError"], "not an HDF5 file"),
    BadInput("empty-file", _empty_file_no_extension, _E["UnknownFormatError"], "HDF5 or Zarr"),
    BadInput("text-file", _text_file, _E["UnknownFormatError"], "HDF5 or Zarr"),
    BadInput("text-file-nwb", _text_file_nwb_extension, _E["UnknownFormatError"], "not an HDF5"),
    BadInput("directory-named-nwb", _directory_named_nwb, _E["UnknownFormatError"], "directory"),
    BadInput("empty-directory", _empty_directory, _E["UnknownFormatError"], "HDF5 or Zarr"),
    BadInput("missing-path", _missing_path, _E["StoreNotFoundError"], "does not exist"),
    BadInput(
        "missing-source-convert", _missing_source_convert, _E["StoreNotFoundError"], "nowhere"
    ),
    BadInput("hdf5-as-zarr", _hdf5_with_format_zarr, _E["UnknownFormatError"], "not a Zarr"),
    BadInput("zarr-as-hdf5", _zarr_with_format_hdf5, _E["UnknownFormatError"], "format="),
    BadInput("family-wrong-memb-size", _family_wrong_memb_size, _E["SettingsError"], "memb_size"),
    BadInput("incomplete-store", _incomplete_store, _E["IncompleteStoreError"], "incomplete"),
    BadInput("zarr-root-is-array", _zarr_root_array, _E["UnknownFormatError"], "array"),
    # Zarr damage
    BadInput("zarr-broken-root-json", _broken_root_zarr_json, _E["CorruptStoreError"], "JSON"),
    BadInput("zarr-broken-array-json", _broken_array_zarr_json, _E["CorruptStoreError"], "JSON"),
    BadInput("zarr-wrong-node-type", _wrong_node_type, _E["CorruptStoreError"], "node_type"),
    BadInput(
        "zarr-root-wrong-node-type", _root_wrong_node_type, _E["CorruptStoreError"], "node_type"
    ),
    BadInput(
        "zarr-unknown-chunk-key-encoding",
        _unknown_chunk_key_encoding,
        _E["CorruptStoreError"],
        "spiral",
    ),
    BadInput("zarr-shape-not-a-list", _wrong_shape_type, _E["CorruptStoreError"], "damaged"),
    BadInput(
        "zarr-unknown-data-type", _unknown_data_type, _E["UnsupportedDtypeError"], "float128x"
    ),
    BadInput("zarr2-broken-zarray", _broken_zarray, _E["CorruptStoreError"], "JSON"),
    BadInput("zarr2-zarray-wrong-types", _zarray_wrong_types, _E["CorruptStoreError"], "damaged"),
    BadInput("zarr2-broken-zgroup", _broken_zgroup, _E["CorruptStoreError"], "JSON"),
    BadInput("zarr2-broken-root-zattrs", _broken_zattrs("."), _E["CorruptStoreError"], "JSON"),
    BadInput(
        "zarr2-broken-group-zattrs",
        _broken_zattrs("acquisition"),
        _E["CorruptStoreError"],
        "JSON",
    ),
    BadInput(
        "zarr-corrupt-chunk-zlib",
        _corrupt_zarr_chunk("zlib"),
        _Differences,
        "chunk index (2,)",
        exit_code=1,
    ),
    BadInput(
        "zarr-corrupt-chunk-gzip",
        _corrupt_zarr_chunk("gzip"),
        _Differences,
        "chunk index (2,)",
        exit_code=1,
    ),
    BadInput(
        "zarr-corrupt-chunk-zstd",
        _corrupt_zarr_chunk("zstd"),
        _Differences,
        "chunk index (2,)",
        exit_code=1,
    ),
    BadInput(
        "zarr-corrupt-chunk-blosc",
        _corrupt_zarr_chunk("blosc"),
        _Differences,
        "chunk index (2,)",
        exit_code=1,
    ),
    BadInput("verify-differs", _verify_differs, _Differences, "values differ", exit_code=1),
    # S3
    BadInput(
        "s3-missing-bucket",
        _s3_missing_bucket,
        _E["BucketNotFoundError"],
        "bucket 'no-such-bucket-corpus'",
        needs="s3",
    ),
    BadInput(
        "s3-missing-bucket-hdf5",
        _s3_missing_bucket_hdf5,
        _E["BucketNotFoundError"],
        "does not exist",
        needs="s3",
    ),
    BadInput("s3-missing-key", _s3_missing_key, _E["StoreNotFoundError"], "not-there", needs="s3"),
    BadInput("s3-unreachable", _s3_unreachable, _E["EndpointUnreachableError"], "cannot reach"),
    BadInput("s3-read-timeout", _s3_silent_endpoint, _E["EndpointUnreachableError"], "Timeout"),
    BadInput(
        "s3-unresolvable-host",
        _s3_unresolvable_host,
        _E["EndpointUnreachableError"],
        "no-such-host.invalid",
    ),
    BadInput(
        "s3-bad-credentials",
        _s3_bad_credentials,
        _E["AccessDeniedError"],
        "denied",
        needs="iam",
    ),
    BadInput(
        "s3-bad-credentials-hdf5",
        _s3_bad_credentials_hdf5,
        _E["AccessDeniedError"],
        "denied",
        needs="iam",
    ),
    BadInput(
        "s3-convert-into-missing-bucket",
        _s3_convert_into_missing_bucket,
        _E["BucketNotFoundError"],
        "create the bucket",
        needs="s3",
    ),
    BadInput(
        "s3-no-credentials",
        _s3_no_credentials,
        _E["AccessDeniedError"],
        "no credentials",
        needs="s3",
    ),
    # command-line values (usage errors)
    BadInput("cli-chunks-not-int", _cli_value("--chunks", "1000,x"), None, "--chunks"),
    BadInput("cli-chunks-zero", _cli_value("--chunks", "0,16"), None, "positive"),
    BadInput("cli-compression-level", _cli_value("--compression", "zstd:abc"), None, "level"),
    BadInput("cli-compression-name", _cli_value("--compression", "nosuch"), None, "nosuch"),
    BadInput("cli-jobs-zero", _cli_value("--jobs", "0"), None, "--jobs"),
    BadInput("cli-n-negative", _cli_value("-n", "-1", command="truncate"), None, "-n"),
    BadInput("cli-storage-options-json", _cli_value("--storage-options", "{bad"), None, "JSON"),
    BadInput("cli-storage-options-list", _cli_value("--storage-options", "[1, 2]"), None, "object"),
    BadInput(
        "cli-memb-size", _cli_value("--memb-size", "lots", command="info"), None, "--memb-size"
    ),
    BadInput(
        "chunks-wrong-rank-for-path",
        _chunks_wrong_rank_for_path,
        _E["SettingsError"],
        "acquisition/ts/data",
    ),
    BadInput("chunks-unknown-path", _chunks_unknown_path, _E["SettingsError"], "acquisition/nope"),
]
