"""Links in Zarr groups, the hdmf-zarr way.

A group lists its links in an attribute: ``_LINKS`` (hdmf-zarr 0.14, Zarr v3) or
``zarr_link`` (hdmf-zarr 0.13, Zarr v2), each entry ``{"name", "source", "path"}``.
``source`` is ``"."`` for a link inside the store. For an external link hdmf-zarr resolves
``join(<linking store path>, source)``, so ``source`` is relative to the store itself
(``"../other.zarr"``); nwbstore's :class:`~nwbstore.links.ExternalLink` ``url`` is relative to
the directory holding the store (the HDF5 convention). The functions here translate.
"""

from __future__ import annotations

import posixpath
from typing import Any

from nwbstore.links import ExternalLink, SoftLink, normalize_path

__all__ = [
    "link_attr_name",
    "link_entries",
    "link_from_entry",
    "make_entry",
    "source_from_url",
    "url_from_source",
]


def link_attr_name(zarr_format: int) -> str:
    """Attribute that holds the links in a group of this Zarr format."""
    return "_LINKS" if zarr_format == 3 else "zarr_link"


def link_entries(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """All link entries of a group (``_LINKS`` first, then the legacy ``zarr_link``)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for key in ("_LINKS", "zarr_link"):
        for entry in attrs.get(key) or ():
            if isinstance(entry, dict) and "name" in entry and entry["name"] not in seen:
                seen.add(entry["name"])
                out.append(entry)
    return out


def _is_url_or_absolute(text: str) -> bool:
    return "://" in text or text.startswith("/") or (len(text) > 2 and text[1:3] == ":\\")


def source_from_url(url: str) -> str:
    """hdmf-zarr ``source`` for an external link whose ``url`` is relative to the store's folder.

    Examples
    --------
    >>> source_from_url("other.zarr")
    '../other.zarr'
    >>> source_from_url("s3://bucket/other.zarr")
    's3://bucket/other.zarr'
    """
    if _is_url_or_absolute(url):
        return url
    return posixpath.normpath(posixpath.join("..", url))


def url_from_source(source: str, store_basename: str) -> str | None:
    """ExternalLink ``url`` for an hdmf-zarr ``source``; ``None`` if it is this store.

    Old hdmf-zarr files wrote sources relative to the store's folder; a source that would
    point inside the linking store itself is read that way (as hdmf-zarr's V2 reader does).
    """
    if source in (".", "", "./"):
        return None
    if _is_url_or_absolute(source):
        return source
    rel = posixpath.normpath(posixpath.join(store_basename or ".", source))
    if store_basename and (rel == store_basename or rel.startswith(store_basename + "/")):
        rel = posixpath.normpath(source)  # older, folder-relative form
        if rel == store_basename:
            return None
    return rel


def link_from_entry(entry: dict[str, Any], store_basename: str) -> SoftLink | ExternalLink:
    """The nwbstore link described by a ``_LINKS``/``zarr_link`` entry."""
    path = normalize_path(str(entry.get("path") or "/"))
    url = url_from_source(str(entry.get("source") or "."), store_basename)
    return SoftLink(path) if url is None else ExternalLink(url, path)


def make_entry(name: str, link: SoftLink | ExternalLink) -> dict[str, Any]:
    """The ``_LINKS`` entry for ``link`` (same keys and order as hdmf-zarr writes)."""
    source = "." if isinstance(link, SoftLink) else source_from_url(link.url)
    return {"source": source, "path": link.path, "name": name}
