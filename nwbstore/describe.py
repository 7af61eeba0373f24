"""Print dataset settings in the layout NeuroConv users know (``nwbstore config URL``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nwbstore.settings import DatasetSettings

__all__ = ["describe_dataset", "describe_settings"]


def _is_variable_length(dt: np.dtype[Any]) -> bool:
    """True if values of ``dt`` have no fixed size (vlen strings, references, objects)."""
    if dt.names is not None:
        return any(_is_variable_length(dt[name]) for name in dt.names)
    return dt.kind in "OT"


def _dtype_text(dt: np.dtype[Any]) -> str:
    """The dtype as a user reads it, with the size of one value where it has one."""
    from nwbstore.dtypes import is_reference_dtype, is_string_dtype

    if is_string_dtype(dt):
        return "str (variable-length UTF-8)"
    if is_reference_dtype(dt):
        return "object reference"
    if dt.kind == "S":
        metadata: dict[str, Any] = dict(dt.metadata or {})
        encoding = metadata.get("h5py_encoding")
        kind = "UTF-8 string" if encoding == "utf-8" else "bytes"
        return f"{dt.str} (fixed-length {kind}, {dt.itemsize} B each)"
    if dt.kind == "U":
        chars = dt.itemsize // 4
        return f"{dt.str} (fixed-length string of {chars} characters, {dt.itemsize} B each)"
    if dt.names is not None:
        fields = ", ".join(f"{name}: {_dtype_text(dt[name])}" for name in dt.names)
        return f"compound {{{fields}}}"
    return str(dt)


def _size_text(n_values: int, dt: np.dtype[Any], itemsize: int) -> str:
    from nwbstore.defaults import human_bytes

    if not _is_variable_length(dt):
        return human_bytes(n_values * itemsize)
    text = f"variable-length ({n_values} value{'' if n_values == 1 else 's'}"
    if dt.names is not None:
        fixed = sum(dt[n].itemsize for n in dt.names if not _is_variable_length(dt[n]))
        text += f", {human_bytes(n_values * fixed)} of fixed-size fields"
    return text + ")"


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
    from nwbstore.defaults import _buffer_shape, _itemsize

    dt = np.dtype(dtype)
    itemsize = _itemsize(dt)
    if buffer_shape is None:
        chunk = settings.chunks or tuple(max(s, 1) for s in shape)
        buffer_shape = _buffer_shape(tuple(shape), chunk, itemsize, 1 << 30) if shape else ()
    lines = [
        path,
        "-" * len(path),
        f"  dtype : {_dtype_text(dt)}",
        f"  full shape of source array : {tuple(shape)}",
        f"  full size of source array : {_size_text(math.prod(shape), dt, itemsize)}",
        "",
        f"  buffer shape : {tuple(buffer_shape)}",
        f"  expected RAM usage : {_size_text(math.prod(buffer_shape), dt, itemsize)}",
        "",
    ]
    if settings.chunks is None:
        lines.append("  chunk shape : contiguous (not chunked)")
    else:
        lines.append(f"  chunk shape : {settings.chunks}")
        per_chunk = _size_text(math.prod(settings.chunks), dt, itemsize)
        uncompressed = "" if _is_variable_length(dt) else " (uncompressed)"
        lines.append(f"  disk space usage per chunk : {per_chunk}{uncompressed}")
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
    from nwbstore.errors import PickleRefusedError
    from nwbstore.nodes import Dataset
    from nwbstore.summary import PICKLE_NOTE, walk_readable

    root = getattr(store, "root", store)
    st = getattr(root, "store", store)
    backend = type(st).__name__
    title = f"{backend} dataset configurations ({getattr(st, 'url', '')})"
    blocks = [title, "=" * len(title), ""]
    prefix = root.name.rstrip("/") + "/"
    found = [
        (path[len(prefix) :], node)
        for path, node in walk_readable(root)
        if isinstance(node, (Dataset, PickleRefusedError))
    ]
    for name, ds in found:
        if isinstance(ds, PickleRefusedError):
            blocks.append(f"{name}\n{'-' * len(name)}\n  {PICKLE_NOTE}")
        else:
            blocks.append(describe_dataset(name, tuple(ds.shape), ds.dtype, ds.settings))
        blocks.append("")
    if not found:
        blocks.append("(no datasets)")
    return "\n".join(blocks).rstrip() + "\n"
