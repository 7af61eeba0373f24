"""The exception tree of nwbstore.

Every error nwbstore raises derives from :class:`NwbStoreError` and also from the built-in
exception a user would already catch (``KeyError``, ``FileNotFoundError``, ``ValueError``, ...),
so existing ``except`` clauses keep working.
"""

from __future__ import annotations

__all__ = [
    "ContainsNodeError",
    "CorruptChunkError",
    "IncompleteStoreError",
    "LinkTargetConflictError",
    "MissingDependencyError",
    "NodeNotFoundError",
    "NwbStoreError",
    "NwbStoreWarning",
    "PickleRefusedError",
    "ReadOnlyError",
    "SettingsError",
    "StoreExistsError",
    "StoreNotFoundError",
    "UnknownFormatError",
    "UnsupportedCodecError",
    "UnsupportedDtypeError",
    "UnsupportedOperationError",
]


class NwbStoreError(Exception):
    """Root of every error raised by nwbstore."""


class NwbStoreWarning(UserWarning):
    """Root of every warning emitted by nwbstore."""


class StoreNotFoundError(NwbStoreError, FileNotFoundError):
    """The file, directory, bucket or object named by a URL does not exist."""


class StoreExistsError(NwbStoreError, FileExistsError):
    """The destination exists and the mode does not allow replacing it."""


class UnknownFormatError(NwbStoreError, ValueError):
    """The input is neither HDF5 nor Zarr (or the format could not be determined)."""


class NodeNotFoundError(NwbStoreError, KeyError, FileNotFoundError):
    """A group, dataset or link named by a path does not exist in a store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ContainsNodeError(NwbStoreError, ValueError, FileExistsError):
    """A node already exists where a new one was to be created."""


class ReadOnlyError(NwbStoreError, PermissionError):
    """A write was attempted on a store opened read-only (or without write permission)."""


class SettingsError(NwbStoreError, ValueError):
    """Dataset settings (chunks, shards, codecs, buffer) break a rule."""


class UnsupportedCodecError(SettingsError):
    """A filter or codec has no counterpart on the target backend."""


class UnsupportedDtypeError(NwbStoreError, TypeError):
    """A data type cannot be stored by the target backend."""


class MissingDependencyError(NwbStoreError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class PickleRefusedError(NwbStoreError, ValueError):
    """Input carries a Pickle codec; nwbstore never executes pickled data unless asked to."""


class CorruptChunkError(NwbStoreError, OSError):
    """A stored chunk could not be read or decoded."""


class IncompleteStoreError(NwbStoreError, OSError):
    """A store is marked incomplete: a write or conversion into it did not finish."""


class LinkTargetConflictError(NwbStoreError, FileExistsError):
    """Something that is not nwbstore's conversion of an external link's target sits where
    that conversion would go; nwbstore never overwrites it."""


class UnsupportedOperationError(NwbStoreError, NotImplementedError):
    """The backend does not offer this operation (see ``Store.capabilities``)."""
