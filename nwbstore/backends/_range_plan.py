"""Plan byte-range requests for a set of stored chunks: coalesce near neighbours, cap sizes.

Pure functions, no I/O. A remote read fetches the chunks a selection touches; one request
per chunk costs a round trip each, one request for everything serialises a big read. The
plan merges chunks whose gap is at most :data:`MAX_GAP` bytes (the gap is fetched and thrown
away) and closes a request once it would exceed :data:`MAX_REQUEST` bytes, so a large read
still runs as several requests in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MAX_GAP",
    "MAX_REQUEST",
    "MIN_SPREAD_REQUEST",
    "RangeRequest",
    "plan_ranges",
    "spread_request_size",
]

#: Bytes between two chunks that are fetched anyway to save a request (64 KiB).
MAX_GAP = 64 * 2**10
#: Largest request the plan builds from several chunks (16 MiB). A single chunk larger than
#: this is one request of its own.
MAX_REQUEST = 16 * 2**20
#: Smallest request size :func:`spread_request_size` cuts a big read into (2 MiB): below it,
#: a request's round trip costs more than its transfer saves.
MIN_SPREAD_REQUEST = 2 * 2**20


@dataclass(frozen=True)
class RangeRequest:
    """One byte-range request: ``[start, end)`` of the object and the chunks it serves.

    Attributes
    ----------
    start, end
        Byte range of the request (``end`` exclusive).
    members
        Positions (in the caller's chunk list) of the chunks inside this range, in order.
    """

    start: int
    end: int
    members: tuple[int, ...]

    @property
    def size(self) -> int:
        """Bytes the request fetches."""
        return self.end - self.start


def plan_ranges(
    offsets: Sequence[int] | np.ndarray,
    sizes: Sequence[int] | np.ndarray,
    *,
    max_gap: int = MAX_GAP,
    max_request: int = MAX_REQUEST,
) -> list[RangeRequest]:
    """Group chunks ``(offset, size)`` into byte-range requests, sorted by offset.

    Parameters
    ----------
    offsets, sizes
        Byte offset and stored size of each wanted chunk (any order; empty chunks are
        allowed and served by the request they fall in, or one of their own).
    max_gap
        Largest gap between two consecutive chunks that still joins them in one request.
    max_request
        Largest size of a request holding more than one chunk.

    Returns
    -------
    list of RangeRequest
        Requests in ascending offset order; every chunk is in exactly one request. Chunks that
        overlap or repeat (the same chunk asked twice) share a request.

    Raises
    ------
    ValueError
        If the lengths differ, or an offset or size is negative.
    """
    off = np.asarray(offsets, dtype=np.int64).reshape(-1)
    size = np.asarray(sizes, dtype=np.int64).reshape(-1)
    if off.shape != size.shape:
        raise ValueError(f"offsets ({off.size}) and sizes ({size.size}) differ in length")
    if off.size and (off.min() < 0 or size.min() < 0):
        raise ValueError("chunk offsets and sizes must be non-negative")
    if max_gap < 0 or max_request < 1:
        raise ValueError(f"max_gap={max_gap} must be >= 0 and max_request={max_request} >= 1")
    order = np.argsort(off, kind="stable")
    plan: list[RangeRequest] = []
    start = end = -1
    members: list[int] = []
    for i in order.tolist():
        lo, hi = int(off[i]), int(off[i] + size[i])
        if members and lo - end <= max_gap and max(end, hi) - start <= max_request:
            members.append(i)
            end = max(end, hi)
            continue
        if members:
            plan.append(RangeRequest(start, end, tuple(members)))
        start, end, members = lo, hi, [i]
    if members:
        plan.append(RangeRequest(start, end, tuple(members)))
    return plan


def spread_request_size(
    total_bytes: int,
    concurrency: int,
    *,
    max_request: int = MAX_REQUEST,
    min_request: int = MIN_SPREAD_REQUEST,
) -> int:
    """The request cap that spreads a read of ``total_bytes`` over ``concurrency`` requests.

    One 16 MiB request of neighbouring chunks is one transfer at one connection's speed; cut
    into ``concurrency`` requests it runs in parallel and finishes sooner on any link whose
    per-connection bandwidth is the limit (S3, HTTPS). The cap is never below ``min_request``
    (small requests cost their round trip) nor above ``max_request``.

    Parameters
    ----------
    total_bytes
        Stored bytes of the chunks the read needs.
    concurrency
        Requests the reader keeps in flight.
    max_request, min_request
        Bounds of the returned cap.

    Returns
    -------
    int
        The ``max_request`` to pass to :func:`plan_ranges`.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r} must be a positive integer")
    share = -(-max(total_bytes, 0) // concurrency)  # ceiling division
    return max(min(share, max_request), min(min_request, max_request))
