"""Where an HDF5 dataset's chunks lie in the file: the index a remote reader fetches from.

:class:`ChunkIndex` holds, for one dataset, what is needed to read any selection from byte
ranges of the file without HDF5: shape, chunk shape, dtype, fill value, the filter pipeline
(HDF5 filter ids and cd_values, and nwbstore :class:`~nwbstore.codecs.CodecSpec` names where
the table knows them) and, per stored chunk, its grid position, byte offset, stored size and
filter mask, as numpy arrays.

It is built from an open ``h5py.Dataset`` in one pass over HDF5's chunk index
(``DatasetID.chunk_iter``, h5py >= 3.8), which reads the index B-tree, not the chunks.
A contiguous dataset becomes a grid of *virtual* chunks of whole rows (about
:data:`CONTIGUOUS_CHUNK_BYTES` each) over its one block, so a small selection reads a small
range; those chunks are not padded at the edge (``contiguous=True``).

Datasets whose values are not plain bytes at known places cannot be indexed:
:func:`index_problem` names why (compact or virtual layout, external storage, variable-length
strings, references, object dtypes), and the caller keeps h5py's read.

The index round-trips through JSON (:meth:`ChunkIndex.to_json`, :meth:`ChunkIndex.from_json`;
arrays as base64 of little-endian bytes) so a metadata catalog can cache it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.format import descr_to_dtype, dtype_to_descr

__all__ = ["CONTIGUOUS_CHUNK_BYTES", "ChunkIndex", "FilterStage", "index_problem"]

#: Target size of the virtual chunks a contiguous dataset is cut into (1 MiB of whole rows).
CONTIGUOUS_CHUNK_BYTES = 2**20
_JSON_VERSION = 1


@dataclass(frozen=True)
class FilterStage:
    """One HDF5 filter of a dataset's pipeline, in write order.

    Attributes
    ----------
    id
        HDF5 filter id (1 deflate, 2 shuffle, 3 fletcher32, 32001 Blosc, ...).
    flags
        HDF5 filter flags (``H5Z_FLAG_OPTIONAL`` = 1).
    cd_values
        The client data values stored in the file.
    name
        The name HDF5 records for the filter.
    codec
        The nwbstore codec table name (``"zlib"``, ``"shuffle"``, ...), or None if the table
        does not know the filter.
    """

    id: int
    flags: int
    cd_values: tuple[int, ...]
    name: str
    codec: str | None = None


def index_problem(dataset: Any) -> str | None:
    """Why ``dataset`` (an ``h5py.Dataset``) cannot be read from byte ranges, or None.

    The reasons are layouts whose bytes are not at file offsets HDF5 reports (compact,
    virtual, external files) and dtypes whose stored bytes are pointers into the file
    (variable-length strings and sequences, references) or that numpy cannot hold bytewise.
    """
    import h5py

    dsid = dataset.id
    plist = dsid.get_create_plist()
    layout = plist.get_layout()
    if layout not in (h5py.h5d.CHUNKED, h5py.h5d.CONTIGUOUS):
        return {h5py.h5d.COMPACT: "compact layout", h5py.h5d.VIRTUAL: "virtual layout"}.get(
            layout, f"layout {layout}"
        )
    if plist.get_external_count():
        return "external storage"
    dtype = dataset.dtype
    if _has_pointer_fields(dtype):
        return f"dtype {dtype} holds variable-length data or references"
    if dtype.kind not in "biufcSV" or dtype.hasobject:
        return f"dtype {dtype} is not read bytewise"
    if dsid.get_type().get_size() != dtype.itemsize:
        return f"stored type size {dsid.get_type().get_size()} differs from {dtype}"
    if dataset.shape is None:
        return "null dataspace"
    return None


def _has_pointer_fields(dtype: np.dtype[Any]) -> bool:
    import h5py

    if dtype.names is not None:
        return any(_has_pointer_fields(dtype.fields[n][0]) for n in dtype.names)  # type: ignore[index]
    if dtype.subdtype is not None:
        return _has_pointer_fields(dtype.subdtype[0])
    return h5py.check_vlen_dtype(dtype) is not None or h5py.check_ref_dtype(dtype) is not None


@dataclass(frozen=True, eq=False)
class ChunkIndex:
    """The stored chunks of one HDF5 dataset (see the module docstring).

    Attributes
    ----------
    path
        The dataset's path in the file (for messages).
    shape, chunks
        Dataset shape and chunk shape (virtual rows for a contiguous dataset).
    dtype
        The stored dtype (byte order as in the file).
    fill_value
        The fill value as a 0-d array of ``dtype``: the value of chunks never written.
    filters
        The filter pipeline in write order.
    coords
        ``(n, ndim)`` int64 grid positions of the stored chunks, sorted by grid order.
    offsets, sizes
        ``(n,)`` int64 byte offsets in the file and stored sizes.
    masks
        ``(n,)`` uint32 filter masks: bit ``i`` set means filter ``i`` was skipped.
    contiguous
        True for a contiguous dataset: chunks are rows of one block, not padded at the edge.
    """

    path: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill_value: np.ndarray
    filters: tuple[FilterStage, ...]
    coords: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray
    masks: np.ndarray
    contiguous: bool = False

    # -- building -------------------------------------------------------------------------

    @classmethod
    def from_h5py(cls, dataset: Any) -> ChunkIndex:
        """Build the index of ``dataset`` (an ``h5py.Dataset``) in one pass over its B-tree.

        Raises
        ------
        ValueError
            If the dataset cannot be indexed (see :func:`index_problem`).
        """
        problem = index_problem(dataset)
        if problem is not None:
            raise ValueError(f"dataset {dataset.name!r} cannot be read from byte ranges: {problem}")
        shape = tuple(int(s) for s in dataset.shape)
        dtype = np.dtype(dataset.dtype)
        fill = np.array(dataset.fillvalue, dtype=dtype)
        if dataset.chunks is None:
            return cls._contiguous(dataset.name, dataset.id, shape, dtype, fill)
        chunks = tuple(int(c) for c in dataset.chunks)
        offs: list[int] = []
        sizes: list[int] = []
        masks: list[int] = []
        starts: list[tuple[int, ...]] = []

        def visit(info: Any) -> None:
            starts.append(tuple(info.chunk_offset))
            offs.append(int(info.byte_offset))
            sizes.append(int(info.size))
            masks.append(int(info.filter_mask))

        if dataset.id.get_num_chunks():
            dataset.id.chunk_iter(visit)
        ndim = len(shape)
        coords = np.asarray(starts, dtype=np.int64).reshape(-1, ndim) // np.asarray(
            chunks, dtype=np.int64
        )
        order = np.lexsort(coords.T[::-1]) if ndim and len(coords) else np.arange(len(coords))
        return cls(
            dataset.name,
            shape,
            chunks,
            dtype,
            fill,
            _filters_of(dataset),
            coords[order],
            np.asarray(offs, dtype=np.int64)[order],
            np.asarray(sizes, dtype=np.int64)[order],
            np.asarray(masks, dtype=np.uint32)[order],
        )

    @classmethod
    def _contiguous(
        cls, path: str, dsid: Any, shape: tuple[int, ...], dtype: np.dtype[Any], fill: np.ndarray
    ) -> ChunkIndex:
        base = dsid.get_offset()
        ndim = len(shape)
        row_items = int(np.prod(shape[1:], dtype=np.int64)) if ndim else 1
        row_bytes = row_items * dtype.itemsize
        rows = max(1, CONTIGUOUS_CHUNK_BYTES // max(row_bytes, 1)) if ndim else 1
        chunks = (max(1, min(rows, shape[0])), *shape[1:]) if ndim else ()
        chunks = tuple(max(1, c) for c in chunks)
        if base is None or int(np.prod(shape, dtype=np.int64)) == 0:
            n = 0
            starts = np.zeros(0, dtype=np.int64)
        else:
            n = -(-shape[0] // chunks[0]) if ndim else 1
            starts = np.arange(n, dtype=np.int64) * (chunks[0] if ndim else 0)
        coords = np.zeros((n, ndim), dtype=np.int64)
        if ndim:
            coords[:, 0] = np.arange(n)
        offsets = (int(base or 0) + starts * row_bytes).astype(np.int64)
        if ndim:
            stop = np.minimum(starts + chunks[0], shape[0])
            sizes = ((stop - starts) * row_bytes).astype(np.int64)
        else:
            sizes = np.full(n, dtype.itemsize, dtype=np.int64)
        return cls(
            path,
            shape,
            chunks,
            dtype,
            fill,
            (),
            coords,
            offsets,
            sizes,
            np.zeros(n, dtype=np.uint32),
            contiguous=True,
        )

    # -- queries ----------------------------------------------------------------------------

    @property
    def grid(self) -> tuple[int, ...]:
        """Chunks per axis."""
        return tuple(-(-s // c) for s, c in zip(self.shape, self.chunks, strict=True))

    @property
    def nchunks(self) -> int:
        """Number of stored chunks."""
        return int(self.offsets.size)

    @property
    def stored_bytes(self) -> int:
        """Sum of the stored chunks' sizes."""
        return int(self.sizes.sum())

    def lookup(self, coords: np.ndarray) -> np.ndarray:
        """Positions in this index of the chunks at grid ``coords`` (``(m, ndim)``); -1 where
        a chunk was never stored."""
        coords = np.asarray(coords, dtype=np.int64)
        count = len(coords) if coords.ndim == 2 else coords.size // max(len(self.shape), 1)
        if not self.nchunks:
            return np.full(count, -1, dtype=np.int64)
        if not self.shape:
            return np.zeros(count, dtype=np.int64)
        coords = coords.reshape(-1, len(self.shape))
        grid = tuple(max(g, 1) for g in self.grid)
        inside = np.all((coords >= 0) & (coords < np.asarray(grid, dtype=np.int64)), axis=1)
        keys = np.ravel_multi_index(tuple(self.coords.T), grid)
        wanted = np.ravel_multi_index(tuple(np.where(inside[:, None], coords, 0).T), grid)
        pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        return np.where(inside & (keys[pos] == wanted), pos, -1).astype(np.int64)

    # -- JSON -------------------------------------------------------------------------------

    def to_json(self) -> str:
        """The index as a JSON string (arrays as base64 of little-endian bytes)."""
        return json.dumps(
            {
                "version": _JSON_VERSION,
                "path": self.path,
                "shape": list(self.shape),
                "chunks": list(self.chunks),
                "dtype": dtype_to_descr(self.dtype),
                "fill_value": _b64(self.fill_value.tobytes()),
                "filters": [
                    [f.id, f.flags, list(f.cd_values), f.name, f.codec] for f in self.filters
                ],
                "contiguous": self.contiguous,
                "count": self.nchunks,
                "coords": _b64(self.coords.astype("<i8").tobytes()),
                "offsets": _b64(self.offsets.astype("<i8").tobytes()),
                "sizes": _b64(self.sizes.astype("<i8").tobytes()),
                "masks": _b64(self.masks.astype("<u4").tobytes()),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ChunkIndex:
        """Inverse of :meth:`to_json`.

        Raises
        ------
        ValueError
            If ``text`` is not an index written by :meth:`to_json` of this version.
        """
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != _JSON_VERSION:
            raise ValueError(f"not a chunk index of version {_JSON_VERSION}")
        descr = data["dtype"]
        dtype = descr_to_dtype(_tuples(descr) if isinstance(descr, list) else descr)
        shape = tuple(int(s) for s in data["shape"])
        n = int(data["count"])

        def arr(key: str, dt: str) -> np.ndarray:
            out = np.frombuffer(base64.b64decode(data[key]), dtype=dt)
            return out.astype(dt.replace("<", "="), copy=True)

        return cls(
            str(data["path"]),
            shape,
            tuple(int(c) for c in data["chunks"]),
            dtype,
            np.frombuffer(base64.b64decode(data["fill_value"]), dtype=dtype).reshape(()).copy(),
            tuple(
                FilterStage(int(i), int(fl), tuple(int(v) for v in cd), str(nm), cdc)
                for i, fl, cd, nm, cdc in data["filters"]
            ),
            arr("coords", "<i8").reshape(n, len(shape)),
            arr("offsets", "<i8"),
            arr("sizes", "<i8"),
            arr("masks", "<u4"),
            contiguous=bool(data["contiguous"]),
        )


def _filters_of(dataset: Any) -> tuple[FilterStage, ...]:
    from nwbstore.codecs import read_hdf5_filters, row_by_hdf5_id

    stages = []
    for fid, flags, cd, name in read_hdf5_filters(dataset):
        row = row_by_hdf5_id(fid)
        stages.append(FilterStage(fid, flags, cd, name, row.name if row is not None else None))
    return tuple(stages)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _tuples(descr: Any) -> Any:
    """JSON turned the dtype descr's tuples into lists; numpy wants tuples back."""
    if isinstance(descr, list):
        if all(isinstance(x, int) for x in descr):
            return tuple(descr)  # a sub-array shape
        return [
            tuple(_tuples(x) for x in item) if isinstance(item, list) else item for item in descr
        ]
    return descr
