"""The Zarr backend: Zarr v3 (default) and v2 stores on local disk, S3 (fsspec) or in memory.

What Zarr lacks is stored as hdmf-zarr does (0.14 for v3, 0.13 for v2, never Pickle): links
in the ``_LINKS``/``zarr_link`` group attribute, references as ``_REFERENCE`` attribute values
and as path-string datasets marked ``_DTYPE="object_reference"``. See
:mod:`nwbstore.backends._zarr_links` and :mod:`nwbstore.backends._zarr_types`.

Metadata: a reader uses consolidated metadata when the store has it (one request for the
whole hierarchy); a writer never does (it would see stale metadata) and writes consolidated
metadata once, when the store is closed or flushed.

maxshape: Zarr arrays can always be resized, so a dataset created without a ``maxshape``
(``settings=None`` or ``settings.maxshape=None``) reports an unlimited one, ``(None,) * ndim``.
A declared ``maxshape`` with at least one limit is kept in the hidden attribute
``_NWBSTORE_MAXSHAPE`` (Zarr has no such field) and enforced by ``resize``, as in HDF5.
"""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import zarr

from nwbstore.backends._damage import (
    read_zarr_documents,
    zarr_node_error,
)
from nwbstore.backends._object_writes import ObjectWriteStore
from nwbstore.backends._zarr_append import AppendStreams
from nwbstore.backends._zarr_legacy_objects import (
    LegacyObjectArray,
    LegacyObjectDataset,
    is_legacy_object_array,
)
from nwbstore.backends._zarr_nodes import (
    SPEC_LOCATION_ATTR,
    ZarrAttributes,
    ZarrDataset,
    ZarrGroup,
    ZarrNode,
    zarr_format_literal,
)
from nwbstore.backends._zarr_pickled import PickledArray, PickledDataset, read_pickled_array
from nwbstore.backends._zarr_storage import (
    closed_on_error,
    open_location,
    quiet_zarr,
    resolve_relative_url,
)
from nwbstore.backends._zarr_types import (
    declares_pickle,
    refuse_pickle,
)
from nwbstore.errors import (
    NodeNotFoundError,
    NwbStoreError,
    StoreNotFoundError,
)
from nwbstore.links import SoftLink, join_path
from nwbstore.nodes import (
    Capabilities,
    Dataset,
    Group,
    Link,
    Mode,
    Store,
)

if TYPE_CHECKING:
    pass

__all__ = ["ZarrAttributes", "ZarrDataset", "ZarrGroup", "ZarrStore"]


class ZarrStore(Store):
    """An open Zarr store (v3 or v2): a local directory, an S3 prefix or ``memory://name``.

    Use :func:`nwbstore.open` (or :meth:`open_url`) to get one.
    """

    format = "zarr"
    backend = "zarr"

    def __init__(
        self,
        url: str,
        mode: Mode,
        zgroup: zarr.Group,
        *,
        zarr_format: int,
        storage_options: Mapping[str, Any] | None = None,
        created: bool = False,
        allow_pickle: bool = False,
        concurrency: int | None = None,
    ) -> None:
        super().__init__(url, mode)
        self._concurrency = concurrency
        self._allow_pickle = allow_pickle
        self._zroot = zgroup
        self._zarr_format = zarr_format
        self._storage_options = dict(storage_options or {})
        self._dirty = created
        self._members: dict[str, dict[str, Any]] = {}
        self._external: dict[str, Store] = {}
        self._following: set[str] = set()
        self._appends = AppendStreams()  # streaming ds.append (nwbstore.backends._zarr_append)

    @classmethod
    def open_url(
        cls,
        url: str,
        mode: Mode,
        *,
        backend: str = "zarr",
        storage_options: Mapping[str, Any] | None = None,
        zarr_format: int = 3,
        allow_pickle: bool = False,
        concurrency: int | None = None,
    ) -> ZarrStore:
        """Open or create the Zarr store at ``url``.

        Parameters
        ----------
        url
            Local directory, ``s3://bucket/prefix`` (any fsspec URL) or ``memory://name``.
        mode
            ``r``, ``r+``, ``w``, ``w-``/``x`` or ``a``, as in h5py.
        backend
            Registry name (always ``"zarr"``).
        storage_options
            fsspec/s3fs options (``endpoint_url``, ``key``, ``secret``, ``client_kwargs``, ...).
        zarr_format
            Format of a new store (3 or 2); an existing store keeps its own.
        allow_pickle
            Read legacy arrays that declare the Pickle codec (hdmf-zarr <= 0.13) through
            nwbstore's non-executing decoder (plain values only); they stay read-only.
            By default reading them raises ``PickleRefusedError``.
        concurrency
            On object storage, uploads in flight at most (default
            :data:`~nwbstore.backends._object_writes.DEFAULT_CONCURRENCY`); for reads, chunks
            zarr fetches at once (zarr's ``async.concurrency``, default 10, when not given).

        Raises
        ------
        StoreNotFoundError, StoreExistsError, UnknownFormatError
            See :func:`nwbstore.backends._zarr_storage.open_location`.
        """
        if zarr_format not in (2, 3):
            raise ValueError(f"zarr_format={zarr_format!r} must be 2 or 3")
        loc = open_location(
            url,
            mode,
            zarr_format=zarr_format,
            storage_options=storage_options,
            concurrency=concurrency,
        )
        fmt = loc.zarr_format
        with quiet_zarr(), closed_on_error(loc.store):
            if mode == "r":
                zgroup = _open_for_reading(loc.store, fmt, loc.consolidated, url)
            elif loc.exists:
                zgroup = zarr.open_group(
                    store=loc.store,
                    mode="r+",
                    zarr_format=zarr_format_literal(fmt),
                    use_consolidated=False,
                )
            else:
                zgroup = zarr.open_group(
                    store=loc.store, mode="w", zarr_format=zarr_format_literal(fmt)
                )
        return cls(
            url,
            mode,
            zgroup,
            zarr_format=fmt,
            storage_options=storage_options,
            created=not loc.exists,
            allow_pickle=allow_pickle,
            concurrency=concurrency,
        )

    @contextmanager
    def _read_concurrency(self) -> Iterator[None]:
        """zarr reads ``concurrency`` chunks at once during this store's reads, if one was given
        (zarr's ``async.concurrency`` otherwise, default 10)."""
        if self._concurrency is None:
            yield
            return
        with zarr.config.set({"async.concurrency": self._concurrency}):
            yield

    @property
    def zarr_format(self) -> int:
        """2 or 3."""
        return self._zarr_format

    @property
    def allow_pickle(self) -> bool:
        """True if Pickle-encoded legacy arrays are decoded (see :meth:`open_url`)."""
        return self._allow_pickle

    @property
    def zarr_group(self) -> zarr.Group:
        """The root ``zarr.Group``."""
        return self._zroot

    @property
    def root(self) -> Group:
        return ZarrGroup(self, "/", self._zroot)

    def read_ahead_small_arrays(
        self,
        select: Callable[[str, zarr.Array], bool] | None = None,
        *,
        concurrency: int = 32,
    ) -> int:
        """Fetch the one chunk of every small array now, concurrently; return how many.

        For a store on object storage opened read-only with consolidated metadata: readers
        that then read each scalar or small dataset one by one (hdmf-zarr building an
        ``NWBFile``) are served from memory instead of a round trip each. ``select(path,
        array)`` picks the arrays the reader will read (default: every small one).
        Elsewhere (local stores, stores opened for writing, no consolidated metadata) nothing
        is done.
        """
        from nwbstore.backends._zarr_preload import preload_small_chunks

        store = self._zroot.store
        if self.writable or not hasattr(store, "preload"):
            return 0
        return preload_small_chunks(self._zroot, store, select=select, concurrency=concurrency)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(writable=self.writable, raw_chunks=True)

    # -- node cache: one zarr object per path, so metadata edits are seen everywhere ---------

    def _list_members(self, path: str, zgroup: zarr.Group) -> dict[str, Any]:
        cached = self._members.get(path)
        if cached is not None:
            return cached
        try:
            with quiet_zarr(), _unretrieved_tasks_dropped():
                members: dict[str, Any] = dict(zgroup.members())
        except Exception:  # an array zarr cannot parse (e.g. Pickle): list it one by one
            members = self._list_raw(path, zgroup)
        self._members[path] = members
        return members

    def _list_raw(self, path: str, zgroup: zarr.Group) -> dict[str, Any]:
        from zarr.core.sync import sync

        store = zgroup.store
        prefix = zgroup.path

        async def names() -> list[str]:
            return [k async for k in store.list_dir(prefix)]

        members: dict[str, Any] = {}
        for name in sorted(sync(names())):
            if name.startswith(".") or name == "zarr.json":
                continue
            try:
                with quiet_zarr():
                    members[name] = zgroup[name]
            except KeyError:
                continue
            except Exception as err:
                where = f"dataset {join_path(path, name)!r} in {self.url}"
                raw = _raw_metadata(store, f"{prefix}/{name}".strip("/"))
                if raw is not None and declares_pickle(raw):
                    members[name] = self._pickled(store, f"{prefix}/{name}".strip("/"), where)
                elif raw is not None and is_legacy_object_array(raw):
                    members[name] = LegacyObjectArray(
                        store, f"{prefix}/{name}".strip("/"), raw, where
                    )
                else:
                    key = f"{prefix}/{name}".strip("/")
                    members[name] = zarr_node_error(
                        f"node {join_path(path, name)!r} in {self.url}",
                        err,
                        functools.partial(read_zarr_documents, store, key),
                    )
        return members

    def _wrap(self, path: str, zobj: Any) -> Group | Dataset:
        if isinstance(zobj, NwbStoreError):
            raise zobj
        if isinstance(zobj, zarr.Group):
            return ZarrGroup(self, path, zobj)
        if isinstance(zobj, LegacyObjectArray):
            return LegacyObjectDataset(self, path, zobj, scalar=self._is_cached_spec(path))
        if isinstance(zobj, PickledArray):
            return PickledDataset(self, path, zobj, scalar=self._is_cached_spec(path))
        if declares_pickle(zobj.metadata):
            found = self._pickled(zobj.store, zobj.path, f"dataset {path!r} in {self.url}")
            if isinstance(found, NwbStoreError):
                raise found
            return PickledDataset(self, path, found, scalar=self._is_cached_spec(path))
        return ZarrDataset(self, path, zobj)

    def _is_cached_spec(self, path: str) -> bool:
        """True for ``<specloc>/<namespace>/<version>/<name>``, a cached NWB specification."""
        specloc = self._zroot.attrs.get(SPEC_LOCATION_ATTR)
        if not isinstance(specloc, str) or not specloc.strip("/"):
            return False
        parts = path.strip("/").split("/")
        base = specloc.strip("/").split("/")
        return len(parts) == len(base) + 3 and parts[: len(base)] == base

    def _pickled(self, store: Any, key: str, where: str) -> PickledArray | NwbStoreError:
        """The legacy Pickle array at ``key`` if the caller opted in, else the refusal."""
        if not self._allow_pickle:
            return refuse_pickle(where)
        try:
            return read_pickled_array(store, key, where)
        except NwbStoreError as err:
            return err

    def _added(self, parent: str, name: str, zobj: ZarrNode) -> Group | Dataset:
        self._dirty = True
        members = self._members.get(parent)
        if members is not None:
            members[name] = zobj
        path = join_path(parent, name)
        if isinstance(zobj, zarr.Group):
            self._members[path] = {}
        return self._wrap(path, zobj)

    def _removed(self, parent: str, name: str) -> None:
        self._dirty = True
        self._appends.discard(join_path(parent, name))
        self._members.get(parent, {}).pop(name, None)
        path = join_path(parent, name)
        for key in [k for k in self._members if k == path or k.startswith(path + "/")]:
            del self._members[key]

    # -- links -------------------------------------------------------------------------------

    def _follow(self, path: str, link: Link) -> Group | Dataset:
        if isinstance(link, SoftLink):
            if path in self._following:
                raise NodeNotFoundError(f"link {path!r} in {self.url} is part of a link cycle")
            self._following.add(path)
            try:
                return self.root[link.path]
            except NodeNotFoundError as err:
                raise NodeNotFoundError(
                    f"soft link {path!r} in {self.url} points to {link.path!r}, which does not "
                    "exist (dangling link)"
                ) from err
            finally:
                self._following.discard(path)
        target = resolve_relative_url(self.url, link.url)
        try:
            other = self._external_store(target)
            return other.root[link.path]
        except (NodeNotFoundError, StoreNotFoundError) as err:
            raise NodeNotFoundError(
                f"external link {path!r} in {self.url} points to {link.path!r} in {link.url} "
                f"({target}), which does not exist (dangling link): {err}"
            ) from err

    def _external_store(self, url: str) -> Store:
        store = self._external.get(url)
        if store is None or store.closed:
            from nwbstore.store import open as open_store

            store = open_store(url, "r", storage_options=self._storage_options)
            self._external[url] = store
        return store

    # -- closing -----------------------------------------------------------------------------

    def _flush_appends(self) -> None:
        """Write every dataset's pending appended rows and new shape (streams stay open)."""
        if self.writable and len(self._appends):
            with quiet_zarr():
                if self._appends.settle_all():
                    self._dirty = True

    def flush(self) -> None:
        """Write what changed since the last flush; consolidated metadata last.

        On object storage this waits for the chunk uploads in flight and then writes the
        metadata documents that changed, the root document last (see
        :mod:`nwbstore.backends._object_writes`).

        Raises
        ------
        WriteFailedError
            An upload failed after the storage layer's retries.
        """
        self._flush_appends()
        store = self._zroot.store
        if isinstance(store, ObjectWriteStore) and store.has_unsaved_documents:
            self._dirty = True  # metadata written through zarr_group by others (hdmf-zarr)
        if self.writable and self._dirty:
            with quiet_zarr():
                zarr.consolidate_metadata(
                    self._zroot.store, zarr_format=zarr_format_literal(self._zarr_format)
                )
            self._dirty = False
        if self.writable and isinstance(store, ObjectWriteStore):
            from zarr.core.sync import sync

            sync(store.flush())

    def _close(self) -> None:
        try:
            self.flush()
        finally:
            for other in self._external.values():
                other.close()
            self._external.clear()
            self._members.clear()
            store = self._zroot.store
            if isinstance(store, ObjectWriteStore):
                from zarr.core.sync import sync

                sync(store.wait_idle())  # never close the session under uploads in flight
            store.close()  # ends an S3 store's HTTP session


class _DropUnretrieved(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Task exception was never retrieved")


@contextmanager
def _unretrieved_tasks_dropped() -> Iterator[None]:
    """Keep asyncio from printing the sibling failures of a failed ``Group.members()``.

    When zarr cannot parse one member it raises, and the other members' failed tasks are
    logged with a traceback each when collected; nwbstore lists such a group again one by
    one and reports what it cannot read itself.
    """
    log = logging.getLogger("asyncio")
    drop = _DropUnretrieved()
    log.addFilter(drop)
    try:
        yield
    except BaseException:
        # only a failed listing leaves failed sibling tasks: collect them (they would log)
        # while the filter holds. A full collection costs ~0.2 s, too much for every listing
        gc.collect()
        raise
    finally:
        log.removeFilter(drop)


def _open_for_reading(store: Any, fmt: int, consolidated: bool, url: str) -> zarr.Group:
    if consolidated:
        try:
            return zarr.open_group(
                store=store, mode="r", zarr_format=zarr_format_literal(fmt), use_consolidated=True
            )
        except Exception:  # consolidated block zarr cannot parse (e.g. a Pickle array)
            pass
    return zarr.open_group(
        store=store, mode="r", zarr_format=zarr_format_literal(fmt), use_consolidated=False
    )


def _raw_metadata(store: Any, key_prefix: str) -> dict[str, Any] | None:
    """The JSON metadata document of the node at ``key_prefix``, read past zarr's parser."""
    import json

    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    for name in (".zarray", "zarr.json"):
        buf = sync(store.get(f"{key_prefix}/{name}", prototype=default_buffer_prototype()))
        if buf is not None:
            try:
                doc: dict[str, Any] = json.loads(buf.to_bytes())
                return doc
            except ValueError:
                return None
    return None
