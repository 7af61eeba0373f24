"""Stored chunks on local disk: read a byte range, or copy it into a new file kernel-side.

``os.copy_file_range`` moves the bytes inside the kernel (no trip through Python buffers);
where the kernel or file system refuses it, ``os.pread`` plus a write does the same job.
"""

from __future__ import annotations

import os

from nwbstore.errors import CorruptChunkError
from nwbstore.nodes import ChunkLocation

__all__ = ["copy_to_file", "read_location"]

_COPY_FILE_RANGE = hasattr(os, "copy_file_range")


def read_location(location: ChunkLocation) -> bytes:
    """Read the bytes ``location`` names (short reads are an error: the file was cut)."""
    fd = os.open(location.path, os.O_RDONLY)
    try:
        data = os.pread(fd, location.size, location.offset)
    finally:
        os.close(fd)
    if len(data) != location.size:
        raise CorruptChunkError(
            f"{location.path} ends before byte {location.offset + location.size} "
            f"(read {len(data)} of {location.size} bytes at offset {location.offset})"
        )
    return data


def copy_to_file(location: ChunkLocation, dst_path: str) -> None:
    """Write the bytes ``location`` names as the whole content of ``dst_path``.

    The parent folder is created when missing. An existing file is replaced.
    """
    try:
        out = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(dst_path), exist_ok=True)
        out = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        src = os.open(location.path, os.O_RDONLY)
        try:
            _copy_range(src, out, location)
        finally:
            os.close(src)
    finally:
        os.close(out)


def _copy_range(src: int, out: int, location: ChunkLocation) -> None:
    offset, left = location.offset, location.size
    if _COPY_FILE_RANGE:
        try:
            while left > 0:
                done = os.copy_file_range(src, out, left, offset)
                if done == 0:
                    break
                offset += done
                left -= done
        except OSError:
            pass  # e.g. EXDEV/ENOSYS on some kernels and file systems: copy by hand below
    while left > 0:
        data = os.pread(src, min(left, 16 * 2**20), offset)
        if not data:
            break
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
        offset += len(data)
        left -= len(data)
    if left:
        raise CorruptChunkError(
            f"{location.path} ends before byte {location.offset + location.size}: "
            f"{left} of {location.size} bytes missing"
        )
