"""Plain values for xarray: references and links as target paths, attributes as text/numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from nwbstore.links import ExternalLink, Reference, SoftLink

__all__ = ["attr_value", "clean_attrs", "link_text", "reference_text", "text_values"]


def reference_text(ref: Reference) -> str:
    """The target of an object reference: its path, prefixed by ``source::`` when it points
    into another store."""
    return ref.path if ref.source in (".", "") else f"{ref.source}::{ref.path}"


def link_text(link: SoftLink | ExternalLink) -> str:
    """The target of a link: the path of a soft link, ``url::path`` for an external link."""
    if isinstance(link, ExternalLink):
        return f"{link.url}::{link.path}"
    return link.path


def _scalar(value: Any) -> Any:
    if isinstance(value, Reference):
        return reference_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item() if value.dtype.kind in "SUO" else value
    return value


def attr_value(value: Any) -> Any:
    """An attribute value xarray (and netCDF writers) can hold: references become target
    paths, arrays of text or references become lists of ``str``."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [_scalar(v) for v in value.ravel().tolist()]
        return value
    if isinstance(value, (list, tuple)):
        return [_scalar(v) for v in value]
    return _scalar(value)


def clean_attrs(attrs: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A plain ``dict`` of ``attrs`` (an nwbstore attribute mapping) with values made plain."""
    return {k: attr_value(attrs[k]) for k in attrs if k not in drop}


def text_values(data: Any) -> Any:
    """Map references to target paths and bytes to ``str`` in an object array (or scalar)."""
    if isinstance(data, np.ndarray):
        if data.dtype != object:
            return data
        out = np.empty(data.shape, dtype=object)
        flat_in, flat_out = data.reshape(-1), out.reshape(-1)
        for i, v in enumerate(flat_in):
            flat_out[i] = _scalar(v)
        return out
    return np.asarray(_scalar(data), dtype=object)
