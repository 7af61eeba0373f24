"""The object model every backend implements: ``Store``, ``Group``, ``Dataset``, ``Attributes``.

This module holds no I/O. Backends subclass these classes and fill in a short list of
single-level primitives (the abstract ``_`` methods); everything users call (paths with
slashes, ``require_group``, ``visititems``, ``append``, mode checks, error messages) is
written once here so every backend behaves the same.
"""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nwbstore._append_checks import (
    as_block,
    check_block_dtype,
    check_growth,
    check_trailing_shape,
)
from nwbstore.errors import (
    ContainsNodeError,
    NodeNotFoundError,
    ReadOnlyError,
    SettingsError,
    UnsupportedOperationError,
)
from nwbstore.links import ExternalLink, SoftLink, join_path, normalize_path

if TYPE_CHECKING:
    from nwbstore.settings import DatasetSettings

__all__ = [
    "Attributes",
    "Capabilities",
    "ChunkLocation",
    "Dataset",
    "Group",
    "Link",
    "Mode",
    "Node",
    "Store",
    "StoredChunk",
]

Mode = Literal["r", "r+", "w", "w-", "x", "a"]
Link = SoftLink | ExternalLink

#: Root attribute that marks a store whose writing has not finished (see nwbstore.convert).
INCOMPLETE_ATTR = "_NWBSTORE_INCOMPLETE"

#: Root attribute recording which source a conversion was made from (nwbstore.convert.identity).
SOURCE_ATTR = "_NWBSTORE_SOURCE"

#: Bookkeeping attributes never shown to users.
_HIDDEN_ATTRS = frozenset({INCOMPLETE_ATTR, SOURCE_ATTR})

#: Modes that allow writing.
WRITE_MODES = frozenset({"r+", "w", "w-", "x", "a"})


@dataclass(frozen=True, slots=True)
class ChunkLocation:
    """Where a stored chunk's bytes sit in a local file: ``size`` bytes from ``offset``.

    Backends that know it (HDF5 on the sec2 driver, Zarr on local disk) hand it out so a
    destination on local disk can copy the bytes file to file, without passing them
    through Python.
    """

    path: str
    offset: int
    size: int


class StoredChunk:
    """One chunk as stored: its chunk-grid position, encoded bytes and HDF5 filter mask.

    Parameters
    ----------
    index
        Position in the chunk grid.
    data
        The encoded bytes, when already in memory.
    filter_mask
        HDF5's per-chunk mask (a set bit means that filter was skipped for this chunk);
        always 0 for Zarr.
    location
        Where the bytes sit in a local file, when the backend knows it.
    load
        Reads the bytes on demand (used when ``data`` is not given), so iterating over
        chunks does not hold them all in memory. Ask for ``data`` while the store is open.
    nbytes
        Size of the encoded bytes (taken from ``data`` or ``location`` when not given).
    """

    __slots__ = ("_data", "_load", "filter_mask", "index", "location", "nbytes")

    def __init__(
        self,
        index: tuple[int, ...],
        data: bytes | None = None,
        filter_mask: int = 0,
        *,
        location: ChunkLocation | None = None,
        load: Callable[[], bytes] | None = None,
        nbytes: int | None = None,
    ) -> None:
        if data is None and load is None:
            raise ValueError(f"stored chunk {index}: give its data or a way to load it")
        self.index = tuple(index)
        self.filter_mask = filter_mask
        self.location = location
        self._data = data
        self._load = load
        if nbytes is None:
            nbytes = len(data) if data is not None else location.size if location else -1
        self.nbytes = nbytes

    @property
    def data(self) -> bytes:
        """The encoded bytes (read now if they were not loaded yet; not kept)."""
        if self._data is not None:
            return self._data
        assert self._load is not None
        return self._load()

    def __repr__(self) -> str:
        where = f" at {self.location.path}+{self.location.offset}" if self.location else ""
        return (
            f"<StoredChunk {self.index}: {self.nbytes} bytes, "
            f"filter_mask {self.filter_mask}{where}>"
        )


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do, declared as data so callers (and the conformance suite) can ask.

    Attributes
    ----------
    writable
        The store accepts writes (depends on the backend and on the mode).
    resize
        Datasets created with a ``maxshape`` can grow and shrink.
    soft_links, external_links
        The backend stores links natively or by convention (``_LINKS`` in Zarr).
    references
        Object references in attributes and datasets.
    raw_chunks
        Stored chunks can be read and written without decoding.
    compound
        Structured (compound) dtypes.
    fixed_bytes
        Fixed-length byte strings (``S`` dtypes).
    """

    writable: bool
    resize: bool = True
    soft_links: bool = True
    external_links: bool = True
    references: bool = True
    raw_chunks: bool = False
    compound: bool = True
    fixed_bytes: bool = True


class Attributes(MutableMapping[str, Any], ABC):
    """Attributes of a group or dataset: a mutable mapping of name to value.

    Values read back are Python scalars, ``str``, ``numpy.ndarray`` (for lists and arrays) or
    :class:`~nwbstore.links.Reference`. Backends implement ``_read``, ``_write``, ``_delete``
    and ``_names``.
    """

    def __init__(self, node: Node) -> None:
        self._node = node

    @abstractmethod
    def _names(self) -> list[str]: ...

    @abstractmethod
    def _read(self, key: str) -> Any: ...

    @abstractmethod
    def _write(self, key: str, value: Any) -> None: ...

    @abstractmethod
    def _delete(self, key: str) -> None: ...

    def _visible_names(self) -> list[str]:
        return [n for n in self._names() if n not in _HIDDEN_ATTRS]

    def __getitem__(self, key: str) -> Any:
        if key not in self._visible_names():
            raise NodeNotFoundError(f"attribute {key!r} not found on {self._node.name!r}")
        return self._read(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._node.store._check_writable(f"set attribute {key!r} on {self._node.name!r}")
        self._write(key, value)

    def __delitem__(self, key: str) -> None:
        self._node.store._check_writable(f"delete attribute {key!r} on {self._node.name!r}")
        if key not in self._visible_names():
            raise NodeNotFoundError(f"attribute {key!r} not found on {self._node.name!r}")
        self._delete(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._visible_names())

    def __len__(self) -> int:
        return len(self._visible_names())

    def __contains__(self, key: object) -> bool:
        return key in self._visible_names()

    def update_many(self, values: dict[str, Any]) -> None:
        """Set several attributes at once (one metadata write where the backend allows)."""
        for key, value in values.items():
            self[key] = value

    def __repr__(self) -> str:
        return f"<Attributes of {self._node.name!r}: {sorted(self._visible_names())}>"


class Node(ABC):
    """A group or dataset in a store.

    Attributes
    ----------
    store
        The store holding the node.
    name
        Absolute path inside the store (``"/"`` for the root).
    """

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = normalize_path(name)

    @property
    def basename(self) -> str:
        """Last component of the path (``""`` for the root)."""
        return posixpath.basename(self.name)

    @property
    @abstractmethod
    def attrs(self) -> Attributes:
        """The node's attributes."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Node)
            and type(other) is type(self)
            and other.store is self.store
            and other.name == self.name
        )

    def __hash__(self) -> int:
        return hash((id(self.store), self.name))


class Group(Node):
    """A group: a container of groups, datasets and links."""

    # -- primitives a backend implements (single-level names, no slashes) ------------------

    @abstractmethod
    def _child_names(self) -> list[str]:
        """Names of children, links included, in a stable (sorted) order."""

    @abstractmethod
    def _get_child(self, name: str) -> Group | Dataset:
        """Return the child, following links; raise ``NodeNotFoundError`` if absent or broken."""

    @abstractmethod
    def _create_group(self, name: str) -> Group: ...

    @abstractmethod
    def _create_dataset(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        settings: DatasetSettings | None,
        data: Any,
    ) -> Dataset:
        """Create a dataset (``data`` already converted by the caller, or ``None``)."""

    @abstractmethod
    def _get_link(self, name: str) -> Link | None: ...

    @abstractmethod
    def _create_soft_link(self, name: str, target_path: str) -> None: ...

    @abstractmethod
    def _create_external_link(self, name: str, url: str, target_path: str) -> None: ...

    @abstractmethod
    def _delete(self, name: str) -> None: ...

    # -- public API ------------------------------------------------------------------------

    def _split(self, path: str) -> tuple[Group, str]:
        """Return the parent group of ``path`` (relative or absolute) and the final name."""
        full = join_path(self.name, path)
        if full == "/":
            raise ValueError("the root group has no parent and no name")
        parent_path, name = posixpath.split(full)
        parent = self.store.root if parent_path == "/" else self.store.root[parent_path]
        if not isinstance(parent, Group):
            raise NodeNotFoundError(
                f"{parent_path!r} in {self.store.url} is a dataset, not a group"
            )
        return parent, name

    def __getitem__(self, path: str) -> Group | Dataset:
        full = join_path(self.name, path)
        node: Group | Dataset = self.store.root
        if full == "/":
            return node
        walked = ""
        for part in full.strip("/").split("/"):
            walked += "/" + part
            if not isinstance(node, Group):
                raise NodeNotFoundError(
                    f"cannot look up {full!r} in {self.store.url}: {node.name!r} is a dataset"
                )
            if part not in node._child_names():
                raise NodeNotFoundError(f"no object {walked!r} in {self.store.url}")
            node = node._get_child(part)
        return node

    def get(self, path: str, default: Any = None) -> Group | Dataset | Any:
        """Return the node at ``path``, or ``default`` if there is none."""
        try:
            return self[path]
        except NodeNotFoundError:
            return default

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            parent, name = self._split(path)
        except (NodeNotFoundError, ValueError):
            return path in ("/", "")
        return name in parent._child_names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._child_names())

    def __len__(self) -> int:
        return len(self._child_names())

    def keys(self) -> list[str]:
        """Names of the children (links included)."""
        return self._child_names()

    def values(self) -> list[Group | Dataset]:
        """Children, links followed."""
        return [self._get_child(n) for n in self._child_names()]

    def items(self) -> list[tuple[str, Group | Dataset]]:
        """``(name, child)`` pairs, links followed."""
        return [(n, self._get_child(n)) for n in self._child_names()]

    def groups(self) -> Iterator[tuple[str, Group]]:
        """``(name, group)`` pairs for the child groups that are not links."""
        for n in self._child_names():
            if self._get_link(n) is None:
                child = self._get_child(n)
                if isinstance(child, Group):
                    yield n, child

    def datasets(self) -> Iterator[tuple[str, Dataset]]:
        """``(name, dataset)`` pairs for the child datasets that are not links."""
        for n in self._child_names():
            if self._get_link(n) is None:
                child = self._get_child(n)
                if isinstance(child, Dataset):
                    yield n, child

    def links(self) -> Iterator[tuple[str, Link]]:
        """``(name, link)`` pairs for the child links."""
        for n in self._child_names():
            link = self._get_link(n)
            if link is not None:
                yield n, link

    def _check_new(self, path: str, what: str) -> tuple[Group, str]:
        self.store._check_writable(f"create {what} {join_path(self.name, path)!r}")
        parent, name = self._split(path)
        if name in parent._child_names():
            raise ContainsNodeError(
                f"cannot create {what} {join_path(self.name, path)!r} in {self.store.url}: "
                "an object with that name exists (delete it first, or use require_*)"
            )
        return parent, name

    def _require_parent(self, path: str) -> Group:
        """Create intermediate groups of ``path`` like h5py does, and return the parent."""
        full = join_path(self.name, path)
        parent_path = posixpath.dirname(full)
        return self.store.root.require_group(parent_path) if parent_path != "/" else self.store.root

    def create_group(self, path: str) -> Group:
        """Create a group (and any missing intermediate groups).

        Raises
        ------
        ContainsNodeError
            If something already exists at ``path``.
        ReadOnlyError
            If the store is read-only.
        """
        self.store._check_writable(f"create group {join_path(self.name, path)!r}")
        self._require_parent(path)
        parent, name = self._check_new(path, "group")
        return parent._create_group(name)

    def require_group(self, path: str) -> Group:
        """Return the group at ``path``, creating it (and intermediates) if it does not exist."""
        full = join_path(self.name, path)
        if full == "/":
            return self.store.root
        node: Group = self.store.root
        for part in full.strip("/").split("/"):
            if part in node._child_names():
                child = node._get_child(part)
                if not isinstance(child, Group):
                    raise ContainsNodeError(
                        f"cannot require group {full!r} in {self.store.url}: "
                        f"{child.name!r} is a dataset"
                    )
                node = child
            else:
                self.store._check_writable(f"create group {full!r}")
                node = node._create_group(part)
        return node

    def create_dataset(
        self,
        path: str,
        data: Any = None,
        shape: tuple[int, ...] | int | None = None,
        dtype: Any = None,
        settings: DatasetSettings | None = None,
    ) -> Dataset:
        """Create a dataset.

        Parameters
        ----------
        path
            Name or path (intermediate groups are created).
        data
            Initial content (array-like); sets ``shape`` and ``dtype`` unless given.
        shape, dtype
            Shape and dtype when ``data`` is not given (the dataset is then filled with the
            fill value). Use ``h5py.string_dtype()`` / ``numpy.dtypes.StringDType()`` or
            ``str`` for variable-length strings.
        settings
            Chunking, compression, fill value and ``maxshape``
            (:class:`~nwbstore.DatasetSettings`); ``None`` lets the backend choose.

        Raises
        ------
        ContainsNodeError
            If something already exists at ``path``.
        UnsupportedDtypeError
            If the backend cannot store the dtype.
        """
        from nwbstore.dtypes import normalize_data_and_dtype

        self.store._check_writable(f"create dataset {join_path(self.name, path)!r}")
        self._require_parent(path)
        parent, name = self._check_new(path, "dataset")
        arr, shape_t, dt = normalize_data_and_dtype(
            data, shape, dtype, where=f"{join_path(self.name, path)!r} in {self.store.url}"
        )
        maxshape = settings.maxshape if settings is not None else None
        if maxshape is not None and len(maxshape) != len(shape_t):
            raise SettingsError(
                f"maxshape {maxshape} of dataset {join_path(self.name, path)!r} "
                f"has {len(maxshape)} axes but the shape {shape_t} has {len(shape_t)}"
            )
        return parent._create_dataset(name, shape_t, dt, settings, arr)

    def require_dataset(
        self, path: str, shape: tuple[int, ...], dtype: Any, **kwargs: Any
    ) -> Dataset:
        """Return the dataset at ``path`` if shape and dtype match, or create it."""
        if path in self:
            ds = self[path]
            if not isinstance(ds, Dataset):
                raise ContainsNodeError(
                    f"{ds.name!r} in {self.store.url} is a group, not a dataset"
                )
            if tuple(ds.shape) != tuple(shape):
                raise ContainsNodeError(
                    f"dataset {ds.name!r} exists with shape {ds.shape}, not {tuple(shape)}"
                )
            return ds
        return self.create_dataset(path, shape=shape, dtype=dtype, **kwargs)

    def create_soft_link(self, path: str, target_path: str) -> None:
        """Create a soft link at ``path`` pointing to the absolute ``target_path``.

        The target does not need to exist (as in HDF5); a dangling link raises
        ``NodeNotFoundError`` when followed.
        """
        self._require_parent(path)
        parent, name = self._check_new(path, "soft link")
        parent._create_soft_link(name, normalize_path(target_path))

    def create_external_link(self, path: str, url: str, target_path: str) -> None:
        """Create a link at ``path`` to ``target_path`` inside the store at ``url``.

        ``url`` is relative to the directory holding this store (the HDF5/pynwb convention),
        absolute, or a URL (``s3://...``).
        """
        self._require_parent(path)
        parent, name = self._check_new(path, "external link")
        parent._create_external_link(name, str(url), normalize_path(target_path))

    def get_link(self, path: str) -> Link | None:
        """Return the link stored at ``path``, or ``None`` if ``path`` is a group or dataset.

        Raises
        ------
        NodeNotFoundError
            If nothing exists at ``path``.
        """
        parent, name = self._split(path)
        if name not in parent._child_names():
            raise NodeNotFoundError(f"no object {join_path(self.name, path)!r} in {self.store.url}")
        return parent._get_link(name)

    def __delitem__(self, path: str) -> None:
        self.store._check_writable(f"delete {join_path(self.name, path)!r}")
        parent, name = self._split(path)
        if name not in parent._child_names():
            raise NodeNotFoundError(f"no object {join_path(self.name, path)!r} in {self.store.url}")
        parent._delete(name)

    def visititems(self, fn: Callable[[str, Group | Dataset], Any]) -> Any:
        """Call ``fn(relative_path, node)`` for every group and dataset below this group.

        Like h5py, links are not followed (use :meth:`visit_links` for them), names are
        relative to this group, and the walk stops at the first non-``None`` return value,
        which is returned.
        """
        prefix = self.name.rstrip("/") + "/"
        for node in self._walk():
            result = fn(node.name[len(prefix) :], node)
            if result is not None:
                return result
        return None

    def visit(self, fn: Callable[[str], Any]) -> Any:
        """Call ``fn(relative_path)`` for every group and dataset below this group."""
        return self.visititems(lambda name, _node: fn(name))

    def visit_links(self, fn: Callable[[str, Link], Any]) -> Any:
        """Call ``fn(relative_path, link)`` for every link below this group."""
        prefix = self.name.rstrip("/") + "/"
        for group in [self, *(n for n in self._walk() if isinstance(n, Group))]:
            for name, link in group.links():
                result = fn(join_path(group.name, name)[len(prefix) :], link)
                if result is not None:
                    return result
        return None

    def _walk(self) -> Iterator[Group | Dataset]:
        """Depth-first pre-order walk of real (non-link) children."""
        for _name, child in self._real_children():
            yield child
            if isinstance(child, Group):
                yield from child._walk()

    def _real_children(self) -> Iterator[tuple[str, Group | Dataset]]:
        for n in self._child_names():
            if self._get_link(n) is None:
                yield n, self._get_child(n)

    def __repr__(self) -> str:
        return f"<nwbstore.Group {self.name!r} in {self.store.url} ({len(self)} members)>"


class Dataset(Node):
    """An n-dimensional typed array stored in chunks (or contiguously in HDF5)."""

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]: ...

    @property
    @abstractmethod
    def dtype(self) -> np.dtype[Any]: ...

    @property
    @abstractmethod
    def settings(self) -> DatasetSettings:
        """Chunking, codecs, fill value and maxshape as stored."""

    @property
    def maxshape(self) -> tuple[int | None, ...]:
        """Largest shape the dataset may be resized to (``None`` = unlimited)."""
        ms = self.settings.maxshape
        return tuple(self.shape) if ms is None else tuple(ms)

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """Chunk shape (``None`` for a contiguous HDF5 dataset)."""
        return self.settings.chunks

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @abstractmethod
    def _read(self, selection: Any) -> Any: ...

    @abstractmethod
    def _write(self, selection: Any, value: Any) -> None: ...

    @abstractmethod
    def _resize(self, shape: tuple[int, ...]) -> None: ...

    def __getitem__(self, selection: Any) -> Any:
        return self._read(selection)

    def __setitem__(self, selection: Any, value: Any) -> None:
        self.store._check_writable(f"write to dataset {self.name!r}")
        self._write(selection, value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = np.asarray(self[()] if self.ndim == 0 else self[...])
        return arr.astype(dtype) if dtype is not None else arr

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError(f"len() of scalar dataset {self.name!r}")
        return self.shape[0]

    def resize(self, shape: tuple[int, ...] | int) -> None:
        """Change the shape within ``maxshape``.

        Raises
        ------
        SettingsError
            If the new shape has a different number of axes or exceeds ``maxshape``.
        """
        self.store._check_writable(f"resize dataset {self.name!r}")
        new = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
        if len(new) != self.ndim:
            raise SettingsError(
                f"cannot resize dataset {self.name!r} from {self.shape} to {new}: "
                "the number of axes must stay the same"
            )
        for axis, (size, limit) in enumerate(zip(new, self.maxshape, strict=True)):
            if limit is not None and size > limit:
                raise SettingsError(
                    f"cannot resize dataset {self.name!r} to {new}: axis {axis} would be {size}, "
                    f"beyond maxshape {self.maxshape} (create it with a larger maxshape, or None "
                    "for unlimited)"
                )
        self._resize(new)

    def append(self, values: Any, axis: int = 0) -> None:
        """Append ``values`` along ``axis``.

        ``values`` must match the dataset's shape on the other axes; a single row (one axis
        fewer than the dataset) is accepted too. Its dtype must go into the dataset's under
        NumPy's ``same_kind`` rule, integers into integers whenever the values fit (see
        :mod:`nwbstore._append_checks`).

        HDF5 resizes and writes at once. Zarr streams appends along axis 0: rows are kept in
        memory until they complete a chunk row, which is then written whole; the last partial
        row and the new shape are written at ``flush()``/``close()`` (or before the dataset
        is read, written or resized). ``shape`` counts the pending rows.

        Raises
        ------
        ReadOnlyError
            If the store is read-only.
        SettingsError
            If the dataset is scalar, the block's other axes do not match, or the growth
            would pass ``maxshape``.
        UnsupportedDtypeError
            If the block's dtype or values do not go into the dataset's dtype.
        """
        block, axis = self._append_block(values, axis)
        if block.shape[axis]:
            self._append(block, axis)

    def _append_block(self, values: Any, axis: int) -> tuple[np.ndarray, int]:
        """Check an append of ``values`` along ``axis``; return the block and the axis."""
        self.store._check_writable(f"append to dataset {self.name!r}")
        where = f"dataset {self.name!r} in {self.store.url}"
        shape = self.shape
        if not shape:
            raise SettingsError(
                f"cannot append to {where}: it is scalar (shape ()); create a dataset with a "
                "growable axis instead, e.g. shape=(0, ...) with "
                "DatasetSettings(chunks=..., maxshape=(None, ...))"
            )
        if not -len(shape) <= axis < len(shape):
            raise SettingsError(
                f"cannot append to {where} along axis {axis}: it has {len(shape)} axes"
            )
        axis %= len(shape)
        dtype = self.dtype
        block = check_trailing_shape(as_block(values, dtype), shape, axis, where)
        check_growth(shape, self.maxshape, axis, int(block.shape[axis]), where)
        check_block_dtype(block, dtype, where)
        return block, axis

    def _append(self, block: np.ndarray, axis: int) -> None:
        """Store a checked ``block`` after the last index of ``axis``: resize, then write.

        Backends that can do better (Zarr streams along axis 0) override this.
        """
        start = self.shape[axis]
        new_shape = list(self.shape)
        new_shape[axis] = start + block.shape[axis]
        self._resize(tuple(new_shape))
        sel = tuple(
            slice(start, new_shape[axis]) if i == axis else slice(None) for i in range(self.ndim)
        )
        self._write(sel, block)

    # -- stored (encoded) chunks: optional, see Capabilities.raw_chunks ----------------------

    def iter_stored_chunks(self) -> Iterator[StoredChunk]:
        """Yield every allocated chunk as stored (still encoded), in grid order.

        Raises
        ------
        NwbStoreError
            If the backend cannot hand out stored chunks (``capabilities.raw_chunks``).
        """
        raise UnsupportedOperationError(
            f"{self.store.backend} cannot read stored chunks of {self.name!r}; "
            "read decoded data with dataset[...] instead"
        )

    def read_stored_chunk(self, index: tuple[int, ...]) -> StoredChunk | None:
        """Return the chunk at chunk-grid position ``index`` as stored, or None if unallocated.

        Like :meth:`iter_stored_chunks`, the bytes are loaded when ``data`` is asked for
        where the backend can defer them.

        Raises
        ------
        SettingsError
            If ``index`` is outside the chunk grid.
        NwbStoreError
            If the backend cannot hand out stored chunks (``capabilities.raw_chunks``).
        """
        raise UnsupportedOperationError(
            f"{self.store.backend} cannot read stored chunks of {self.name!r}; "
            "read decoded data with dataset[...] instead"
        )

    def write_stored_chunk(self, index: tuple[int, ...], data: bytes) -> None:
        """Store one already-encoded chunk at chunk-grid position ``index``.

        The bytes must be what this dataset's codec pipeline produces for a full chunk
        (edge chunks padded to the full chunk shape, as HDF5 and Zarr store them).
        """
        raise UnsupportedOperationError(
            f"{self.store.backend} cannot write stored chunks to {self.name!r}; "
            "write decoded data with dataset[...] = values instead"
        )

    def copy_stored_chunk(self, chunk: StoredChunk) -> None:
        """Store ``chunk`` (from a dataset with the same chunk shape and codec pipeline).

        Backends on local disk copy ``chunk.location`` file to file when it is set; the
        default writes ``chunk.data`` with :meth:`write_stored_chunk`.
        """
        self.write_stored_chunk(chunk.index, chunk.data)

    def __repr__(self) -> str:
        return (
            f"<nwbstore.Dataset {self.name!r} in {self.store.url}: "
            f"shape {self.shape}, dtype {self.dtype}>"
        )


class Store(ABC):
    """An open HDF5 file or Zarr store.

    Use :func:`nwbstore.open` to get one; it is a context manager.

    Attributes
    ----------
    url
        The path or URL the store was opened from.
    mode
        ``"r"``, ``"r+"``, ``"w"``, ``"w-"``/``"x"`` or ``"a"`` (as in h5py).
    format
        ``"hdf5"`` or ``"zarr"``.
    """

    format: str = ""
    #: Name of the backend in the registry (``"hdf5"``, ``"hdf5-family"``, ``"zarr"``, ...).
    backend: str = ""

    def __init__(self, url: str, mode: Mode) -> None:
        self.url = url
        self.mode = mode
        self._closed = False

    @property
    @abstractmethod
    def root(self) -> Group:
        """The root group."""

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @property
    def writable(self) -> bool:
        return self.mode in WRITE_MODES and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_writable(self, action: str) -> None:
        if self._closed:
            raise ReadOnlyError(f"cannot {action}: {self.url} is closed")
        if not self.writable:
            raise ReadOnlyError(
                f"cannot {action}: {self.url} is open read-only (mode {self.mode!r}); "
                "open it with mode='r+' or 'a' to write"
            )

    def __getitem__(self, path: str) -> Group | Dataset:
        return self.root[path]

    def __contains__(self, path: object) -> bool:
        return path in self.root

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Write buffered data and metadata to storage."""

    @abstractmethod
    def _close(self) -> None: ...

    def close(self) -> None:
        """Flush and close. Closing twice is harmless."""
        if not self._closed:
            try:
                self._close()
            finally:
                self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"mode {self.mode!r}"
        return f"<nwbstore.Store {self.backend} {self.url} ({state})>"
