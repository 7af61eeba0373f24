"""The NWB face: configure, write and read NWB files on any store.

:func:`get_default_backend_configuration` gives an editable, printable configuration of every
dataset of an in-memory ``pynwb.NWBFile`` (NeuroConv's workflow, without NeuroConv) and
:func:`configure_backend` applies it. :func:`write` writes HDF5 (local, family, S3 through a
local temporary) and Zarr (local, S3 straight through nwbstore's object-storage write path);
:func:`read` opens either as a lazy ``NWBFile``. They reuse pynwb (``NWBHDF5IO``) and
hdmf-zarr (``NWBZarrIO``) for building and mapping; nwbstore owns the storage underneath
(requests, parallelism, storage options).
"""

from __future__ import annotations

from nwbstore.nwb.configuration import (
    BackendConfiguration,
    DatasetIOConfiguration,
    configure_backend,
    get_default_backend_configuration,
)
from nwbstore.nwb.read import read
from nwbstore.nwb.write import write

__all__ = [
    "BackendConfiguration",
    "DatasetIOConfiguration",
    "configure_backend",
    "get_default_backend_configuration",
    "read",
    "write",
]
