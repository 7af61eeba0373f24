"""The NWB face of nwbstore: backend configuration of in-memory ``pynwb.NWBFile`` objects.

:func:`get_default_backend_configuration` gives an editable, printable configuration of every
dataset (NeuroConv's workflow, without NeuroConv); :func:`configure_backend` applies it.
"""

from __future__ import annotations

from nwbstore.nwb.configuration import (
    BackendConfiguration,
    DatasetIOConfiguration,
    configure_backend,
    get_default_backend_configuration,
)

__all__ = [
    "BackendConfiguration",
    "DatasetIOConfiguration",
    "configure_backend",
    "get_default_backend_configuration",
]
