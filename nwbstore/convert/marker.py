"""The "incomplete" mark that keeps a half-written destination from looking complete.

- Every destination carries the root attribute :data:`INCOMPLETE_ATTR` from its first write
  until the conversion ends. It is JSON: ``{"completed": [paths], "partial": {path:
  {"kind": ..., "done": n}}}`` -- the datasets already finished, and for a dataset being
  copied the length of the finished prefix of its in-order chunk (or block) sequence, so
  ``resume=True`` skips both. ``nwbstore.open(..., "r")`` refuses a store with the mark
  (:class:`~nwbstore.errors.IncompleteStoreError`) unless ``allow_incomplete=True``.
- Progress inside a dataset is recorded every :data:`CHECKPOINT_BYTES` or
  :data:`CHECKPOINT_SECONDS`, not per chunk (nor per dataset): on object storage each
  checkpoint is a flush of the destination.
- A checkpoint is saved with ``store.flush()``, so it reaches storage: an HDF5 destination is
  flushed *before* the mark is written too, so a mark on disk never claims data still in
  HDF5's caches; a Zarr destination's flush waits for the chunk uploads in flight, then writes
  the metadata documents that changed and the root document (with the mark) last, so the mark
  on the server never claims a chunk or an array that is not there.
- On object storage, chunks stored after the last checkpoint are found by listing the
  destination once on resume (:mod:`nwbstore.convert.landed`), not copied again.
- Where the destination is written and how it replaces an old one is
  :mod:`nwbstore.convert.staging`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nwbstore.convert.landed import LandedChunks
from nwbstore.errors import IncompleteStoreError
from nwbstore.nodes import INCOMPLETE_ATTR, Store

__all__ = [
    "CHECKPOINT_BYTES",
    "CHECKPOINT_SECONDS",
    "INCOMPLETE_ATTR",
    "Mark",
    "begin",
    "finish",
    "mark_incomplete",
    "mark_of",
    "read_mark",
    "record_done",
]

#: Record progress inside a dataset after this many bytes copied ...
CHECKPOINT_BYTES = 64 * 2**20
#: ... or after this many seconds, whichever comes first.
CHECKPOINT_SECONDS = 5.0


@dataclass
class Mark:
    """The incomplete mark of one open destination, and the writer of its updates."""

    store: Store
    completed: set[str] = field(default_factory=set)
    partial: dict[str, dict[str, Any]] = field(default_factory=dict)
    landed: LandedChunks | None = None  # chunks found on object storage when resuming
    _unsaved_bytes: int = 0
    _unsaved: bool = False
    _saved_at: float = field(default_factory=time.monotonic)

    def to_json(self) -> str:
        return json.dumps({"completed": sorted(self.completed), "partial": self.partial})

    def save(self) -> None:
        """Write the mark and flush the destination, so the checkpoint reaches storage.

        HDF5 data is flushed before the mark is written; a Zarr store's flush puts its root
        document (holding the mark) last, after the chunks and metadata it vouches for.
        """
        if self.store.format == "hdf5":
            self.store.flush()  # data first: the mark must never get ahead of it
        self.store.root.attrs._write(INCOMPLETE_ATTR, self.to_json())
        self.store.flush()
        self._unsaved_bytes = 0
        self._unsaved = False
        self._saved_at = time.monotonic()

    def resume_point(self, path: str, kind: str) -> int:
        """How many leading chunks/blocks of ``path`` (copied as ``kind``) are already done."""
        entry = self.partial.get(path)
        if entry is None or entry.get("kind") != kind:
            return 0
        return int(entry.get("done", 0))

    def advance(self, path: str, kind: str, done: int, nbytes: int, *, force: bool = False) -> None:
        """Note that the first ``done`` chunks/blocks of ``path`` are copied.

        Saved when enough bytes or time went by since the last save, or when ``force``.
        """
        entry = self.partial.get(path)
        if entry is None or entry.get("kind") != kind or entry.get("done", 0) < done:
            self.partial[path] = {"kind": kind, "done": done}
            self._unsaved = True
        self._unsaved_bytes += nbytes
        if not self._unsaved:
            return
        due = self._unsaved_bytes >= CHECKPOINT_BYTES
        if force or due or time.monotonic() - self._saved_at >= CHECKPOINT_SECONDS:
            self.save()

    def done(self, path: str) -> None:
        """Note that ``path`` is fully copied; saved on the same schedule as :meth:`advance`.

        Not saving after every dataset keeps a file of many small datasets from paying one
        mark write (a PUT on object storage) each; a finished dataset whose completion was not
        saved yet is only copied again by a resume, never lost.
        """
        self.completed.add(path)
        self.partial.pop(path, None)
        self._unsaved = True
        due = self._unsaved_bytes >= CHECKPOINT_BYTES
        if due or time.monotonic() - self._saved_at >= CHECKPOINT_SECONDS:
            self.save()


def read_mark(store: Store) -> dict[str, Any] | None:
    """The decoded mark of ``store``, or None if it carries none.

    Raises
    ------
    IncompleteStoreError
        The mark is there but unreadable.
    """
    if INCOMPLETE_ATTR not in store.root.attrs._names():
        return None
    raw = store.root.attrs._read(INCOMPLETE_ATTR)
    try:
        value = json.loads(raw) if raw else {}
    except (TypeError, ValueError) as err:
        raise IncompleteStoreError(f"{store.url}: unreadable incomplete mark ({err})") from err
    if not isinstance(value, dict):
        raise IncompleteStoreError(f"{store.url}: unreadable incomplete mark {raw!r}")
    return value


def begin(
    where: str,
    fmt: str,
    zarr_format: int,
    storage_options: Mapping[str, Any],
    *,
    resume: bool,
    open_options: Mapping[str, Any] | None = None,
) -> Mark | None:
    """Open the destination at ``where`` for writing and put the mark on it.

    With ``resume`` the store is opened as it is and its mark read; otherwise a new store is
    created (``where`` must not exist). Returns the mark (``mark.store`` is the open store),
    or None, with nothing left open, when ``resume`` finds a store that has content and no
    mark: it is complete. ``open_options`` go to :func:`nwbstore.open` (e.g. ``concurrency``).
    """
    import nwbstore

    extra = dict(open_options or {})
    if resume:
        store = nwbstore.open(
            where,
            "a",
            format=fmt,
            zarr_format=zarr_format,
            storage_options=storage_options,
            allow_incomplete=True,
            **extra,
        )
        try:
            value = read_mark(store)
        except BaseException:
            store.close()
            raise
        if value is None and len(store.root):
            store.close()
            return None
        fresh = value is None  # an empty store: put the mark on it
        value = value or {}
        mark = Mark(
            store,
            completed=set(value.get("completed", [])),
            partial=dict(value.get("partial", {})),
        )
    else:
        store = nwbstore.open(
            where,
            "w-",
            format=fmt,
            zarr_format=zarr_format,
            storage_options=storage_options,
            **extra,
        )
        mark = Mark(store)
        fresh = True
    try:
        if fresh:  # a resumed store carries its mark already: nothing to write yet
            mark.save()
    except BaseException:
        store.close()
        raise
    store._nwbstore_mark = mark  # type: ignore[attr-defined]
    return mark


def mark_of(store: Store) -> Mark | None:
    """The :class:`Mark` :func:`begin` attached to ``store``, if any."""
    return getattr(store, "_nwbstore_mark", None)


def record_done(store: Store, path: str) -> None:
    """Note that ``path`` is fully copied (for ``resume``)."""
    mark = mark_of(store)
    if mark is not None:
        mark.done(path)


def finish(store: Store) -> None:
    """Remove the mark; the store is complete once it is closed."""
    store.root.attrs._delete(INCOMPLETE_ATTR)


def mark_incomplete(url: str, storage_options: Mapping[str, Any], reason: str) -> None:
    """Put the mark back on a finished destination that failed a check (``--verify``).

    The store then refuses to open without ``allow_incomplete=True``, as an interrupted
    conversion does; ``reason`` is kept in the mark for whoever looks inside.
    """
    import nwbstore

    with nwbstore.open(url, "r+", storage_options=storage_options, allow_incomplete=True) as store:
        store.root.attrs._write(
            INCOMPLETE_ATTR, json.dumps({"completed": [], "failed": " ".join(reason.split())})
        )
