"""Text views of a store: the tree of groups, datasets and links with their settings."""

from __future__ import annotations

from collections.abc import Iterator

from nwbstore.links import ExternalLink, SoftLink
from nwbstore.nodes import Dataset, Group

__all__ = ["format_tree", "iter_tree_lines"]


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
        child = group._get_child(name)
        if isinstance(child, Group):
            yield f"{indent}{name}/"
            yield from iter_tree_lines(child, settings=settings, indent=indent + "    ")
        else:
            line = f"{indent}{name}  {child.shape} {child.dtype}"
            if settings and child.ndim:
                line += f"  [{_settings_summary(child)}]"
            yield line


def format_tree(group: Group, *, settings: bool = True) -> str:
    """Return the tree below ``group`` as text (what ``nwbstore tree`` prints)."""
    head = f"{group.store.url} ({group.store.backend})" if group.name == "/" else group.name
    return "\n".join([head, *iter_tree_lines(group, settings=settings, indent="    ")])
