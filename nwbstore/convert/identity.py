"""Which source a conversion was made from, so a converted link target is reused only if it
is a finished conversion of that very source.

Every conversion records its source on the destination's root, in the hidden attribute
:data:`~nwbstore.nodes.SOURCE_ATTR` (a JSON object written with the root's other attributes):

- ``url``: the source, resolved (local paths: absolute, symlinks followed);
- ``size`` and ``mtime_ns`` (local) or ``etag``/``version`` (object storage, HTTP) of the
  source file, or of a Zarr store's files (local) / root metadata object (remote);
- ``object_id``: the NWB root ``object_id`` attribute (``None`` outside NWB);
- ``first_n``: set when the conversion kept only the first entries (a truncated copy).

:func:`judge_target` compares an existing store with a source and says what to do with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nwbstore.backends.registry import split_protocol
from nwbstore.errors import NwbStoreError
from nwbstore.nodes import INCOMPLETE_ATTR, SOURCE_ATTR, Store

__all__ = [
    "SOURCE_ATTR",
    "Judgement",
    "Verdict",
    "canonical_url",
    "changed_fields",
    "encode",
    "judge_target",
    "read_record",
    "source_identity",
    "staleness",
]

#: Root metadata object of a Zarr store, in the order looked for (v3, v2 consolidated, v2).
_ZARR_ROOT_KEYS = ("zarr.json", ".zmetadata", ".zgroup")

Verdict = Literal["absent", "reuse", "stale", "unrelated"]


def canonical_url(url: str) -> str:
    """One spelling per source: absolute local paths with symlinks resolved; URLs unchanged."""
    protocol, rest = split_protocol(url)
    if protocol == "file":
        return os.path.realpath(rest)
    return url.rstrip("/")


def _local_stat(path: str) -> dict[str, Any]:
    if not os.path.isdir(path):
        st = os.stat(path)
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    # a Zarr directory: any file written changes the newest mtime or the total size
    size, newest = 0, os.stat(path).st_mtime_ns
    for folder, _dirs, files in os.walk(path):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            size += st.st_size
            newest = max(newest, st.st_mtime_ns)
    return {"size": size, "mtime_ns": newest}


def _remote_stat(url: str, storage_options: Mapping[str, Any]) -> dict[str, Any]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options))
    info = None
    for key in _ZARR_ROOT_KEYS:  # a Zarr store: its root metadata object stands for it
        try:
            info = fs.info(f"{path.rstrip('/')}/{key}")
            break
        except (FileNotFoundError, OSError):
            continue
    if info is None:
        info = fs.info(path)
    etag = info.get("ETag") or info.get("etag")
    version = info.get("VersionId") or info.get("version_id") or info.get("generation")
    modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    return {
        "size": info.get("size"),
        "etag": str(etag).strip('"') if etag else None,
        "version": str(version) if version else None,
        "modified": None if modified is None else str(modified),
    }


def source_identity(
    url: str,
    store: Store,
    storage_options: Mapping[str, Any],
    *,
    first_n: int | None = None,
) -> dict[str, Any]:
    """The identity record of the source at ``url`` (open as ``store``)."""
    protocol, rest = split_protocol(url)
    try:
        stat = _local_stat(rest) if protocol == "file" else _remote_stat(url, storage_options)
    except (OSError, ValueError, ImportError):  # e.g. memory:// stores: no file to stat
        stat = {"size": None}
    object_id = store.root.attrs.get("object_id")
    return {
        "url": canonical_url(url),
        **stat,
        "object_id": None if object_id is None else str(object_id),
        "first_n": first_n,
    }


def encode(record: Mapping[str, Any]) -> str:
    """The attribute value stored on a destination's root."""
    return json.dumps(dict(record), sort_keys=True)


def read_record(store: Store) -> dict[str, Any] | None:
    """The identity record on ``store``'s root, or ``None`` if it has none."""
    attrs = store.root.attrs
    if SOURCE_ATTR not in attrs._names():
        return None
    try:
        record = json.loads(attrs._read(SOURCE_ATTR))
    except (TypeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def changed_fields(record: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Identity fields in which ``record`` differs from ``wanted`` (empty: same source)."""
    return sorted(k for k in wanted if k != "url" and record.get(k) != wanted[k])


def staleness(store: Store, storage_options: Mapping[str, Any]) -> str:
    """Why ``store``, an nwbstore conversion, no longer matches its source ("" if it does).

    Also "" when ``store`` has no record or its source is gone (nothing to compare with).
    """
    import nwbstore

    record = read_record(store)
    if record is None or not isinstance(record.get("url"), str):
        return ""
    source = record["url"]
    try:
        with nwbstore.open(source, "r", storage_options=storage_options) as original:
            now = source_identity(source, original, storage_options, first_n=record.get("first_n"))
    except (NwbStoreError, OSError):
        return ""
    changed = changed_fields(record, now)
    if not changed:
        return ""
    return (
        f"stale: {store.url} is nwbstore's conversion of {source}, which changed since "
        f"({', '.join(changed)}); convert it again"
    )


@dataclass(frozen=True)
class Judgement:
    """What an existing store at a target's converted location is, and why."""

    verdict: Verdict
    reason: str = ""


def judge_target(
    existing_url: str,
    wanted: Mapping[str, Any],
    storage_options: Mapping[str, Any],
) -> Judgement:
    """Decide whether the store at ``existing_url`` is a finished conversion of ``wanted``.

    ``absent``: nothing there. ``reuse``: a finished conversion of that very source.
    ``stale``: nwbstore converted that source URL there, but from an older version (or the
    conversion never finished). ``unrelated``: anything else, never to be overwritten.
    """
    import nwbstore
    from nwbstore.convert.locations import exists

    if not exists(existing_url, storage_options):
        return Judgement("absent")
    try:
        with nwbstore.open(
            existing_url, "r", storage_options=storage_options, allow_incomplete=True
        ) as store:
            record = read_record(store)
            incomplete = INCOMPLETE_ATTR in store.root.attrs._names()
    except (NwbStoreError, OSError) as err:
        return Judgement("unrelated", f"it is not a store nwbstore can read ({err})")
    if record is None:
        return Judgement("unrelated", "it carries no record of an nwbstore conversion")
    if record.get("url") != wanted["url"]:
        return Judgement("unrelated", f"it is nwbstore's conversion of {record.get('url')}")
    if incomplete:
        return Judgement("stale", "its conversion never finished")
    changed = changed_fields(record, wanted)
    if changed:
        return Judgement("stale", "the source changed since (" + ", ".join(changed) + ")")
    return Judgement("reuse")
