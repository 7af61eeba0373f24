"""Undo an HDF5 filter pipeline on one stored chunk, without HDF5.

:func:`pipeline_decoder` turns a dataset's filters (:class:`FilterStage`, write order) into a
function ``bytes -> bytes`` that runs them in reverse, skipping the filters whose bit is set
in the chunk's filter mask. Each filter id has one entry in :data:`DECODERS`; a filter with
no exact decoder here (or whose decoder's package is missing) makes
:func:`pipeline_decoder` return None, and the caller reads that dataset through HDF5.

The decoders release the GIL where their library does (zlib, bz2, numcodecs Blosc/Zstd,
imagecodecs), so chunks decode in parallel threads.
"""

from __future__ import annotations

import bz2
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nwbstore.backends._chunk_index import FilterStage

__all__ = ["DECODERS", "Decoder", "FletcherMismatch", "pipeline_decoder", "unsupported_filter"]

#: ``decode(data) -> bytes`` for one filter stage.
Decoder = Callable[[bytes], bytes]
#: ``factory(cd_values, itemsize, chunk_nbytes) -> Decoder``, or None if it cannot decode
#: these options exactly (or its package is not installed).
Factory = Callable[[tuple[int, ...], int, int], Decoder | None]


class FletcherMismatch(ValueError):
    """A chunk's Fletcher-32 checksum does not match its bytes."""


def _deflate(cd: tuple[int, ...], itemsize: int, nbytes: int) -> Decoder:
    return lambda data: zlib.decompress(data)


def _unshuffle(cd: tuple[int, ...], itemsize: int, nbytes: int) -> Decoder:
    size = int(cd[0]) if cd else itemsize

    def decode(data: bytes) -> bytes:
        if size <= 1:
            return bytes(data)
        n = len(data) // size
        body = np.frombuffer(data, dtype=np.uint8, count=n * size)
        # HDF5 leaves the len % size trailing bytes as they are
        return body.reshape(size, n).T.tobytes() + bytes(data[n * size :])

    return decode


def _fletcher32(cd: tuple[int, ...], itemsize: int, nbytes: int) -> Decoder:
    from numcodecs import Fletcher32

    codec = Fletcher32()

    def decode(data: bytes) -> bytes:
        try:
            return bytes(codec.decode(data))
        except RuntimeError as err:  # numcodecs: "fletcher32 checksum failed"
            raise FletcherMismatch(str(err)) from None

    return decode


def _bzip2(cd: tuple[int, ...], itemsize: int, nbytes: int) -> Decoder:
    return lambda data: bz2.decompress(data)


def _blosc(cd: tuple[int, ...], itemsize: int, nbytes: int) -> Decoder:
    from numcodecs import blosc

    return lambda data: bytes(blosc.decompress(data))


def _zstd(cd: tuple[int, ...], itemsize: int, nbytes: int) -> Decoder:
    from numcodecs import Zstd

    codec = Zstd()
    return lambda data: bytes(codec.decode(data))


def _lz4(cd: tuple[int, ...], itemsize: int, nbytes: int) -> Decoder | None:
    try:
        import imagecodecs
    except ImportError:
        return None
    return lambda data: bytes(imagecodecs.lz4h5_decode(data))


def _lzf(cd: tuple[int, ...], itemsize: int, nbytes: int) -> Decoder | None:
    try:
        import imagecodecs
    except ImportError:
        return None
    # cd_values[2] is the chunk's byte size (h5py's lzf filter); the data holds no header
    size = int(cd[2]) if len(cd) > 2 and cd[2] else nbytes
    return lambda data: bytes(imagecodecs.lzf_decode(data, header=False, out=size))


def _bitshuffle(cd: tuple[int, ...], itemsize: int, nbytes: int) -> Decoder | None:
    """HDF5 Bitshuffle (32008): cd = [version, version, elemsize, block, comp(, level)]."""
    try:
        import imagecodecs
    except ImportError:
        return None
    es = int(cd[2]) if len(cd) > 2 and cd[2] else itemsize
    comp = int(cd[4]) if len(cd) > 4 else 0
    if comp == 0:
        block = int(cd[3]) if len(cd) > 3 else 0
        return lambda data: bytes(imagecodecs.bitshuffle_decode(data, itemsize=es, blocksize=block))
    if comp == 2:
        decompress: Callable[[bytes, int], bytes] = lambda d, n: bytes(  # noqa: E731
            imagecodecs.lz4_decode(d, header=False, out=n)
        )
    elif comp == 3:
        decompress = lambda d, n: bytes(imagecodecs.zstd_decode(d, out=n))  # noqa: E731
    else:
        return None

    def decode(data: bytes) -> bytes:
        # 8-byte BE uncompressed size, 4-byte BE block size in bytes, then per block a
        # 4-byte BE compressed size and the compressed bit-shuffled block; the size % 8
        # trailing elements follow raw
        total = int.from_bytes(data[:8], "big")
        block = int.from_bytes(data[8:12], "big") // es
        size = total // es
        remaining = size - size % 8
        pos = 12
        parts = []
        while remaining > 0:
            this = min(block, remaining)
            csize = int.from_bytes(data[pos : pos + 4], "big")
            pos += 4
            parts.append(decompress(data[pos : pos + csize], this * es))
            pos += csize
            remaining -= this
        parts.append(bytes(data[pos : pos + (size % 8) * es]))
        shuffled = b"".join(parts)
        return bytes(imagecodecs.bitshuffle_decode(shuffled, itemsize=es, blocksize=block))

    return decode


#: One decoder factory per HDF5 filter id that nwbstore decodes byte-exactly.
DECODERS: dict[int, Factory] = {
    1: _deflate,
    2: _unshuffle,
    3: _fletcher32,
    307: _bzip2,
    32000: _lzf,
    32001: _blosc,
    32004: _lz4,
    32008: _bitshuffle,
    32015: _zstd,
}


def unsupported_filter(
    filters: Sequence[FilterStage], itemsize: int, nbytes: int
) -> FilterStage | None:
    """The first filter of ``filters`` with no exact decoder here, or None."""
    for stage in filters:
        factory = DECODERS.get(stage.id)
        if factory is None or factory(stage.cd_values, itemsize, nbytes) is None:
            return stage
    return None


def pipeline_decoder(
    filters: Sequence[FilterStage], itemsize: int, nbytes: int
) -> Callable[[Any, int], bytes] | None:
    """``decode(data, filter_mask) -> bytes`` for the pipeline, or None if a filter has no
    exact decoder (see :func:`unsupported_filter`).

    Parameters
    ----------
    filters
        The pipeline in write order.
    itemsize
        The dtype's item size (shuffle's default element size).
    nbytes
        Bytes of one decoded chunk.
    """
    stages: list[Decoder] = []
    for stage in filters:
        factory = DECODERS.get(stage.id)
        decoder = None if factory is None else factory(stage.cd_values, itemsize, nbytes)
        if decoder is None:
            return None
        stages.append(decoder)

    def decode(data: Any, mask: int) -> bytes:
        out = bytes(data)
        for i in range(len(stages) - 1, -1, -1):
            if not mask >> i & 1:
                out = stages[i](out)
        return out

    return decode
