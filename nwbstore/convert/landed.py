"""Chunks an interrupted conversion already stored on object storage, so a resume skips them.

A process killed mid-conversion (SIGKILL) leaves chunks written after its last checkpoint.
Their bytes are on the server, whole: an S3 object appears only once its PUT completed. On
``resume=True`` the destination's keys are listed once (one LIST per 1,000 keys) and every
chunk copy or transcoded block whose destination chunk keys are all listed is skipped.

This relies on the resumed conversion writing what the interrupted one wrote (the same
source and options), as the resume of a recorded chunk prefix does. Local disk is not
listed: a file cut short by a kill looks like a whole one there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nwbstore.convert.locations import is_object_storage, list_keys
from nwbstore.nodes import Dataset

__all__ = ["ChunkFilter", "LandedChunks", "block_landed", "list_landed"]

#: ``(chunk grid index) -> True`` if that chunk of one destination dataset is stored already.
ChunkFilter = Callable[[tuple[int, ...]], bool]


@dataclass
class LandedChunks:
    """Keys found in a destination when a resume started (relative to the store's root).

    Attributes
    ----------
    keys
        The listed keys (metadata documents included; only chunk keys are asked about).
    """

    keys: set[str] = field(default_factory=set)

    def forget(self, path: str) -> None:
        """Drop the keys under the node at ``path`` (it was deleted to be written again)."""
        prefix = path.strip("/") + "/"
        self.keys = {k for k in self.keys if not k.startswith(prefix)}

    def chunk_filter(self, dst: Dataset) -> ChunkFilter | None:
        """Which chunks of ``dst`` are stored already; None when none can be (nothing to skip)."""
        array = getattr(dst, "zarr_array", None)  # chunk keys exist for Zarr datasets only
        if array is None or not self.keys or getattr(array, "shards", None) is not None:
            return None
        base = f"{array.path}/" if array.path else ""
        if not any(k.startswith(base) for k in self.keys):
            return None
        encode = array.metadata.encode_chunk_key
        keys = self.keys

        def landed(index: tuple[int, ...]) -> bool:
            return base + encode(index) in keys

        return landed


def block_landed(
    landed: ChunkFilter, chunks: tuple[int, ...], selection: tuple[slice, ...]
) -> bool:
    """True if every destination chunk that ``selection`` touches is stored already."""
    grid = [
        range(s.start // c, math.ceil(s.stop / c)) for s, c in zip(selection, chunks, strict=True)
    ]
    return all(landed(index) for index in itertools.product(*grid))


def list_landed(url: str, storage_options: Mapping[str, Any]) -> LandedChunks | None:
    """List the keys of the destination at ``url`` if it is on object storage, else None."""
    if not is_object_storage(url):
        return None
    return LandedChunks(list_keys(url, storage_options))
