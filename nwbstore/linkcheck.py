"""``nwbstore links``: list every link and object reference in a store and flag broken ones.

An external link into a store nwbstore converted (it carries an identity record, see
:mod:`nwbstore.convert.identity`) whose source has changed since is flagged as stale.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nwbstore.convert.identity import staleness
from nwbstore.convert.locations import resolve_link_url
from nwbstore.dtypes import is_reference_dtype
from nwbstore.errors import NwbStoreError
from nwbstore.links import ExternalLink, Reference, SoftLink
from nwbstore.nodes import Dataset, Group, Store

__all__ = ["LinkEntry", "check_links"]


@dataclass(frozen=True)
class LinkEntry:
    """One link or reference: where it is, what kind, what it points to, and if it resolves."""

    where: str
    kind: str  # "soft link", "external link", "reference attribute", "reference dataset"
    target: str
    ok: bool
    problem: str = ""

    def __str__(self) -> str:
        state = "ok" if self.ok else f"BROKEN: {self.problem}"
        return f"{self.where}  [{self.kind}] -> {self.target}  {state}"


def _check_external(store: Store, link: ExternalLink, opts: Mapping[str, Any]) -> str:
    import nwbstore

    target = resolve_link_url(store.url, link.url)
    try:
        with nwbstore.open(target, "r", storage_options=opts) as other:
            if link.path not in other:
                return f"{link.path} not found in {target}"
            # a converted target whose source changed since points at the wrong data
            return staleness(other, opts)
    except (NwbStoreError, OSError) as err:
        return f"cannot open {target}: {err}"
    return ""


def _refs_in(value: Any) -> Iterator[Reference]:
    if isinstance(value, Reference):
        yield value
    elif isinstance(value, (np.ndarray, list, tuple)):
        for v in np.asarray(value, dtype=object).ravel():
            if isinstance(v, Reference):
                yield v


def check_links(
    store: Store, *, storage_options: Mapping[str, Any] | None = None
) -> list[LinkEntry]:
    """Return every link and reference of ``store``, each marked ok or broken."""
    opts = dict(storage_options or {})
    entries: list[LinkEntry] = []

    def on_link(name: str, link: SoftLink | ExternalLink) -> None:
        where = "/" + name
        if isinstance(link, SoftLink):
            ok = link.path in store
            entries.append(
                LinkEntry(where, "soft link", link.path, ok, "" if ok else "missing target")
            )
        else:
            problem = _check_external(store, link, opts)
            entries.append(
                LinkEntry(where, "external link", f"{link.url}:{link.path}", not problem, problem)
            )

    def on_ref(where: str, kind: str, ref: Reference) -> None:
        ok = ref.source != "." or ref.path in store
        entries.append(LinkEntry(where, kind, ref.path, ok, "" if ok else "missing target"))

    def on_node(name: str, node: Group | Dataset) -> None:
        for key in node.attrs:
            for ref in _refs_in(node.attrs[key]):
                on_ref(f"/{name}@{key}", "reference attribute", ref)
        if isinstance(node, Dataset) and is_reference_dtype(node.dtype) and node.size:
            values = node[()] if node.ndim == 0 else node[...]
            for i, ref in enumerate(_refs_in(values)):
                on_ref(f"/{name}[{i}]", "reference dataset", ref)

    store.root.visit_links(on_link)
    store.root.visititems(on_node)
    return entries
