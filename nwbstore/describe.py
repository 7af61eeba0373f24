"""Print dataset settings in the layout NeuroConv users know (``nwbstore config URL``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nwbstore.settings import DatasetSettings

__all__ = ["describe_dataset", "describe_settings"]


def describe_dataset(
    path: str,
    shape: tuple[int, ...],
    dtype: Any,
    settings: DatasetSettings,
    buffer_shape: tuple[int, ...] | None = None,
) -> str:
    """Describe one dataset: dtype, sizes, buffer, chunks, shards and compression.

    Parameters
    ----------
    path
        Dataset location (the heading).
    shape, dtype
        The full dataset.
    settings
        Its settings.
    buffer_shape
        The write/copy buffer; ``None`` uses :func:`nwbstore.default_settings`' rule.
    """
    from nwbstore.defaults import _buffer_shape, _itemsize, human_bytes

    dt = np.dtype(dtype)
    itemsize = _itemsize(dt)
    if buffer_shape is None:
        chunk = settings.chunks or tuple(max(s, 1) for s in shape)
        buffer_shape = _buffer_shape(tuple(shape), chunk, itemsize, 1 << 30) if shape else ()
    lines = [
        path,
        "-" * len(path),
        f"  dtype : {dt}",
        f"  full shape of source array : {tuple(shape)}",
        f"  full size of source array : {human_bytes(math.prod(shape) * itemsize)}",
        "",
        f"  buffer shape : {tuple(buffer_shape)}",
        f"  expected RAM usage : {human_bytes(math.prod(buffer_shape) * itemsize)}",
        "",
    ]
    if settings.chunks is None:
        lines.append("  chunk shape : contiguous (not chunked)")
    else:
        lines.append(f"  chunk shape : {settings.chunks}")
        lines.append(
            f"  disk space usage per chunk : {human_bytes(math.prod(settings.chunks) * itemsize)}"
            " (uncompressed)"
        )
    if settings.shards is not None:
        lines.append(f"  shard shape : {settings.shards}")
        chunks = settings.chunks or settings.shards
        per = math.prod(s // c for s, c in zip(settings.shards, chunks, strict=True))
        lines.append(f"  chunks per shard : {per}")
    lines.append("")
    lines.extend(settings.codec_lines())
    return "\n".join(lines)


def describe_settings(store: Any) -> str:
    """Describe every dataset of an open :class:`nwbstore.Store` (or of a group).

    Returns
    -------
    str
        A heading naming the backend, then one block per dataset (see
        :func:`describe_dataset`), in walk order.
    """
    from nwbstore.nodes import Dataset

    root = getattr(store, "root", store)
    st = getattr(root, "store", store)
    backend = type(st).__name__
    title = f"{backend} dataset configurations ({getattr(st, 'url', '')})"
    blocks = [title, "=" * len(title), ""]
    found: list[tuple[str, Any]] = []
    root.visititems(
        lambda name, node: found.append((name, node)) if isinstance(node, Dataset) else None
    )
    for name, ds in found:
        blocks.append(describe_dataset(name, tuple(ds.shape), ds.dtype, ds.settings))
        blocks.append("")
    if not found:
        blocks.append("(no datasets)")
    return "\n".join(blocks).rstrip() + "\n"
