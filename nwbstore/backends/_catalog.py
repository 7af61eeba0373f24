"""The metadata catalog of remote HDF5: the exact byte spans h5py read, replayed from memory.

h5py opens a remote file through a file object and asks it for exact byte ranges (superblock,
object headers, B-tree nodes, heaps, small contiguous data). :class:`CatalogFile` sits between
h5py and the fsspec file: a read that lies inside recorded spans is served from memory, any
other read goes to the network and, if it is small (metadata, not bulk data), is recorded.
The spans are saved with the object's ETag and size as a :class:`Catalog`, in the local cache
(``$NWBSTORE_CACHE_DIR``, else ``~/.cache/nwbstore/catalogs``) or next to the object
(``<url>.nwbcat``, written by ``nwbstore index``). h5py still parses everything itself: the
catalog only spares the requests, so every HDF5 feature h5py reads keeps working.

A catalog is trusted only for the object it was made from: its ETag and size must equal the
object's. A local cache entry validated less than ``NWBSTORE_CATALOG_TTL`` seconds ago (default
0: never) is used without asking the server; otherwise the open's probe (one HEAD) validates it.

The value and its file format (no pickle) are :mod:`nwbstore.backends._catalog_format`.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nwbstore.backends._catalog_format import CATALOG_FORMAT, CATALOG_VERSION, Catalog, _Spans
from nwbstore.errors import CorruptCatalogError, SettingsError, StoreNotFoundError

__all__ = [
    "CACHE_DIR_ENV",
    "CATALOG_FORMAT",
    "CATALOG_VERSION",
    "DEFAULT_TTL",
    "MAX_RECORDED_READ",
    "SIDECAR_SUFFIX",
    "TTL_ENV",
    "Catalog",
    "CatalogFile",
    "CatalogSession",
    "cache_dir",
    "cache_path",
    "open_with_catalog",
    "public_url",
    "write_catalog",
]

#: Reads larger than this are bulk data, not metadata: served, never recorded.
MAX_RECORDED_READ = 2**20
#: Extension of a catalog file; ``nwbstore index URL`` writes ``URL + SIDECAR_SUFFIX``.
SIDECAR_SUFFIX = ".nwbcat"
CACHE_DIR_ENV = "NWBSTORE_CACHE_DIR"
TTL_ENV = "NWBSTORE_CATALOG_TTL"
#: Seconds a validated local cache entry is used without asking the server.
DEFAULT_TTL = 0.0  # always validated by the open's probe; a longer TTL trusts a cache unasked

logger = logging.getLogger(__name__)


# -- the file object h5py reads ----------------------------------------------------------------


class CatalogFile:
    """A read-only binary file object over ``inner`` (an fsspec file) that serves reads
    inside recorded spans from memory and records the other small reads.

    Parameters
    ----------
    inner
        The fsspec file object (``seek``/``read``), opened lazily by the caller's choice.
    size
        The object's size (``seek(0, 2)`` answers it without a request).
    spans
        Spans known already (a catalog's); they are served, never asked for again.
    record
        Record reads of at most :data:`MAX_RECORDED_READ` bytes that went to ``inner``.
    """

    def __init__(
        self,
        inner: Any,
        size: int,
        spans: list[tuple[int, bytes]] | None = None,
        *,
        record: bool = True,
    ) -> None:
        self._inner = inner
        self.size = int(size)
        self._spans = _Spans(spans)
        self._record = record
        self._pos = 0
        self._lock = threading.Lock()
        self._closed = False
        #: Reads served from memory and reads that went to the inner file.
        self.hits = 0
        self.misses = 0
        #: True once a read was recorded that the starting spans did not hold.
        self.changed = False

    # -- io -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"whence={whence!r} is not 0, 1 or 2")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def read(self, size: int = -1) -> bytes:
        with self._lock:
            start = self._pos
            n = self.size - start if size is None or size < 0 else size
            data = self._read_at(start, n)
            self._pos = start + len(data)
            return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with self._lock:
            start = self._pos
            data = self._read_at(start, len(view))
            view[: len(data)] = data
            self._pos = start + len(data)
            return len(data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._inner.close()

    def __enter__(self) -> CatalogFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- spans ----------------------------------------------------------------------------

    def spans(self) -> list[tuple[int, bytes]]:
        """Every span held (the catalog's and the ones recorded since)."""
        with self._lock:
            return self._spans.items()

    def cached(self, offset: int, size: int) -> bytes | None:
        """The ``size`` bytes at ``offset`` if the spans hold them, else None (no request)."""
        with self._lock:
            return self._spans.get(offset, size)

    def remember(self, offset: int, data: bytes) -> None:
        """Record ``data`` read at ``offset`` by another reader of this object (the chunk
        reader's small values): saved with the catalog, served to the next open."""
        if not self._record or not data or len(data) > MAX_RECORDED_READ:
            return
        with self._lock:
            self._spans.add(offset, bytes(data))
            self.changed = True

    def _read_at(self, offset: int, size: int) -> bytes:
        if self._closed:
            raise ValueError("I/O operation on a closed file")
        size = max(0, min(size, self.size - offset))
        if size == 0:
            return b""
        hit = self._spans.get(offset, size)
        if hit is not None:
            self.hits += 1
            return hit
        self.misses += 1
        data = _read_without_gc(self._inner, offset, size)
        if self._record and len(data) == size and size <= MAX_RECORDED_READ:
            self._spans.add(offset, data)
            self.changed = True
        return data


def _read_without_gc(inner: Any, offset: int, size: int) -> bytes:
    """``inner``'s bytes at ``offset`` with the garbage collector paused.

    h5py calls the file object while it holds its global lock; fsspec then runs the request
    in its event-loop thread. A collection started there can free h5py objects, and freeing
    them needs that lock: both threads wait forever (seen in the tests, at random points of
    s3fs's code). Pausing collection for the request's duration removes the cycle.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        inner.seek(offset)
        return bytes(inner.read(size))
    finally:
        if enabled:
            gc.enable()


# -- the local cache ---------------------------------------------------------------------------


def public_url(url: str) -> str:
    """``url`` without ``user:password@`` and query string (presigned URLs carry credentials
    there): what a catalog stores and is keyed by."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def cache_dir() -> Path:
    """Where catalogs are cached: ``$NWBSTORE_CACHE_DIR``, else ``~/.cache/nwbstore/catalogs``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "nwbstore" / "catalogs"


def cache_path(url: str, endpoint: str = "") -> Path:
    """The cache file of ``url`` (reached at ``endpoint``, for S3 URLs)."""
    key = f"{endpoint}\n{public_url(url)}".encode()
    return cache_dir() / f"{hashlib.sha256(key).hexdigest()}{SIDECAR_SUFFIX}"


def catalog_ttl() -> float:
    """``NWBSTORE_CATALOG_TTL`` in seconds (default :data:`DEFAULT_TTL`).

    Raises
    ------
    SettingsError
        The variable is not a number >= 0.
    """
    raw = os.environ.get(TTL_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_TTL
    try:
        ttl = float(raw)
    except ValueError:
        ttl = -1.0
    if not ttl >= 0:
        raise SettingsError(f"{TTL_ENV}={raw!r} must be a number of seconds >= 0 (e.g. 60)")
    return ttl


def _read_cached(path: Path) -> Catalog | None:
    """The catalog cached at ``path``, or None (missing or damaged: it is only a cache)."""
    try:
        data = path.read_bytes()
        validated = path.stat().st_mtime
    except FileNotFoundError:
        return None
    except OSError as err:
        logger.debug("catalog cache %s cannot be read (%s): ignored", path, err)
        return None
    try:
        catalog = Catalog.loads(data, source=f"cached catalog {path}")
    except CorruptCatalogError as err:
        logger.debug("%s: ignored", err)
        return None
    catalog.validated = validated
    return catalog


def _write_local(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SIDECAR_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_catalog(
    catalog: Catalog, dest: str, storage_options: Mapping[str, Any] | None = None
) -> int:
    """Write ``catalog`` to ``dest`` (a local path, atomically, or an fsspec URL, with
    ``storage_options``); returns the bytes written."""
    data = catalog.dumps()
    if "://" in dest and not dest.startswith("file://"):
        import fsspec

        fs, path = fsspec.core.url_to_fs(dest, **dict(storage_options or {}))
        fs.pipe_file(path, data)
    else:
        _write_local(Path(dest.removeprefix("file://")).expanduser(), data)
    return len(data)


# -- opening a remote file with a catalog ------------------------------------------------------


class CatalogSession:
    """The catalog side of one open remote store: what to save when it closes.

    Attributes
    ----------
    fileobj
        The :class:`CatalogFile` h5py reads.
    source
        Where the spans it started with came from: ``"cache"``, ``"sidecar"``, ``"explicit"``,
        ``"live"`` (another store of this process that has the object open)
        or ``None`` (a cold open).
    """

    def __init__(
        self,
        fileobj: CatalogFile,
        *,
        url: str,
        etag: str | None,
        source: str | None,
        save_to: Path | None,
        created: float | None,
    ) -> None:
        self.fileobj = fileobj
        self.url = url
        self.etag = etag
        self.source = source
        self._save_to = save_to
        self._created = created
        self._saved = False
        if save_to is not None:
            _live_sessions.add(save_to, self)

    def snapshot(self) -> Catalog | None:
        """The catalog of everything read so far (None if the server gave no ETag)."""
        if not self.etag:
            return None
        return Catalog(
            self.url,
            self.etag,
            self.fileobj.size,
            self.fileobj.spans(),
            created=self._created or time.time(),
        )

    def close(self) -> None:
        """Save the catalog to the local cache if it holds something the cache has not."""
        if self._save_to is not None:
            _live_sessions.discard(self._save_to, self)
        if self._saved or self._save_to is None or not self.etag:
            return
        if not (self.fileobj.changed or self.source == "sidecar"):
            return
        self._saved = True
        catalog = self.snapshot()
        if catalog is None or not catalog.spans:
            return
        catalog = self._merged_with_cache(catalog)
        try:
            _write_local(self._save_to, catalog.dumps())
        except OSError as err:  # a cache that cannot be written costs requests, nothing else
            logger.debug("catalog cache %s not written: %s", self._save_to, err)
            return
        logger.debug(
            "catalog of %s saved to %s (%d spans, %d bytes)",
            self.url,
            self._save_to,
            len(catalog.spans),
            catalog.nbytes,
        )

    def _merged_with_cache(self, catalog: Catalog) -> Catalog:
        """``catalog`` plus the spans another reader cached for the same object version.

        Without this, a reader that touched other objects would replace the cache with only
        its own spans and the next open would fetch the first reader's metadata again.
        """
        assert self._save_to is not None
        cached = _read_cached(self._save_to)
        if cached is None or not cached.matches(catalog.etag, catalog.size):
            return catalog
        spans = _Spans(cached.spans)
        for offset, data in catalog.spans:
            spans.add(offset, data)
        created = min(cached.created, catalog.created)
        return Catalog(catalog.url, catalog.etag, catalog.size, spans.items(), created=created)


class _LiveSessions:
    """The catalog sessions open in this process, by cache path (one object on one endpoint).

    A second open of an object while a first is still open (``nwbstore.nwb.read`` or one
    ``xr.open_dataset`` per group beside an open store) starts from the spans the first has
    read so far, not cold: they are saved to the cache only when the first store closes.
    Only sessions of the same ETag and size are used (checked by the second open's probe).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_path: dict[Path, weakref.WeakSet[CatalogSession]] = {}

    def add(self, path: Path, session: CatalogSession) -> None:
        with self._lock:
            self._by_path.setdefault(path, weakref.WeakSet()).add(session)

    def discard(self, path: Path, session: CatalogSession) -> None:
        with self._lock:
            sessions = self._by_path.get(path)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self._by_path[path]

    def any_open(self, path: Path) -> bool:
        with self._lock:
            return bool(self._by_path.get(path))

    def catalog(self, path: Path, etag: str | None, size: Any) -> Catalog | None:
        """The spans every open session of this object version holds, merged (or None)."""
        with self._lock:
            sessions = list(self._by_path.get(path, ()))
        found = [s for s in sessions if s.etag and s.etag == etag and s.fileobj.size == size]
        if not etag or not found:
            return None
        spans = _Spans()
        for session in found:
            for offset, data in session.fileobj.spans():
                spans.add(offset, data)
        created = min(s._created or time.time() for s in found)
        return Catalog(found[0].url, etag, int(size), spans.items(), created=created)


_live_sessions = _LiveSessions()


def _with_live(catalog: Catalog | None, live: Catalog | None) -> Catalog | None:
    """``catalog`` plus the spans of ``live`` (both of the same object version)."""
    if live is None or catalog is None:
        return catalog or live
    spans = _Spans(catalog.spans)
    for offset, data in live.spans:
        spans.add(offset, data)
    return Catalog(catalog.url, catalog.etag, catalog.size, spans.items(), catalog.created)


@dataclass
class CatalogOpen:
    """What :func:`open_with_catalog` returns."""

    #: The probe's info (size, ETag), or one made from a catalog used within its TTL;
    #: None if the probe found nothing at the URL.
    info: dict[str, Any] | None
    #: The file object for h5py (a :class:`CatalogFile` unless the catalog is off).
    fileobj: Any = None
    session: CatalogSession | None = None


def check_catalog_option(url: str, catalog: Any) -> bool | str:
    """Validate the ``catalog=`` store option.

    Raises
    ------
    SettingsError
        ``catalog`` is not a bool, a path or a URL.
    """
    if isinstance(catalog, bool):
        return catalog
    if isinstance(catalog, str | os.PathLike):
        return os.fspath(catalog)
    raise SettingsError(
        f"catalog={catalog!r} for {url} must be True (use the local cache), False (no "
        "catalog) or the path or URL of a catalog file written by `nwbstore index`"
    )


def open_with_catalog(
    url: str,
    *,
    fs: Any,
    path: str,
    storage_options: Mapping[str, Any],
    catalog: bool | str,
    endpoint: str,
    probe: Callable[[], dict[str, Any] | None],
    open_file: Callable[[dict[str, Any]], Any],
) -> CatalogOpen:
    """Probe ``url`` and open its file object, through a catalog when one is valid.

    Parameters
    ----------
    url
        The object.
    fs, path
        Its fsspec filesystem and path (for the sidecar ``<url>.nwbcat``).
    storage_options
        Options to read an explicit catalog URL with.
    catalog
        True: the local cache, then the sidecar. False: no catalog (h5py reads through
        ``open_file``'s file only). A path or URL: that catalog file.
    endpoint
        The S3 endpoint (part of the cache key: the same ``s3://`` URL on two endpoints is
        two objects).
    probe
        The open's one request: the object's info (size, ETag) or None if it is missing.
    open_file
        Opens the fsspec file object given the info (no request of its own).

    Raises
    ------
    CorruptCatalogError
        An explicit catalog file is damaged.
    StoreNotFoundError
        An explicit catalog file does not exist.
    """
    if catalog is False or "::" in url:
        info = probe()
        return CatalogOpen(info, None if info is None else open_file(info))
    if isinstance(catalog, str):
        return _open_explicit(url, catalog, storage_options, probe, open_file)
    ttl = catalog_ttl()
    local = cache_path(url, endpoint)
    cached = _read_cached(local)
    if cached is not None and time.time() - cached.validated < ttl:
        # validated moments ago: no request at all (a change since is caught by IfMatch)
        info = {"size": cached.size, "ETag": cached.etag}
        logger.debug("catalog of %s from %s, within its TTL: no probe", url, local)
        live = _live_sessions.catalog(local, cached.etag, cached.size)
        return _catalog_open(url, info, open_file, _with_live(cached, live), "cache", local)
    if cached is None and not _live_sessions.any_open(local):
        info, sidecar = _probe_with_sidecar(url, fs, path, probe)
    else:
        info, sidecar = probe(), None
    if info is None:
        return CatalogOpen(None)
    etag, size = _etag(info), info.get("size")
    live = _live_sessions.catalog(local, etag, size)
    if cached is not None and cached.matches(etag, size):
        with contextlib.suppress(OSError):
            os.utime(local)  # validated now: the TTL starts again
        return _catalog_open(url, info, open_file, _with_live(cached, live), "cache", local)
    if live is not None:  # another store of this process has this version open
        logger.debug("catalog of %s from a store open in this process", url)
        return _catalog_open(url, info, open_file, live, "live", local)
    if cached is not None:
        logger.debug("cached catalog %s of %s is stale (ETag %s, now %s)", local, url,
                     cached.etag, etag)  # fmt: skip
        sidecar = _fetch_sidecar(url, fs, path)
    if sidecar is not None:
        if sidecar.matches(etag, size):
            return _catalog_open(url, info, open_file, sidecar, "sidecar", local)
        logger.debug("sidecar catalog of %s is stale (ETag %s, object %s): ignored", url,
                     sidecar.etag, etag)  # fmt: skip
    return _catalog_open(url, info, open_file, None, None, local)


def _catalog_open(
    url: str,
    info: dict[str, Any],
    open_file: Callable[[dict[str, Any]], Any],
    catalog: Catalog | None,
    source: str | None,
    save_to: Path | None,
) -> CatalogOpen:
    inner = open_file(info)
    etag = _etag(info)
    size = info.get("size")
    if size is None or not etag:  # no ETag: nothing to validate a catalog by, never cached
        return CatalogOpen(info, inner)
    fileobj = CatalogFile(inner, int(size), catalog.spans if catalog else None)
    session = CatalogSession(
        fileobj,
        url=public_url(url),
        etag=etag,
        source=source,
        save_to=save_to,
        created=catalog.created if catalog else None,
    )
    return CatalogOpen(info, fileobj, session)


def _open_explicit(
    url: str,
    where: str,
    storage_options: Mapping[str, Any],
    probe: Callable[[], dict[str, Any] | None],
    open_file: Callable[[dict[str, Any]], Any],
) -> CatalogOpen:
    data = _read_explicit(where, storage_options)
    explicit = Catalog.loads(data, source=f"catalog {public_url(where)}")
    info = probe()
    if info is None:
        return CatalogOpen(None)
    if not explicit.matches(_etag(info), info.get("size")):
        logger.warning(
            "catalog %s is stale for %s (ETag %s, the object has %s): not used",
            public_url(where),
            url,
            explicit.etag,
            _etag(info),
        )
        explicit = None  # type: ignore[assignment]
    return _catalog_open(url, info, open_file, explicit, "explicit" if explicit else None, None)


def _read_explicit(where: str, storage_options: Mapping[str, Any]) -> bytes:
    try:
        if "://" in where and not where.startswith("file://"):
            import fsspec

            fs, path = fsspec.core.url_to_fs(where, **dict(storage_options))
            return bytes(fs.cat_file(path))
        return Path(where.removeprefix("file://")).expanduser().read_bytes()
    except FileNotFoundError:
        raise StoreNotFoundError(
            f"catalog {public_url(where)} does not exist: pass the path or URL of a file "
            "written by `nwbstore index`, or catalog=True to use the local cache"
        ) from None


def _probe_with_sidecar(
    url: str, fs: Any, path: str, probe: Callable[[], dict[str, Any] | None]
) -> tuple[dict[str, Any] | None, Catalog | None]:
    """The probe and the GET of ``<url>.nwbcat`` in one round (concurrently)."""
    with ThreadPoolExecutor(1, thread_name_prefix="nwbstore-sidecar") as pool:
        pending = pool.submit(_fetch_sidecar, url, fs, path)
        try:
            info = probe()
        except BaseException:
            pending.cancel()
            raise
        sidecar = pending.result()
    return info, sidecar


def _fetch_sidecar(url: str, fs: Any, path: str) -> Catalog | None:
    where = f"{public_url(url)}{SIDECAR_SUFFIX}"
    try:
        # one GET: s3fs would first ask for the size (a HEAD, then a LIST when it is missing)
        kwargs = {"max_concurrency": 1} if hasattr(fs, "max_concurrency") else {}
        data = bytes(fs.cat_file(f"{path}{SIDECAR_SUFFIX}", **kwargs))
    except FileNotFoundError:
        return None
    except Exception as err:  # a sidecar is optional: any failure means none
        logger.debug("sidecar catalog %s not read: %s: %s", where, type(err).__name__, err)
        return None
    try:
        return Catalog.loads(data, source=f"sidecar catalog {where}")
    except CorruptCatalogError as err:
        logger.debug("%s: ignored", err)
        return None


def _etag(info: Mapping[str, Any]) -> str | None:
    for key in ("ETag", "etag", "Etag"):
        value = info.get(key)
        if value:
            return str(value)
    return None
