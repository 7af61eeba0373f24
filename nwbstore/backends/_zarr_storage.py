"""Where a Zarr store lives: local directory, S3 (any fsspec URL) or ``memory://``.

This module turns a URL and a mode into a zarr-python store object and the Zarr format of
what is there, with nwbstore's errors: a missing input, a missing bucket or an unreachable
endpoint is a :class:`~nwbstore.errors.StoreNotFoundError` raised after one quick probe (a
single listing with retries turned down, see :mod:`nwbstore.backends._remote`), never a
botocore traceback after a minute of retries.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    SuffixByteRequest,
)
from zarr.abc.store import Store as ZarrStoreABC
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import FsspecStore

from nwbstore.backends._damage import check_zarr_document
from nwbstore.backends._object_writes import DEFAULT_CONCURRENCY, ObjectWriteStore
from nwbstore.backends._remote import (
    S3_PROTOCOLS,
    denied_write,
    list_root,
    probe_call,
    probe_filesystem,
)
from nwbstore.backends._s3_retries import RetryingFsspecStore, s3_write_options
from nwbstore.errors import (
    StoreExistsError,
    StoreNotFoundError,
    UnknownFormatError,
)

__all__ = [
    "MEMORY_STORES",
    "Location",
    "closed_on_error",
    "open_location",
    "quiet_zarr",
    "resolve_relative_url",
    "store_basename",
]

#: ``memory://name`` stores of this process: name -> the dict a ``MemoryStore`` writes into.
MEMORY_STORES: dict[str, dict[str, Any]] = {}

#: Keys at the root of a store that say which Zarr format it is.
_V3_MARKER = "zarr.json"
_V2_MARKERS = (".zgroup", ".zarray")
_ROOT_DOCS = (_V3_MARKER, *_V2_MARKERS, ".zattrs")


@contextmanager
def quiet_zarr() -> Iterator[None]:
    """Silence zarr warnings about choices nwbstore makes on purpose.

    ``NullTerminatedBytes`` (fixed ``S`` dtypes) and fixed-length strings in compounds have
    no Zarr v3 specification yet, and consolidated metadata is not part of the v3 spec: both
    are what hdmf-zarr 0.14 writes too.
    """
    from zarr.errors import UnstableSpecificationWarning, ZarrUserWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableSpecificationWarning)
        warnings.filterwarnings("ignore", "Consolidated metadata", ZarrUserWarning)
        yield


@dataclass
class Location:
    """A zarr-python store plus what the probe found there.

    Attributes
    ----------
    store
        The zarr store (``LocalStore``, ``FsspecStore`` or ``MemoryStore``).
    zarr_format
        Format of the existing store, or of the store to create.
    exists
        A Zarr hierarchy was found at the location.
    consolidated
        Consolidated metadata was found (``zarr.json`` with it, or ``.zmetadata``).
    """

    store: ZarrStoreABC
    zarr_format: int
    exists: bool
    consolidated: bool = False


def split_url(url: str) -> tuple[str, str]:
    """Split ``"s3://bucket/key"`` into ``("s3", "bucket/key")``; local paths give ``"file"``."""
    if "://" in url:
        protocol, _, rest = url.partition("://")
        return protocol.lower(), rest
    return "file", url


def store_basename(url: str) -> str:
    """Last component of a store's path or URL (``"a.zarr"`` for ``s3://b/dir/a.zarr/``)."""
    protocol, rest = split_url(url)
    if protocol == "file":
        rest = os.path.abspath(rest)
    return posixpath.basename(rest.rstrip("/"))


def resolve_relative_url(base_url: str, url: str) -> str:
    """Resolve ``url`` (relative to the directory holding the store ``base_url``).

    Absolute paths and URLs are returned unchanged.

    Examples
    --------
    >>> resolve_relative_url("s3://bucket/dir/a.zarr", "b.zarr")
    's3://bucket/dir/b.zarr'
    """
    if "://" in url or posixpath.isabs(url) or os.path.isabs(url):
        return url
    protocol, rest = split_url(base_url)
    if protocol == "file":
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(rest)), url))
    parent = posixpath.dirname(rest.rstrip("/"))
    return f"{protocol}://{posixpath.normpath(posixpath.join(parent, url))}"


def _format_from_names(names: set[str]) -> tuple[int | None, bool]:
    if _V3_MARKER in names:
        return 3, False  # consolidated metadata lives inside zarr.json; zarr finds it
    if any(m in names for m in _V2_MARKERS):
        return 2, ".zmetadata" in names
    return None, False


def _check_mode(url: str, mode: str, found: int | None, names: set[str]) -> None:
    """Apply h5py's mode rules to what was found at the location."""
    if mode in ("r", "r+") and found is None:
        if names:
            raise UnknownFormatError(
                f"{url} exists but is not a Zarr store (no zarr.json, .zgroup or .zarray at its "
                "root); pass format='hdf5' if it is an HDF5 file, or check the path"
            )
        raise StoreNotFoundError(f"{url} does not exist (mode {mode!r} needs an existing store)")
    if mode in ("w-", "x") and names:
        raise StoreExistsError(
            f"{url} already exists; mode {mode!r} never replaces it (use mode='w' to replace it, "
            "or mode='a' to add to it)"
        )
    if mode == "a" and names and found is None:
        raise UnknownFormatError(
            f"{url} exists but is not a Zarr store; refusing to add Zarr metadata into it"
        )
    if mode == "w" and names and found is None:
        raise StoreExistsError(
            f"{url} exists and is not a Zarr store; mode 'w' would delete everything in it. "
            "Remove it yourself or choose another path."
        )


def _root_is_array(url: str, names: set[str], read: Any) -> bool:
    """True if the root holds an array; raise ``CorruptStoreError`` for a damaged root document."""
    docs = {key: check_zarr_document(url, key, read(key)) for key in _ROOT_DOCS if key in names}
    if ".zarray" in names:
        return True
    v3 = docs.get(_V3_MARKER)
    return v3 is not None and v3.get("node_type") == "array"


# -- local ----------------------------------------------------------------------------------


def _open_local(url: str, path: str, mode: str, zarr_format: int) -> Location:
    from zarr.storage import LocalStore

    if os.path.isfile(path):
        if mode == "w":
            raise StoreExistsError(
                f"{url} is a file, not a Zarr directory; mode 'w' will not delete it"
            )
        names = {os.path.basename(path)}
        found = None
    elif os.path.isdir(path):
        names = set(os.listdir(path))
        found, _ = _format_from_names(names)
    else:
        names, found = set(), None
    _check_mode(url, mode, found, names)
    consolidated = (found == 2 and ".zmetadata" in names) or (
        found == 3 and _v3_consolidated(_read_file(os.path.join(path, _V3_MARKER)))
    )
    if found is not None and _root_is_array(
        url, names, lambda k: _read_file(os.path.join(path, k))
    ):
        raise UnknownFormatError(f"{url} holds a Zarr array at its root, not a group")
    if mode in ("w", "w-", "x") or found is None:
        os.makedirs(path, exist_ok=True)
    store = LocalStore(path, read_only=mode == "r")
    exists = found is not None and mode != "w"
    return Location(store, found if exists and found else zarr_format, exists, consolidated)


def _read_file(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _v3_consolidated(raw: bytes | None) -> bool:
    if raw is None or b'"consolidated_metadata"' not in raw:
        return False
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("consolidated_metadata"), dict)


# -- memory ---------------------------------------------------------------------------------


def _open_memory(url: str, name: str, mode: str, zarr_format: int) -> Location:
    from zarr.storage import MemoryStore

    data = MEMORY_STORES.get(name)
    names = {k for k in (data or {}) if "/" not in k}
    found, consolidated = _format_from_names(names)
    _check_mode(url, mode, found, names)
    if found is not None and data is not None:
        _root_is_array(url, names, lambda k: _buffer_bytes(data.get(k)))
    if found == 3 and data is not None:
        consolidated = _v3_consolidated(_buffer_bytes(data.get(_V3_MARKER)))
    if data is None:
        data = MEMORY_STORES.setdefault(name, {})
    if mode == "w":
        data.clear()
    store = MemoryStore(store_dict=data, read_only=mode == "r")
    exists = found is not None and mode != "w"
    return Location(store, found if exists and found else zarr_format, exists, consolidated)


def _buffer_bytes(buf: Any) -> bytes | None:
    return None if buf is None else bytes(buf.to_bytes())


# -- fsspec (S3 and friends) ----------------------------------------------------------------


def _sliced(whole: Buffer, byte_range: ByteRequest) -> Buffer:
    """The part of ``whole`` a zarr byte request asks for."""
    size = len(whole)
    if isinstance(byte_range, RangeByteRequest):
        return whole[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return whole[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return whole[max(0, size - byte_range.suffix) :]
    raise TypeError(f"unexpected byte request {byte_range!r}")


class _WriteCheckedFsspecStore(RetryingFsspecStore):
    """An ``FsspecStore`` whose refused writes raise nwbstore's error naming the store.

    Every request is retried under nwbstore's policy (see
    :mod:`nwbstore.backends._s3_retries`): transient faults with backoff, within bounded
    attempts and time; an unreachable endpoint and permanent errors at once.

    s3fs reports an S3 ``AccessDenied`` as a bare ``PermissionError``; here it becomes a
    :class:`~nwbstore.errors.ReadOnlyError` that names the URL and says which credentials and
    bucket permissions a write needs. Reads are untouched.

    The store has its own filesystem instance (not fsspec's cache), so :meth:`close` can end
    its HTTP session: s3fs never closes the session of an asynchronous instance, and aiohttp
    then prints "Unclosed client session" when the interpreter exits.
    """

    _preloaded: dict[str, bytes] | None = None

    def preload(self, objects: Mapping[str, bytes]) -> None:
        """Serve these objects (``b""``: known absent) from memory; read-only stores only."""
        if not self.read_only:
            raise ValueError(f"{self}: only a read-only store serves preloaded objects")
        self._preloaded = {**(self._preloaded or {}), **objects}

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        preloaded = self._preloaded
        if preloaded is not None and key in preloaded:
            data = preloaded[key]
            if not data:
                return None
            whole = prototype.buffer.from_bytes(data)
            return whole if byte_range is None else _sliced(whole, byte_range)
        return await super().get(key, prototype, byte_range)

    def with_read_only(self, read_only: bool = False) -> FsspecStore:
        store = super().with_read_only(read_only)
        if read_only and isinstance(store, _WriteCheckedFsspecStore):
            store._preloaded = self._preloaded
        return store

    def close(self) -> None:
        super().close()
        client = getattr(self.fs, "_s3", None)  # s3fs's aiobotocore client, once connected
        if client is not None:
            from zarr.core.sync import sync

            self.fs._s3 = None  # a later request (after reopening) connects again
            sync(client.close())

    def _denied(self, err: PermissionError) -> Exception:
        return denied_write(str(self.fs.unstrip_protocol(self.path)), err)

    async def set(self, key: str, value: Buffer, byte_range: tuple[int, int] | None = None) -> None:
        try:
            await super().set(key, value, byte_range)
        except PermissionError as err:
            raise self._denied(err) from err

    async def delete(self, key: str) -> None:
        try:
            await super().delete(key)
        except PermissionError as err:
            raise self._denied(err) from err

    async def delete_dir(self, prefix: str) -> None:
        try:
            await super().delete_dir(prefix)
        except PermissionError as err:
            raise self._denied(err) from err

    async def clear(self) -> None:
        try:
            await super().clear()
        except PermissionError as err:
            raise self._denied(err) from err


def _open_fsspec(
    url: str,
    protocol: str,
    path: str,
    mode: str,
    zarr_format: int,
    options: Mapping[str, Any],
    concurrency: int | None,
) -> Location:
    probe = probe_filesystem(protocol, options)
    path = path.rstrip("/")
    names = list_root(probe, url, path, protocol, options)
    found, consolidated = _format_from_names(names)
    _check_mode(url, mode, found, names)

    seen: dict[str, bytes | None] = {}

    def read(key: str) -> bytes | None:
        if key not in seen:
            try:
                op = functools.partial(probe.cat_file, f"{path}/{key}")
                seen[key] = bytes(probe_call(f"{url}/{key}", protocol, options, "GET", op))
            except FileNotFoundError:
                seen[key] = None
        return seen[key]

    if found is not None:
        if _root_is_array(url, names, read):
            raise UnknownFormatError(f"{url} holds a Zarr array at its root, not a group")
        if found == 3:
            consolidated = _v3_consolidated(read(_V3_MARKER))
    exists = found is not None and mode != "w"
    fmt = found if exists and found else zarr_format
    # the pool: write path uploads, or reads ahead (zarr itself runs async.concurrency at once)
    slots = concurrency or max(DEFAULT_CONCURRENCY, _zarr_concurrency())
    store_options = {**options, "skip_instance_cache": True}
    if protocol in S3_PROTOCOLS:
        store_options = s3_write_options(store_options, slots)
    inner = _WriteCheckedFsspecStore.from_url(
        url, storage_options=store_options, read_only=mode == "r"
    )
    assert isinstance(inner, _WriteCheckedFsspecStore)
    inner.configure_retries()
    if mode == "r":
        inner.preload({k: v for k, v in seen.items() if v is not None})  # read once
        return Location(inner, fmt, exists, consolidated)
    writer = ObjectWriteStore(inner, url=url, fresh=not names, concurrency=slots)
    if exists:
        writer.preload({k: v for k, v in seen.items() if v is not None})  # read once
    return Location(writer, fmt, exists, consolidated)


def _zarr_concurrency() -> int:
    """Requests zarr-python runs at once per operation (``async.concurrency``, default 10)."""
    import zarr

    value = zarr.config.get("async.concurrency")
    return value if isinstance(value, int) and value > 0 else 10


@contextmanager
def closed_on_error(store: ZarrStoreABC) -> Iterator[None]:
    """Close ``store`` (and its HTTP session) if the block raises, then re-raise."""
    try:
        yield
    except BaseException:
        store.close()
        raise


def open_location(
    url: str,
    mode: str,
    *,
    zarr_format: int,
    storage_options: Mapping[str, Any] | None,
    concurrency: int | None = None,
) -> Location:
    """Resolve ``url`` to a zarr store, check ``mode`` against what exists, detect the format.

    On object storage a store opened for writing is an
    :class:`~nwbstore.backends._object_writes.ObjectWriteStore` (metadata written once at
    flush, chunks uploaded in the background, at most ``concurrency`` PUTs in flight).

    Raises
    ------
    StoreNotFoundError
        Missing store (modes ``r``/``r+``), missing bucket, unreachable endpoint.
    StoreExistsError
        The store exists and the mode is ``w-``/``x``; or ``w`` would delete a non-Zarr input.
    UnknownFormatError
        Something that is not a Zarr group is at ``url``.
    CorruptStoreError
        The root's ``zarr.json`` (or ``.zgroup``) is not JSON or names no valid node type.
    """
    protocol, rest = split_url(url)
    if protocol == "file":
        return _open_local(url, rest, mode, zarr_format)
    if protocol == "memory":
        return _open_memory(url, rest.strip("/"), mode, zarr_format)
    options = dict(storage_options or {})
    return _open_fsspec(url, protocol, rest, mode, zarr_format, options, concurrency)
