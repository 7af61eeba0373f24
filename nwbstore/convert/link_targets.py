"""External-link targets in the other format: where their conversion goes and whether an
existing store there may be reused, replaced, or must be left alone.

A target ``x.nwb`` linked from a conversion into Zarr is converted to ``x.nwb.zarr`` next to
the destination (and ``x.nwb.zarr`` to ``x.nwb`` for HDF5 destinations). A store already
there is reused only if its identity record (:mod:`nwbstore.convert.identity`) says it is a
finished conversion of that very source; nwbstore's own conversion of an older version of the
source is converted again; anything else raises :class:`LinkTargetConflictError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from nwbstore.convert.identity import Judgement, canonical_url, judge_target, source_identity
from nwbstore.convert.locations import resolve_link_url, sibling_url
from nwbstore.errors import LinkTargetConflictError, NwbStoreError
from nwbstore.links import ExternalLink
from nwbstore.nodes import Store

__all__ = ["PlannedTarget", "converted_url", "plan_target", "plan_targets", "running"]

_HDF5_SUFFIX = ".nwb"
_ZARR_SUFFIX = ".nwb.zarr"

#: Conversions under way in this call chain: canonical source URL -> destination URL. A link
#: back to one of them (a cycle) points at that destination instead of converting it again.
_RUNNING: ContextVar[Mapping[str, str] | None] = ContextVar("nwbstore_running", default=None)


@contextlib.contextmanager
def running(src_url: str, dst_url: str) -> Iterator[None]:
    """Mark the conversion ``src_url -> dst_url`` as under way while the block runs."""
    token = _RUNNING.set({**(_RUNNING.get() or {}), canonical_url(src_url): dst_url})
    try:
        yield
    finally:
        _RUNNING.reset(token)


def running_destination(target_url: str) -> str | None:
    """Where ``target_url`` is being converted right now in this call chain, if it is."""
    return (_RUNNING.get() or {}).get(canonical_url(target_url))


def converted_url(target_url: str, dst_url: str, dst_format: str) -> str:
    """Where the conversion of ``target_url`` goes: beside ``dst_url``, in its format."""
    stem = os.path.basename(target_url.rstrip("/"))
    for suffix in (_ZARR_SUFFIX, ".zarr", _HDF5_SUFFIX, ".h5", ".hdf5"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    suffix = _ZARR_SUFFIX if dst_format == "zarr" else _HDF5_SUFFIX
    return sibling_url(dst_url, stem + suffix)


@dataclass(frozen=True)
class PlannedTarget:
    """What to do with one link target: convert to ``new_url``, replace it, or reuse it."""

    target: str
    format: str
    new_url: str
    judgement: Judgement


def plan_target(
    target: str,
    other: Store,
    dst_url: str,
    dst_format: str,
    storage_options: Mapping[str, Any],
    *,
    where: str,
    link: ExternalLink,
) -> PlannedTarget:
    """Judge the store where ``target`` (open as ``other``) would be converted.

    Raises
    ------
    LinkTargetConflictError
        Something other than nwbstore's conversion of ``target`` is there.
    """
    new_url = converted_url(target, dst_url, dst_format)
    wanted = source_identity(target, other, storage_options)  # targets are converted whole
    judgement = judge_target(new_url, wanted, storage_options)
    if judgement.verdict == "unrelated":
        raise LinkTargetConflictError(
            f"the external link {where} -> {link.url}:{link.path} points into {target} "
            f"({other.format}), whose {dst_format.upper()} conversion would go to {new_url}; "
            f"{new_url} already exists and is not nwbstore's conversion of {target}: "
            f"{judgement.reason}. nwbstore does not overwrite it: remove it, or choose another "
            "destination folder (or copy the linked data in with links='resolve' / "
            "--links resolve)"
        )
    return PlannedTarget(target, other.format, new_url, judgement)


def plan_targets(
    source: Store,
    dst_url: str,
    dst_format: str,
    storage_options: Mapping[str, Any],
) -> dict[str, PlannedTarget]:
    """Judge every link target of ``source`` that needs converting, before anything is written.

    Missing or unreadable targets are skipped (the conversion reports them as broken links).
    """
    import nwbstore

    planned: dict[str, PlannedTarget] = {}

    def on_link(name: str, link: Any) -> None:
        if not isinstance(link, ExternalLink):
            return
        target = resolve_link_url(source.url, link.url)
        if target in planned or running_destination(target) is not None:
            return
        try:
            other = nwbstore.open(target, "r", storage_options=storage_options)
        except (NwbStoreError, OSError):
            return
        with other:
            if other.format != dst_format:
                planned[target] = plan_target(
                    target,
                    other,
                    dst_url,
                    dst_format,
                    storage_options,
                    where="/" + name,
                    link=link,
                )

    source.root.visit_links(on_link)
    return planned
