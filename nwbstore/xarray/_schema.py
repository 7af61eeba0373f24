"""NWB schema look-ups: dimension names and type hierarchy from pynwb's type map.

Namespaces the file caches (``/specifications``) that pynwb does not know (extensions) are
loaded from the file into a copy of the catalog, so an extension type gets its own dims.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import warnings
from typing import Any

from nwbstore.nodes import Dataset, Group, Store

__all__ = ["FRIENDLY_DIMS", "Schema", "friendly_dim", "schema_for"]

#: Schema dimension names shown under another name (everything else keeps its schema name).
FRIENDLY_DIMS = {
    "num_times": "time",
    "frame": "time",
    "num_channels": "channel",
    "num_electrodes": "channel",
    "width": "x",
    "height": "y",
    "depth": "z",
}

_GENERIC = re.compile(r"^dim_?\d+$")
_SPEC_GROUP = "specifications"


def friendly_dim(name: str) -> str | None:
    """The dimension name shown for schema dimension ``name`` (``None``: a generic name)."""
    if _GENERIC.match(name):
        return None
    return FRIENDLY_DIMS.get(name, name)


class Schema:
    """Look-ups in one namespace catalog (``None``: no pynwb, generic names everywhere)."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self._hierarchy: dict[tuple[Any, Any], tuple[str, ...]] = {}
        self._dims: dict[tuple[Any, ...], tuple[str | None, ...] | None] = {}

    def _namespaces(self, namespace: str | None) -> list[str]:
        names = list(self.catalog.namespaces)
        if namespace in names:
            return [namespace, *(n for n in names if n != namespace)]
        return names

    def hierarchy(self, namespace: str | None, neurodata_type: str | None) -> tuple[str, ...]:
        """``neurodata_type`` and its ancestors (``()`` when the type is unknown)."""
        key = (namespace, neurodata_type)
        if key not in self._hierarchy:
            self._hierarchy[key] = self._find_hierarchy(namespace, neurodata_type)
        return self._hierarchy[key]

    def _find_hierarchy(self, namespace: str | None, neurodata_type: str | None) -> tuple:
        if self.catalog is None or not neurodata_type:
            return ()
        for ns in self._namespaces(namespace):
            try:
                return tuple(self.catalog.get_hierarchy(ns, neurodata_type))
            except (KeyError, ValueError):
                continue
        return ()

    def is_a(self, namespace: str | None, neurodata_type: str | None, base: str) -> bool:
        """Whether ``neurodata_type`` is ``base`` or derives from it."""
        return base in self.hierarchy(namespace, neurodata_type)

    def spec_dims(
        self,
        namespace: str | None,
        neurodata_type: str | None,
        dataset: str,
        ndim: int,
        subpath: tuple[str, ...] = (),
    ) -> tuple[str | None, ...] | None:
        """Friendly dimension names of ``dataset`` in type ``neurodata_type`` for rank ``ndim``.

        ``subpath``: the untyped groups between the typed one and the dataset (``general``
        of an ``NWBFile``). The schema may list several dims options (one per rank): the
        one whose rank matches is chosen. ``None`` when the schema has no such dataset or no
        option of that rank; generic schema names (``dim0``...) come back as ``None``.
        """
        key = (namespace, neurodata_type, dataset, ndim, subpath)
        if key not in self._dims:
            self._dims[key] = self._find_dims(namespace, neurodata_type, dataset, ndim, subpath)
        return self._dims[key]

    def _find_dims(
        self,
        namespace: str | None,
        neurodata_type: str | None,
        dataset: str,
        ndim: int,
        subpath: tuple[str, ...],
    ) -> tuple[str | None, ...] | None:
        if self.catalog is None or not neurodata_type:
            return None
        for ns in self._namespaces(namespace):
            try:
                spec = self.catalog.get_spec(ns, neurodata_type)
            except (KeyError, ValueError):
                continue
            for name in subpath:
                spec = spec.get_group(name)
                if spec is None:
                    return None
            ds_spec = spec.get_dataset(dataset)
            if ds_spec is None or not ds_spec.dims:
                return None
            dims = ds_spec.dims
            options = dims if isinstance(dims[0], (list, tuple)) else [dims]
            for option in options:
                if len(option) == ndim:
                    return tuple(friendly_dim(str(d)) for d in option)
            return None
        return None


@functools.cache
def _base() -> Schema:
    try:
        import pynwb
    except ImportError:  # NWB semantics are optional: generic dims then
        return Schema(None)
    return Schema(pynwb.get_type_map().namespace_catalog)


def schema_for(store: Store) -> Schema:
    """The schema for ``store``: pynwb's, plus the extensions the file caches."""
    base = _base()
    specs = store.root.get(_SPEC_GROUP)
    if base.catalog is None or not isinstance(specs, Group):
        return base
    known = set(base.catalog.namespaces)
    readers: dict[str, Any] = {}
    for ns in specs:
        versions = specs.get(ns)
        if ns in known or not isinstance(versions, Group) or not len(versions):
            continue
        latest = versions.get(sorted(versions)[-1])  # hdmf's rule: the last version by name
        if isinstance(latest, Group):
            readers[ns] = _spec_reader(latest)
    if not readers:
        return base
    catalog = copy.deepcopy(base.catalog)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # hdmf warns about namespaces already loaded
            catalog.load_namespaces("namespace", reader=readers)
    except Exception as exc:  # a broken cached spec: fall back to generic names
        warnings.warn(
            f"{store.url}: the extension namespaces cached in the file could not be loaded "
            f"({', '.join(sorted(readers))}: {exc}); their types get generic dimension names",
            stacklevel=3,
        )
        return base
    return Schema(catalog)


@functools.cache
def _reader_class() -> type:
    """hdmf's ``SpecReader`` over a cached namespace group (hdmf imported only when needed)."""
    from hdmf.spec import SpecReader

    class StoreSpecReader(SpecReader):
        """Reads the JSON text of a cached namespace group of an nwbstore store."""

        def __init__(self, group: Group) -> None:
            super().__init__(source=f"{group.store.url}:{group.name}")
            self._group = group

        def _read(self, path: str) -> Any:
            node = self._group[path]
            if not isinstance(node, Dataset):
                raise ValueError(f"{node.name} in {self._group.store.url} is not a spec dataset")
            text = node[()]
            if getattr(text, "shape", None) == (1,):
                text = text[0]
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            return json.loads(str(text))

        def read_spec(self, spec_path: str) -> Any:
            return self._read(spec_path)

        def read_namespace(self, ns_path: str) -> Any:
            return self._read(ns_path)["namespaces"]

    return StoreSpecReader


def _spec_reader(group: Group) -> Any:
    return _reader_class()(group)
