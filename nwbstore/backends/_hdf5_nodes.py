"""Groups and datasets of the HDF5 backend, over ``h5py.Group`` and ``h5py.Dataset``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from nwbstore.backends._damage import corrupt_hdf5
from nwbstore.backends._hdf5_attrs import HDF5Attributes
from nwbstore.backends._hdf5_types import (
    decode_value,
    encode_value,
    from_h5py_dtype,
    to_h5py_dtype,
)
from nwbstore.backends._local_files import read_location
from nwbstore.backends._remote_chunks import UnsupportedSelection
from nwbstore.errors import (
    NodeNotFoundError,
    RemoteRangeError,
    SettingsError,
    UnsupportedDtypeError,
    UnsupportedOperationError,
)
from nwbstore.links import ExternalLink, SoftLink, join_path
from nwbstore.nodes import ChunkLocation, Dataset, Group, Link, StoredChunk

if TYPE_CHECKING:
    from nwbstore.backends.hdf5 import HDF5Store
    from nwbstore.settings import DatasetSettings

__all__ = ["HDF5Dataset", "HDF5Group"]


class HDF5Group(Group):
    """A group of an HDF5 file (``h5py.Group``)."""

    def __init__(self, store: HDF5Store, name: str, group: h5py.Group) -> None:
        super().__init__(store, name)
        self._g = group
        self._attrs = HDF5Attributes(self, group)

    @property
    def h5py_group(self) -> h5py.Group:
        """The underlying ``h5py.Group``."""
        return self._g

    @property
    def attrs(self) -> HDF5Attributes:
        return self._attrs

    def _where(self, name: str) -> str:
        return f"{join_path(self.name, name)!r} in {self.store.url}"

    def _child_names(self) -> list[str]:
        return sorted(self._g.keys())

    def _get_child(self, name: str) -> HDF5Group | HDF5Dataset:
        path = join_path(self.name, name)
        store: HDF5Store = self.store  # type: ignore[assignment]
        try:
            obj = self._g[name]
        except (KeyError, OSError) as err:
            if _exists(self._g, name):  # it is there, but its object header cannot be read
                raise corrupt_hdf5(self._where(name), err) from None
            raise self._missing(name) from None
        if isinstance(obj, h5py.Group):
            return HDF5Group(store, path, obj)
        if isinstance(obj, h5py.Dataset):
            return HDF5Dataset(store, path, obj)
        raise NodeNotFoundError(
            f"{self._where(name)} is a {type(obj).__name__} (committed datatype), which "
            "nwbstore does not expose as a group or dataset"
        )

    def _missing(self, name: str) -> NodeNotFoundError:
        link = self._get_link(name) if name in self._g else None
        if isinstance(link, SoftLink):
            return NodeNotFoundError(
                f"soft link {self._where(name)} points to {link.path!r}, which does not exist "
                "(create the target or delete the link)"
            )
        if isinstance(link, ExternalLink):
            return NodeNotFoundError(
                f"external link {self._where(name)} points to {link.path!r} in {link.url!r}, "
                "which cannot be opened (relative names are resolved from the directory "
                "holding the linking file)"
            )
        return NodeNotFoundError(f"no object {self._where(name)}")

    def _create_group(self, name: str) -> HDF5Group:
        store: HDF5Store = self.store  # type: ignore[assignment]
        return HDF5Group(store, join_path(self.name, name), self._g.create_group(name))

    def _create_dataset(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        settings: DatasetSettings | None,
        data: Any,
    ) -> HDF5Dataset:
        store: HDF5Store = self.store  # type: ignore[assignment]
        where = f"dataset {self._where(name)}"
        h5dt = to_h5py_dtype(dtype, where=where)
        path = join_path(self.name, name)
        kwargs: dict[str, Any] = {}
        if settings is not None and hasattr(settings, "for_shape"):
            vlen = h5py.check_vlen_dtype(h5dt) is not None  # vlen strings and sequences
            fitted = settings.for_shape(shape, "hdf5", variable_length=vlen)
            if fitted.source is None:  # name the dataset in codec errors
                fitted = fitted.replace(source=path)
            kwargs = fitted.to_hdf5()
        elif settings is not None:  # any object with to_hdf5() (h5py keyword arguments)
            kwargs = settings.to_hdf5()
        if data is not None:
            data = encode_value(data, dtype, self._g.file, where=where)
        try:
            ds = self._g.create_dataset(name, shape=shape, dtype=h5dt, data=data, **kwargs)
        except TypeError as err:
            raise UnsupportedDtypeError(
                f"cannot create {where} with dtype {dtype}: {err}"
            ) from None
        except ValueError as err:
            raise SettingsError(f"cannot create {where}: {err}") from None
        return HDF5Dataset(store, path, ds)

    def _get_link(self, name: str) -> Link | None:
        link = self._g.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink):
            return SoftLink(link.path)
        if isinstance(link, h5py.ExternalLink):
            return ExternalLink(link.filename, link.path)
        return None

    def _create_soft_link(self, name: str, target_path: str) -> None:
        self._g[name] = h5py.SoftLink(target_path)

    def _create_external_link(self, name: str, url: str, target_path: str) -> None:
        self._g[name] = h5py.ExternalLink(url, target_path)

    def _delete(self, name: str) -> None:
        del self._g[name]


class HDF5Dataset(Dataset):
    """A dataset of an HDF5 file (``h5py.Dataset``)."""

    def __init__(self, store: HDF5Store, name: str, dataset: h5py.Dataset) -> None:
        super().__init__(store, name)
        self._ds = dataset
        self._attrs = HDF5Attributes(self, dataset)

    @property
    def h5py_dataset(self) -> h5py.Dataset:
        """The underlying ``h5py.Dataset``."""
        return self._ds

    @property
    def attrs(self) -> HDF5Attributes:
        return self._attrs

    @property
    def shape(self) -> tuple[int, ...]:
        shape = self._ds.shape
        return () if shape is None else tuple(shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return from_h5py_dtype(self._ds.dtype)

    @property
    def settings(self) -> DatasetSettings:
        from nwbstore.settings import DatasetSettings

        return DatasetSettings.from_hdf5(self._ds)

    def _read(self, selection: Any) -> Any:
        store: HDF5Store = self.store  # type: ignore[assignment]
        if store.backend == "hdf5-remote":
            self._check_remote_readable()
        dt = self._ds.dtype
        if dt.names is None and dt.kind == "O" and (dt.metadata or {}).get("vlen") in (str, bytes):
            return self._ds.asstr(errors="surrogateescape")[selection]
        reader = store.chunk_reader(self._ds) if store.remote is not None else None
        if reader is not None:
            try:
                return decode_value(reader.read(selection), dt, self._ds.file)
            except UnsupportedSelection:
                pass  # h5py knows more selections (field names, np.newaxis ...)
            except RemoteRangeError as err:
                store.disable_chunk_reads(err)
        return decode_value(self._ds[selection], dt, self._ds.file)

    def _check_remote_readable(self) -> None:
        """Refuse what a remote file cannot give right: data stored in other files.

        A virtual dataset's sources and external storage's raw files are named by paths that
        HDF5 resolves on this machine, not next to the remote file: it would read a local
        file of that name, or fill values, and return wrong data without an error.
        """
        if self._ds.is_virtual:
            what = "a virtual dataset (its data lives in source files HDF5 looks for locally)"
        elif self._ds.external:
            what = "stored in external raw files (HDF5 looks for them locally)"
        else:
            return
        raise UnsupportedOperationError(
            f"dataset {self.name!r} in {self.store.url} is {what}: nwbstore does not read it "
            "remotely, since the values would not come from the remote files. Download the "
            "file together with the files it names and open the local copy"
        )

    def _write(self, selection: Any, value: Any) -> None:
        where = f"dataset {self.name!r} in {self.store.url}"
        encoded = encode_value(value, self.dtype, self._ds.file, where=where)
        try:
            self._ds[selection] = encoded
        except TypeError as err:
            raise UnsupportedDtypeError(
                f"cannot write {type(value).__name__} to {where} of dtype {self.dtype}: {err}"
            ) from None

    def iter_stored_chunks(self) -> Iterator[StoredChunk]:
        """Yield every allocated chunk as stored (still filtered), in grid order.

        Chunks HDF5 never allocated (never written, equal to the fill value) are skipped.

        Raises
        ------
        UnsupportedOperationError
            If the dataset is contiguous (not chunked).
        """
        chunks = self._chunk_shape("read stored chunks of")
        infos: list[Any] = []
        self._ds.id.chunk_iter(infos.append)
        infos.sort(key=lambda info: tuple(info.chunk_offset))
        local_file = self._plain_local_file()
        for info in infos:
            offset = tuple(info.chunk_offset)
            index = tuple(o // c for o, c in zip(offset, chunks, strict=True))
            yield self._stored_chunk(index, offset, info, local_file)

    def read_stored_chunk(self, index: tuple[int, ...]) -> StoredChunk | None:
        """Return the chunk at grid position ``index`` as stored, or None if never allocated.

        Raises
        ------
        SettingsError
            If ``index`` is outside the chunk grid.
        UnsupportedOperationError
            If the dataset is contiguous (not chunked).
        """
        chunks = self._chunk_shape("read stored chunks of")
        index = tuple(int(i) for i in index)
        self._check_index(index, chunks)
        offset = tuple(i * c for i, c in zip(index, chunks, strict=True))
        info = self._ds.id.get_chunk_info_by_coord(offset)
        if info.byte_offset is None:
            return None
        return self._stored_chunk(index, offset, info, self._plain_local_file())

    def _stored_chunk(
        self, index: tuple[int, ...], offset: tuple[int, ...], info: Any, local_file: str | None
    ) -> StoredChunk:
        if local_file is not None:
            location = ChunkLocation(local_file, int(info.byte_offset), int(info.size))
            return StoredChunk(
                index,
                filter_mask=int(info.filter_mask),
                location=location,
                load=partial(read_location, location),
            )
        return StoredChunk(
            index,
            filter_mask=int(info.filter_mask),
            nbytes=int(info.size),
            load=partial(self._read_direct_chunk, offset),
        )

    def _check_index(self, index: tuple[int, ...], chunks: tuple[int, ...]) -> None:
        grid = tuple(-(-s // c) for s, c in zip(self.shape, chunks, strict=True))
        if len(index) != len(grid) or any(not 0 <= i < g for i, g in zip(index, grid, strict=True)):
            raise SettingsError(
                f"chunk index {tuple(index)} is outside the chunk grid {grid} of dataset "
                f"{self.name!r} in {self.store.url}"
            )

    def _read_direct_chunk(self, offset: tuple[int, ...]) -> bytes:
        return bytes(self._ds.id.read_direct_chunk(offset)[1])

    def _plain_local_file(self) -> str | None:
        """The file's path when chunk addresses are byte offsets in it (read-only sec2/stdio).

        Chunk addresses from HDF5 already count the user block; the family driver splits
        the address space over several files, and a file open for writing may hold chunks
        not yet flushed, so those read through HDF5 instead.
        """
        h5file = self._ds.file
        if h5file.mode != "r" or h5file.driver not in ("sec2", "stdio"):
            return None
        return os.path.abspath(h5file.filename)

    def write_stored_chunk(self, index: tuple[int, ...], data: bytes) -> None:
        """Store one already-filtered chunk at chunk-grid position ``index``."""
        self.store._check_writable(f"write stored chunks to dataset {self.name!r}")
        chunks = self._chunk_shape("write stored chunks to")
        self._check_index(tuple(index), chunks)
        offset = tuple(i * c for i, c in zip(index, chunks, strict=True))
        self._ds.id.write_direct_chunk(offset, bytes(data), 0)

    def _chunk_shape(self, action: str) -> tuple[int, ...]:
        chunks = self._ds.chunks
        if chunks is None:
            raise UnsupportedOperationError(
                f"cannot {action} dataset {self.name!r} in {self.store.url}: it is contiguous, "
                "not chunked; read or write decoded data with dataset[...] instead"
            )
        return tuple(chunks)

    def _resize(self, shape: tuple[int, ...]) -> None:
        try:
            self._ds.resize(shape)
        except TypeError as err:
            raise SettingsError(
                f"cannot resize dataset {self.name!r} in {self.store.url}: {err} "
                "(create it with settings that give chunks and a maxshape)"
            ) from None


def _exists(group: h5py.Group, name: str) -> bool:
    """True if ``name`` is a hard link in ``group``: its object is there, so a failure to
    open it is damage (a dangling soft or external link is merely missing)."""
    try:
        return isinstance(group.get(name, getlink=True), h5py.HardLink)
    except (KeyError, OSError, RuntimeError):
        return False
