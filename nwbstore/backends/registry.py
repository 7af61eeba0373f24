"""Resolve a path or URL to a backend, and the table of backends.

Order of detection: explicit ``format=`` (and ``driver=``), then the name's extension, then
what is stored there (HDF5 magic bytes, ``zarr.json``, ``.zgroup``/``.zarray``). Backends are
imported only when used (as fsspec does), so a missing optional dependency is reported with
the extra to install.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from nwbstore.backends._remote import probe_url
from nwbstore.errors import (
    MissingDependencyError,
    StoreNotFoundError,
    UnknownFormatError,
)

if TYPE_CHECKING:
    from nwbstore.nodes import Mode, Store

__all__ = ["BACKENDS", "BackendSpec", "detect_backend", "get_backend", "split_protocol"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
HDF5_EXTENSIONS = (".nwb", ".h5", ".hdf5", ".hdf", ".he5")
ZARR_EXTENSIONS = (".zarr", ".zr3", ".zarr2", ".zarr3")
REMOTE_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "http", "https", "az", "abfs")


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """Where a backend lives and what to install for it."""

    name: str
    target: str  # "module:Class"
    extra: str  # pip extra that installs its dependencies
    description: str

    def load(self) -> type[Store]:
        module_name, _, cls_name = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise MissingDependencyError(
                f"the {self.name!r} backend needs {err.name or 'a missing package'}: "
                f"pip install 'nwbstore[{self.extra}]'"
            ) from err
        cls: type[Store] = getattr(module, cls_name)
        return cls


_BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("hdf5", "nwbstore.backends.hdf5:HDF5Store", "all", "local HDF5 file (sec2)"),
        BackendSpec(
            "hdf5-family",
            "nwbstore.backends.hdf5:HDF5Store",
            "all",
            "HDF5 family of files (printf %d pattern)",
        ),
        BackendSpec(
            "hdf5-remote",
            "nwbstore.backends.hdf5:HDF5Store",
            "s3",
            "HDF5 read-only over an fsspec file object (s3://, https://)",
        ),
        BackendSpec(
            "zarr", "nwbstore.backends.zarr:ZarrStore", "all", "Zarr v3/v2: local, S3, memory"
        ),
    )
}

#: Read-only view of the backend table.
BACKENDS: Mapping[str, BackendSpec] = MappingProxyType(_BACKENDS)


def get_backend(name: str) -> type[Store]:
    """Return the store class of the backend ``name`` (importing it on first use)."""
    try:
        return _BACKENDS[name].load()
    except KeyError:
        raise UnknownFormatError(
            f"no backend named {name!r}; known backends: {sorted(_BACKENDS)}"
        ) from None


def split_protocol(url: str) -> tuple[str, str]:
    """Split ``"s3://bucket/key"`` into ``("s3", "bucket/key")``; local paths give ``"file"``."""
    url = os.fspath(url)
    if "://" in url:
        protocol, _, rest = url.partition("://")
        return protocol.lower(), rest
    return "file", url


def _strip(url: str) -> str:
    return url.rstrip("/")


def _extension_format(url: str) -> str | None:
    low = _strip(url).lower()
    if low.endswith(ZARR_EXTENSIONS):
        return "zarr"
    if low.endswith(HDF5_EXTENSIONS):
        return "hdf5"
    return None


def _sniff_local(path: str) -> tuple[str | None, list[str]]:
    tried = []
    if os.path.isdir(path):
        for marker in ("zarr.json", ".zgroup", ".zarray"):
            tried.append(f"{marker} in directory")
            if os.path.exists(os.path.join(path, marker)):
                return "zarr", tried
        return None, tried
    tried.append("HDF5 signature")
    with open(path, "rb") as fh:
        # The HDF5 signature sits at 0 or after a user block of 512 * 2**k bytes.
        offset = 0
        while True:
            fh.seek(offset)
            head = fh.read(8)
            if len(head) < 8:
                break
            if head == HDF5_MAGIC:
                return "hdf5", tried
            offset = 512 if offset == 0 else offset * 2
            if offset > 1 << 30:
                break
    return None, tried


def _sniff_remote(
    url: str, storage_options: Mapping[str, Any] | None
) -> tuple[str | None, list[str]]:
    import fsspec

    # one quick request first: a missing s3fs, an unreachable endpoint or a missing bucket is
    # reported at once, not after botocore's retries on each of the lookups below
    if not probe_url(url, storage_options):
        raise StoreNotFoundError(f"{url} does not exist (nothing found at that URL)")
    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    tried = []
    for marker in ("zarr.json", ".zgroup", ".zarray"):
        tried.append(f"{marker} under {url}")
        if fs.exists(f"{_strip(path)}/{marker}"):
            return "zarr", tried
    tried.append("HDF5 signature")
    if fs.isfile(path):
        with fs.open(path, "rb") as fh:
            if fh.read(8) == HDF5_MAGIC:
                return "hdf5", tried
    elif not fs.exists(path):
        raise StoreNotFoundError(f"{url} does not exist (checked with {type(fs).__name__})")
    return None, tried


def detect_backend(
    url: str,
    mode: Mode,
    *,
    format: str | None = None,
    driver: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Return the backend name for ``url``.

    Raises
    ------
    UnknownFormatError
        If the format cannot be determined; the message lists what was tried.
    StoreNotFoundError
        If the input does not exist and the mode does not create it.
    """
    protocol, rest = split_protocol(url)
    is_family = driver == "family" or (protocol == "file" and "%" in os.path.basename(rest))
    if format is not None:
        fmt = format.lower()
        if fmt in ("h5", "hdf", "hdf5", "nwb"):
            fmt = "hdf5"
        if fmt not in ("hdf5", "zarr"):
            raise UnknownFormatError(f"format={format!r} is not one of 'hdf5', 'zarr'")
    else:
        fmt = None
    if protocol == "memory":
        if fmt == "hdf5":
            raise UnknownFormatError("memory:// stores are Zarr; HDF5 needs a file")
        return "zarr"

    tried: list[str] = []
    if fmt is None:
        tried.append("format= argument (not given)")
        fmt = _extension_format(rest)
        tried.append(f"extension of {os.path.basename(_strip(rest))!r}")
        if fmt is None and is_family:
            fmt = "hdf5"
    if fmt is None:
        if protocol == "file":
            if os.path.exists(rest):
                found, sniffed = _sniff_local(rest)
                tried += sniffed
                fmt = found
            elif mode in ("r", "r+"):
                raise StoreNotFoundError(f"{url} does not exist")
        else:
            if mode in ("r", "r+"):
                found, sniffed = _sniff_remote(url, storage_options)
                tried += sniffed
                fmt = found
    if fmt is None:
        raise UnknownFormatError(
            f"cannot tell whether {url} is HDF5 or Zarr; tried: {', '.join(tried)}. "
            "Pass format='hdf5' or format='zarr'."
        )
    if fmt == "zarr":
        return "zarr"
    if is_family:
        return "hdf5-family"
    if protocol != "file":
        return "hdf5-remote"
    return "hdf5"
