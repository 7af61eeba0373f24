"""Opening a conversion's destination: new, resumed, or restarted after a hard kill.

- ``resume`` with nothing to resume starts a new conversion (and says so in the report).
- ``resume`` of a complete destination changes nothing and says "already complete"; a
  complete result still under its temporary name (an overwrite stopped while swapping) is
  moved into place.
- An HDF5 ``.partial`` that h5py cannot open any more (common after ``kill -9``: HDF5's
  caches never reached the file) is deleted and the conversion restarts from the start; the
  report and a :class:`~nwbstore.errors.NwbStoreWarning` say so. A Zarr destination that
  cannot be read is never deleted on ``resume``: the error says to use ``--overwrite``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nwbstore.convert import marker
from nwbstore.convert.landed import list_landed
from nwbstore.convert.locations import exists, remove
from nwbstore.convert.staging import Staging
from nwbstore.errors import IncompleteStoreError, NwbStoreError, NwbStoreWarning
from nwbstore.nodes import Dataset, Group, Store

__all__ = ["Opened", "open_destination", "reopen_dataset", "resume_hint"]


def resume_hint(src: str | None = None, dst: str | None = None) -> str:
    """The one line printed when a conversion is interrupted (Ctrl-C)."""
    into = f" into {dst}" if dst else ""
    return (
        f"interrupted: the conversion{into} is marked incomplete; run the same command with "
        "--resume to continue, or --overwrite to start over"
    )


@dataclass
class Opened:
    """The open destination and what happened on opening it."""

    store: Store | None  # None: already complete, nothing to do
    mark: marker.Mark | None
    note: str = ""
    resumed: bool = False  # the store holds an interrupted run's content (probe before writing)


def open_destination(
    staging: Staging,
    zarr_format: int,
    storage_options: Mapping[str, Any],
    *,
    resume: bool,
    open_options: Mapping[str, Any] | None = None,
) -> Opened:
    """Open ``staging.where`` for writing, resuming when asked and possible.

    A resumed destination on object storage is listed once: ``mark.landed`` holds its keys,
    so chunks stored after the last checkpoint are not uploaded again.
    ``open_options`` go to :func:`nwbstore.open` (e.g. ``concurrency``).
    """
    where, final, fmt = staging.where, staging.final, staging.format
    extra = dict(open_options or {})

    def begin(*, resume: bool) -> marker.Mark | None:
        return marker.begin(
            where, fmt, zarr_format, storage_options, resume=resume, open_options=extra
        )

    if not resume:
        return _opened(begin(resume=False))
    if not staging.resume:
        if fmt == "hdf5" and exists(final, storage_options):
            return Opened(None, None, f"{final} is already complete: nothing to resume")
        return _opened(
            begin(resume=False), f"nothing to resume at {final}: started a new conversion"
        )
    try:
        found = begin(resume=True)
    except Exception as err:
        if fmt == "hdf5":  # our own .partial, whatever h5py says about it
            return _restart(staging, zarr_format, storage_options, err, extra)
        if not isinstance(err, (NwbStoreError, OSError, ValueError, KeyError)):
            raise
        raise IncompleteStoreError(
            f"cannot resume into {where}: it cannot be read ({err}); pass --overwrite "
            "(overwrite=True) to start over"
        ) from err
    if found is None:  # content and no mark
        if fmt == "hdf5" and staging.upload:  # finished locally; the upload did not end
            return Opened(None, None, f"the finished file {where} was uploaded to {final}")
        if fmt == "hdf5":  # a .partial killed before its mark was written
            return _restart(staging, zarr_format, storage_options, None, extra)
        if not staging.in_place:  # an overwrite that stopped while swapping the result in
            return Opened(None, None, f"the finished result in {where} was moved to {final}")
        return Opened(None, None, f"{final} is already complete: nothing to resume")
    mark = found
    mark.landed = list_landed(where, storage_options)
    done = len(mark.completed)
    note = f"resumed: {done} datasets were already complete"
    if mark.partial:
        note += ", continued " + ", ".join(
            f"{path} after {entry.get('done', 0)} "
            + ("stored chunks" if entry.get("kind") == "chunks" else "blocks")
            for path, entry in mark.partial.items()
        )
    if mark.landed is not None:
        note += f"; {len(mark.landed.keys)} objects found in the destination"
    return Opened(mark.store, mark, note, resumed=True)


def _opened(mark: marker.Mark | None, note: str = "") -> Opened:
    assert mark is not None  # begin() without resume always gives a mark
    return Opened(mark.store, mark, note)


def _restart(
    staging: Staging,
    zarr_format: int,
    storage_options: Mapping[str, Any],
    err: Exception | None,
    open_options: Mapping[str, Any],
) -> Opened:
    why = f"{type(err).__name__}: {err}" if err is not None else "it has no incomplete mark"
    note = (
        f"restarted: {staging.where} could not be reopened after the interruption ({why}); "
        "converting again from the start"
    )
    warnings.warn(note, NwbStoreWarning, stacklevel=3)
    remove(staging.where, storage_options)
    mark = marker.begin(
        staging.where,
        staging.format,
        zarr_format,
        storage_options,
        resume=False,
        open_options=open_options,
    )
    return _opened(mark, note)


def reopen_dataset(store: Store, parent: Group, name: str, source_path: str) -> Dataset | None:
    """The dataset ``name`` an interrupted run left in ``parent``, or None to create it.

    A dataset whose metadata cannot be read any more (cut short by a kill) is deleted and its
    recorded progress forgotten, so it is copied again from the start.
    """
    if name not in parent:
        return None
    try:
        node = parent[name]
        if isinstance(node, Dataset):
            _ = (node.shape, node.dtype, node.settings)  # reads the metadata
            return node
    except (NwbStoreError, OSError, ValueError, KeyError):
        pass
    where = f"{parent.name.rstrip('/')}/{name}"
    try:
        del parent[name]
    except (NwbStoreError, OSError, ValueError, KeyError) as err:
        raise IncompleteStoreError(
            f"cannot resume into {store.url}: {where!r} is unreadable and cannot be removed "
            f"({err}); pass --overwrite (overwrite=True) to start over"
        ) from err
    mark = marker.mark_of(store)
    if mark is not None:
        mark.completed.discard(source_path)
        mark.partial.pop(where, None)
        if mark.landed is not None:  # its chunks went with it
            mark.landed.forget(where)
    return None
