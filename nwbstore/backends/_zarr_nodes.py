"""The Zarr backend's nodes: a Zarr group, array and attributes as nwbstore ``Group``,
``Dataset`` and ``Attributes``.

Each node wraps the zarr-python object and translates what Zarr lacks the way hdmf-zarr
stores it (links, references, hidden attributes: :mod:`nwbstore.backends._zarr_links`,
:mod:`nwbstore.backends._zarr_types`). Opening, listing, link resolution and closing belong to
the store, :class:`nwbstore.backends.zarr.ZarrStore`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import zarr

from nwbstore.backends._damage import (
    DECODE_ERRORS,
    decode_error,
)
from nwbstore.backends._zarr_append import AppendStream, chunk_row_height
from nwbstore.backends._zarr_chunks import (
    copy_stored_chunk,
    iter_stored_chunks,
    read_stored_chunk,
    write_stored_chunk,
)
from nwbstore.backends._zarr_links import (
    link_attr_name,
    link_entries,
    link_from_entry,
    make_entry,
)
from nwbstore.backends._zarr_storage import (
    quiet_zarr,
    store_basename,
)
from nwbstore.backends._zarr_types import (
    HIDDEN_ATTRS,
    MAXSHAPE_ATTR,
    decode_attr,
    encode_attr,
    from_storage,
    logical_dtype,
    marker_attrs,
    storage_dtype,
    to_storage,
)
from nwbstore.errors import (
    NodeNotFoundError,
    ReadOnlyError,
    UnsupportedDtypeError,
)
from nwbstore.links import ExternalLink, Reference, SoftLink, join_path
from nwbstore.nodes import (
    Attributes,
    Dataset,
    Group,
    Link,
    Node,
    StoredChunk,
)

if TYPE_CHECKING:
    from nwbstore.backends.zarr import ZarrStore
    from nwbstore.settings import DatasetSettings


__all__ = [
    "SPEC_LOCATION_ATTR",
    "ZarrAttributes",
    "ZarrDataset",
    "ZarrGroup",
    "ZarrNode",
    "zarr_format_literal",
]

ZarrNode = zarr.Group | zarr.Array
ZarrFormat = Literal[2, 3]


#: Root attribute where NWB files say which group caches their specifications.
SPEC_LOCATION_ATTR = ".specloc"


def zarr_format_literal(fmt: int) -> ZarrFormat:
    """``fmt`` (2 or 3) typed as zarr-python's ``ZarrFormat``."""
    return cast(ZarrFormat, fmt)


class ZarrAttributes(Attributes):
    """Attributes of a Zarr group or array (JSON), hiding hdmf-zarr's bookkeeping keys."""

    def __init__(self, node: Node, zobj: ZarrNode) -> None:
        super().__init__(node)
        self._zobj = zobj

    @property
    def _store(self) -> ZarrStore:
        return cast("ZarrStore", self._node.store)  # a Zarr node belongs to a ZarrStore

    def _names(self) -> list[str]:
        return sorted(k for k in self._zobj.attrs if k not in HIDDEN_ATTRS)

    def _read(self, key: str) -> Any:
        value = decode_attr(self._zobj.attrs[key])
        if key == SPEC_LOCATION_ATTR and isinstance(value, str) and self._node.name == "/":
            # hdmf-zarr keeps the cached-spec location as a plain path; HDF5 NWB files hold an
            # object reference there, so hand out one and conversions keep pynwb's layout
            return Reference("/" + value.lstrip("/"))
        return value

    def _encode(self, key: str, value: Any) -> Any:
        if key == SPEC_LOCATION_ATTR and isinstance(value, Reference) and value.source == ".":
            return value.path.lstrip("/")  # the plain path both hdmf-zarr readers expect
        if key in HIDDEN_ATTRS:
            raise ReadOnlyError(
                f"attribute {key!r} of {self._node.name!r} is reserved for hdmf-zarr bookkeeping "
                "(links, dtypes); use create_soft_link/create_external_link or another name"
            )
        where = f"{key!r} of {self._node.name!r} in {self._store.url}"
        return encode_attr(value, self._store.zarr_format, where)

    def _write(self, key: str, value: Any) -> None:
        encoded = self._encode(key, value)
        with quiet_zarr():
            self._zobj.attrs[key] = encoded
        self._store._dirty = True

    def _delete(self, key: str) -> None:
        with quiet_zarr():
            del self._zobj.attrs[key]
        self._store._dirty = True

    def update_many(self, values: dict[str, Any]) -> None:
        """Set several attributes with one metadata write."""
        self._store._check_writable(f"set attributes on {self._node.name!r}")
        encoded = {k: self._encode(k, v) for k, v in values.items()}
        with quiet_zarr():
            self._zobj.attrs.update(encoded)
        self._store._dirty = True


class ZarrGroup(Group):
    """A Zarr group; links are entries of its ``_LINKS`` (or ``zarr_link``) attribute."""

    store: ZarrStore

    def __init__(self, store: ZarrStore, name: str, zgroup: zarr.Group) -> None:
        super().__init__(store, name)
        self._zgroup = zgroup

    @property
    def attrs(self) -> Attributes:
        return ZarrAttributes(self, self._zgroup)

    def _members(self) -> dict[str, Any]:
        return self.store._list_members(self.name, self._zgroup)

    def _link_entries(self) -> list[dict[str, Any]]:
        return link_entries(dict(self._zgroup.attrs))

    def _child_names(self) -> list[str]:
        names = set(self._members())
        names.update(e["name"] for e in self._link_entries())
        return sorted(names)

    def _get_child(self, name: str) -> Group | Dataset:
        members = self._members()
        path = join_path(self.name, name)
        if name in members:
            return self.store._wrap(path, members[name])
        link = self._get_link(name)
        if link is None:
            raise NodeNotFoundError(f"no object {path!r} in {self.store.url}")
        return self.store._follow(path, link)

    def _create_group(self, name: str) -> Group:
        with quiet_zarr():
            zgroup = self._zgroup.create_group(name)
        group = self.store._added(self.name, name, zgroup)
        assert isinstance(group, ZarrGroup)
        return group

    def _create_dataset(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        settings: DatasetSettings | None,
        data: Any,
    ) -> Dataset:
        path = join_path(self.name, name)
        where = f"dataset {path!r} in {self.store.url}"
        fmt = self.store.zarr_format
        stored = storage_dtype(dtype, data, where)
        itemsize_dtype = None if dtype.kind == "O" or dtype.names is not None else dtype
        kwargs: dict[str, Any] = (
            {} if settings is None else dict(settings.to_zarr(fmt, dtype=itemsize_dtype, name=path))
        )
        kwargs.pop("maxshape", None)
        attributes = marker_attrs(dtype, fmt)
        declared = None if settings is None else settings.maxshape
        if declared is not None:
            attributes[MAXSHAPE_ATTR] = list(declared)
        if fmt == 3:
            _match_endianness(kwargs, np.dtype(stored) if stored is not str else None)
        elif stored is str and "filters" in kwargs:
            # explicit v2 filters replace zarr's default object codec: put it back first
            import numcodecs

            kwargs["filters"] = [numcodecs.VLenUTF8(), *(kwargs["filters"] or [])]
        with quiet_zarr():
            try:
                from zarr.core.dtype import parse_dtype

                parse_dtype(stored, zarr_format=zarr_format_literal(fmt))
            except (TypeError, ValueError) as err:
                raise UnsupportedDtypeError(
                    f"cannot store {where} with dtype {dtype} in Zarr v{fmt}: {err}"
                ) from err
            arr = self._zgroup.create_array(
                name,
                shape=shape,
                dtype=stored,
                attributes=attributes,
                **kwargs,
            )
            if data is not None and arr.size:
                arr[...] = to_storage(data, dtype, arr.dtype, fmt, where)
        ds = self.store._added(self.name, name, arr)
        assert isinstance(ds, ZarrDataset)
        return ds

    def _get_link(self, name: str) -> Link | None:
        if name in self._members():
            return None
        for entry in self._link_entries():
            if entry["name"] == name:
                return link_from_entry(entry, store_basename(self.store.url))
        return None

    def _add_link(self, name: str, link: SoftLink | ExternalLink) -> None:
        key = link_attr_name(self.store.zarr_format)
        entries = list(cast(list[Any], self._zgroup.attrs.get(key)) or [])
        entries.append(make_entry(name, link))
        with quiet_zarr():
            self._zgroup.attrs[key] = entries
        self.store._dirty = True

    def _create_soft_link(self, name: str, target_path: str) -> None:
        self._add_link(name, SoftLink(target_path))

    def _create_external_link(self, name: str, url: str, target_path: str) -> None:
        self._add_link(name, ExternalLink(url, target_path))

    def _delete(self, name: str) -> None:
        if name in self._members():
            with quiet_zarr():
                del self._zgroup[name]
            self.store._removed(self.name, name)
            return
        updates = {}
        for key in ("_LINKS", "zarr_link"):
            entries = cast(list[dict[str, Any]] | None, self._zgroup.attrs.get(key))
            if entries and any(e.get("name") == name for e in entries):
                updates[key] = [e for e in entries if e.get("name") != name]
        with quiet_zarr():
            self._zgroup.attrs.update(updates)
        self.store._dirty = True


class ZarrDataset(Dataset):
    """A Zarr array."""

    store: ZarrStore

    def __init__(self, store: ZarrStore, name: str, array: zarr.Array) -> None:
        super().__init__(store, name)
        self._array = array
        self._dtype: np.dtype[Any] | None = None

    @property
    def zarr_array(self) -> zarr.Array:
        """The underlying ``zarr.Array`` (for raw chunk access and inspection)."""
        return self._array

    @property
    def attrs(self) -> Attributes:
        return ZarrAttributes(self, self._array)

    @property
    def shape(self) -> tuple[int, ...]:
        """The logical shape: rows appended but not written yet are counted."""
        stream = self.store._appends.get(self.name)
        if stream is not None:
            return stream.shape
        return tuple(int(s) for s in self._array.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        if self._dtype is None:
            dt = logical_dtype(self._array.dtype, dict(self._array.attrs))
            if _stored_big_endian(self._array) and dt.names is None and dt.kind in "iufb":
                dt = dt.newbyteorder(">")
            self._dtype = dt
        return self._dtype

    @property
    def settings(self) -> DatasetSettings:
        from nwbstore.settings import DatasetSettings

        try:
            settings = DatasetSettings.from_zarr(self._array)
        except NotImplementedError:  # settings.py still a skeleton
            fill = self._array.fill_value
            settings = DatasetSettings(
                chunks=tuple(self._array.chunks),
                shards=None if self._array.shards is None else tuple(self._array.shards),
                fill_value=fill.item() if isinstance(fill, np.generic) else fill,
            )
        # only a declared maxshape travels: an HDF5 copy of an array created without one gets
        # a fixed size, as h5py gives by default (Zarr arrays can always be resized)
        return dataclasses.replace(settings, maxshape=self._declared_maxshape())

    def _declared_maxshape(self) -> tuple[int | None, ...] | None:
        declared = self._array.attrs.get(MAXSHAPE_ATTR)
        if isinstance(declared, list) and len(declared) == self.ndim:
            return tuple(None if m is None else int(m) for m in declared)
        return None

    @property
    def maxshape(self) -> tuple[int | None, ...]:
        """The ``maxshape`` declared at creation, else unlimited on every axis."""
        return self._declared_maxshape() or (None,) * self.ndim

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return tuple(self._array.chunks)

    # -- appends (see nwbstore.backends._zarr_append) ---------------------------------------

    def _append(self, block: np.ndarray, axis: int) -> None:
        """Stream along axis 0 (one chunk row in memory); other axes resize and write."""
        rows = chunk_row_height(self._array) if axis == 0 else None
        if rows is None:
            self._end_appends()
            super()._append(block, axis)
            return
        where = f"dataset {self.name!r} in {self.store.url}"
        stored = np.asarray(
            to_storage(block, self.dtype, self._array.dtype, self.store.zarr_format, where)
        )
        stream = self.store._appends.open(self.name, self._array, rows)
        self.store._dirty = True
        with quiet_zarr():
            stream.append(stored)

    @property
    def _append_stream(self) -> AppendStream | None:
        """The dataset's append stream, if rows are being appended (tests read it)."""
        return self.store._appends.get(self.name)

    def _settle_appends(self) -> None:
        """Write pending appended rows and the shape before the stored array is used."""
        stream = self.store._appends.get(self.name)
        if stream is not None and not stream.settled:
            with quiet_zarr():
                stream.settle()

    def _end_appends(self) -> None:
        """Settle and forget the append stream before the dataset is changed otherwise."""
        self._settle_appends()
        self.store._appends.end(self.name)

    def _read(self, selection: Any) -> Any:
        self._settle_appends()
        try:
            with quiet_zarr(), self.store._read_concurrency():
                raw = self._array[selection]
        except DECODE_ERRORS as err:
            raise decode_error(f"dataset {self.name!r} in {self.store.url}", err) from err
        dt = self.dtype
        if isinstance(raw, (np.ndarray, np.generic)) and dt.kind in "iuf" and raw.dtype != dt:
            raw = raw.astype(dt)  # zarr v3 hands out native byte order
        return from_storage(raw, dt)

    def iter_stored_chunks(self) -> Iterator[StoredChunk]:
        self._settle_appends()
        return iter_stored_chunks(self._array, self.name)

    def read_stored_chunk(self, index: tuple[int, ...]) -> StoredChunk | None:
        self._settle_appends()
        return read_stored_chunk(self._array, self.name, index)

    def write_stored_chunk(self, index: tuple[int, ...], data: bytes) -> None:
        self.store._check_writable(f"write a chunk of {self.name!r}")
        self._end_appends()
        write_stored_chunk(self._array, self.name, index, data)

    def copy_stored_chunk(self, chunk: StoredChunk) -> None:
        self.store._check_writable(f"write a chunk of {self.name!r}")
        self._end_appends()
        copy_stored_chunk(self._array, self.name, chunk)

    def _write(self, selection: Any, value: Any) -> None:
        self._end_appends()
        where = f"dataset {self.name!r} in {self.store.url}"
        stored = to_storage(value, self.dtype, self._array.dtype, self.store.zarr_format, where)
        with quiet_zarr():
            self._array[selection] = stored
        self.store._dirty = True

    def _resize(self, shape: tuple[int, ...]) -> None:
        stream = self.store._appends.get(self.name)
        with quiet_zarr():
            if stream is not None:
                if shape[0] >= stream.length:
                    stream.write_pending()  # growing: the one resize below writes the shape
                else:
                    stream.settle()  # shrinking: zarr must know the rows it deletes
                self.store._appends.end(self.name)
            self._array.resize(shape)
        self.store._dirty = True


def _stored_big_endian(array: zarr.Array) -> bool:
    """True if a Zarr v3 array's ``bytes`` codec stores big-endian values."""
    for codec in getattr(array.metadata, "codecs", ()) or ():
        if getattr(codec, "endian", None) is not None:
            return str(getattr(codec.endian, "value", codec.endian)) == "big"
    return False


def _match_endianness(kwargs: dict[str, Any], dtype: np.dtype[Any] | None) -> None:
    """Keep big-endian data big-endian in Zarr v3 (its default ``bytes`` codec is little)."""
    from zarr.codecs import BytesCodec

    if dtype is None or dtype.names is not None or dtype.byteorder != ">":
        return
    serializer = kwargs.get("serializer", "auto")
    if serializer == "auto" or isinstance(serializer, BytesCodec):
        kwargs["serializer"] = BytesCodec(endian="big")
