"""What a dataset field of an in-memory NWBFile holds: shape, dtype, settings it already has.

:func:`inspect_source` looks at one value (an array, a list, an h5py/zarr dataset, a data chunk
iterator, or any of them wrapped in ``H5DataIO``/``ZarrDataIO``) and returns a
:class:`Source` describing it, or a :class:`Skip` saying why it cannot be configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nwbstore.dtypes import is_reference_dtype, is_string_dtype, string_dtype
from nwbstore.settings import DatasetSettings

__all__ = ["Skip", "Source", "SourceKind", "inspect_source", "settings_of_dataio"]

SourceKind = Literal["array", "list", "text", "h5py", "zarr", "dci", "gdci"]


@dataclass(frozen=True)
class Source:
    """One configurable dataset source.

    Attributes
    ----------
    kind
        ``"array"`` (numpy), ``"list"`` (numbers), ``"text"`` (strings), ``"h5py"``/``"zarr"``
        (a dataset of another file), ``"dci"`` (``DataChunkIterator``), ``"gdci"``
        (``GenericDataChunkIterator``).
    data
        The source with any ``DataIO`` wrapper removed.
    shape, dtype
        Full shape and data type (text: nwbstore's variable-length string dtype).
    wrapped
        Settings read from the ``H5DataIO``/``ZarrDataIO`` the data came in, or ``None``.
    wrapped_chunks
        The wrapper chose the chunk shape (otherwise ``wrapped.chunks`` is h5py's guess).
    maxshape
        A maximum shape larger than ``shape`` (resizable dataset), or ``None``.
    """

    kind: SourceKind
    data: Any
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    wrapped: DatasetSettings | None = None
    maxshape: tuple[int | None, ...] | None = None
    wrapped_chunks: bool = False


@dataclass(frozen=True)
class Skip:
    """A value that is not configured, and why; ``warn`` for what a user may expect."""

    reason: str
    warn: bool = False


def _unwrap(value: Any) -> tuple[Any, Any]:
    """``(data, dataio or None)``; also sees through nwbstore's own buffering iterators."""
    from hdmf.data_utils import DataIO

    from nwbstore.nwb._config_iterators import BufferedArrayIterator, RebufferedIterator

    dataio = None
    if isinstance(value, DataIO):
        dataio, value = value, value.data
    if isinstance(value, BufferedArrayIterator | RebufferedIterator):
        value = value.source
    return value, dataio


def settings_of_dataio(dataio: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
    """Settings an ``H5DataIO``/``ZarrDataIO`` asks for, read through h5py/zarr themselves.

    A tiny dataset is created in memory with the wrapper's keyword arguments and read back
    with :meth:`DatasetSettings.from_hdf5` / :meth:`~DatasetSettings.from_zarr`, so every
    spelling h5py/zarr accept is understood. Returns ``None`` for a wrapper without settings.
    """
    from hdmf.backends.hdf5 import H5DataIO
    from hdmf_zarr import ZarrDataIO

    dt = np.dtype("f8") if dtype.kind in "OTUS" else dtype
    if isinstance(dataio, H5DataIO):
        kw = dict(dataio.io_settings)
        kw.pop("dtype", None)
        kw.pop("shape", None)
        if not kw:
            return None
        if kw.get("chunks") is True:
            kw.pop("chunks")
        return _hdf5_settings(kw, shape, dt)
    if isinstance(dataio, ZarrDataIO):
        kw = dict(dataio.io_settings)
        if not kw:
            return None
        return _zarr_settings(kw, shape, dt)
    return None


def _hdf5_settings(kw: dict[str, Any], shape: tuple[int, ...], dt: np.dtype[Any]) -> Any:
    import uuid

    import h5py
    import hdf5plugin  # noqa: F401  (plugin filters of wrapped data)

    kw.pop("shape", None)
    maxshape = kw.pop("maxshape", None)
    with h5py.File(f"config-{uuid.uuid4().hex}.h5", "w", driver="core", backing_store=False) as f:
        ds = f.create_dataset("probe", shape=shape, maxshape=maxshape, dtype=dt, **kw)
        return DatasetSettings.from_hdf5(ds, fallback="drop")


def _zarr_settings(kw: dict[str, Any], shape: tuple[int, ...], dt: np.dtype[Any]) -> Any:
    import zarr

    kw.pop("shape", None)
    fill = kw.pop("fill_value", None)
    compressors = kw.pop("compressors", "auto")
    group = zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=3)
    array = group.create_array(
        "probe",
        shape=shape,
        dtype=dt,
        compressors=compressors if compressors is not None else None,
        fill_value=fill,
        **kw,
    )
    return DatasetSettings.from_zarr(array, fallback="drop")


def _all_strings(values: Any) -> bool:
    return all(isinstance(v, str | bytes) for v in values)


def inspect_source(value: Any) -> Source | Skip:
    """Describe ``value``, a field of a container, for configuration (see the module doc)."""
    import h5py
    import zarr
    from hdmf.container import AbstractContainer
    from hdmf.data_utils import (
        AbstractDataChunkIterator,
        DataChunkIterator,
        GenericDataChunkIterator,
    )
    from hdmf.query import HDMFDataset

    data, dataio = _unwrap(value)
    if data is None:
        return Skip("allocated empty (shape and dtype only); filled by the user after writing")
    if isinstance(data, AbstractContainer):
        return Skip("a link to another object")
    if isinstance(data, HDMFDataset):
        return Skip("object references")
    if isinstance(data, str | bytes) or (
        np.ndim(data) == 0
        and not isinstance(data, Sequence | AbstractDataChunkIterator | h5py.Dataset | zarr.Array)
    ):
        return Skip("a scalar")

    kind: SourceKind
    maxshape: tuple[int | None, ...] | None = None
    if isinstance(data, GenericDataChunkIterator):
        kind, shape, dtype = "gdci", tuple(data.maxshape), np.dtype(data.dtype)
    elif isinstance(data, DataChunkIterator):
        if data.maxshape is None or any(m is None for m in data.maxshape):
            return Skip(
                f"a DataChunkIterator of unknown length (maxshape={data.maxshape}); give it a "
                "maxshape, or use a GenericDataChunkIterator, to configure it",
                warn=True,
            )
        if getattr(data, "iter_axis", 0) != 0:
            return Skip("a DataChunkIterator iterating along an axis other than 0", warn=True)
        kind, shape, dtype = "dci", tuple(data.maxshape), np.dtype(data.dtype)
    elif isinstance(data, AbstractDataChunkIterator):
        return Skip(f"a data chunk iterator of unknown kind ({type(data).__name__})", warn=True)
    elif isinstance(data, h5py.Dataset | zarr.Array):
        kind = "h5py" if isinstance(data, h5py.Dataset) else "zarr"
        shape, dtype = tuple(data.shape), np.dtype(data.dtype)
        if is_reference_dtype(dtype):
            return Skip("object references")
        if is_string_dtype(dtype) or dtype.kind in "OTUS":
            kind, dtype = "text", string_dtype()
    elif isinstance(data, np.ndarray):
        kind, shape, dtype = "array", tuple(data.shape), data.dtype
        if dtype.kind in "OTUS":
            if dtype.kind == "O" and not _all_strings(data.ravel()):
                return Skip(
                    f"an object array ({_kinds(data.ravel())}) nwbstore cannot configure", True
                )
            kind, dtype = "text", string_dtype()
    elif isinstance(data, Sequence):
        if len(data) == 0:
            return Skip("zero-length data")
        if any(isinstance(v, AbstractContainer) for v in data):
            return Skip("object references (a column of containers)")
        try:
            arr = np.asarray(data)
        except ValueError:
            return Skip("a ragged list (rows of different lengths)", warn=True)
        shape = tuple(arr.shape)
        if arr.dtype.kind in "US" or (arr.dtype.kind == "O" and _all_strings(arr.ravel())):
            kind, dtype = "text", string_dtype()
        elif arr.dtype.kind == "O":
            return Skip(f"a list of {_kinds(arr.ravel())} nwbstore cannot configure", warn=True)
        else:
            kind, dtype = "list", arr.dtype
    else:
        return Skip(f"an unsupported data type ({type(data).__name__})", warn=True)

    if not shape:
        return Skip("a scalar")
    if 0 in shape:
        return Skip("zero-length data")
    wrapped = settings_of_dataio(dataio, shape, dtype) if dataio is not None else None
    if wrapped is not None and wrapped.maxshape is not None:
        maxshape = wrapped.maxshape
    chunks_given = dataio is not None and _chose_chunks(dataio)
    return Source(kind, data, shape, dtype, wrapped, maxshape, chunks_given)


def _chose_chunks(dataio: Any) -> bool:
    from hdmf.data_utils import AbstractDataChunkIterator

    chunks = dict(getattr(dataio, "io_settings", {}) or {}).get("chunks")
    if chunks is None or chunks is True:
        return False
    inner = dataio.data
    if isinstance(inner, AbstractDataChunkIterator):  # H5DataIO copies the iterator's guess
        return tuple(chunks) != tuple(inner.recommended_chunk_shape() or ())
    return True


def _kinds(values: Any) -> str:
    names = sorted({type(v).__name__ for v in values})
    return "values of type " + ", ".join(names[:4])
