"""Damaged stores: what zarr-python and h5py raise on broken metadata or chunks, as one error.

The backends call these helpers where they open a node or decode values, so a bit-flipped
HDF5 object header, a ``zarr.json`` that is not JSON or a chunk that does not decompress
becomes a :class:`~nwbstore.errors.CorruptStoreError` (or
:class:`~nwbstore.errors.CorruptChunkError`) naming the store and the node, never a
``JSONDecodeError`` or ``zlib.error`` traceback.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

from nwbstore.errors import (
    CorruptChunkError,
    CorruptStoreError,
    NwbStoreError,
    UnsupportedDtypeError,
)

__all__ = [
    "DECODE_ERRORS",
    "check_zarr_document",
    "corrupt_hdf5",
    "decode_error",
    "read_zarr_documents",
    "zarr_node_error",
]

#: What codecs raise on bytes they cannot decode (numcodecs' Blosc/Zstd raise RuntimeError,
#: gzip raises ``BadGzipFile``, an ``OSError``).
DECODE_ERRORS: tuple[type[BaseException], ...] = (zlib.error, OSError, RuntimeError, EOFError)

#: ``OSError`` subclasses that say the storage could not be reached, not that bytes are bad.
_NOT_DAMAGE = (ConnectionError, TimeoutError, PermissionError, FileNotFoundError)

_REPAIR_HINT = "copy it again from its origin (or convert from another copy)"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def decode_error(where: str, err: BaseException) -> BaseException:
    """The error for values of ``where`` that could not be decoded (or ``err`` itself).

    Network and permission errors pass through unchanged: they are not damage.
    """
    if isinstance(err, (NwbStoreError, *_NOT_DAMAGE)):
        return err
    return CorruptChunkError(
        f"cannot decode the stored data of {where} ({type(err).__name__}: {_one_line(err)}): "
        f"a chunk is damaged; {_REPAIR_HINT}"
    )


def corrupt_hdf5(where: str, err: BaseException) -> CorruptStoreError:
    """The error for HDF5 metadata (superblock, object header) that h5py cannot read."""
    return CorruptStoreError(
        f"cannot read {where}: its HDF5 metadata is damaged ({_one_line(err)}); {_REPAIR_HINT}"
    )


def check_zarr_document(where: str, key: str, raw: bytes | None) -> dict[str, Any] | None:
    """Parse the metadata document ``key`` of ``where``; raise if it is damaged.

    Returns the document, or ``None`` if there is none.

    Raises
    ------
    CorruptStoreError
        The document is not JSON, not a JSON object, or its ``node_type`` (Zarr v3) is
        neither ``"group"`` nor ``"array"``.
    """
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptStoreError(
            f"{key} of {where} is not valid JSON ({_one_line(err)}): the store is damaged; "
            f"{_REPAIR_HINT}"
        ) from None
    if not isinstance(doc, dict):
        raise CorruptStoreError(
            f"{key} of {where} holds a JSON {type(doc).__name__}, not an object: the store is "
            f"damaged; {_REPAIR_HINT}"
        )
    if key == "zarr.json" and doc.get("node_type") not in ("group", "array"):
        raise CorruptStoreError(
            f"{key} of {where} has node_type={doc.get('node_type')!r}, not 'group' or "
            f"'array': the store is damaged; {_REPAIR_HINT}"
        )
    return doc


def zarr_node_error(
    where: str, err: BaseException, read_documents: Callable[[], list[tuple[str, bytes]]]
) -> NwbStoreError:
    """The error for a Zarr node that zarr-python could not open.

    ``read_documents`` returns the node's metadata documents (key, raw bytes), read past
    zarr's parser. A data type zarr does not know stays an
    :class:`~nwbstore.errors.UnsupportedDtypeError`; broken JSON, a wrong ``node_type`` and
    fields of the wrong type or missing are damage.
    """
    if isinstance(err, NwbStoreError):
        return err
    documents = read_documents()
    for key, raw in documents:
        try:
            check_zarr_document(where, key, raw)
        except CorruptStoreError as damage:  # returned, not raised: a listing keeps going
            return damage
    text = _one_line(err)
    if "data type" in text.lower():
        return UnsupportedDtypeError(f"zarr cannot open {where}: {text}")
    key = documents[0][0] if documents else "zarr.json"
    return CorruptStoreError(
        f"the metadata of {where} ({key}) is damaged: {type(err).__name__}: {text}; {_REPAIR_HINT}"
    )


def read_zarr_documents(store: Any, key_prefix: str) -> list[tuple[str, bytes]]:
    """The metadata documents of the Zarr node at ``key_prefix`` (zarr store), raw."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    found = []
    for name in ("zarr.json", ".zarray", ".zgroup", ".zattrs"):
        key = f"{key_prefix}/{name}".lstrip("/")
        buf = sync(store.get(key, prototype=default_buffer_prototype()))
        if buf is not None:
            found.append((name, bytes(buf.to_bytes())))
    return found
