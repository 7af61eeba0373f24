"""nwbstore: one storage interface over HDF5 and Zarr, local or in object storage.

Open anything with :func:`nwbstore.open`; configure datasets with
:class:`nwbstore.DatasetSettings`.
"""

from __future__ import annotations

from nwbstore import errors
from nwbstore.convert import ConversionReport, convert, truncate
from nwbstore.defaults import available_compressions, default_settings
from nwbstore.dtypes import reference_dtype, string_dtype
from nwbstore.errors import NwbStoreError
from nwbstore.links import ExternalLink, Reference, SoftLink
from nwbstore.settings import DatasetSettings
from nwbstore.store import Attributes, Capabilities, Dataset, Group, Store, open
from nwbstore.verify import VerifyReport, verify

__version__ = "0.1.0"

__all__ = [
    "Attributes",
    "Capabilities",
    "ConversionReport",
    "Dataset",
    "DatasetSettings",
    "ExternalLink",
    "Group",
    "NwbStoreError",
    "Reference",
    "SoftLink",
    "Store",
    "VerifyReport",
    "__version__",
    "available_compressions",
    "default_settings",
    "convert",
    "errors",
    "open",
    "reference_dtype",
    "string_dtype",
    "truncate",
    "verify",
]
