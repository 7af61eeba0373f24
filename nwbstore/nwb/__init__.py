"""The NWB face: write an in-memory ``pynwb.NWBFile`` to any store, and read NWB files back.

:func:`write` writes HDF5 (local, family, S3 through a local temporary) and Zarr (local, S3
straight through nwbstore's object-storage write path); :func:`read` opens either as a lazy
``NWBFile``. Both reuse pynwb (``NWBHDF5IO``) and hdmf-zarr (``NWBZarrIO``) for building and
mapping; nwbstore owns the storage underneath (requests, parallelism, storage options).
"""

from __future__ import annotations

from nwbstore.nwb.read import read
from nwbstore.nwb.write import write

__all__ = ["read", "write"]
