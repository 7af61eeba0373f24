"""Check what data chunk iterators yield while an NWB file is written.

hdmf writes each ``DataChunk`` an iterator yields with ``dset[selection] = data``: a chunk of
another dtype is cast silently (floats into an integer dataset), one of the wrong shape fails
deep in numpy. :func:`checked_iterators` makes every iterator in the file check its chunks
against the dtype and trailing shape it declared, and raise :class:`IteratorChunkError`
naming the dataset, for the length of the write. It also counts the bytes they yield on the
write's progress bar (the iterators are where a large write spends its time).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hdmf.data_utils import AbstractDataChunkIterator, DataChunk, DataIO

from nwbstore.errors import NwbStoreError

__all__ = ["IteratorChunkError", "checked_iterators", "find_iterators", "iterator_nbytes"]


class IteratorChunkError(NwbStoreError, ValueError):
    """A data chunk iterator yielded a chunk of another dtype or shape than it declared."""


def _location(container: Any, field: str, manager: Any = None) -> str:
    """Where ``field`` of ``container`` is written: its builder's path once built."""
    builder = manager.get_builder(container) if manager is not None else None
    if builder is not None:
        path = str(builder.path)
        return f"{path.removeprefix('root').strip('/')}/{field}".lstrip("/")
    parts = [field]
    node = container
    while node is not None and getattr(node, "parent", None) is not None:
        parts.append(str(node.name))
        node = node.parent
    return "/".join(reversed(parts))


def find_iterators(nwbfile: Any) -> dict[int, tuple[AbstractDataChunkIterator, Any, str]]:
    """Every data chunk iterator in ``nwbfile`` (by id), with its container and field.

    Where nwbstore regroups an iterator's chunks, the user's iterator is the one returned.
    """
    from nwbstore.nwb._config_iterators import RebufferedIterator

    found: dict[int, tuple[AbstractDataChunkIterator, Any, str]] = {}
    for container in nwbfile.objects.values():
        for field, value in getattr(container, "fields", {}).items():
            data = value.data if isinstance(value, DataIO) else value
            while isinstance(data, RebufferedIterator):  # check what the user's iterator yields
                data = data.source
            if isinstance(data, AbstractDataChunkIterator) and id(data) not in found:
                found[id(data)] = (data, container, field)
    return found


def _expected_extent(selection: Any, axis: int) -> int | None:
    if not isinstance(selection, tuple) or axis >= len(selection):
        return None
    sel = selection[axis]
    if isinstance(sel, slice) and sel.start is not None and sel.stop is not None:
        return len(range(sel.start, sel.stop, sel.step or 1))
    return None


def check_chunk(chunk: DataChunk, iterator: AbstractDataChunkIterator, where: str) -> None:
    """Raise :class:`IteratorChunkError` if ``chunk`` does not fit what ``iterator`` declared.

    ``where`` names the dataset in the messages.
    """
    data = np.asarray(chunk.data)
    declared = iterator.dtype
    if declared is not None and data.dtype.kind != "O":
        expected = np.dtype(declared)
        if not np.can_cast(data.dtype, expected, casting="same_kind"):
            raise IteratorChunkError(
                f"the data iterator of {where} yielded a chunk of dtype {data.dtype} for "
                f"selection {chunk.selection}, but declared dtype {expected}: every chunk must "
                "have the dtype of the dataset (cast it in the iterator)"
            )
    maxshape = iterator.maxshape
    if maxshape is not None and data.ndim != len(maxshape):
        raise IteratorChunkError(
            f"the data iterator of {where} yielded a chunk of shape {data.shape} "
            f"({data.ndim} dimensions) for a dataset of {len(maxshape)} dimensions "
            f"(maxshape {tuple(maxshape)})"
        )
    for axis, size in enumerate(data.shape):
        expected_size = _expected_extent(chunk.selection, axis)
        if expected_size is None and axis > 0 and maxshape is not None:
            expected_size = maxshape[axis]  # an open selection spans the whole axis
        if expected_size is not None and size != expected_size:
            raise IteratorChunkError(
                f"the data iterator of {where} yielded a chunk of shape {data.shape} for "
                f"selection {chunk.selection}, which holds {expected_size} along axis {axis}"
            )


def _checked_class(cls: type, container: Any, field: str, manager: Any, bar: Any) -> type:
    def __next__(self: Any) -> Any:
        chunk = cls.__next__(self)  # type: ignore[attr-defined]
        if isinstance(chunk, DataChunk):
            try:
                check_chunk(chunk, self, field)
            except IteratorChunkError as err:
                where = _location(container, field, manager)
                message = str(err).replace(f"of {field} ", f"of {where} ", 1)
                raise IteratorChunkError(message) from None
            if bar is not None and chunk.data is not None:
                bar.update(int(np.asarray(chunk.data).nbytes))
        return chunk

    return type(cls.__name__, (cls,), {"__next__": __next__, "__module__": cls.__module__})


def iterator_nbytes(iterator: AbstractDataChunkIterator) -> int | None:
    """Bytes ``iterator`` will yield, when its shape and dtype are known (else ``None``)."""
    maxshape, dtype = iterator.maxshape, iterator.dtype
    if maxshape is None or dtype is None or any(m is None for m in maxshape):
        return None
    try:
        return math.prod(int(m) for m in maxshape) * np.dtype(dtype).itemsize
    except TypeError:
        return None


@contextmanager
def checked_iterators(
    nwbfile: Any, manager: Any = None, *, progress: Any = False, desc: str = "write"
) -> Iterator[int]:
    """Within the block, every iterator of ``nwbfile`` checks its chunks; yields their number.

    ``manager`` (the ``BuildManager`` of the write) lets messages name the dataset's path.
    ``progress`` (``True``, or a tqdm-like factory as in :func:`nwbstore.convert`) shows a bar
    of the bytes the iterators yield, sized from their shapes and dtypes when all are known.
    """
    from nwbstore.convert.progress import open_bar

    found = list(find_iterators(nwbfile).values())
    sizes = [iterator_nbytes(iterator) for iterator, _, _ in found]
    total = None if None in sizes else sum(s for s in sizes if s is not None)
    bar = open_bar(progress, total=total, desc=desc) if found else None
    swapped: list[tuple[Any, type]] = []
    try:
        for iterator, container, field in found:
            original = type(iterator)
            try:
                iterator.__class__ = _checked_class(original, container, field, manager, bar)
            except TypeError:  # a class that does not allow it (slots, extension type)
                continue
            swapped.append((iterator, original))
        yield len(swapped)
    finally:
        for iterator, original in swapped:
            iterator.__class__ = original
        if bar is not None:
            bar.close()
