"""The metadata catalog's value and file format: byte spans of one object, with its identity.

:class:`Catalog` holds the exact byte spans h5py read from one remote object, with the
object's URL, ETag and size; :class:`_Spans` keeps spans sorted and merged as they are
recorded. A catalog file (no pickle) is one line of JSON, then the spans' bytes concatenated
in order::

    {"format": "nwbstore-catalog", "version": 1, "url": ..., "etag": ..., "size": ...,
     "created": ..., "spans": [[offset, length], ...]}\\n<bytes of span 0><bytes of span 1>...

:meth:`Catalog.loads` checks every field and refuses a damaged or truncated file with
:class:`~nwbstore.errors.CorruptCatalogError`. How catalogs are recorded, cached and validated
is :mod:`nwbstore.backends._catalog`.
"""

from __future__ import annotations

import bisect
import json
import time
from dataclasses import dataclass, field
from typing import Any

from nwbstore.errors import CorruptCatalogError

__all__ = ["CATALOG_FORMAT", "CATALOG_VERSION", "Catalog"]

CATALOG_FORMAT = "nwbstore-catalog"
CATALOG_VERSION = 1
#: Longest header line accepted (a header lists every span: ~20 bytes each).
_MAX_HEADER = 64 * 2**20


# -- spans -------------------------------------------------------------------------------------


class _Spans:
    """Disjoint, sorted, non-adjacent byte spans ``(offset, bytes)`` of one object."""

    def __init__(self, spans: list[tuple[int, bytes]] | None = None) -> None:
        self._starts: list[int] = []
        self._data: list[bytes] = []
        for offset, data in sorted(spans or [], key=lambda s: s[0]):
            self.add(offset, data)

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def nbytes(self) -> int:
        return sum(len(d) for d in self._data)

    def items(self) -> list[tuple[int, bytes]]:
        return list(zip(self._starts, self._data, strict=True))

    def get(self, offset: int, size: int) -> bytes | None:
        """The ``size`` bytes at ``offset`` if one span holds all of them, else None."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0:
            return None
        start, data = self._starts[i], self._data[i]
        if offset + size > start + len(data):
            return None
        return data[offset - start : offset - start + size]

    def add(self, offset: int, data: bytes) -> None:
        """Record ``data`` at ``offset``, merging it with spans it overlaps or touches."""
        if not data:
            return
        end = offset + len(data)
        lo = bisect.bisect_left(self._starts, offset)
        if lo > 0 and self._starts[lo - 1] + len(self._data[lo - 1]) >= offset:
            lo -= 1
        hi = bisect.bisect_right(self._starts, end)
        if lo == hi:
            self._starts.insert(lo, offset)
            self._data.insert(lo, bytes(data))
            return
        first = min(offset, self._starts[lo])
        last = max(end, self._starts[hi - 1] + len(self._data[hi - 1]))
        merged = bytearray(last - first)
        for start, old in zip(self._starts[lo:hi], self._data[lo:hi], strict=True):
            merged[start - first : start - first + len(old)] = old
        merged[offset - first : end - first] = data
        self._starts[lo:hi] = [first]
        self._data[lo:hi] = [bytes(merged)]


# -- the catalog value and its file format ------------------------------------------------------


@dataclass
class Catalog:
    """The recorded byte spans of one remote object, with what identifies the object.

    Attributes
    ----------
    url
        The object's URL without credentials or query string.
    etag, size
        The object's ETag and size when the spans were read; the catalog is used only for an
        object with both equal.
    spans
        ``(offset, bytes)`` pairs, sorted, disjoint.
    created
        When the catalog was made (seconds since the epoch).
    validated
        When the ETag was last confirmed by the server (the cache file's modification time).
    """

    url: str
    etag: str
    size: int
    spans: list[tuple[int, bytes]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    validated: float = field(default_factory=time.time)

    @property
    def nbytes(self) -> int:
        """Bytes of metadata held."""
        return sum(len(d) for _, d in self.spans)

    def matches(self, etag: str | None, size: int | None) -> bool:
        """True if the catalog describes an object with this ETag and size."""
        return bool(etag) and etag == self.etag and (size is None or int(size) == self.size)

    def dumps(self) -> bytes:
        """The catalog file's bytes (JSON header line, then the span bytes)."""
        header = {
            "format": CATALOG_FORMAT,
            "version": CATALOG_VERSION,
            "url": self.url,
            "etag": self.etag,
            "size": self.size,
            "created": self.created,
            "spans": [[offset, len(data)] for offset, data in self.spans],
        }
        head = json.dumps(header, separators=(",", ":")).encode()
        return b"".join([head, b"\n", *(data for _, data in self.spans)])

    @classmethod
    def loads(cls, data: bytes, *, source: str = "catalog") -> Catalog:
        """Parse a catalog file's bytes.

        Raises
        ------
        CorruptCatalogError
            The header is not a catalog header of a supported version, or the span lengths
            do not add up to the bytes that follow it (a truncated or damaged file).
        """
        newline = data.find(b"\n", 0, _MAX_HEADER)
        if newline < 0:
            raise _damaged(source, "no header line")
        try:
            header = json.loads(data[:newline])
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _damaged(source, f"the header is not JSON ({err})") from None
        if not isinstance(header, dict) or header.get("format") != CATALOG_FORMAT:
            raise _damaged(source, f"the header does not say format {CATALOG_FORMAT!r}")
        if header.get("version") != CATALOG_VERSION:
            raise _damaged(
                source,
                f"version {header.get('version')!r} is not supported (this nwbstore reads "
                f"version {CATALOG_VERSION}; make it again with nwbstore index)",
            )
        url, etag, size = header.get("url"), header.get("etag"), header.get("size")
        raw_spans = header.get("spans")
        created = header.get("created", 0.0)
        if not (isinstance(url, str) and isinstance(etag, str) and etag):
            raise _damaged(source, "the header has no url or etag")
        if not _is_count(size) or not isinstance(size, int) or not isinstance(raw_spans, list):
            raise _damaged(source, "the header has no size or spans")
        if not isinstance(created, int | float):
            raise _damaged(source, "created is not a number")
        spans: list[tuple[int, bytes]] = []
        pos = newline + 1
        end = -1
        for item in raw_spans:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and _is_count(item[0])
                and _is_count(item[1])
                and item[1] > 0
            ):
                raise _damaged(source, f"span {item!r} is not [offset, length]")
            offset, length = item
            if offset <= end or offset + length > size:
                raise _damaged(source, f"span {item!r} overlaps another or ends past the object")
            spans.append((offset, data[pos : pos + length]))
            pos += length
            end = offset + length
        if pos != len(data):
            raise _damaged(
                source,
                f"the spans need {pos - newline - 1} bytes after the header and "
                f"{len(data) - newline - 1} are there (truncated or damaged)",
            )
        return cls(url, etag, size, spans, float(created), float(created))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _damaged(source: str, reason: str) -> CorruptCatalogError:
    return CorruptCatalogError(
        f"{source} is not a usable nwbstore catalog: {reason}. Delete it, or write it again "
        "with `nwbstore index URL`"
    )
