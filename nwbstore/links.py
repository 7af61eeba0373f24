"""Links and object references as plain values.

These objects carry no I/O. Backends turn them into HDF5 links / references or into the
hdmf-zarr 0.14 Zarr encoding (``_LINKS`` group attribute, ``_REFERENCE`` attribute values and
object-reference string datasets marked ``_DTYPE="object_reference"``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

__all__ = [
    "REFERENCE_DTYPE_MARK",
    "ExternalLink",
    "Reference",
    "SoftLink",
    "join_path",
    "normalize_path",
]

#: ``_DTYPE`` attribute value marking a Zarr dataset of object references (hdmf-zarr 0.14).
REFERENCE_DTYPE_MARK = "object_reference"


def normalize_path(path: str) -> str:
    """Return an absolute, normalised POSIX path inside a store (``"/"`` for the root).

    Examples
    --------
    >>> normalize_path("acquisition//ts/")
    '/acquisition/ts'
    """
    norm = posixpath.normpath("/" + str(path).strip())
    return "/" if norm in ("/", "//", ".") else norm.replace("//", "/")


def join_path(parent: str, name: str) -> str:
    """Join a group path and a (relative) name into a normalised absolute path."""
    if name.startswith("/"):
        return normalize_path(name)
    return normalize_path(posixpath.join(parent, name))


@dataclass(frozen=True, slots=True)
class SoftLink:
    """A link to another node in the same store, by absolute path (like ``h5py.SoftLink``)."""

    path: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", normalize_path(self.path))


@dataclass(frozen=True, slots=True)
class ExternalLink:
    """A link to a node in another store.

    Parameters
    ----------
    url
        The other store: a path relative to the directory holding the linking store (as HDF5
        and hdmf-zarr write them), an absolute path, or a URL such as ``s3://bucket/f.zarr``.
    path
        Absolute path of the target node inside the other store.
    """

    url: str
    path: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", normalize_path(self.path))


@dataclass(frozen=True, slots=True)
class Reference:
    """An object reference: a pointer to a group or dataset.

    Parameters
    ----------
    path
        Absolute path of the target inside ``source``.
    source
        ``"."`` for the store holding the reference (the only kind HDF5 can store), otherwise a
        relative path or URL of another store (as hdmf-zarr writes them).
    """

    path: str
    source: str = "."

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", normalize_path(self.path))

    def to_zarr_attr(self) -> dict[str, Any]:
        """Return the hdmf-zarr 0.14 attribute encoding ``{"_REFERENCE": {...}}``."""
        return {"_REFERENCE": {"source": self.source, "path": self.path}}

    @classmethod
    def from_zarr_attr(cls, value: Any) -> Reference | None:
        """Decode an attribute value written as a reference by hdmf-zarr (0.14 or older).

        Returns ``None`` when ``value`` is not a reference.
        """
        if isinstance(value, dict):
            if "_REFERENCE" in value and isinstance(value["_REFERENCE"], dict):
                ref = value["_REFERENCE"]
                return cls(path=ref.get("path", "/"), source=ref.get("source", ".") or ".")
            # hdmf-zarr < 0.14: {"zarr_dtype": "object", "value": {"source":..., "path":...}}
            if value.get("zarr_dtype") == "object" and isinstance(value.get("value"), dict):
                ref = value["value"]
                return cls(path=ref.get("path", "/"), source=ref.get("source", ".") or ".")
        return None
