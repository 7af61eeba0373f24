"""The HDF5 backend: local files (sec2), families of files, and read-only remote files.

Registry names (see :mod:`nwbstore.backends.registry`):

- ``"hdf5"`` -- a local file through the sec2 driver (``core``/``stdio`` on request).
- ``"hdf5-family"`` -- a family of member files named by a printf ``%d`` pattern. A new family
  needs ``memb_size``; an existing one is opened with the member size saved in its superblock.
- ``"hdf5-remote"`` -- read-only over an fsspec file object (``s3://``, ``https://``);
  dataset reads go through :class:`~nwbstore.backends._remote_chunks.RemoteChunkReader`
  (concurrent range GETs, no HDF5 lock) where the dataset allows it, h5py otherwise.

``hdf5plugin`` is imported here so every filter it ships is registered before any file opens.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

import h5py
import hdf5plugin  # noqa: F401 - registers the plugin filters with HDF5

from nwbstore.backends._catalog import (
    Catalog,
    CatalogSession,
    check_catalog_option,
    open_with_catalog,
)
from nwbstore.backends._chunk_index import ChunkIndex, index_problem
from nwbstore.backends._damage import corrupt_hdf5
from nwbstore.backends._gc_pause import GcPausedFile
from nwbstore.backends._hdf5_nodes import HDF5Dataset, HDF5Group
from nwbstore.backends._metadata_cache import CACHE_NAME, DEFAULT_BLOCK_SIZE, prefetch_metadata
from nwbstore.backends._remote import S3_PROTOCOLS, endpoint_of, probe_filesystem, probe_info
from nwbstore.backends._remote_chunks import (
    DEFAULT_CONCURRENCY,
    RemoteChunkReader,
    unsupported_reason,
)
from nwbstore.backends._s3_retries import (
    s3_pool_options,
    s3_write_options,
    shared_session_options,
)
from nwbstore.backends.registry import split_protocol
from nwbstore.errors import (
    CorruptStoreError,
    ReadOnlyError,
    SettingsError,
    StoreExistsError,
    StoreNotFoundError,
    UnknownFormatError,
)
from nwbstore.nodes import Capabilities, Mode, Store

__all__ = ["HDF5Dataset", "HDF5Group", "HDF5Store"]

#: h5py drivers accepted for local files besides ``family``.
LOCAL_DRIVERS = ("sec2", "core", "stdio")
#: fsspec read settings for remote files: HDF5 reads small scattered metadata blocks, so a
#: cache of small blocks, a read's missing blocks in one request, beats the default large
#: read-ahead (see :mod:`nwbstore.backends._metadata_cache`).
REMOTE_BLOCK_SIZE = DEFAULT_BLOCK_SIZE
REMOTE_CACHE_TYPE = CACHE_NAME
#: ``H5F_FAMILY_DEFAULT``: member size 0 makes HDF5 use the size saved in the superblock.
_FAMILY_SIZE_FROM_FILE = 0
_FAMILY_PATTERN = re.compile(r"%0?\d*d")

logger = logging.getLogger(__name__)


class HDF5Store(Store):
    """An open HDF5 file (or family of files).

    Use :func:`nwbstore.open`; the h5py file is available as :attr:`h5file` for operations
    nwbstore does not wrap (raw chunk reads and writes, for instance).

    Attributes
    ----------
    memb_size
        Member size in bytes of a family of files (``None`` for a single file).
    """

    format = "hdf5"

    def __init__(
        self,
        url: str,
        mode: Mode,
        h5file: h5py.File,
        *,
        backend: str = "hdf5",
        fileobj: Any = None,
        memb_size: int | None = None,
        remote: RemoteObject | None = None,
        catalog: CatalogSession | None = None,
    ) -> None:
        super().__init__(url, mode)
        self.backend = backend
        self.memb_size = memb_size
        self._file = h5file
        self._fileobj = fileobj
        self._root = HDF5Group(self, "/", h5file)
        self._remote = remote
        self._readers: dict[str, RemoteChunkReader | None] = {}
        self._readers_lock = threading.Lock()
        self._catalog = catalog

    def _check_writable(self, action: str) -> None:
        if self.backend == "hdf5-remote" and not self.closed:  # no mode makes it writable
            raise ReadOnlyError(
                f"cannot {action}: {self.url} is remote HDF5, and remote HDF5 is read-only. "
                f"To change it, convert it to Zarr (nwbstore convert {self.url} "
                "session.nwb.zarr), or download it and open the local copy for writing"
            )
        super()._check_writable(action)

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def open_url(
        cls,
        url: str,
        mode: Mode,
        *,
        backend: str = "hdf5",
        storage_options: Mapping[str, Any] | None = None,
        driver: str | None = None,
        memb_size: int | None = None,
        concurrency: int | None = None,
        catalog: bool | str = True,
    ) -> HDF5Store:
        """Open ``url`` as the registry backend ``backend`` (``hdf5``, ``hdf5-family``,
        ``hdf5-remote``).

        Raises
        ------
        StoreNotFoundError
            The file (or member 0 of a family) does not exist in mode ``"r"``/``"r+"``.
        StoreExistsError
            The file exists in mode ``"w-"``/``"x"``.
        UnknownFormatError
            The file is not HDF5.
        ReadOnlyError
            No permission to write, or a write mode on a remote file.
        SettingsError
            Bad ``driver``/``memb_size``/family pattern.
        """
        if backend == "hdf5-remote":
            return cls._open_remote(
                url, mode, storage_options, driver, memb_size, concurrency, catalog
            )
        path = os.path.expanduser(split_protocol(url)[1])
        if backend == "hdf5-family" or driver == "family":
            return cls._open_family(url, path, mode, memb_size)
        if driver not in (None, *LOCAL_DRIVERS):
            raise SettingsError(
                f"driver={driver!r} cannot open {url}: use one of {', '.join(LOCAL_DRIVERS)} "
                "or 'family' (with a %d pattern)"
            )
        if memb_size is not None:
            raise SettingsError(
                f"memb_size applies to HDF5 families only; {url} has no %d pattern "
                "(drop memb_size, or name the members like 'data_%d.h5')"
            )
        _check_exists(url, path, mode)
        try:
            h5 = h5py.File(path, _h5py_mode(mode), driver=driver or "sec2")
        except OSError as err:
            raise _open_error(err, url, mode) from err
        return cls(url, mode, h5, backend=backend)

    @classmethod
    def _open_family(cls, url: str, pattern: str, mode: Mode, memb_size: int | None) -> HDF5Store:
        member0 = _family_member(url, pattern, 0)
        exists = os.path.exists(member0)
        _check_exists(url, member0, mode)
        creating = mode == "w" or not exists
        if memb_size is not None and (not isinstance(memb_size, int) or memb_size <= 0):
            raise SettingsError(f"memb_size={memb_size!r} for {url} must be a positive int")
        if creating and memb_size is None:
            raise SettingsError(
                f"creating the HDF5 family {url} needs memb_size= (bytes per member file, "
                "e.g. 2**30); it is only found by itself when reading an existing family"
            )
        size = memb_size if creating else _FAMILY_SIZE_FROM_FILE
        try:
            h5 = h5py.File(pattern, _h5py_mode(mode), driver="family", memb_size=size)
        except OSError as err:
            raise _open_error(err, url, mode) from err
        stored = int(h5.id.get_access_plist().get_fapl_family()[0])
        if memb_size is not None and memb_size != stored:
            h5.close()
            raise SettingsError(
                f"the HDF5 family {url} has members of {stored} bytes (saved in its "
                f"superblock), not memb_size={memb_size}: omit memb_size (nwbstore reads it "
                f"from the file) or pass memb_size={stored}"
            )
        return cls(url, mode, h5, backend="hdf5-family", memb_size=stored)

    @classmethod
    def _open_remote(
        cls,
        url: str,
        mode: Mode,
        storage_options: Mapping[str, Any] | None,
        driver: str | None,
        memb_size: int | None,
        concurrency: int | None = None,
        catalog: bool | str = True,
    ) -> HDF5Store:
        if mode != "r":
            raise ReadOnlyError(
                f"cannot open {url} with mode {mode!r}: remote HDF5 is read-only. Write Zarr "
                "to object storage instead (e.g. s3://bucket/session.nwb.zarr), or write a "
                "local HDF5 file and upload it"
            )
        if driver not in (None, "fileobj") or memb_size is not None:
            raise SettingsError(
                f"{url} is read through an fsspec file object: driver={driver!r} and "
                f"memb_size={memb_size!r} do not apply (leave them unset)"
            )
        import fsspec

        options = dict(storage_options or {})
        use_catalog = check_catalog_option(url, catalog)
        if "::" not in url:
            # a missing s3fs (or other fsspec implementation) is named with its extra at once
            probe_filesystem(split_protocol(url)[0], options)
        slots = concurrency or DEFAULT_CONCURRENCY
        if split_protocol(url)[0] in S3_PROTOCOLS:
            options = s3_pool_options(options, slots)  # a connection per range GET in flight
            options = shared_session_options(options)  # one botocore model load, not three
        fs, path = fsspec.core.url_to_fs(url, **options)
        open_kwargs: dict[str, Any] = {}
        if "default_block_size" not in options:
            open_kwargs["block_size"] = REMOTE_BLOCK_SIZE
        if "default_cache_type" not in options:
            open_kwargs["cache_type"] = REMOTE_CACHE_TYPE
        # one quick request first (the probe): a missing s3fs, an unreachable endpoint or a
        # missing bucket or key is reported at once, not after botocore's retries. A valid
        # metadata catalog makes h5py's reads of metadata need no request (see _catalog).
        raw_files: list[Any] = []

        def open_file(info: Mapping[str, Any]) -> Any:
            raw_files.append(_open_fileobj(fs, path, info, open_kwargs))
            return raw_files[-1]

        try:
            opened = open_with_catalog(
                url,
                fs=fs,
                path=path,
                storage_options=options,
                catalog=use_catalog,
                endpoint=endpoint_of(options) if url.startswith(("s3://", "s3a://")) else "",
                probe=lambda: probe_info(url, options),
                open_file=open_file,
            )
        except FileNotFoundError as err:
            if isinstance(err, StoreNotFoundError):
                raise
            opened = None
        if opened is None or opened.info is None:
            raise StoreNotFoundError(
                f"{url} does not exist (check the bucket, the key and storage_options)"
            )
        info, fileobj = opened.info, opened.fileobj
        if raw_files and (opened.session is None or opened.session.source is None):
            prefetch_metadata(raw_files[0])  # a cold open: superblock and file end, one round
        fileobj = GcPausedFile(fileobj)  # no deadlock of h5py's lock and fsspec's loop
        try:
            h5 = h5py.File(fileobj, "r")
        except OSError as err:
            fileobj.close()
            raise _open_error(err, url, mode) from err
        except BaseException:
            fileobj.close()
            raise
        remote = (
            None
            if "::" in url
            else RemoteObject(
                _engine_filesystem(url, fs, options, slots),
                path,
                etag=_etag_of(info),
                size=None if info.get("size") is None else int(info["size"]),
                concurrency=slots,
            )
        )
        return cls(
            url,
            mode,
            h5,
            backend="hdf5-remote",
            fileobj=fileobj,
            remote=remote,
            catalog=opened.session,
        )

    # -- Store interface ------------------------------------------------------------------

    @property
    def h5file(self) -> h5py.File:
        """The underlying ``h5py.File``."""
        return self._file

    @property
    def root(self) -> HDF5Group:
        return self._root

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(writable=self.writable, raw_chunks=True)

    @property
    def remote(self) -> RemoteObject | None:
        """The remote object behind an ``hdf5-remote`` store (None for local files)."""
        return self._remote

    @property
    def catalog(self) -> Catalog | None:
        """The metadata catalog of an ``hdf5-remote`` store: every byte span h5py has read
        so far, with the object's ETag and size (None for local files, ``catalog=False``, or
        a server that gave no ETag). See ``nwbstore index``."""
        return None if self._catalog is None else self._catalog.snapshot()

    def chunk_reader(self, dataset: h5py.Dataset) -> RemoteChunkReader | None:
        """The remote chunk reader of ``dataset``, or None where h5py must read it.

        Built on first use (one pass over the dataset's chunk index) and cached per dataset.
        None for local stores, datasets that cannot be read from byte ranges (compact,
        virtual, variable-length, references, a filter with no exact decoder; named in a
        debug log), and after the server refused a range request
        (:class:`~nwbstore.errors.RemoteRangeError`): h5py reads instead.
        """
        remote = self._remote
        if remote is None or remote.range_error is not None or self.closed:
            return None
        name = str(dataset.name)
        with self._readers_lock:
            if name in self._readers:
                return self._readers[name]
            reader = self._build_reader(dataset, remote)
            self._readers[name] = reader
            return reader

    def _build_reader(
        self, dataset: h5py.Dataset, remote: RemoteObject
    ) -> RemoteChunkReader | None:
        problem = index_problem(dataset)
        if problem is None:
            index = ChunkIndex.from_h5py(dataset)
            problem = unsupported_reason(index)
        if problem is not None:
            logger.debug("%s in %s is read through h5py: %s", dataset.name, self.url, problem)
            return None
        return RemoteChunkReader(
            remote.fs,
            remote.path,
            index,
            remote.etag,
            remote.concurrency,
            url=self.url,
            spans=None if self._catalog is None else self._catalog.fileobj,
        )

    def disable_chunk_reads(self, reason: BaseException) -> None:
        """Read every dataset of this store through h5py from now on (the server refused a
        range request: ``reason``)."""
        if self._remote is not None:
            self._remote.range_error = reason
            logger.warning("%s: chunk reads through h5py from now on: %s", self.url, reason)

    def flush(self) -> None:
        """Flush HDF5's buffers to the file."""
        if self.writable:
            self._file.flush()

    def _close(self) -> None:
        try:
            self._file.close()
        finally:
            if self._catalog is not None:
                self._catalog.close()  # saves new spans to the local cache
            if self._fileobj is not None:
                self._fileobj.close()
            if self._remote is not None:
                self._remote.close()


class RemoteObject:
    """The object behind an ``hdf5-remote`` store, as seen at open.

    Attributes
    ----------
    fs, path
        The fsspec filesystem and the object's path on it.
    etag, size
        ETag and size from the probe made at open (None if the server gave none).
    concurrency
        Range requests in flight at most per read.
    range_error
        Set when the server refused a range request; chunk reads then go through h5py.
    """

    def __init__(
        self, fs: Any, path: str, *, etag: str | None, size: int | None, concurrency: int
    ) -> None:
        self.fs = fs
        self.path = path
        self.etag = etag
        self.size = size
        self.concurrency = concurrency
        self.range_error: BaseException | None = None

    def close(self) -> None:
        """End the HTTP session of the chunk reader's own s3fs instance, if it made one
        (s3fs never closes an asynchronous instance's session; aiohttp would warn)."""
        client = getattr(self.fs, "_s3", None)
        loop = getattr(self.fs, "loop", None)
        if client is None or loop is None or not getattr(self.fs, "_nwbstore_owned", False):
            return
        from fsspec.asyn import sync

        self.fs._s3 = None
        sync(loop, client.__aexit__, None, None, None)  # as s3fs's own close_session


def _engine_filesystem(url: str, fs: Any, options: Mapping[str, Any], slots: int) -> Any:
    """The filesystem of the chunk reader's range GETs.

    On S3 its own s3fs instance, making one attempt per request (nwbstore's retry policy
    retries, as for every other nwbstore request: s3fs's and botocore's loops would multiply
    the attempts), with a pool of ``slots`` connections. Elsewhere ``fs`` itself.
    """
    if split_protocol(url)[0] not in S3_PROTOCOLS:
        return fs
    import fsspec

    engine = fsspec.filesystem(
        "s3", **{**s3_write_options(options, slots), "skip_instance_cache": True}
    )
    engine.retries = 1
    engine._nwbstore_owned = True  # closed with the store (RemoteObject.close)
    return engine


def _open_fileobj(fs: Any, path: str, info: Mapping[str, Any], open_kwargs: dict[str, Any]) -> Any:
    """``fs.open(path, "rb")`` reusing the probe's ``info``: no second HEAD for the size.

    s3fs makes its range reads conditional on the ETag (``IfMatch``) only when it looked the
    file up itself; given the size, it does not, so the ETag is set here (the one place that
    touches ``S3File.read_kw``/``details``).
    """
    size = info.get("size")
    if size is None:  # a chained URL (not probed)
        return fs.open(path, "rb", **open_kwargs)
    fileobj = fs.open(path, "rb", size=int(size), **open_kwargs)
    if hasattr(fileobj, "read_kw") and hasattr(type(fileobj), "details"):  # no lookup
        fileobj.details = dict(info)
        etag = _etag_of(info)
        if etag and not getattr(fs, "local_expiry_check", False):
            fileobj.read_kw = {**fileobj.read_kw, "IfMatch": etag}
    return fileobj


def _etag_of(info: Mapping[str, Any]) -> str | None:
    for key in ("ETag", "etag", "Etag"):
        value = info.get(key)
        if value:
            return str(value)
    return None


def _h5py_mode(mode: str) -> str:
    return "w-" if mode == "x" else mode


def _check_exists(url: str, path: str, mode: str) -> None:
    exists = os.path.exists(path)
    if mode in ("r", "r+") and not exists:
        raise StoreNotFoundError(
            f"{url} does not exist ({path}); mode {mode!r} opens an existing file "
            "(use mode='w' or 'a' to create one)"
        )
    if mode in ("w-", "x") and exists:
        raise StoreExistsError(
            f"{url} exists ({path}) and mode {mode!r} does not replace files "
            "(use mode='w' to replace it, or 'a'/'r+' to modify it)"
        )
    if exists and os.path.isdir(path):
        raise UnknownFormatError(
            f"{url} is a directory, not an HDF5 file (a Zarr store? pass format='zarr')"
        )


def _family_member(url: str, pattern: str, index: int) -> str:
    if not _FAMILY_PATTERN.search(pattern.replace("%%", "")):
        raise SettingsError(
            f"{url} is not a family name pattern: the HDF5 family driver needs exactly one "
            "printf integer field such as %d or %05d in the file name (e.g. 'raw_%d.h5')"
        )
    try:
        return pattern % index
    except (TypeError, ValueError):
        raise SettingsError(
            f"{url} is not a family name pattern: it must hold exactly one %d field and no "
            "other % fields (write a literal % as %%)"
        ) from None


def _open_error(err: OSError, url: str, mode: str) -> Exception:
    """Translate the ``OSError`` h5py raises when opening into nwbstore's errors."""
    text = str(err)
    if isinstance(err, FileNotFoundError):
        return StoreNotFoundError(
            f"cannot open {url} with mode {mode!r}: no such file or directory "
            "(check the path; the parent directory must exist)"
        )
    if isinstance(err, FileExistsError):
        return StoreExistsError(f"{url} exists and mode {mode!r} does not replace files")
    if (
        isinstance(err, PermissionError)
        or err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
        or "Permission denied" in text
        or "Read-only file system" in text
    ):
        return ReadOnlyError(
            f"cannot open {url} with mode {mode!r}: no permission ({text}); "
            "open it with mode='r', or copy it somewhere writable"
        )
    if "signature not found" in text:
        return UnknownFormatError(
            f"{url} is not an HDF5 file (no HDF5 signature found); "
            "if it is Zarr, pass format='zarr'"
        )
    if "truncated file" in text:
        return CorruptStoreError(
            f"{url} is truncated or is one member of an HDF5 family ({text}); copy it again "
            "from its origin, or open a family by its %d pattern, e.g. 'raw_%d.h5'"
        )
    if mode in ("w", "w-", "x") or re.search(r"errno = [1-9]", text):
        return err  # the file system refused (e.g. a parent that is not a directory)
    return corrupt_hdf5(url, err)
