"""The xarray face of nwbstore: the ``nwbstore`` engine for ``xarray.open_dataset`` and
``xarray.open_datatree``, with NWB dims, coordinates and tables (see
docs/remote-and-xarray.md)."""

from nwbstore.xarray._array import CountArray, NwbstoreArray
from nwbstore.xarray._entrypoint import NwbstoreBackendEntrypoint
from nwbstore.xarray._schema import FRIENDLY_DIMS

__all__ = ["FRIENDLY_DIMS", "CountArray", "NwbstoreArray", "NwbstoreBackendEntrypoint"]
