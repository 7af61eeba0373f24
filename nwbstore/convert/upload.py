"""HDF5 destinations on object storage: written to a local temporary file, then uploaded.

HDF5 cannot be written in place on S3 (it seeks and rewrites). ``convert(..., "s3://b/x.nwb")``
writes the file under :func:`tempfile.gettempdir` (set ``TMPDIR`` to choose the folder; it
needs room for the whole file), then uploads it with s3fs ``put_file``: a file of more than
two parts goes as a multipart upload of :data:`PART_BYTES` parts, ``concurrency`` at a time,
so the key appears only when the last part is in (a failed upload is aborted and leaves no
key). The temporary file is deleted once the upload succeeded.

The temporary's name is derived from the destination URL, so an interrupted conversion is
continued by ``resume=True`` like a local ``.partial``; a finished file whose upload failed
is kept (the error names it) and uploaded by the next ``resume=True``.
"""

from __future__ import annotations

import hashlib
import math
import os
import posixpath
import tempfile
from collections.abc import Mapping
from typing import Any

from nwbstore.backends.registry import split_protocol
from nwbstore.errors import AccessDeniedError, IncompleteStoreError, NwbStoreError, StoreExistsError

__all__ = ["DEFAULT_CONCURRENCY", "PART_BYTES", "local_temporary", "upload_file"]

#: Size of one part of a multipart upload (S3 needs at least 5 MiB for all but the last).
#: s3fs reads a file below two parts whole and holds ``concurrency`` parts in flight, so an
#: upload holds at most ``max(2, concurrency) * PART_BYTES`` in memory (128 MiB by default).
PART_BYTES = 16 * 2**20

#: Parts uploaded at a time when the caller gives no ``concurrency``.
DEFAULT_CONCURRENCY = 8


def local_temporary(url: str) -> str:
    """The local file an HDF5 destination ``url`` on object storage is written to first.

    One name per destination URL (in ``TMPDIR``), so ``resume=True`` finds it again.
    """
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    name = posixpath.basename(split_protocol(url)[1].rstrip("/")) or "store"
    return os.path.join(tempfile.gettempdir(), f"nwbstore-{digest}-{name}.partial")


def upload_file(
    local: str,
    url: str,
    storage_options: Mapping[str, Any],
    *,
    concurrency: int | None = None,
    overwrite: bool = False,
) -> str:
    """Upload the finished file ``local`` to ``url``, delete ``local``, say what was done.

    Raises
    ------
    AccessDeniedError, StoreExistsError, IncompleteStoreError
        The upload was refused (credentials), something appeared at ``url`` meanwhile, or
        it failed otherwise; no key was created and ``local`` is kept (the message names it).
    """
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **dict(storage_options))
    size = os.path.getsize(local)
    parallel = concurrency or DEFAULT_CONCURRENCY
    # s3fs sends one PUT below two parts; "create" refuses to replace a key that appeared
    kwargs: dict[str, Any] = {"chunksize": PART_BYTES, "max_concurrency": parallel}
    if not overwrite and split_protocol(url)[0] in ("s3", "s3a"):
        kwargs["mode"] = "create"
    try:
        fs.put_file(local, path, **kwargs)
    except Exception as err:
        kind: type[NwbStoreError] = (
            AccessDeniedError
            if isinstance(err, PermissionError)
            else StoreExistsError
            if isinstance(err, FileExistsError)
            else IncompleteStoreError
        )
        raise kind(
            f"uploading the converted file to {url} failed ({type(err).__name__}: {err}); no "
            f"object was created. The finished file is kept at {local}: run the conversion "
            "again with resume=True (--resume) to upload it, or upload it yourself"
        ) from err
    os.remove(local)
    if size < 2 * PART_BYTES:
        how = "in one PUT"
    else:
        parts = math.ceil(size / PART_BYTES)
        how = (
            f"as a multipart upload of {parts} parts of {PART_BYTES / 2**20:g} MiB, "
            f"{parallel} at a time"
        )
    return (
        f"HDF5 cannot be written in place on object storage: written to the local temporary "
        f"{local} ({size / 1e6:.2f} MB), uploaded {how}, temporary deleted"
    )
