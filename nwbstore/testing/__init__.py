"""Test kit shipped with nwbstore: the backend conformance suite and its storage bypasses.

A backend (in nwbstore or elsewhere) proves it implements the :class:`~nwbstore.Store`
contract by subclassing :class:`~nwbstore.testing.conformance.StoreConformance` in a pytest
module, as zarr's ``zarr.testing.store.StoreTests`` is used. The bypasses read what was stored
directly with h5py or zarr, never through nwbstore. pytest must be installed to use it.
"""

from __future__ import annotations

from nwbstore.testing.conformance import (
    Bypass,
    HDF5Bypass,
    StoreConformance,
    Target,
    ZarrBypass,
    write_reference_hdf5,
)

__all__ = [
    "Bypass",
    "HDF5Bypass",
    "StoreConformance",
    "Target",
    "ZarrBypass",
    "write_reference_hdf5",
]
