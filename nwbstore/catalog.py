"""Sidecar metadata catalogs of remote HDF5 files: ``nwbstore index``.

:func:`index` opens a remote HDF5 file, walks its whole tree (every group, dataset, attribute
and link, and the chunk index of every chunked dataset) and writes what h5py read as a
catalog file next to the object (``<url>.nwbcat``) or to a chosen path. Anyone who opens the
object later with no local cache gets the sidecar in the same round as the open's probe and
reads the metadata without further requests, as long as the object's ETag is the one the
catalog was made from (a stale sidecar is ignored, never trusted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nwbstore.backends._catalog import SIDECAR_SUFFIX, public_url, write_catalog
from nwbstore.errors import UnsupportedOperationError
from nwbstore.nodes import Dataset, Group, Store

__all__ = ["IndexReport", "index", "walk_metadata"]


@dataclass(frozen=True)
class IndexReport:
    """What :func:`index` wrote.

    Attributes
    ----------
    url
        The indexed object (without credentials).
    output
        Where the catalog was written.
    etag
        The object's ETag the catalog is valid for.
    spans, metadata_bytes
        Byte spans recorded and the bytes they hold.
    file_bytes
        Size of the catalog file.
    nodes
        Groups and datasets walked.
    """

    url: str
    output: str
    etag: str
    spans: int
    metadata_bytes: int
    file_bytes: int
    nodes: int

    def __str__(self) -> str:
        return (
            f"wrote {self.output}: {self.spans} spans, {self.metadata_bytes} bytes of metadata "
            f"({self.file_bytes} bytes on disk) for {self.nodes} groups and datasets of "
            f"{self.url} (ETag {self.etag})"
        )


def walk_metadata(store: Store) -> int:
    """Read all the metadata of ``store``: every attribute, link, shape, dtype and dataset
    setting, and (for remote HDF5) each dataset's chunk index. Returns the number of groups
    and datasets below the root. No dataset values are read."""
    chunk_reader = getattr(store, "chunk_reader", None)
    nodes = 0

    def visit(_path: str, node: Group | Dataset) -> None:
        nonlocal nodes
        nodes += 1
        _read_attrs(node)
        if isinstance(node, Group):
            list(node.links())
            return
        node.shape, node.dtype, node.settings  # noqa: B018 - read for their metadata
        h5ds = getattr(node, "h5py_dataset", None)
        if chunk_reader is not None and h5ds is not None:
            chunk_reader(h5ds)  # the chunk index: its B-tree nodes are metadata too

    _read_attrs(store.root)
    list(store.root.links())
    store.root.visititems(visit)
    return nodes


def _read_attrs(node: Group | Dataset) -> None:
    for key in node.attrs:
        node.attrs[key]


def index(
    url: str,
    *,
    output: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> IndexReport:
    """Write the metadata catalog of the remote HDF5 file ``url``.

    Parameters
    ----------
    url
        An HDF5 file on S3 or HTTPS (``s3://bucket/session.nwb``).
    output
        Where to write the catalog: a local path or a URL. Default: next to the object,
        ``url + ".nwbcat"`` (uploaded with ``storage_options``), where nwbstore looks for it.
    storage_options
        fsspec/s3fs options for the object and the upload.

    Returns
    -------
    IndexReport
        What was written (spans, bytes, the ETag it is valid for).

    Raises
    ------
    UnsupportedOperationError
        ``url`` is not remote HDF5, or the server gives no ETag (a catalog could never be
        validated).
    """
    import nwbstore

    options = dict(storage_options or {})
    with nwbstore.open(url, storage_options=options) as store:
        if getattr(store, "backend", None) != "hdf5-remote":
            raise UnsupportedOperationError(
                f"nwbstore index applies to HDF5 files on S3 or HTTPS; {url} is "
                f"{getattr(store, 'backend', store.format)} (local files and Zarr stores need "
                "no catalog)"
            )
        nodes = walk_metadata(store)
        catalog = store.catalog  # type: ignore[attr-defined]
        if catalog is None:
            raise UnsupportedOperationError(
                f"cannot index {public_url(url)}: the server gave no ETag, so a catalog of it "
                "could never be checked against the object"
            )
    dest = output if output is not None else f"{url}{SIDECAR_SUFFIX}"
    written = write_catalog(catalog, dest, options)
    return IndexReport(
        url=public_url(url),
        output=public_url(dest),
        etag=catalog.etag,
        spans=len(catalog.spans),
        metadata_bytes=catalog.nbytes,
        file_bytes=written,
        nodes=nodes,
    )
