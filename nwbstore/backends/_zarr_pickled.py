"""Read-only access to legacy Zarr v2 arrays encoded with the Pickle codec (opt-in).

hdmf-zarr <= 0.13 wrote object arrays with ``numcodecs.Pickle`` as the object codec (the first
v2 filter). zarr-python 3 cannot open them, and nwbstore never unpickles; with
``allow_pickle=True`` this module reads the chunks itself (``.zarray`` and ``.zattrs`` read as
JSON, compressor and later filters decoded by numcodecs) and hands the Pickle bytes to the
non-executing decoder in :mod:`nwbstore.backends._pickle_reader`. Values become nwbstore's:
``zarr_dtype="object"`` arrays give :class:`~nwbstore.links.Reference` values, compound arrays
(``zarr_dtype`` a list of fields) give records, everything else gives strings (plain text as
is, other values as JSON). Such datasets are read-only.
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from nwbstore.backends._pickle_reader import decode_pickled_array
from nwbstore.backends._zarr_types import HIDDEN_ATTRS, decode_attr, reference_from_value
from nwbstore.dtypes import is_reference_dtype, reference_dtype, string_dtype
from nwbstore.errors import PickleRefusedError, ReadOnlyError, UnsupportedDtypeError
from nwbstore.nodes import Attributes, Dataset

if TYPE_CHECKING:
    from nwbstore.nodes import Store
    from nwbstore.settings import DatasetSettings

__all__ = ["PickledArray", "PickledDataset", "read_pickled_array"]

_TEXT_MARKERS = {"str", "str_", "utf", "utf8", "utf-8", "text", "ascii", "bytes", "bytes_"}


def _get(store: Any, key: str) -> bytes | None:
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    buf = sync(store.get(key, prototype=default_buffer_prototype()))
    return None if buf is None else bytes(buf.to_bytes())


def _json(store: Any, key: str) -> dict[str, Any]:
    raw = _get(store, key)
    if raw is None:
        return {}
    doc = json.loads(raw)
    return doc if isinstance(doc, dict) else {}


class PickledArray:
    """The chunks of one legacy v2 array whose object codec is Pickle, decoded safely."""

    def __init__(self, store: Any, key: str, meta: dict[str, Any], where: str) -> None:
        import numcodecs

        self.where = where
        self._store = store
        self._key = key
        self._check(meta, where)
        filters = list(meta.get("filters") or [])
        self._filters = [numcodecs.get_codec(dict(c)) for c in filters[1:]]
        comp = meta.get("compressor")
        self._compressor = numcodecs.get_codec(dict(comp)) if comp else None
        self.shape = tuple(int(s) for s in meta["shape"])
        self.chunks = tuple(int(c) for c in meta["chunks"])
        self._sep = meta.get("dimension_separator") or "."
        self.fill_value = meta.get("fill_value")
        self.attrs = _json(store, f"{key}/.zattrs")

    def _check(self, meta: dict[str, Any], where: str) -> None:
        filters = list(meta.get("filters") or [])
        if meta.get("zarr_format") != 2 or not filters or filters[0].get("id") != "pickle":
            raise PickleRefusedError(
                f"{where} declares the Pickle codec in a layout nwbstore does not decode "
                "(only Zarr v2 arrays with Pickle as the object codec, as hdmf-zarr <= 0.13 "
                "wrote them); re-create it with hdmf-zarr >= 0.14"
            )
        if np.dtype(meta.get("dtype", "|O")).kind != "O":
            raise PickleRefusedError(
                f"{where} stores dtype {meta.get('dtype')} with the Pickle codec; only object "
                "arrays are decoded: re-create it with hdmf-zarr >= 0.14"
            )
        others = [c for c in [*filters[1:], meta.get("compressor")] if c]
        if any(c.get("id") == "pickle" for c in others):
            raise PickleRefusedError(f"{where} applies the Pickle codec twice; not decoded")

    def _decode_objects(self, data: bytes, index: tuple[int, ...]) -> np.ndarray:
        """The object array the object codec encoded as ``data`` (never unpickled)."""
        return decode_pickled_array(data, f"{self.where}, chunk {index}")

    def _chunk(self, index: tuple[int, ...]) -> np.ndarray:
        name = self._sep.join(str(i) for i in index) if index else "0"
        raw = _get(self._store, f"{self._key}/{name}")
        if raw is None:
            out = np.empty(self.chunks, dtype=object)
            out.fill(self.fill_value)
            return out
        data: Any = raw
        if self._compressor is not None:
            data = self._compressor.decode(data)
        for codec in reversed(self._filters):
            data = codec.decode(data)
        arr = self._decode_objects(bytes(data), index)
        if arr.size != int(np.prod(self.chunks)):
            raise PickleRefusedError(
                f"{self.where}, chunk {index}: holds {arr.size} values for a chunk of "
                f"shape {self.chunks}"
            )
        return np.asarray(arr, dtype=object).reshape(self.chunks)

    def read_box(self, box: list[tuple[int, int]]) -> np.ndarray:
        """The values in ``[start, stop)`` on each axis, as a raw object array."""
        out = np.empty(tuple(b - a for a, b in box), dtype=object)
        if out.size == 0:
            return out
        if not self.shape:
            out[()] = self._chunk(())[()]
            return out
        grid = [range(a // c, -(-b // c)) for (a, b), c in zip(box, self.chunks, strict=True)]
        for index in itertools.product(*grid):
            lo = [i * c for i, c in zip(index, self.chunks, strict=True)]
            src, dst = [], []
            for (a, b), start, c in zip(box, lo, self.chunks, strict=True):
                s0, s1 = max(a, start), min(b, start + c)
                src.append(slice(s0 - start, s1 - start))
                dst.append(slice(s0 - a, s1 - a))
            out[tuple(dst)] = self._chunk(index)[tuple(src)]
        return out

    def read(self, selection: Any) -> np.ndarray:
        """Raw values for a NumPy-style ``selection`` (fancy indexes read whole axes)."""
        box, post = _plan(selection, self.shape)
        picked = self.read_box(box)[tuple(post)]
        if isinstance(picked, np.ndarray):
            return picked
        out = np.empty((), dtype=object)
        out[()] = picked
        return out


def _plan(selection: Any, shape: tuple[int, ...]) -> tuple[list[tuple[int, int]], list[Any]]:
    sel = selection if isinstance(selection, tuple) else (selection,)
    if any(s is Ellipsis for s in sel):
        i = next(k for k, s in enumerate(sel) if s is Ellipsis)
        sel = sel[:i] + (slice(None),) * (len(shape) - len(sel) + 1) + sel[i + 1 :]
    if len(sel) > len(shape):
        raise IndexError(f"too many indices ({len(sel)}) for a dataset of shape {shape}")
    sel = sel + (slice(None),) * (len(shape) - len(sel))
    box: list[tuple[int, int]] = []
    post: list[Any] = []
    for s, size in zip(sel, shape, strict=True):
        if isinstance(s, (int, np.integer)):
            i = int(s) + (size if int(s) < 0 else 0)
            if not 0 <= i < size:
                raise IndexError(f"index {int(s)} is out of bounds for an axis of size {size}")
            box.append((i, i + 1))
            post.append(0)
        elif isinstance(s, slice) and (s.step is None or s.step > 0):
            start, stop, step = s.indices(size)
            stop = max(start, stop)
            box.append((start, stop))
            post.append(slice(0, stop - start, step))
        else:  # reversed slices, lists, arrays: read the axis, index in memory
            box.append((0, size))
            post.append(s)
    return box, post


# -- nwbstore values ------------------------------------------------------------------------


def _field_dtype(marker: Any) -> np.dtype[Any]:
    if marker in ("object", "region") or marker == "object_reference":
        return reference_dtype
    if not isinstance(marker, str) or marker in _TEXT_MARKERS or marker == "isodatetime":
        return string_dtype()
    try:
        dt = np.dtype(marker)
    except TypeError:
        return string_dtype()
    return dt if dt.kind in "biufc" else string_dtype()


def legacy_dtype(attrs: dict[str, Any]) -> np.dtype[Any]:
    """The nwbstore dtype of a legacy Pickle array with attributes ``attrs``."""
    marker = attrs.get("zarr_dtype", attrs.get("_DTYPE"))
    if isinstance(marker, list) and all(isinstance(f, dict) and "name" in f for f in marker):
        return np.dtype([(str(f["name"]), _field_dtype(f.get("dtype"))) for f in marker])
    if marker in ("object", "object_reference"):
        return reference_dtype
    return string_dtype()


def _text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise UnsupportedDtypeError(f"{where}: {value!r} is not UTF-8 text") from err
    return json.dumps(value, default=lambda v: _text(v, where))


def _reference(value: Any, where: str) -> Any:
    if isinstance(value, (dict, str)):
        return reference_from_value(value)
    raise UnsupportedDtypeError(
        f"{where}: {value!r} is not a reference (hdmf-zarr writes {{'source', 'path'}} dicts)"
    )


def _value(value: Any, dt: np.dtype[Any], where: str) -> Any:
    if is_reference_dtype(dt):
        return _reference(value, where)
    if dt.kind == "O":
        return _text(value, where)
    return 0 if value is None else value


def to_nwbstore(raw: np.ndarray, dt: np.dtype[Any], where: str) -> Any:
    """Turn decoded legacy values into values of the nwbstore dtype ``dt``."""
    if dt.names is None:
        out = np.empty(raw.shape, dtype=object)
        for idx, v in np.ndenumerate(raw):
            out[idx] = _value(v, dt, where)
        return out[()] if out.ndim == 0 else out
    rec = np.empty(raw.shape, dtype=dt)
    for idx, row in np.ndenumerate(raw):
        if not isinstance(row, (list, tuple)) or len(row) != len(dt.names):
            raise UnsupportedDtypeError(
                f"{where}: row {idx} is {row!r}, not {len(dt.names)} fields {list(dt.names)}"
            )
        rec[idx] = tuple(
            _value(v, dt.fields[n][0], where)  # type: ignore[index]
            for v, n in zip(row, dt.names, strict=True)
        )
    return rec[()] if rec.ndim == 0 else rec


# -- the nwbstore dataset -------------------------------------------------------------------


class _PickledAttributes(Attributes):
    def __init__(self, node: PickledDataset, attrs: dict[str, Any]) -> None:
        super().__init__(node)
        self._attrs = attrs

    def _names(self) -> list[str]:
        return sorted(k for k in self._attrs if k not in HIDDEN_ATTRS)

    def _read(self, key: str) -> Any:
        return decode_attr(self._attrs[key])

    def _write(self, key: str, value: Any) -> None:
        raise _read_only(self._node)

    def _delete(self, key: str) -> None:
        raise _read_only(self._node)


def _read_only(node: Any) -> ReadOnlyError:
    custom = getattr(node, "read_only_error", None)
    if callable(custom):  # a subclass that explains its own origin
        error: ReadOnlyError = custom()
        return error
    return ReadOnlyError(
        f"dataset {node.name!r} in {node.store.url} was decoded from the legacy Pickle codec and "
        "is read-only; convert the store (nwbstore.convert(..., allow_pickle=True), CLI "
        "--allow-pickle) to get a writable copy without Pickle"
    )


class PickledDataset(Dataset):
    """A legacy Pickle-encoded Zarr v2 array, read through the non-executing decoder."""

    #: Marks datasets whose values were decoded from Pickle (reported by ``convert``).
    decoded_from_pickle = True

    def __init__(
        self, store: Store, name: str, array: PickledArray, *, scalar: bool = False
    ) -> None:
        super().__init__(store, name)
        self._array = array
        self._dtype = legacy_dtype(array.attrs)
        # hdmf-zarr <= 0.13 cached each specification as a 1-element array; 0.14 and HDF5
        # NWB files hold a scalar string there, which is what readers of the copy expect
        self._scalar = scalar and array.shape == (1,)

    @property
    def attrs(self) -> Attributes:
        return _PickledAttributes(self, self._array.attrs)

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self._scalar else self._array.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    @property
    def settings(self) -> DatasetSettings:
        from nwbstore.settings import DatasetSettings

        # no declared maxshape, as for other Zarr arrays: an HDF5 copy gets a fixed size
        return DatasetSettings(chunks=None if self._scalar else self._array.chunks or None)

    @property
    def maxshape(self) -> tuple[int | None, ...]:
        return (None,) * self.ndim

    @property
    def chunks(self) -> tuple[int, ...] | None:
        return None if self._scalar else self._array.chunks or None

    def _read(self, selection: Any) -> Any:
        where = f"dataset {self.name!r} in {self.store.url}"
        if self._scalar:
            raw = self._array.read(0)[selection]
            return to_nwbstore(np.asarray(raw, dtype=object), self.dtype, where)
        return to_nwbstore(self._array.read(selection), self.dtype, where)

    def _write(self, selection: Any, value: Any) -> None:
        raise _read_only(self)

    def _resize(self, shape: tuple[int, ...]) -> None:
        raise _read_only(self)


def read_pickled_array(store: Any, key: str, where: str) -> PickledArray:
    """Open the legacy array at ``key`` of a zarr ``store`` (its ``.zarray`` read as JSON)."""
    meta = _json(store, f"{key}/.zarray")
    if not meta:
        raise PickleRefusedError(f"{where}: no Zarr v2 metadata (.zarray) to decode it from")
    return PickledArray(store, key, meta, where)
