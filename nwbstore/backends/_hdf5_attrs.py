"""Attributes of HDF5 groups and datasets, stored through ``h5py.AttributeManager``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from nwbstore.backends._hdf5_types import check_attribute_dtype, decode_value, to_h5py_ref
from nwbstore.errors import UnsupportedDtypeError
from nwbstore.links import Reference
from nwbstore.nodes import Attributes

if TYPE_CHECKING:
    from nwbstore.nodes import Node

__all__ = ["HDF5Attributes"]


class HDF5Attributes(Attributes):
    """Attributes of an HDF5 object.

    Written values: ``int``/``float``/``bool``/``str``, NumPy scalars and arrays, lists (stored
    as arrays; lists of ``str`` as variable-length UTF-8 strings) and
    :class:`~nwbstore.links.Reference` (stored as HDF5 object references). Read back as ``str``
    (never ``bytes``), NumPy scalars, NumPy arrays (string arrays as object arrays of ``str``)
    and ``Reference``.
    """

    def __init__(self, node: Node, h5obj: h5py.Group | h5py.Dataset) -> None:
        super().__init__(node)
        self._h5 = h5obj

    def _where(self, key: str) -> str:
        return f"attribute {key!r} of {self._node.name!r} in {self._node.store.url}"

    def _names(self) -> list[str]:
        return list(self._h5.attrs.keys())

    def _read(self, key: str) -> Any:
        value = self._h5.attrs[key]
        if isinstance(value, h5py.Empty):
            return None
        dtype = self._h5.attrs.get_id(key).dtype
        if dtype.kind == "S":  # fixed-length strings: read as text like the vlen ones
            if isinstance(value, np.ndarray):
                out = np.empty(value.shape, dtype=object)
                for idx, item in np.ndenumerate(value):
                    out[idx] = bytes(item).decode("utf-8", errors="surrogateescape")
                return out
            return bytes(value).decode("utf-8", errors="surrogateescape")
        return decode_value(value, dtype, self._h5.file)

    def _write(self, key: str, value: Any) -> None:
        where = self._where(key)
        data, dtype = self._encode(value, where)
        try:
            if dtype is None:
                self._h5.attrs[key] = data
            else:
                self._h5.attrs.create(key, data, dtype=dtype)
        except TypeError as err:
            raise UnsupportedDtypeError(
                f"cannot store {where}: {err} (value {value!r:.80})"
            ) from None

    def _encode(self, value: Any, where: str) -> tuple[Any, Any]:
        """Return ``(data, h5py dtype or None)`` for an attribute value."""
        if value is None or isinstance(value, (dict, Mapping, set)):
            raise UnsupportedDtypeError(
                f"cannot store {where}: {type(value).__name__} values have no HDF5 attribute "
                "form (store a JSON string with json.dumps, or a scalar/array)"
            )
        if isinstance(value, (Reference, h5py.Reference)):
            return to_h5py_ref(value, self._h5.file, where=where), h5py.ref_dtype
        if isinstance(value, str):
            return value, h5py.string_dtype("utf-8")
        if isinstance(value, (list, tuple, np.ndarray)):
            arr = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
            flat = list(arr.flat)
            if arr.dtype.kind in "OUT" and flat:
                if all(isinstance(x, (Reference, h5py.Reference)) for x in flat):
                    out = np.empty(arr.shape, dtype=h5py.ref_dtype)
                    for idx, item in np.ndenumerate(arr):
                        out[idx] = to_h5py_ref(item, self._h5.file, where=where)
                    return out, h5py.ref_dtype
                if all(isinstance(x, str) for x in flat):
                    return np.array(arr, dtype=object), h5py.string_dtype("utf-8")
            if arr.dtype.kind == "U" or isinstance(arr.dtype, np.dtypes.StringDType):
                return np.array(arr, dtype=object), h5py.string_dtype("utf-8")
            if arr.dtype.kind == "O":
                # a list of numbers: let NumPy find the common type
                try:
                    arr = np.asarray(arr.tolist())
                except ValueError as err:
                    raise UnsupportedDtypeError(f"cannot store {where}: {err}") from None
                if arr.dtype.kind in "OU":
                    raise UnsupportedDtypeError(
                        f"cannot store {where}: the list mixes types HDF5 cannot hold in one "
                        "array (use one type per attribute)"
                    )
            check_attribute_dtype(arr.dtype, where=where)
            return arr, None
        if isinstance(value, (complex, np.generic)):
            check_attribute_dtype(np.asarray(value).dtype, where=where)
        return value, None

    def _delete(self, key: str) -> None:
        del self._h5.attrs[key]
