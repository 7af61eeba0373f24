"""The "incomplete" mark that keeps a half-written destination from looking complete.

- Every destination carries the root attribute :data:`INCOMPLETE_ATTR` from its first write
  until the conversion ends; it lists the datasets already finished, so ``resume=True`` can
  skip them. ``nwbstore.open(..., "r")`` refuses a store with the mark
  (:class:`~nwbstore.errors.IncompleteStoreError`) unless ``allow_incomplete=True``.
- An HDF5 destination is also written under ``<name>.partial`` and renamed at the end, so
  nothing at the final path exists before the file is whole.
- Zarr destinations get consolidated metadata when closed, after the mark is removed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from nwbstore.backends.registry import detect_backend, split_protocol
from nwbstore.errors import IncompleteStoreError
from nwbstore.nodes import INCOMPLETE_ATTR, Store

__all__ = [
    "INCOMPLETE_ATTR",
    "begin",
    "finish",
    "mark_incomplete",
    "partial_url",
    "publish",
    "record_done",
]


def partial_url(url: str) -> str:
    """Where an HDF5 destination is written until it is complete."""
    return url + ".partial"


def _is_hdf5(url: str, fmt: str | None) -> bool:
    return detect_backend(url, "w", format=fmt).startswith("hdf5")


def begin(
    url: str,
    fmt: str | None,
    zarr_format: int,
    storage_options: Mapping[str, Any],
    *,
    resume: bool,
) -> tuple[Store, set[str]]:
    """Open the destination for writing and put the mark on it.

    Returns the open store and the datasets an interrupted run already finished.
    """
    import nwbstore

    hdf5 = _is_hdf5(url, fmt)
    where = partial_url(url) if hdf5 else url
    if resume:
        if hdf5 and not os.path.exists(where) and os.path.exists(url):
            raise IncompleteStoreError(f"{url} is already complete: nothing to resume")
        store = nwbstore.open(
            where,
            "a",
            format="hdf5" if hdf5 else "zarr",
            zarr_format=zarr_format,
            storage_options=storage_options,
            allow_incomplete=True,
        )
        raw = (
            store.root.attrs._read(INCOMPLETE_ATTR)
            if INCOMPLETE_ATTR in store.root.attrs._names()
            else None
        )
        if raw is None and len(store.root):
            store.close()
            raise IncompleteStoreError(f"{url} is already complete: nothing to resume")
        done = set(json.loads(raw)["completed"]) if raw else set()
    else:
        store = nwbstore.open(
            where,
            "w-",
            format="hdf5" if hdf5 else "zarr",
            zarr_format=zarr_format,
            storage_options=storage_options,
        )
        done = set()
    store.root.attrs._write(INCOMPLETE_ATTR, json.dumps({"completed": sorted(done)}))
    store._nwbstore_completed = done  # type: ignore[attr-defined]
    return store, done


def record_done(store: Store, path: str) -> None:
    """Note that ``path`` is fully copied (for ``resume``)."""
    done: set[str] = getattr(store, "_nwbstore_completed", set())
    done.add(path)
    store.root.attrs._write(INCOMPLETE_ATTR, json.dumps({"completed": sorted(done)}))


def finish(store: Store) -> None:
    """Remove the mark; the store is complete once it is closed."""
    store.root.attrs._delete(INCOMPLETE_ATTR)


def publish(url: str, storage_options: Mapping[str, Any]) -> None:
    """Move an HDF5 destination from its ``.partial`` name to its final name."""
    part = partial_url(url)
    if split_protocol(url)[0] == "file" and os.path.exists(part):
        os.replace(part, url)


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
