"""Text views of a store: the tree of groups, datasets and links with their settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from nwbstore.dtypes import is_reference_dtype, is_string_dtype
from nwbstore.links import ExternalLink, SoftLink
from nwbstore.nodes import Dataset, Group
from nwbstore.summary import PICKLE_NOTE, child_or_refusal

__all__ = ["dtype_label", "format_tree", "iter_tree", "iter_tree_lines"]


def dtype_label(ds: Dataset) -> str:
    """A short dtype for text views: ``str`` and ``reference`` instead of ``object``."""
    return _label(ds.dtype)


def _label(dt: np.dtype[Any]) -> str:
    if is_string_dtype(dt):
        return "str"
    if is_reference_dtype(dt):
        return "reference"
    if dt.names is not None:
        return "{" + ", ".join(f"{name}: {_label(dt[name])}" for name in dt.names) + "}"
    return str(dt)


def _settings_summary(ds: Dataset) -> str:
    try:
        s = ds.settings
    except Exception as err:  # a settings error must not hide the tree
        return f"settings unavailable: {err}"
    parts = [f"chunks={s.chunks}" if s.chunks is not None else "contiguous"]
    if s.shards is not None:
        parts.append(f"shards={s.shards}")
    if s.pipeline:
        parts.append(s.describe_compression())
    return ", ".join(parts)


def iter_tree_lines(group: Group, *, settings: bool = True, indent: str = "") -> Iterator[str]:
    """Yield one line per member of ``group``, recursively, with links shown as links."""
    for name in group:
        link = group._get_link(name)
        if isinstance(link, SoftLink):
            yield f"{indent}{name} -> {link.path}"
            continue
        if isinstance(link, ExternalLink):
            yield f"{indent}{name} -> {link.url}:{link.path}"
            continue
        child = child_or_refusal(group, name)
        if isinstance(child, Exception):  # a Pickle array nwbstore may not read: say so
            yield f"{indent}{name}  {PICKLE_NOTE}"
        elif isinstance(child, Group):
            yield f"{indent}{name}/"
            yield from iter_tree_lines(child, settings=settings, indent=indent + "    ")
        else:
            line = f"{indent}{name}  {child.shape} {dtype_label(child)}"
            if settings and child.ndim:
                line += f"  [{_settings_summary(child)}]"
            yield line


def iter_tree(group: Group, *, settings: bool = True) -> Iterator[str]:
    """Yield the lines of :func:`format_tree` one by one (what ``nwbstore tree`` prints)."""
    yield f"{group.store.url} ({group.store.backend})" if group.name == "/" else group.name
    yield from iter_tree_lines(group, settings=settings, indent="    ")


def format_tree(group: Group, *, settings: bool = True) -> str:
    """Return the tree below ``group`` as text (what ``nwbstore tree`` prints)."""
    return "\n".join(iter_tree(group, settings=settings))
