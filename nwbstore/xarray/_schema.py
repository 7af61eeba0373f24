"""NWB schema look-ups: dimension names and type hierarchy from pynwb's type map."""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["FRIENDLY_DIMS", "friendly_dim", "hierarchy", "is_a", "spec_dims"]

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


@functools.cache
def _catalog() -> Any:
    try:
        import pynwb
    except ImportError:  # NWB semantics are optional: generic dims then
        return None
    return pynwb.get_type_map().namespace_catalog


def friendly_dim(name: str) -> str | None:
    """The dimension name shown for schema dimension ``name`` (``None``: a generic name)."""
    if _GENERIC.match(name):
        return None
    return FRIENDLY_DIMS.get(name, name)


@functools.cache
def hierarchy(namespace: str | None, neurodata_type: str | None) -> tuple[str, ...]:
    """``neurodata_type`` and its ancestors (``()`` when the type is unknown)."""
    catalog = _catalog()
    if catalog is None or not neurodata_type:
        return ()
    for ns in _namespaces(catalog, namespace):
        try:
            return tuple(catalog.get_hierarchy(ns, neurodata_type))
        except (KeyError, ValueError):
            continue
    return ()


def is_a(namespace: str | None, neurodata_type: str | None, base: str) -> bool:
    """Whether ``neurodata_type`` is ``base`` or derives from it."""
    return base in hierarchy(namespace, neurodata_type)


def _namespaces(catalog: Any, namespace: str | None) -> list[str]:
    names = list(catalog.namespaces)
    if namespace in names:
        return [namespace, *(n for n in names if n != namespace)]
    return names


@functools.cache
def spec_dims(
    namespace: str | None, neurodata_type: str | None, dataset: str, ndim: int
) -> tuple[str | None, ...] | None:
    """Friendly dimension names of ``dataset`` in type ``neurodata_type`` for rank ``ndim``.

    The schema may list several dims options (one per rank): the one whose rank matches is
    chosen. Returns ``None`` when the schema has no such dataset or no option of that rank;
    generic schema names (``dim0``...) come back as ``None`` entries.
    """
    catalog = _catalog()
    if catalog is None or not neurodata_type:
        return None
    for ns in _namespaces(catalog, namespace):
        try:
            spec = catalog.get_spec(ns, neurodata_type)
        except (KeyError, ValueError):
            continue
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
