"""Bypasses for the conformance suite: read what a store holds with h5py or zarr directly."""

from __future__ import annotations

import json
import os
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["Bypass", "HDF5Bypass", "RawLink", "ZarrBypass"]

RawLink = tuple[str, ...]
"""``("soft", path)`` or ``("external", source_as_stored, path)``."""


def _is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def _zpath(path: str) -> str:
    """Zarr paths have no leading slash; the root is ``""``."""
    return path.strip("/")


def _as_str_array(values: Any) -> np.ndarray:
    """Object array of ``str`` from bytes / str / StringDType values (any shape)."""
    arr = np.asarray(values, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    for idx, v in np.ndenumerate(arr):
        out[idx] = v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v)
    return out


# --------------------------------------------------------------------------------------------
# Bypasses: read storage directly
# --------------------------------------------------------------------------------------------


class Bypass(ABC):
    """Read a store's content directly with the format's own library (never nwbstore).

    Paths are absolute paths inside the store (``"/"`` for the root).
    """

    def __init__(self, storage_options: Mapping[str, Any] | None = None) -> None:
        self.storage_options = dict(storage_options or {})

    @abstractmethod
    def raw_kind(self, url: str, path: str) -> str:
        """``"group"``, ``"dataset"`` or ``"missing"`` (links: HDF5 follows them, Zarr does not)."""

    @abstractmethod
    def raw_attrs(self, url: str, path: str) -> dict[str, Any]:
        """Attributes as the library returns them (references left encoded)."""

    @abstractmethod
    def raw_read(self, url: str, path: str) -> np.ndarray:
        """The whole dataset; strings (also in compound fields) decoded to ``str``."""

    @abstractmethod
    def raw_dtype(self, url: str, path: str) -> np.dtype[Any]:
        """The dataset's dtype as the library reports it."""

    @abstractmethod
    def raw_shape(self, url: str, path: str) -> tuple[int, ...]:
        """The dataset's shape as the library reports it."""

    @abstractmethod
    def raw_links(self, url: str, group_path: str) -> dict[str, RawLink]:
        """Links stored in a group: ``{name: ("soft", path) | ("external", source, path)}``."""

    @abstractmethod
    def raw_reference_target(
        self, url: str, path: str, *, attr: str | None = None, field: str | None = None
    ) -> str | list[str]:
        """Target path(s) of a stored reference.

        With ``attr``: the reference held by that attribute of ``path``. Otherwise ``path`` is a
        dataset of references (or, with ``field``, a compound dataset with a reference field)
        and a list of target paths (flattened) is returned. Raises ``AssertionError`` when what
        is stored is not marked as a reference the format's readers would recognise.
        """

    @abstractmethod
    def resolve_external(self, url: str, source: str) -> str:
        """The store an external link's stored ``source`` designates, as the format's readers
        (h5py / hdmf-zarr) resolve it from the linking store ``url``."""

    def check_store(self, url: str) -> None:  # noqa: B027 - optional hook
        """Format-specific consistency checks of a closed store (default: none)."""


class HDF5Bypass(Bypass):
    """Read HDF5 files with h5py: local (sec2), families (``%d`` in the name) and fsspec URLs."""

    @contextmanager
    def open(self, url: str) -> Iterator[Any]:
        """Open ``url`` read-only with h5py (family driver with ``memb_size=0`` for patterns)."""
        import h5py

        if _is_remote(url):
            import fsspec

            with fsspec.open(url, "rb", **self.storage_options) as fobj, h5py.File(fobj, "r") as f:
                yield f
        elif "%" in os.path.basename(url):
            with h5py.File(url, "r", driver="family", memb_size=0) as f:
                yield f
        else:
            with h5py.File(url, "r") as f:
                yield f

    def raw_kind(self, url: str, path: str) -> str:
        import h5py

        with self.open(url) as f:
            if path.strip("/") == "":
                return "group"
            if path not in f:
                return "missing"
            obj = f.get(path)
            if obj is None:
                return "missing"
            return "group" if isinstance(obj, h5py.Group) else "dataset"

    def raw_attrs(self, url: str, path: str) -> dict[str, Any]:
        with self.open(url) as f:
            return {k: f[path].attrs[k] for k in f[path].attrs}

    def raw_read(self, url: str, path: str) -> np.ndarray:
        import h5py

        with self.open(url) as f:
            ds = f[path]
            data = np.asarray(ds[()])
            if ds.dtype.names is not None:
                out = np.empty(data.shape, dtype=[(n, object) for n in ds.dtype.names])
                for name in ds.dtype.names:
                    sub = ds.dtype.fields[name][0]
                    if h5py.check_string_dtype(sub) is not None:
                        out[name] = _as_str_array(data[name])
                    else:
                        out[name] = data[name]
                return out
            if h5py.check_string_dtype(ds.dtype) is not None and ds.dtype.kind == "O":
                return _as_str_array(data)
            return data

    def raw_dtype(self, url: str, path: str) -> np.dtype[Any]:
        with self.open(url) as f:
            return f[path].dtype

    def raw_shape(self, url: str, path: str) -> tuple[int, ...]:
        with self.open(url) as f:
            return tuple(f[path].shape)

    def raw_links(self, url: str, group_path: str) -> dict[str, RawLink]:
        import h5py

        out: dict[str, RawLink] = {}
        with self.open(url) as f:
            grp = f[group_path]
            for name in grp:
                link = grp.get(name, getlink=True)
                if isinstance(link, h5py.SoftLink):
                    out[name] = ("soft", link.path)
                elif isinstance(link, h5py.ExternalLink):
                    out[name] = ("external", link.filename, link.path)
        return out

    def raw_reference_target(
        self, url: str, path: str, *, attr: str | None = None, field: str | None = None
    ) -> str | list[str]:
        import h5py

        with self.open(url) as f:
            obj = f[path]
            if attr is not None:
                value = obj.attrs[attr]
                assert isinstance(value, h5py.Reference), (
                    f"attribute {attr!r} of {path} in {url} holds {value!r}, not an h5py.Reference"
                )
                return str(f[value].name)
            dt = obj.dtype if field is None else obj.dtype.fields[field][0]
            assert h5py.check_ref_dtype(dt) is h5py.Reference, (
                f"{path} in {url} (field {field}) has dtype {dt}, not an object-reference dtype"
            )
            data = np.asarray(obj[()])
            values = data[field] if field is not None else data
            return [str(f[r].name) for r in np.asarray(values, dtype=object).ravel()]

    def resolve_external(self, url: str, source: str) -> str:
        if "://" in source or posixpath.isabs(source):
            return source
        return posixpath.normpath(posixpath.join(posixpath.dirname(url), source))


class ZarrBypass(Bypass):
    """Read Zarr stores (v2 or v3; local, ``s3://`` with ``storage_options``, ``memory://``)
    with zarr-python, decoding the hdmf-zarr conventions (``_LINKS``/``zarr_link``,
    ``_REFERENCE``, ``_DTYPE="object_reference"``, ``_REFERENCE_FIELDS``) by hand."""

    def open_root(self, url: str, *, use_consolidated: bool | None = False) -> Any:
        """The root group, read-only; by default from the metadata documents themselves."""
        import zarr

        kwargs: dict[str, Any] = {"mode": "r", "use_consolidated": use_consolidated}
        if url.startswith("memory://"):
            # nwbstore keeps memory:// stores in a per-process table of the dicts zarr's
            # MemoryStore writes into; read that dict with zarr, not through nwbstore.
            from zarr.storage import MemoryStore

            from nwbstore.backends._zarr_storage import MEMORY_STORES

            name = url.partition("://")[2].strip("/")
            if name not in MEMORY_STORES:
                raise FileNotFoundError(f"no memory store {url}")
            store = MemoryStore(store_dict=MEMORY_STORES[name], read_only=True)
            return zarr.open_group(store, **kwargs)
        if _is_remote(url):
            kwargs["storage_options"] = self.storage_options
        return zarr.open_group(url, **kwargs)

    def zarr_format(self, url: str) -> int:
        """2 or 3."""
        return int(self.open_root(url).metadata.zarr_format)

    def _node(self, url: str, path: str) -> Any:
        root = self.open_root(url)
        return root if _zpath(path) == "" else root[_zpath(path)]

    def raw_kind(self, url: str, path: str) -> str:
        import zarr

        try:
            node = self._node(url, path)
        except KeyError:
            return "missing"
        return "group" if isinstance(node, zarr.Group) else "dataset"

    def raw_attrs(self, url: str, path: str) -> dict[str, Any]:
        return dict(self._node(url, path).attrs.asdict())

    def raw_read(self, url: str, path: str) -> np.ndarray:
        arr = self._node(url, path)
        data = np.asarray(arr[...])
        if data.dtype.names is not None:
            out = np.empty(data.shape, dtype=[(n, object) for n in data.dtype.names])
            for name in data.dtype.names:
                sub = data.dtype.fields[name][0]
                out[name] = _as_str_array(data[name]) if sub.kind in "USOT" else data[name]
            return out
        if data.dtype.kind in ("T", "O", "U"):
            return _as_str_array(data) if data.dtype.kind != "O" else data
        return data

    def raw_dtype(self, url: str, path: str) -> np.dtype[Any]:
        return np.dtype(self._node(url, path).dtype)

    def raw_shape(self, url: str, path: str) -> tuple[int, ...]:
        return tuple(self._node(url, path).shape)

    def raw_links(self, url: str, group_path: str) -> dict[str, RawLink]:
        attrs = self._node(url, group_path).attrs
        entries = attrs.get("_LINKS", attrs.get("zarr_link", []))
        out: dict[str, RawLink] = {}
        for entry in entries:
            source = entry.get("source", ".") or "."
            if source == ".":
                out[entry["name"]] = ("soft", entry["path"])
            else:
                out[entry["name"]] = ("external", source, entry["path"])
        return out

    @staticmethod
    def _decode_ref(value: Any) -> str:
        if isinstance(value, (bytes, np.bytes_)):
            value = value.decode("utf-8")
        if isinstance(value, str) and value.lstrip().startswith("{"):
            value = json.loads(value)
        if isinstance(value, dict):
            if isinstance(value.get("_REFERENCE"), dict):
                value = value["_REFERENCE"]
            elif value.get("zarr_dtype") == "object" and isinstance(value.get("value"), dict):
                value = value["value"]
            assert value.get("source", ".") in (".", "", None), f"not a local reference: {value}"
            return str(value["path"])
        assert isinstance(value, str), f"{value!r} is not an encoded reference"
        return value

    def raw_reference_target(
        self, url: str, path: str, *, attr: str | None = None, field: str | None = None
    ) -> str | list[str]:
        node = self._node(url, path)
        fmt = self.zarr_format(url)
        if attr is not None:
            value = node.attrs[attr]
            if fmt == 3:
                assert isinstance(value, dict) and "_REFERENCE" in value, (
                    f"attribute {attr!r} of {path} in {url} is {value!r}, not the hdmf-zarr 0.14 "
                    '{"_REFERENCE": {"source": ..., "path": ...}} encoding'
                )
            return self._decode_ref(value)
        attrs = node.attrs
        if field is None:
            marked = attrs.get("_DTYPE") == "object_reference" or (
                fmt == 2 and attrs.get("zarr_dtype") == "object"
            )
            assert marked, (
                f"{path} in {url} is not marked _DTYPE='object_reference' (attributes: "
                f"{dict(attrs)})"
            )
            values = np.asarray(node[...], dtype=object)
        else:
            ref_fields = attrs.get("_REFERENCE_FIELDS", [])
            legacy = attrs.get("zarr_dtype")
            marked = field in ref_fields or (
                fmt == 2
                and isinstance(legacy, list)
                and any(f.get("name") == field and f.get("dtype") == "object" for f in legacy)
            )
            assert marked, (
                f"field {field!r} of {path} in {url} is not listed in _REFERENCE_FIELDS "
                f"(attributes: {dict(attrs)})"
            )
            values = np.asarray(np.asarray(node[...])[field], dtype=object)
        return [self._decode_ref(v) for v in values.ravel()]

    def resolve_external(self, url: str, source: str) -> str:
        # hdmf-zarr resolves a link's source relative to the linking store itself.
        if "://" in source or posixpath.isabs(source):
            return source
        if "://" in url:
            protocol, _, rest = url.partition("://")
            return f"{protocol}://{posixpath.normpath(posixpath.join(rest, source))}"
        return os.path.normpath(os.path.join(url, source))

    def check_store(self, url: str) -> None:
        """If consolidated metadata exists, it must list exactly what the documents hold."""
        root = self.open_root(url)
        try:
            consolidated = self.open_root(url, use_consolidated=True)
        except (ValueError, KeyError, FileNotFoundError):
            return
        if consolidated.metadata.consolidated_metadata is None:
            return
        real = sorted(k for k, _ in root.members(max_depth=None))
        listed = sorted(k for k, _ in consolidated.members(max_depth=None))
        assert real == listed, f"stale consolidated metadata in {url}: {listed} != {real}"
