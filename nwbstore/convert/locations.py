"""Where stores are: resolving and rebasing link URLs, existence checks, sibling names.

On object storage an existence check is one listing (``list_objects_v2`` with the key as
prefix and ``/`` as delimiter), which finds both a single object (an HDF5 file) and a
prefix (a Zarr store); s3fs's ``exists`` costs a HEAD and then a LIST for a missing key.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

from nwbstore.backends.registry import split_protocol

__all__ = [
    "exists",
    "is_object_storage",
    "list_keys",
    "rebase_link_url",
    "remove",
    "resolve_link_url",
    "sibling_url",
]


def _is_url(url: str) -> bool:
    return split_protocol(url)[0] != "file"


def _parent(url: str) -> str:
    """Directory (or prefix) holding the store at ``url``."""
    if _is_url(url):
        protocol, rest = split_protocol(url)
        return f"{protocol}://{posixpath.dirname(rest.rstrip('/'))}"
    return os.path.dirname(os.path.abspath(url.rstrip("/")))


def resolve_link_url(store_url: str, link_url: str) -> str:
    """Absolute location of an external link's target, given the linking store's URL."""
    if _is_url(link_url) or os.path.isabs(link_url):
        return link_url
    base = _parent(store_url)
    if _is_url(base):
        protocol, rest = split_protocol(base)
        return f"{protocol}://{posixpath.normpath(posixpath.join(rest, link_url))}"
    return os.path.normpath(os.path.join(base, link_url))


def rebase_link_url(target: str, new_store_url: str) -> str:
    """The link URL that reaches ``target`` from a store at ``new_store_url``.

    Relative when both are local or share a protocol and bucket; absolute otherwise.
    """
    base = _parent(new_store_url)
    if not _is_url(target) and not _is_url(base):
        return os.path.relpath(target, base)
    tp, trest = split_protocol(target)
    bp, brest = split_protocol(base)
    if tp == bp and trest.split("/", 1)[0] == brest.split("/", 1)[0]:
        return posixpath.relpath(trest, brest)
    return target


def sibling_url(url: str, name: str) -> str:
    """A store called ``name`` next to ``url``."""
    base = _parent(url)
    return posixpath.join(base, name) if _is_url(base) else os.path.join(base, name)


def is_object_storage(url: str) -> bool:
    """True for URLs of remote object storage (``s3://``, ``gs://``, ...), not local/memory."""
    return split_protocol(url)[0] not in ("file", "memory")


def exists(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """True if something is stored at ``url`` (one LIST request on S3)."""
    protocol, rest = split_protocol(url)
    if protocol == "file":
        return os.path.exists(rest)
    if protocol == "memory":
        return False
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    if protocol in ("s3", "s3a"):
        return _s3_exists(fs, path.rstrip("/"))
    return bool(fs.exists(path))


def _s3_exists(fs: Any, path: str) -> bool:
    """Is ``path`` an object or a non-empty prefix? One listing page (rarely more)."""
    bucket, _, key = path.partition("/")
    if not key:
        return bool(fs.exists(bucket))
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": key, "Delimiter": "/"}
    try:
        while True:
            page = fs.call_s3("list_objects_v2", **request)
            if any(o.get("Key") == key for o in page.get("Contents", ())):
                return True
            if any(p.get("Prefix") == key + "/" for p in page.get("CommonPrefixes", ())):
                return True
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return False
            request["ContinuationToken"] = token  # siblings sharing the name as prefix
    except FileNotFoundError:  # no such bucket: nothing is stored there
        return False


def list_keys(url: str, storage_options: Mapping[str, Any] | None = None) -> set[str]:
    """Every key stored under the prefix ``url``, relative to it (one LIST per 1,000 keys)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    root = path.rstrip("/") + "/"
    fs.invalidate_cache(root.rstrip("/"))  # a cached listing may predate the last run
    try:
        found = fs.find(root.rstrip("/"))
    except FileNotFoundError:
        return set()
    return {k[len(root) :] for k in found if k.startswith(root)}


def remove(url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Delete whatever is stored at ``url`` (file, directory or prefix)."""
    protocol, rest = split_protocol(url)
    if protocol == "file":
        import shutil

        if os.path.isdir(rest):
            shutil.rmtree(rest)
        elif os.path.exists(rest):
            os.remove(rest)
        return
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    if exists(url, storage_options):
        fs.rm(path, recursive=True)
