"""Which format an NWB destination or source is, and where it lives."""

from __future__ import annotations

import os
import re

from nwbstore.backends.registry import split_protocol
from nwbstore.errors import UnknownFormatError

__all__ = ["FAMILY_PATTERN", "family_member", "is_family", "is_remote", "nwb_format"]

#: A ``%d`` in a file name: an HDF5 family (h5py replaces it with the member number).
FAMILY_PATTERN = re.compile(r"%(0?\d*)d")

_HDF5_SUFFIXES = (".nwb", ".h5", ".hdf5", ".hdf")
_ZARR_SUFFIXES = (".zarr",)


def is_remote(url: str) -> bool:
    """True for object storage and web URLs (``s3://``, ``https://``, ...), not local paths."""
    return split_protocol(url)[0] not in ("file", "memory")


def is_family(url: str) -> bool:
    """True if the file name holds ``%d`` (an HDF5 family, one file per member)."""
    return FAMILY_PATTERN.search(os.path.basename(url)) is not None


def family_member(url: str, index: int) -> str:
    """The file name of member ``index`` of the family ``url`` (h5py's printf naming)."""
    return url % index


def nwb_format(url: str, format: str | None) -> str:
    """``"hdf5"`` or ``"zarr"``: ``format`` if given, else from the name's extension.

    Raises
    ------
    UnknownFormatError
        ``format`` is neither, or the name has no extension that says.
    """
    if format is not None:
        fmt = format.lower()
        if fmt in ("hdf5", "h5", "nwb"):
            return "hdf5"
        if fmt == "zarr":
            return "zarr"
        raise UnknownFormatError(f"format={format!r} must be 'hdf5' or 'zarr'")
    name = url.rstrip("/").lower()
    if name.endswith(_ZARR_SUFFIXES):
        return "zarr"
    if name.endswith(_HDF5_SUFFIXES) or is_family(name):
        return "hdf5"
    raise UnknownFormatError(
        f"cannot tell the format of {url} from its name: end it in .nwb or .h5 (HDF5) or .zarr "
        "(Zarr), or pass format='hdf5' or format='zarr'"
    )
