"""The exception tree of nwbstore.

Every error nwbstore raises derives from :class:`NwbStoreError` and also from the built-in
exception a user would already catch (``KeyError``, ``FileNotFoundError``, ``ValueError``, ...),
so existing ``except`` clauses keep working.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "BucketNotFoundError",
    "CodecTranscodedWarning",
    "ContainsNodeError",
    "CorruptCatalogError",
    "CorruptChunkError",
    "CorruptStoreError",
    "CreateOutcomeUnknownError",
    "EndpointUnreachableError",
    "IncompleteStoreError",
    "LinkTargetConflictError",
    "MissingDependencyError",
    "NodeNotFoundError",
    "NwbStoreError",
    "NwbStoreWarning",
    "PickleRefusedError",
    "ReadOnlyError",
    "RemoteObjectChangedError",
    "RemoteRangeError",
    "RetriesExhaustedError",
    "SameSourceAndDestinationError",
    "SettingsError",
    "StoreExistsError",
    "StoreNotFoundError",
    "UnknownFormatError",
    "UnsupportedCodecError",
    "UnsupportedDtypeError",
    "UnsupportedOperationError",
    "WriteFailedError",
]


class NwbStoreError(Exception):
    """Root of every error raised by nwbstore."""


class NwbStoreWarning(UserWarning):
    """Root of every warning emitted by nwbstore."""


class StoreNotFoundError(NwbStoreError, FileNotFoundError):
    """The file, directory, bucket or object named by a URL does not exist."""


class BucketNotFoundError(StoreNotFoundError):
    """The object-storage bucket named by a URL does not exist at the endpoint."""


class EndpointUnreachableError(NwbStoreError, ConnectionError):
    """The object-storage endpoint could not be reached (connection refused, DNS, timeout)."""


class RetriesExhaustedError(EndpointUnreachableError):
    """An object-storage request kept failing with transient faults (503, 500, resets,
    timeouts) until the retry limits (attempts, seconds) ran out.

    Attributes
    ----------
    url
        The object (or store) the request was for.
    attempts
        Attempts made, the first included.
    elapsed
        Seconds from the first attempt to giving up.
    last_error
        The last failure, on one line, without credentials.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        attempts: int | None = None,
        elapsed: float | None = None,
        last_error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts
        self.elapsed = elapsed
        self.last_error = last_error


class CreateOutcomeUnknownError(NwbStoreError, FileExistsError):
    """A conditional create (``If-None-Match: *``) was refused with 412 on a retry, after an
    earlier attempt got no answer: the object exists, but it may be this writer's own
    (the lost attempt succeeded) or another writer's. Read it to tell.

    Attributes
    ----------
    url
        The object.
    attempts
        Attempts made, the first included.
    """

    def __init__(
        self, message: str, *, url: str | None = None, attempts: int | None = None
    ) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts


class AccessDeniedError(NwbStoreError, PermissionError):
    """The object store refused the request: access denied, invalid or missing credentials."""


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
    """A filter or codec has no counterpart on the target backend.

    The message names the Python option and the CLI flag that resolve it. Structured fields
    (``None`` when unknown) let callers format their own text.

    Attributes
    ----------
    dataset
        The dataset (or the place) whose settings failed.
    target
        ``"hdf5"`` or ``"zarr"``.
    default
        The pipeline the default transcode would write (see ``strict=``).
    """

    def __init__(
        self,
        message: str,
        *,
        dataset: str | None = None,
        target: str | None = None,
        default: str | None = None,
    ) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.target = target
        self.default = default


class CodecTranscodedWarning(NwbStoreWarning):
    """A conversion replaced codecs that have no counterpart on the destination.

    The message lists the datasets; ``ConversionReport.transcoded_codecs`` has the details.
    Pass ``strict=True`` (``--strict``) to get an error instead.
    """


class UnsupportedDtypeError(NwbStoreError, TypeError):
    """A data type cannot be stored by the target backend."""


class MissingDependencyError(NwbStoreError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class PickleRefusedError(NwbStoreError, ValueError):
    """Input carries a Pickle codec; nwbstore never executes pickled data unless asked to."""


class CorruptStoreError(NwbStoreError, OSError):
    """A store's metadata is damaged: HDF5 superblock or object headers, Zarr JSON documents."""


class CorruptChunkError(CorruptStoreError):
    """A stored chunk could not be read or decoded."""


class CorruptCatalogError(CorruptStoreError):
    """A metadata catalog file (``.nwbcat``) is damaged or of an unknown format or version.

    Raised for a catalog the caller named (``catalog=path``); a damaged cache entry or
    sidecar is only ignored (a debug log), since the file can be read without it.
    """


class IncompleteStoreError(NwbStoreError, OSError):
    """A store is marked incomplete: a write or conversion into it did not finish."""


class SameSourceAndDestinationError(NwbStoreError, ValueError):
    """A conversion's destination is its source, contains it or lies inside it."""


class LinkTargetConflictError(NwbStoreError, FileExistsError):
    """Something that is not nwbstore's conversion of an external link's target sits where
    that conversion would go; nwbstore never overwrites it."""


class UnsupportedOperationError(NwbStoreError, NotImplementedError):
    """The backend does not offer this operation (see ``Store.capabilities``)."""


class WriteFailedError(NwbStoreError, OSError):
    """Storing an object failed (after retries); the store was left incomplete.

    The message names the key and the store; write again, or resume a conversion.
    """


class RemoteObjectChangedError(NwbStoreError, OSError):
    """A remote object changed (its ETag differs) while a store had it open.

    Bytes of the new object are never mixed with metadata read from the old one: reopen the
    store to read the new version.

    Attributes
    ----------
    url
        The object.
    old_etag, new_etag
        The ETag seen when the store was opened, and the one the server reports now (``None``
        if the server did not say).
    """

    def __init__(self, url: str, old_etag: str | None, new_etag: str | None = None) -> None:
        self.url = url
        self.old_etag = old_etag
        self.new_etag = new_etag
        now = f"now {new_etag}" if new_etag else "it no longer matches"
        super().__init__(
            f"{url} changed while it was open (ETag {old_etag} at open, {now}): "
            "reopen the store to read the new version"
        )


class RemoteRangeError(NwbStoreError, OSError):
    """A server did not honour a byte-range request (it sent the whole object, or a body of
    the wrong length), so the bytes it sent cannot be trusted as the range asked for."""
