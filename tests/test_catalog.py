"""The metadata catalog of remote HDF5: byte spans h5py read, replayed, validated by ETag.

Files go to moto's ThreadedMotoServer behind the counting proxy (``counting_s3``); request
counts and rounds are the proxy's. Values read through the catalog are checked against h5py's
read of the LOCAL file. ``NWBSTORE_CACHE_DIR`` points at a fresh directory for every test
(``catalog_cache_dir`` in conftest.py).
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import nwbstore
from nwbstore.backends._catalog import (
    MAX_RECORDED_READ,
    Catalog,
    CatalogFile,
    cache_dir,
    open_with_catalog,
    public_url,
)
from nwbstore.backends._catalog_format import _Spans
from nwbstore.catalog import walk_metadata
from nwbstore.cli import main
from nwbstore.errors import (
    CorruptCatalogError,
    CorruptStoreError,
    NwbStoreError,
    RemoteObjectChangedError,
    SettingsError,
    StoreNotFoundError,
)

pytestmark = pytest.mark.s3

CATALOG_LOG = "nwbstore.backends._catalog"


@pytest.fixture(scope="module")
def rich_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two versions of the rich sample (different values and sizes)."""
    from nwbstore.testing.nwb_samples import build_rich_nwb

    where = tmp_path_factory.mktemp("catalog")
    first = build_rich_nwb(where / "rich.nwb", n_samples=3000, seed=0)
    second = build_rich_nwb(where / "rich2.nwb", n_samples=2500, seed=1)
    return first, second


@pytest.fixture
def ttl(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def set_ttl(seconds: float) -> None:
        monkeypatch.setenv("NWBSTORE_CATALOG_TTL", str(seconds))

    yield set_ttl


def _upload(s3: Any, local: Path, key: str) -> str:
    s3.filesystem().put_file(str(local), f"{s3.bucket}/{key}")
    return f"s3://{s3.bucket}/{key}"


def _uploaded(s3: Any, local: Path, key: str) -> tuple[str, dict[str, Any]]:
    """``local`` uploaded as ``key``: its URL and the storage options to open it with."""
    return _upload(s3, local, key), s3.storage_options


def _cached() -> list[Path]:
    return sorted(p for p in cache_dir().glob("*.nwbcat"))


def _plain(f: h5py.File, value: Any) -> Any:
    """``value`` with references replaced by their targets' paths (comparable across files)."""
    if isinstance(value, h5py.RegionReference):
        return ("region", f[value].name)
    if isinstance(value, h5py.Reference):
        return ("ref", f[value].name) if value else ("ref", None)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O" or value.dtype.names:
            return [_plain(f, v) for v in value.tolist()] if value.ndim else _plain(f, value[()])
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.void | tuple):
        return tuple(_plain(f, v) for v in value)
    if isinstance(value, list):
        return [_plain(f, v) for v in value]
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, value.tobytes())
    return value


def _everything(f: h5py.File) -> dict[str, Any]:
    """Every attribute and dataset value of ``f`` (and each link), references as paths."""
    out: dict[str, Any] = {}

    def visit(name: str, link: Any) -> None:
        out[f"link {name}"] = (type(link).__name__, getattr(link, "path", None))
        obj = f.get(name)
        if obj is None:
            return
        for key in sorted(obj.attrs):
            out[f"{name}@{key}"] = _plain(f, obj.attrs[key])
        if isinstance(obj, h5py.Dataset):
            out[name] = (obj.shape, obj.dtype.str, obj.chunks, _plain(f, obj[()]))

    for key in sorted(f.attrs):
        out[f"/@{key}"] = _plain(f, f.attrs[key])
    f.visititems_links(visit)
    return out


def _check_values(store: Any, local: Path) -> None:
    with h5py.File(local, "r") as ref:
        expected = _everything(ref)
        numeric: list[str] = []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "biufc":
                numeric.append(name)

        ref.visititems(visit)
        assert _everything(store.h5file) == expected  # h5py over the catalog
        assert len(expected) > 100 and len(numeric) > 20
        for name in numeric:  # nwbstore's reads (chunk reader or h5py)
            got, want = np.asarray(store[name][()]), ref[name][()]
            assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True), name


# -- warm opens --------------------------------------------------------------------------------


def test_warm_open_costs_one_request_and_none_within_ttl(
    counting_s3: Any, rich_files: tuple[Path, Path], ttl: Any
) -> None:
    local, _ = rich_files
    url, opts = _uploaded(counting_s3, local, "rich.nwb")
    counting_s3.reset()
    with nwbstore.open(url, storage_options=opts) as store:
        walk_metadata(store)
        cold = counting_s3.total
        assert store.catalog is not None and store.catalog.spans
    assert cold >= 3  # the probe, the sidecar GET (404), h5py's block reads
    [cached] = _cached()
    catalog = Catalog.loads(cached.read_bytes())
    assert catalog.url == url and catalog.size == local.stat().st_size
    assert catalog.etag == counting_s3.filesystem().info(url)["ETag"]

    ttl(0)  # expired: one HEAD validates the catalog
    counting_s3.reset()
    with nwbstore.open(url, storage_options=opts) as store:
        walk_metadata(store)
        assert dict(counting_s3.counts) == {"HEAD": 1}
        _check_values(store, local)

    ttl(3600)  # validated moments ago: no request at all
    counting_s3.reset()
    with nwbstore.open(url, storage_options=opts) as store:
        walk_metadata(store)
        assert counting_s3.total == 0
        assert store.remote.etag == catalog.etag and store.remote.size == catalog.size
        _check_values(store, local)


def test_catalog_off_writes_nothing(counting_s3: Any, rich_files: tuple[Path, Path]) -> None:
    local, _ = rich_files
    url = _upload(counting_s3, local, "rich.nwb")
    counting_s3.reset()
    with nwbstore.open(url, storage_options=counting_s3.storage_options, catalog=False) as store:
        walk_metadata(store)
        assert store.catalog is None
        assert counting_s3.counts["GET"] >= 1
        requests = [r.path for r in counting_s3.proxy.requests]
    assert not any(p.endswith(".nwbcat") for p in requests)  # no sidecar asked for
    assert _cached() == []
    counting_s3.reset()
    with nwbstore.open(url, storage_options=counting_s3.storage_options, catalog=False) as store:
        walk_metadata(store)
    assert counting_s3.counts["GET"] >= 1  # still cold: nothing was cached


def test_changed_object_ignores_the_cached_catalog(
    counting_s3: Any, rich_files: tuple[Path, Path], ttl: Any
) -> None:
    first, second = rich_files
    url, opts = _uploaded(counting_s3, first, "rich.nwb")
    with nwbstore.open(url, storage_options=opts) as store:
        walk_metadata(store)
        old_etag = store.remote.etag
    [cached] = _cached()
    _upload(counting_s3, second, "rich.nwb")
    new_etag = counting_s3.filesystem().info(url)["ETag"]
    assert new_etag != old_etag

    ttl(3600)  # within the TTL the old catalog is used unasked: data reads then fail loudly
    with nwbstore.open(url, storage_options=opts) as store:
        assert store.remote.etag == old_etag
        with pytest.raises(RemoteObjectChangedError):
            store["acquisition/ElectricalSeries/data"][:10]

    ttl(0)
    counting_s3.reset()
    with nwbstore.open(url, storage_options=opts) as store:
        assert store.remote.etag == new_etag
        walk_metadata(store)
        assert counting_s3.counts["GET"] >= 1  # the old catalog was not used
        _check_values(store, second)
    # replaced after the open by the new object's catalog
    assert Catalog.loads(cached.read_bytes()).etag == new_etag
    counting_s3.reset()
    with nwbstore.open(url, storage_options=opts) as store:
        walk_metadata(store)
        assert dict(counting_s3.counts) == {"HEAD": 1}
        _check_values(store, second)


# -- nwbstore index: the sidecar ---------------------------------------------------------------


def _index(counting_s3: Any, url: str, *extra: str) -> str:
    opts = {k: v for k, v in counting_s3.storage_options.items() if k != "skip_instance_cache"}
    code = main(["index", url, "--storage-options", json.dumps(opts), *extra])
    assert code == 0
    return url + ".nwbcat"


def _clear_cache() -> None:
    for path in _cached():
        path.unlink()


def test_index_writes_a_sidecar_that_makes_the_first_open_one_round(
    counting_s3: Any, rich_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    local, _ = rich_files
    url = _upload(counting_s3, local, "rich.nwb")
    sidecar = _index(counting_s3, url)
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {sidecar}: ") and " spans, " in out
    fs = counting_s3.filesystem()
    catalog = Catalog.loads(fs.cat_file(sidecar))
    assert catalog.etag == fs.info(url)["ETag"] and catalog.url == url
    assert f"{len(catalog.spans)} spans, {catalog.nbytes} bytes of metadata" in out

    _clear_cache()  # another user: nothing cached locally
    proxy = counting_s3.proxy
    proxy.latency = 0.25
    proxy.reset()
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        assert dict(proxy.counts) == {"HEAD": 1, "GET": 1}
        assert proxy.rounds() == 1  # the probe and the sidecar GET run together
        walk_metadata(store)
        assert proxy.total == 2  # the whole walk, chunk indexes included: no request
        proxy.latency = 0.0
        _check_values(store, local)
    [cached] = _cached()  # saved locally: the next open is the HEAD only
    assert Catalog.loads(cached.read_bytes()).etag == catalog.etag


def test_stale_sidecar_is_ignored(
    counting_s3: Any, rich_files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    first, second = rich_files
    url = _upload(counting_s3, first, "rich.nwb")
    _index(counting_s3, url)
    _upload(counting_s3, second, "rich.nwb")  # the object changes, its sidecar does not
    _clear_cache()
    counting_s3.reset()
    with (
        caplog.at_level(logging.DEBUG, logger=CATALOG_LOG),
        nwbstore.open(url, storage_options=counting_s3.storage_options) as store,
    ):
        walk_metadata(store)
        assert counting_s3.counts["GET"] > 1  # metadata read from the object
        _check_values(store, second)
    assert any("sidecar catalog" in r.message and "stale" in r.message for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_index_to_a_chosen_path_and_catalog_option(
    counting_s3: Any, rich_files: tuple[Path, Path], tmp_path: Path
) -> None:
    local, second = rich_files
    url = _upload(counting_s3, local, "rich.nwb")
    out = tmp_path / "made" / "rich.nwbcat"
    out.parent.mkdir()
    _index(counting_s3, url, "--output", str(out))
    assert not counting_s3.filesystem().exists(url + ".nwbcat")
    _clear_cache()
    counting_s3.reset()
    with nwbstore.open(url, storage_options=counting_s3.storage_options, catalog=out) as store:
        walk_metadata(store)
        assert dict(counting_s3.counts) == {"HEAD": 1}  # no sidecar looked for
        _check_values(store, local)
    assert _cached() == []  # an explicit catalog is the caller's: no local cache

    _upload(counting_s3, second, "rich.nwb")
    with nwbstore.open(url, storage_options=counting_s3.storage_options, catalog=out) as store:
        _check_values(store, second)  # stale: not used


def test_index_refuses_local_files(
    rich_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(rich_files[0])]) == 2
    assert "applies to HDF5 files on S3 or HTTPS" in capsys.readouterr().err


# -- damaged catalogs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) - 10],  # truncated
        lambda b: b'{"format": "something-else", "version": 1}\n' + b[b.index(b"\n") + 1 :],
        lambda b: b.replace(b'"version":1', b'"version":99', 1),
        lambda b: b"\x00\xff" + b,
        lambda b: b"",
    ],
    ids=["truncated", "format", "version", "binary", "empty"],
)
def test_damaged_catalog(
    counting_s3: Any,
    rich_files: tuple[Path, Path],
    tmp_path: Path,
    damage: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    local, _ = rich_files
    url = _upload(counting_s3, local, "rich.nwb")
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        walk_metadata(store)
    [cached] = _cached()
    good = cached.read_bytes()
    bad = damage(good)
    cached.write_bytes(bad)
    # the cache: ignored with a debug log, no warning; the open reads the object instead
    counting_s3.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with (
            caplog.at_level(logging.DEBUG, logger=CATALOG_LOG),
            nwbstore.open(url, storage_options=counting_s3.storage_options) as store,
        ):
            walk_metadata(store)
            _check_values(store, local)
    assert counting_s3.counts["GET"] >= 2  # the sidecar (404) and the object's blocks
    assert any("not a usable nwbstore catalog" in r.message for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert Catalog.loads(cached.read_bytes()).etag  # replaced by a good one
    # an explicit catalog: a named error
    explicit = tmp_path / "bad.nwbcat"
    explicit.write_bytes(bad)
    with pytest.raises(CorruptCatalogError, match=r"bad\.nwbcat") as info:
        nwbstore.open(url, storage_options=counting_s3.storage_options, catalog=explicit)
    assert isinstance(info.value, CorruptStoreError) and isinstance(info.value, NwbStoreError)
    assert "nwbstore index" in str(info.value)


def test_damaged_sidecar_is_ignored(counting_s3: Any, rich_files: tuple[Path, Path]) -> None:
    local, _ = rich_files
    url = _upload(counting_s3, local, "rich.nwb")
    counting_s3.filesystem().pipe_file(url + ".nwbcat", b'{"format": "nwbstore-catalog"}\n')
    with nwbstore.open(url, storage_options=counting_s3.storage_options) as store:
        walk_metadata(store)
        _check_values(store, local)


def test_bad_catalog_options(
    counting_s3: Any,
    rich_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local, _ = rich_files
    url, opts = _uploaded(counting_s3, local, "rich.nwb")
    with pytest.raises(StoreNotFoundError, match=r"missing\.nwbcat"):
        nwbstore.open(url, storage_options=opts, catalog=tmp_path / "missing.nwbcat")
    with pytest.raises(SettingsError, match="catalog=3"):
        nwbstore.open(url, storage_options=opts, catalog=3)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="applies to remote HDF5"):
        nwbstore.open(local, catalog=tmp_path / "x.nwbcat")
    monkeypatch.setenv("NWBSTORE_CATALOG_TTL", "soon")
    with pytest.raises(SettingsError, match="NWBSTORE_CATALOG_TTL"):
        nwbstore.open(url, storage_options=opts)


# -- the pieces --------------------------------------------------------------------------------


def test_spans_merge_and_lookup() -> None:
    spans = _Spans()
    spans.add(10, b"abcd")  # 10-14
    spans.add(20, b"xyz")  # 20-23
    assert len(spans) == 2 and spans.get(11, 2) == b"bc" and spans.get(12, 4) is None
    spans.add(14, b"EFGHIJ")  # touches both: 10-23 in one span
    assert spans.items() == [(10, b"abcdEFGHIJxyz")]
    spans.add(5, b"01234ab")  # overlaps the start (same bytes: one object)
    assert spans.items() == [(5, b"01234abcdEFGHIJxyz")]
    assert spans.get(5, 18) == b"01234abcdEFGHIJxyz" and spans.get(4, 2) is None
    spans.add(100, b"q")
    assert spans.nbytes == 19 and spans.get(100, 1) == b"q" and spans.get(23, 1) is None


def test_catalog_file_serves_spans_and_records_small_reads() -> None:
    data = bytes(range(256)) * (5 * MAX_RECORDED_READ // 256)
    inner = io.BytesIO(data)
    fh = CatalogFile(inner, len(data), [(0, data[:100])])
    assert fh.seek(0, os.SEEK_END) == len(data) and fh.tell() == len(data)
    fh.seek(10)
    assert fh.read(50) == data[10:60] and (fh.hits, fh.misses) == (1, 0) and not fh.changed
    buf = bytearray(40)
    fh.seek(90)
    assert fh.readinto(buf) == 40 and bytes(buf) == data[90:130]
    assert (fh.hits, fh.misses) == (1, 1) and fh.changed
    fh.seek(95)
    assert fh.read(30) == data[95:125] and fh.hits == 2  # recorded and merged: 0-130
    big = MAX_RECORDED_READ + 1
    fh.seek(1000)
    assert fh.read(big) == data[1000 : 1000 + big]
    fh.seek(1000)
    fh.read(big)
    assert fh.misses == 3  # bulk data is never recorded
    assert [(o, len(d)) for o, d in fh.spans()] == [(0, 130)]
    fh.seek(len(data) - 5)
    assert fh.read(100) == data[-5:] and fh.read(1) == b""
    fh.close()
    assert inner.closed and fh.closed


def test_dumps_loads_round_trip() -> None:
    cat = Catalog("s3://b/k.nwb", '"abc"', 1000, [(0, b"\x89HDF"), (500, b"\n\n{x")])
    back = Catalog.loads(cat.dumps())
    assert (back.url, back.etag, back.size, back.spans) == (cat.url, cat.etag, 1000, cat.spans)
    head = json.loads(cat.dumps().split(b"\n", 1)[0])
    assert head["format"] == "nwbstore-catalog" and head["spans"] == [[0, 4], [500, 4]]
    overlapping = cat.dumps().replace(b"[500,4]", b"[2,4]")
    with pytest.raises(CorruptCatalogError, match="overlaps"):
        Catalog.loads(overlapping)
    past_end = cat.dumps().replace(b'"size":1000', b'"size":503')
    with pytest.raises(CorruptCatalogError, match="past the object"):
        Catalog.loads(past_end)


def test_url_keeps_no_credentials() -> None:
    assert public_url("https://me:secret@host/x.nwb?X-Amz-Signature=abc") == "https://host/x.nwb"
    assert public_url("s3://bucket/key.nwb") == "s3://bucket/key.nwb"


class _NoSidecarFS:
    """A filesystem with no sidecar (the only call open_with_catalog makes on it)."""

    def cat_file(self, path: str) -> bytes:
        raise FileNotFoundError(path)


def test_no_etag_is_never_cached(tmp_path: Path) -> None:
    inner = io.BytesIO(b"x" * 100)
    opened = open_with_catalog(
        "https://host/file.nwb",
        fs=_NoSidecarFS(),
        path="https://host/file.nwb",
        storage_options={},
        catalog=True,
        endpoint="",
        probe=lambda: {"size": 100},
        open_file=lambda info: inner,
    )
    assert opened.fileobj is inner and opened.session is None


def test_two_readers_closing_keep_both_readers_spans(
    counting_s3: Any, rich_files: tuple[Path, Path], ttl: Any
) -> None:
    """A reader that saw less must not replace the cached spans of one that saw more."""
    local, _ = rich_files
    url, opts = _uploaded(counting_s3, local, "rich-two-readers.nwb")
    ttl(0)
    walker = nwbstore.open(url, storage_options=opts)
    glancer = nwbstore.open(url, storage_options=opts)  # cold too: nothing cached yet
    walk_metadata(walker)
    walker.close()
    glancer.close()  # saw only the root: closing it last must not drop the walk's spans

    assert len([p for p in _cached() if Catalog.loads(p.read_bytes()).url == url]) == 1
    counting_s3.reset()
    with nwbstore.open(url, storage_options=opts) as store:
        walk_metadata(store)
        assert dict(counting_s3.counts) == {"HEAD": 1}
        _check_values(store, local)


def test_a_second_open_beside_an_open_store_starts_from_its_spans(
    counting_s3: Any, rich_files: tuple[Path, Path], ttl: Any
) -> None:
    """nwbstore.nwb.read or xr.open_dataset beside an open store: one HEAD, not a cold open."""
    local, _ = rich_files
    url, opts = _uploaded(counting_s3, local, "rich-live.nwb")
    ttl(0)
    with nwbstore.open(url, storage_options=opts) as first:
        walk_metadata(first)
        assert not _cached()  # nothing saved yet: the first store is still open
        counting_s3.reset()
        with nwbstore.open(url, storage_options=opts) as second:
            walk_metadata(second)
            assert dict(counting_s3.counts) == {"HEAD": 1}
            _check_values(second, local)


def test_a_store_open_on_an_older_version_is_not_used(
    counting_s3: Any, rich_files: tuple[Path, Path], ttl: Any
) -> None:
    first_file, second_file = rich_files
    url, opts = _uploaded(counting_s3, first_file, "rich-live-replaced.nwb")
    ttl(0)
    with nwbstore.open(url, storage_options=opts) as old:
        walk_metadata(old)
        _upload(counting_s3, second_file, "rich-live-replaced.nwb")  # a new ETag and size
        with nwbstore.open(url, storage_options=opts) as new:
            walk_metadata(new)
            _check_values(new, second_file)


def test_small_values_read_by_the_chunk_reader_are_cached_with_the_catalog(
    counting_s3: Any, rich_files: tuple[Path, Path], ttl: Any
) -> None:
    """Index coordinates and small columns (what xarray reads at open) cost no request on a
    warm open: the chunk reader serves them from the catalog and records the ones it fetched."""
    local, _ = rich_files
    url, opts = _uploaded(counting_s3, local, "rich-values.nwb")
    ttl(0)
    small: list[str] = []

    def visit(name: str, obj: Any) -> None:
        numeric = isinstance(obj, h5py.Dataset) and obj.ndim == 1 and obj.dtype.kind in "iuf"
        if numeric and 0 < obj.nbytes <= 64 * 1024:
            small.append(name)

    with h5py.File(local, "r") as f:
        f.visititems(visit)
        expected = {name: f[name][()] for name in small}
    assert len(small) >= 5
    with nwbstore.open(url, storage_options=opts) as store:
        walk_metadata(store)
        assert sum(store.chunk_reader(store[n].h5py_dataset) is not None for n in small) >= 3
        for name in small:
            np.testing.assert_array_equal(store[name][...], expected[name])
    counting_s3.reset()
    with nwbstore.open(url, storage_options=opts) as store:
        walk_metadata(store)
        for name in small:
            np.testing.assert_array_equal(store[name][...], expected[name])
        assert dict(counting_s3.counts) == {"HEAD": 1}
