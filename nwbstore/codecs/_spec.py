"""``CodecSpec``: one stage of a codec pipeline, as a hashable, JSON-friendly value."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["CodecSpec", "freeze", "jsonable", "unjson"]


def freeze(value: Any) -> Any:
    """Return an immutable, hashable copy of ``value`` (lists become tuples, dicts proxies).

    numpy scalars become Python scalars so settings compare equal whatever produced them.
    """
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def jsonable(value: Any) -> Any:
    """Convert a frozen value to plain JSON types (NaN/inf as the strings Zarr uses)."""
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    return value


def unjson(value: Any) -> Any:
    """Invert :func:`jsonable` for values that were floats or bytes."""
    if isinstance(value, dict) and set(value) == {"__bytes__"}:
        return bytes.fromhex(value["__bytes__"])
    if isinstance(value, dict):
        return {k: unjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unjson(v) for v in value]
    if value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    return value


@dataclass(frozen=True, eq=False)
class CodecSpec:
    """One pipeline stage: a codec ``name`` from the mapping table and its ``options``.

    Parameters
    ----------
    name
        The nwbstore name of the codec (a row of :data:`nwbstore.codecs.CODEC_TABLE`).
    options
        The codec's options, with defaults filled in (see the table's parameters).
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", freeze(dict(self.options)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CodecSpec):
            return NotImplemented
        return self.name == other.name and _hashable(self.options) == _hashable(other.options)

    def __hash__(self) -> int:
        return hash((self.name, _hashable(self.options)))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"CodecSpec({self.name!r}{', ' if opts else ''}{opts})"

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"name": ..., "options": {...}}`` with plain JSON types."""
        return {"name": self.name, "options": jsonable(self.options)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodecSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["name"]), unjson(dict(data.get("options", {}))))


def hashable(value: Any) -> Any:
    """Public alias used by settings to hash frozen values."""
    return _hashable(value)
