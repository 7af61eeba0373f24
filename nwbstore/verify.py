"""``nwbstore.verify``: compare two stores (structure, attributes, links, references, data).

Data are compared block by block, so memory stays bounded by one block per side.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nwbstore.convert.data import _block_shape, iter_blocks
from nwbstore.convert.locations import resolve_link_url
from nwbstore.errors import NwbStoreError
from nwbstore.links import ExternalLink, Reference, SoftLink
from nwbstore.nodes import Dataset, Group, Store

__all__ = ["VerifyReport", "verify"]


@dataclass
class VerifyReport:
    """What :func:`verify` compared and every difference found (empty means equal).

    ``groups`` counts the groups below the root, as h5py's ``visititems`` does and as
    :class:`~nwbstore.convert.report.ConversionReport` and ``nwbstore info`` count them.
    """

    source: str
    destination: str
    groups: int = 0
    datasets: int = 0
    attributes: int = 0
    links: int = 0
    elements: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no difference was found."""
        return not self.differences

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = (
            f"verified {self.source} against {self.destination}: {self.groups} groups, "
            f"{self.datasets} datasets, {self.attributes} attributes, {self.links} links, "
            f"{self.elements} values"
        )
        if self.ok:
            return head + "\n  no differences"
        return "\n".join(
            [head, f"  {len(self.differences)} differences:"]
            + [f"    - {d}" for d in self.differences[:200]]
        )


def _normalise(value: Any) -> Any:
    """Bring attribute values from either backend to one comparable form."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        value = np.asarray(
            value, dtype=object if any(isinstance(v, (str, Reference)) for v in value) else None
        )
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SUO" or isinstance(value.dtype, np.dtypes.StringDType):
            return tuple(_normalise(v) for v in value.ravel().tolist()), value.shape
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _equal(a: Any, b: Any) -> bool:
    a, b = _normalise(a), _normalise(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        if a_arr.shape != b_arr.shape:
            return False
        if a_arr.dtype.kind in "fc" or b_arr.dtype.kind in "fc":
            return bool(np.array_equal(a_arr, b_arr, equal_nan=True))
        return bool(np.array_equal(a_arr, b_arr))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return bool(a == b)


def _compare_values(src: Dataset, dst: Dataset, report: VerifyReport) -> None:
    if src.ndim == 0:
        try:
            a0, b0 = src[()], dst[()]
        except OSError as err:  # a damaged store: CorruptChunkError, h5py's read errors
            report.differences.append(f"{src.name}: value cannot be read ({err})")
            return
        if not _equal(a0, b0):
            report.differences.append(f"{src.name}: scalar value differs ({a0!r} vs {b0!r})")
        report.elements += 1
        return
    block = _block_shape(src, src)
    for sel in iter_blocks(src.shape, block):
        where = ", ".join(f"{s.start}:{s.stop}" for s in sel)
        try:
            a = _read_block(src, sel, "source")
            b = _read_block(dst, sel, "destination")
        except _Unreadable as err:
            report.differences.append(f"{src.name}: {err}")
            return
        report.elements += int(np.size(a))
        if a.dtype.names is not None:
            same = all(_equal(a[n], b[n]) for n in a.dtype.names)
        else:
            same = _equal(a, b)
        if not same:
            report.differences.append(
                f"{src.name}: values differ in block [{where}]{_first_difference(a, b, sel, dst)}"
            )
            return


class _Unreadable(Exception):
    """A block of one side could not be read (damaged chunk); the message says where."""


def _read_block(ds: Dataset, sel: tuple[slice, ...], side: str) -> Any:
    """``ds[sel]``; a damaged chunk becomes ``_Unreadable`` naming its chunk index."""
    try:
        return ds[sel]
    except OSError as err:  # CorruptChunkError, or h5py's "filter returned failure"
        chunks = ds.chunks
        if chunks is not None:
            grid = [range(s.start // c, -(-s.stop // c)) for s, c in zip(sel, chunks, strict=True)]
            for index in itertools.product(*grid):
                part = tuple(
                    slice(i * c, min((i + 1) * c, n))
                    for i, c, n in zip(index, chunks, ds.shape, strict=True)
                )
                try:
                    ds[part]
                except OSError as chunk_err:
                    raise _Unreadable(
                        f"chunk index {index} cannot be read in the {side} ({chunk_err})"
                    ) from None
        raise _Unreadable(f"block cannot be read in the {side} ({err})") from None


def _first_difference(a: Any, b: Any, sel: tuple[slice, ...], dst: Dataset) -> str:
    """``", first in chunk index (i, ...)"`` for the first differing element, if found."""
    try:
        if a.dtype.names is not None:
            a, b = a[a.dtype.names[0]], b[b.dtype.names[0]]
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        if a_arr.dtype.kind in "fc":
            differ = ~((a_arr == b_arr) | (np.isnan(a_arr) & np.isnan(b_arr)))
        else:
            differ = a_arr != b_arr
        where = np.argwhere(differ)
        chunks = dst.chunks
        if not len(where) or chunks is None:
            return ""
        element = tuple(int(i) + s.start for i, s in zip(where[0], sel, strict=True))
        index = tuple(e // c for e, c in zip(element, chunks, strict=True))
    except (TypeError, ValueError):  # values numpy cannot compare element by element
        return ""
    return f", first at element {element} in chunk index {index} of the destination"


def _compare_attrs(src: Group | Dataset, dst: Group | Dataset, report: VerifyReport) -> None:
    a_keys, b_keys = set(src.attrs), set(dst.attrs)
    for key in sorted(a_keys - b_keys):
        report.differences.append(f"{src.name}: attribute {key!r} missing in destination")
    for key in sorted(b_keys - a_keys):
        report.differences.append(f"{src.name}: extra attribute {key!r} in destination")
    for key in sorted(a_keys & b_keys):
        report.attributes += 1
        if not _equal(src.attrs[key], dst.attrs[key]):
            report.differences.append(
                f"{src.name}: attribute {key!r} differs ({src.attrs[key]!r} vs {dst.attrs[key]!r})"
            )


def _compare_links(
    name: str,
    a: SoftLink | ExternalLink | None,
    b: SoftLink | ExternalLink | None,
    report: VerifyReport,
) -> bool:
    """Compare link kinds; returns True if the caller should still compare the targets."""
    if a is None and b is None:
        return True
    report.links += 1
    if type(a) is not type(b):
        kind = lambda link: type(link).__name__ if link else "object"  # noqa: E731
        report.differences.append(f"{name}: {kind(a)} in source, {kind(b)} in destination")
        return False
    if isinstance(a, SoftLink) and isinstance(b, SoftLink) and a.path != b.path:
        report.differences.append(f"{name}: soft link to {a.path} vs {b.path}")
    if isinstance(a, ExternalLink) and isinstance(b, ExternalLink) and a.path != b.path:
        report.differences.append(f"{name}: external link to {a.path} vs {b.path}")
    return False


@dataclass
class _Walk:
    """State of one comparison: options, opened link targets, link pairs already followed."""

    report: VerifyReport
    resolved: bool
    storage_options: Mapping[str, Any]
    stores: dict[str, Store] = field(default_factory=dict)
    visited: set[tuple[str, str, str, str]] = field(default_factory=set)

    def target(self, store: Store, link: ExternalLink) -> tuple[str, Group | Dataset]:
        """Open what ``link`` (in ``store``) points to; raises if it cannot be reached."""
        import nwbstore

        url = resolve_link_url(store.url, link.url)
        other = self.stores.get(url)
        if other is None:
            other = nwbstore.open(url, "r", storage_options=self.storage_options)
            self.stores[url] = other
        return url, other[link.path]

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        self.stores.clear()


def _follow_external(
    walk: _Walk, path: str, src: Group, a: ExternalLink, dst: Group, b: ExternalLink
) -> None:
    """Compare what two external links point at (each resolved from its own store)."""
    report = walk.report
    ends: list[tuple[str, Group | Dataset]] = []
    for side, group, link in (("source", src, a), ("destination", dst, b)):
        try:
            ends.append(walk.target(group.store, link))
        except (NwbStoreError, OSError, KeyError) as err:
            report.differences.append(
                f"{path}: external link broken in {side} ({link.url}:{link.path}: {err})"
            )
    if len(ends) < 2:
        return
    (a_url, a_node), (b_url, b_node) = ends
    key = (a_url, a_node.name, b_url, b_node.name)
    if key in walk.visited:  # a link cycle, or a target already compared
        return
    walk.visited.add(key)
    first = len(report.differences)
    _compare_nodes(walk, a_node.name, a_node, b_node)
    via = f"{path} (external link to {a.url}:{a.path} / {b.url}:{b.path})"
    report.differences[first:] = [f"{via}: {d}" for d in report.differences[first:]]


def _compare_nodes(
    walk: _Walk, path: str, a_node: Group | Dataset, b_node: Group | Dataset
) -> None:
    report = walk.report
    if isinstance(a_node, Group) != isinstance(b_node, Group):
        report.differences.append(f"{path}: group in one store, dataset in the other")
    elif isinstance(a_node, Group) and isinstance(b_node, Group):
        report.groups += 1  # groups below the root, as h5py's visititems counts them
        _compare_group(walk, a_node, b_node)
    elif isinstance(a_node, Dataset) and isinstance(b_node, Dataset):
        report.datasets += 1
        _compare_attrs(a_node, b_node, report)
        if tuple(a_node.shape) != tuple(b_node.shape):
            report.differences.append(f"{path}: shape {a_node.shape} vs {b_node.shape}")
        elif a_node.dtype != b_node.dtype and not (a_node.dtype.kind == b_node.dtype.kind == "O"):
            report.differences.append(f"{path}: dtype {a_node.dtype} vs {b_node.dtype}")
        else:
            _compare_values(a_node, b_node, report)


def _compare_group(walk: _Walk, src: Group, dst: Group) -> None:
    report = walk.report
    _compare_attrs(src, dst, report)
    a_names, b_names = set(src), set(dst)
    for name in sorted(a_names - b_names):
        report.differences.append(f"{src.name.rstrip('/')}/{name}: missing in destination")
    for name in sorted(b_names - a_names):
        report.differences.append(f"{src.name.rstrip('/')}/{name}: extra in destination")
    for name in sorted(a_names & b_names):
        path = f"{src.name.rstrip('/')}/{name}"
        a_link, b_link = src._get_link(name), dst._get_link(name)
        if walk.resolved and isinstance(a_link, ExternalLink) and b_link is None:
            a_link = None  # resolved on purpose: compare the copied data with the target
        elif not _compare_links(path, a_link, b_link, report):
            if isinstance(a_link, ExternalLink) and isinstance(b_link, ExternalLink):
                _follow_external(walk, path, src, a_link, dst, b_link)
            continue
        try:
            a_node, b_node = src._get_child(name), dst._get_child(name)
        except (KeyError, OSError) as err:
            report.differences.append(f"{path}: cannot be read ({err})")
            continue
        _compare_nodes(walk, path, a_node, b_node)


def verify(
    src: str | os.PathLike[str] | Store,
    dst: str | os.PathLike[str] | Store,
    *,
    storage_options: Mapping[str, Any] | None = None,
    links: str = "keep",
) -> VerifyReport:
    """Compare two stores and return every difference found.

    Parameters
    ----------
    src, dst
        Paths/URLs or open stores.
    storage_options
        fsspec/s3fs options for remote stores.
    links
        ``"resolve"`` if ``dst`` was made with resolved external links (their data is then
        compared with the link targets). Otherwise external links present on both sides are
        followed, each resolved from its own store, and what they point at is compared
        (values, shapes, dtypes, attributes, groups recursively); a link broken on either side
        is a difference.

    Returns
    -------
    VerifyReport
        Truthy when the stores hold the same content.
    """
    import nwbstore

    opened: list[Store] = []

    def as_store(x: Any) -> Store:
        if isinstance(x, Store):
            return x
        store = nwbstore.open(x, "r", storage_options=storage_options)
        opened.append(store)
        return store

    try:
        a, b = as_store(src), as_store(dst)
        report = VerifyReport(source=a.url, destination=b.url)
        walk = _Walk(report, links == "resolve", dict(storage_options or {}))
        try:
            _compare_group(walk, a.root, b.root)
        finally:
            walk.close()
        return report
    finally:
        for store in opened:
            store.close()
