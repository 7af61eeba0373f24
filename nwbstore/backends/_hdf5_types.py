"""Conversions between nwbstore values/dtypes and what h5py stores.

nwbstore describes variable-length strings and object references with NumPy object dtypes
carrying metadata (see :mod:`nwbstore.dtypes`); h5py does the same, except that references
are ``h5py.Reference`` objects tied to one file. This module maps dtypes both ways, turns
:class:`~nwbstore.links.Reference` values into h5py references (resolving their paths in the
file) and decodes what h5py reads (``bytes`` -> ``str``, ``h5py.Reference`` -> ``Reference``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import h5py
import numpy as np

from nwbstore.dtypes import is_reference_dtype, is_string_dtype, reference_dtype, string_dtype
from nwbstore.errors import NodeNotFoundError, UnsupportedDtypeError
from nwbstore.links import Reference

__all__ = [
    "check_attribute_dtype",
    "decode_value",
    "encode_value",
    "from_h5py_dtype",
    "has_special_fields",
    "to_h5py_dtype",
]


def to_h5py_dtype(dtype: np.dtype[Any], *, where: str) -> np.dtype[Any]:
    """Return the h5py dtype that stores nwbstore's ``dtype``.

    Raises
    ------
    UnsupportedDtypeError
        If h5py has no HDF5 type for ``dtype``.
    """
    if dtype.names is not None:
        return _map_fields(
            dtype, lambda name, sub: to_h5py_dtype(sub, where=f"field {name!r} of {where}")
        )
    if is_reference_dtype(dtype):
        return np.dtype(h5py.ref_dtype)
    if is_string_dtype(dtype) or dtype.kind == "U":
        return np.dtype(h5py.string_dtype("utf-8"))
    try:
        h5py.h5t.py_create(dtype, logical=True)
    except (TypeError, ValueError) as err:
        raise UnsupportedDtypeError(
            f"cannot store {where} with dtype {dtype} in HDF5: {err} "
            "(use a numeric, bool, fixed-length bytes, string or reference dtype)"
        ) from None
    return dtype


def from_h5py_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """Return nwbstore's dtype for a dtype read from h5py (strings and references mapped)."""
    if dtype.names is not None:
        return _map_fields(dtype, lambda _name, sub: from_h5py_dtype(sub))
    meta: Mapping[str, Any] = dtype.metadata or {}
    if meta.get("ref") is h5py.Reference:
        return reference_dtype
    if dtype.kind == "O" and meta.get("vlen") in (str, bytes):
        return string_dtype()
    return dtype


def _map_fields(
    dtype: np.dtype[Any], fn: Callable[[str, np.dtype[Any]], np.dtype[Any]]
) -> np.dtype[Any]:
    """Return the compound ``dtype`` with each field's dtype replaced by ``fn(name, dtype)``.

    Offsets and itemsize are kept, so the file's layout (padding included) is preserved.
    """
    fields: Mapping[str, Any] = dtype.fields or {}
    names = list(dtype.names or ())
    spec: Any = {
        "names": names,
        "formats": [fn(n, fields[n][0]) for n in names],
        "offsets": [fields[n][1] for n in names],
        "itemsize": dtype.itemsize,
    }
    return np.dtype(spec)


def has_special_fields(dtype: np.dtype[Any]) -> bool:
    """True if ``dtype`` is, or has a field that is, a string or reference dtype."""
    if dtype.names is not None:
        return any(has_special_fields(dtype.fields[n][0]) for n in dtype.names)  # type: ignore[index]
    return dtype.kind == "O"


# -- values written --------------------------------------------------------------------------


def check_attribute_dtype(dtype: np.dtype[Any], *, where: str) -> None:
    """Refuse attribute dtypes Zarr cannot hold either (complex, also inside compounds).

    h5py would store complex numbers as an ``(r, i)`` compound that no other backend reads
    back the same, so HDF5 refuses them like Zarr does.

    Raises
    ------
    UnsupportedDtypeError
        If ``dtype`` is, or has a field that is, complex.
    """
    if dtype.names is not None:
        for name in dtype.names:
            check_attribute_dtype(dtype.fields[name][0], where=f"field {name!r} of {where}")  # type: ignore[index]
        return
    if dtype.kind == "c":
        raise UnsupportedDtypeError(
            f"cannot store {where} with complex dtype {dtype}: store the real and imaginary "
            "parts as two attributes (or a list of two numbers)"
        )


def to_h5py_ref(value: Any, file: h5py.File, *, where: str) -> h5py.Reference:
    """Return the h5py reference for a :class:`Reference` (or pass an h5py one through).

    ``None`` gives a null reference.
    """
    if value is None:
        return h5py.Reference()
    if isinstance(value, h5py.Reference):
        return value
    if isinstance(value, str):
        value = Reference(value)
    if not isinstance(value, Reference):
        raise UnsupportedDtypeError(
            f"cannot store {value!r} as an object reference in {where}: "
            "give nwbstore.Reference(path) values"
        )
    if value.source not in (".", ""):
        raise UnsupportedDtypeError(
            f"cannot store a reference to {value.path!r} in {value.source!r} in {where}: "
            "HDF5 object references point inside the same file (use an external link instead)"
        )
    try:
        target = file[value.path]
    except KeyError:
        raise NodeNotFoundError(
            f"cannot store a reference to {value.path!r} in {where}: no such object in "
            f"{file.filename} (create the target first)"
        ) from None
    ref: h5py.Reference = target.ref
    return ref


def encode_value(value: Any, dtype: np.dtype[Any], file: h5py.File, *, where: str) -> Any:
    """Convert ``value`` (array-like) to what h5py writes for nwbstore's ``dtype``."""
    if not has_special_fields(dtype):
        return value
    h5dt = to_h5py_dtype(dtype, where=where)
    src = value if isinstance(value, np.ndarray) else None
    if dtype.names is None:
        if is_reference_dtype(dtype):
            obj = np.asarray(value, dtype=object) if src is None else src
            out = np.empty(obj.shape, dtype=h5dt)
            for idx, item in np.ndenumerate(obj):
                out[idx] = to_h5py_ref(item, file, where=where)
            return out
        # strings: h5py writes str objects; decode stray bytes so everything is UTF-8
        obj = np.asarray(value, dtype=object) if src is None else src.astype(object)
        out = np.empty(obj.shape, dtype=h5dt)
        for idx, item in np.ndenumerate(obj):
            out[idx] = item.decode("utf-8") if isinstance(item, bytes) else str(item)
        return out
    arr = np.asarray(value)
    if arr.dtype.names is None:  # tuples or lists of tuples
        arr = np.array(value, dtype=dtype)
    out = np.empty(arr.shape, dtype=h5dt)
    for name in dtype.names:
        sub = dtype.fields[name][0]  # type: ignore[index]
        out[name] = encode_value(arr[name], sub, file, where=f"field {name!r} of {where}")
    return out


# -- values read -----------------------------------------------------------------------------


def _ref_to_path(ref: Any, file: h5py.File) -> Reference | None:
    if not isinstance(ref, h5py.Reference):
        return ref
    if not ref:
        return None
    name = file[ref].name
    return Reference(name if name is not None else "/")


def _to_str(item: Any) -> Any:
    if isinstance(item, (bytes, np.bytes_)):
        return bytes(item).decode("utf-8", errors="surrogateescape")
    return item


def decode_value(value: Any, dtype: np.dtype[Any], file: h5py.File) -> Any:
    """Decode what h5py read for a value of h5py ``dtype`` into nwbstore values.

    Variable-length strings become ``str``; references become :class:`Reference` (null ones
    ``None``); compound values are decoded field by field into an array of nwbstore's dtype.
    Scalars stay scalars.
    """
    if not has_special_fields(dtype):
        return value
    if dtype.names is None:
        meta: Mapping[str, Any] = dtype.metadata or {}
        if meta.get("ref") is h5py.Reference:
            conv: Any = lambda item: _ref_to_path(item, file)  # noqa: E731
        elif meta.get("vlen") in (str, bytes):
            conv = _to_str
        else:
            return value
        if not isinstance(value, np.ndarray):
            return conv(value)
        out = np.empty(value.shape, dtype=object)
        for idx, item in np.ndenumerate(value):
            out[idx] = conv(item)
        return out
    scalar = isinstance(value, np.void)
    arr = np.asarray(value)
    out = np.empty(arr.shape, dtype=from_h5py_dtype(dtype))
    for name in dtype.names:
        sub = dtype.fields[name][0]  # type: ignore[index]
        out[name] = decode_value(arr[name], sub, file)
    return out[()] if scalar else out
