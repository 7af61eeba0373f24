"""The NeuroConv printout of a backend configuration (decimal sizes: ``24 B``, ``3.84 MB``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from nwbstore.dtypes import is_string_dtype

__all__ = ["dataset_block", "human_size"]

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_size(n_bytes: float) -> str:
    """Decimal units as NeuroConv prints them: ``24 -> '24 B'``, ``3_840_000 -> '3.84 MB'``."""
    value = float(n_bytes)
    for unit in _UNITS:
        if value < 1000 or unit == _UNITS[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError  # pragma: no cover


def _size(shape: tuple[int, ...], dtype: np.dtype[Any]) -> str:
    n = math.prod(shape)
    if is_string_dtype(dtype) or dtype.kind in "OT":
        return f"variable-length ({n} value{'' if n == 1 else 's'})"
    return human_size(n * dtype.itemsize)


def _dtype(dtype: np.dtype[Any]) -> str:
    return "str (variable-length UTF-8)" if is_string_dtype(dtype) else str(dtype)


def dataset_block(config: Any) -> str:
    """One dataset's block: location, dtype, sizes, buffer, chunk, compression, filters."""
    loc = config.location_in_file
    lines = [
        loc,
        "-" * len(loc),
        f"  dtype : {_dtype(config.dtype)}",
        f"  full shape of source array : {config.full_shape}",
        f"  full size of source array : {_size(config.full_shape, config.dtype)}",
        "",
        f"  buffer shape : {config.buffer_shape}",
        f"  expected RAM usage : {_size(config.buffer_shape, config.dtype)}",
        "",
    ]
    if config.chunk_shape is None:
        lines.append("  chunk shape : None (contiguous)")
    else:
        lines.append(f"  chunk shape : {config.chunk_shape}")
        lines.append(f"  disk space usage per chunk : {_size(config.chunk_shape, config.dtype)}")
    if config.shard_shape is not None:
        lines.append(f"  shard shape : {config.shard_shape}")
        lines.append(f"  disk space usage per shard : {_size(config.shard_shape, config.dtype)}")
    lines.append("")
    lines.append(f"  compression method : {config.compression_method}")
    opts = config.compression_options
    if opts is not None and opts != {}:
        shown = dict(opts) if isinstance(opts, Mapping) else opts
        lines.append(f"  compression options : {shown}")
    if config.filter_methods:
        lines.append(f"  filter methods : {list(config.filter_methods)}")
        if any(config.filter_options):
            lines.append(
                f"  filter options : {[dict(o) if o else None for o in config.filter_options]}"
            )
    return "\n".join(lines)
