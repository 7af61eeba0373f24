"""Data types shared by all backends: variable-length strings and object references.

nwbstore describes special types with NumPy object dtypes carrying metadata, exactly as h5py
does, so an ``h5py.string_dtype()`` is accepted unchanged:

- :func:`string_dtype` -- variable-length UTF-8 strings (``dtype('O', metadata={'vlen': str})``).
  Zarr v3 stores them with its ``string`` data type, Zarr v2 with the ``VLenUTF8`` codec.
- :data:`reference_dtype` -- object references (:class:`~nwbstore.links.Reference` values).
  HDF5 stores native object references; Zarr stores path strings marked
  ``_DTYPE="object_reference"`` (hdmf-zarr 0.14).

Reading a dataset of either kind returns an object array of ``str`` or ``Reference``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nwbstore.errors import UnsupportedDtypeError
from nwbstore.links import Reference

__all__ = [
    "is_reference_dtype",
    "is_string_dtype",
    "normalize_data_and_dtype",
    "normalize_dtype",
    "reference_dtype",
    "string_dtype",
]


def string_dtype() -> np.dtype[Any]:
    """The dtype of variable-length UTF-8 strings (same as ``h5py.string_dtype()``)."""
    return np.dtype("O", metadata={"vlen": str})


#: The dtype of object-reference datasets and compound fields.
reference_dtype: np.dtype[Any] = np.dtype("O", metadata={"ref": Reference})


def is_string_dtype(dtype: Any) -> bool:
    """True for variable-length string dtypes (nwbstore/h5py object, NumPy ``StringDType``)."""
    dt = np.dtype(dtype)
    if isinstance(dt, np.dtypes.StringDType):
        return True
    meta = dt.metadata or {}
    return dt.kind == "O" and meta.get("vlen") in (str, bytes)


def is_reference_dtype(dtype: Any) -> bool:
    """True for object-reference dtypes (nwbstore's or ``h5py.ref_dtype``)."""
    dt = np.dtype(dtype)
    if dt.kind != "O":
        return False
    ref = (dt.metadata or {}).get("ref")
    if ref is Reference:
        return True
    try:  # h5py.ref_dtype carries h5py.Reference
        import h5py

        return ref is h5py.Reference
    except ImportError:  # pragma: no cover - h5py is a core dependency
        return False


def normalize_dtype(dtype: Any, *, where: str = "dataset") -> np.dtype[Any]:
    """Map user dtypes onto nwbstore's canonical ones.

    ``str``, ``"str"``, ``StringDType`` and ``U`` dtypes become :func:`string_dtype`;
    reference dtypes become :data:`reference_dtype`; compound dtypes are normalised field by
    field. A plain ``object`` dtype with no metadata is refused: it has no stored form.
    """
    if dtype is str or (isinstance(dtype, str) and dtype in ("str", "text", "utf8", "utf-8")):
        return string_dtype()
    if dtype is Reference:
        return reference_dtype
    dt = np.dtype(dtype)
    if dt.names is not None:
        fields = []
        for name in dt.names:
            sub = dt[name]
            fields.append((name, normalize_dtype(sub, where=f"field {name!r} of {where}")))
        return np.dtype(fields)
    if is_reference_dtype(dt):
        return reference_dtype
    if is_string_dtype(dt) or dt.kind == "U":
        return string_dtype()
    if dt.kind == "O":
        raise UnsupportedDtypeError(
            f"cannot store {where} with a plain object dtype: use nwbstore.string_dtype() for "
            "variable-length strings, nwbstore.reference_dtype for references, or a numeric dtype"
        )
    if dt.kind in "mMV" or dt.subdtype is not None:
        raise UnsupportedDtypeError(
            f"cannot store {where} with dtype {dt}: no portable HDF5/Zarr form "
            "(convert datetimes to ISO strings or int64, and use compound dtypes for records)"
        )
    if dt.kind == "c":
        raise UnsupportedDtypeError(
            f"cannot store {where} with complex dtype {dt}: store real and imaginary parts as a "
            "compound dtype or as two datasets"
        )
    return dt


def _looks_like_references(data: Any) -> bool:
    if isinstance(data, Reference):
        return True
    if isinstance(data, (list, tuple)) and data:
        return all(isinstance(x, Reference) for x in data)
    if isinstance(data, np.ndarray) and data.dtype.kind == "O" and data.size:
        return all(isinstance(x, Reference) for x in data.flat)
    return False


def _looks_like_strings(data: Any) -> bool:
    if isinstance(data, str):
        return True
    if isinstance(data, np.ndarray):
        if data.dtype.kind == "U" or isinstance(data.dtype, np.dtypes.StringDType):
            return True
        return (
            data.dtype.kind == "O" and data.size > 0 and all(isinstance(x, str) for x in data.flat)
        )
    if isinstance(data, (list, tuple)) and data:
        flat = np.asarray(data, dtype=object).ravel()
        return all(isinstance(x, str) for x in flat)
    return False


def normalize_data_and_dtype(
    data: Any,
    shape: tuple[int, ...] | int | None,
    dtype: Any,
    *,
    where: str = "dataset",
) -> tuple[np.ndarray | None, tuple[int, ...], np.dtype[Any]]:
    """Return ``(array or None, shape, dtype)`` ready for a backend to store.

    Raises
    ------
    UnsupportedDtypeError
        For dtypes with no stored form (plain objects, complex numbers, datetimes).
    ValueError
        When neither ``data`` nor ``shape`` is given, or they disagree.
    """
    shape_t = (shape,) if isinstance(shape, int) else (tuple(shape) if shape is not None else None)
    if data is None:
        if shape_t is None:
            raise ValueError(f"cannot create {where}: give data= or shape=")
        dt = normalize_dtype("f8" if dtype is None else dtype, where=where)
        return None, tuple(int(s) for s in shape_t), dt

    if dtype is not None:
        dt = normalize_dtype(dtype, where=where)
    elif _looks_like_references(data):
        dt = reference_dtype
    elif _looks_like_strings(data):
        dt = string_dtype()
    else:
        dt = normalize_dtype(np.asarray(data).dtype, where=where)

    if dt.kind == "O" or (dt.names is not None and any(dt[n].kind == "O" for n in dt.names)):
        arr = np.empty(np.shape(data) if not isinstance(data, (str, Reference)) else (), dtype=dt)
        if dt.names is None:
            src = np.asarray(data, dtype=object)
            if is_string_dtype(dt):
                arr[...] = np.vectorize(_as_str, otypes=[object])(src) if src.size else src
            else:
                arr[...] = src
        else:
            src = np.asarray(data)
            for name in dt.names:
                arr[name] = src[name]
    else:
        arr = np.asarray(data, dtype=dt)
    if shape_t is not None and tuple(shape_t) != arr.shape:
        try:
            arr = arr.reshape(shape_t)
        except ValueError as err:
            raise ValueError(
                f"cannot create {where}: data has shape {arr.shape}, shape= says {shape_t}"
            ) from err
    return arr, arr.shape, dt


def _as_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)
