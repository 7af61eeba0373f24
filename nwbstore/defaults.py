"""Default dataset settings (chunks, buffer, compression, shards) and what can be written.

Rules (NeuroConv's backend configuration is the model):

- **Chunks** near ``chunk_mb`` (default 10 MiB). For ``(time, channels)`` data whole rows of
  channels are kept; for ``ndim >= 3`` the last two axes are a frame and whole frames are
  kept; the first axis (time) then grows to fill the target. An axis is split only when a
  single row/frame exceeds the target.
- **Buffer** (what a writer holds in memory at once) at most ``buffer_gb`` (default 1 GiB):
  the chunk grown to full length on the last axes first, then by whole chunks; on every axis
  that is not full length it is a multiple of the chunk.
- **Compression**: HDF5 gets ``zlib`` level 4 (HDF5's built-in "gzip" filter: every HDF5
  reader — MATLAB, HDFView, h5py without hdf5plugin — can read it). Zarr gets ``zstd``
  level 3 (in every numcodecs, a core codec of Zarr v3, much faster than zlib at a similar
  ratio).
- **Shards** (Zarr v3 only) when the dataset has more than :data:`SHARD_MIN_CHUNKS` chunks:
  the shard is the buffer shape (rounded up to whole chunks), so one buffer write is one
  object and a dataset is not thousands of tiny objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nwbstore.codecs import CODEC_TABLE, row_by_name
from nwbstore.errors import SettingsError
from nwbstore.settings import DatasetSettings

__all__ = [
    "SHARD_MIN_CHUNKS",
    "DatasetConfiguration",
    "available_compressions",
    "check_buffer_shape",
    "default_settings",
    "human_bytes",
]

MiB = 1 << 20
GiB = 1 << 30
#: Zarr v3 arrays with more chunks than this are sharded by default.
SHARD_MIN_CHUNKS = 64
DEFAULT_COMPRESSION = {"hdf5": ("zlib", 4), "zarr": ("zstd", 3)}

Backend = Literal["hdf5", "zarr"]


def human_bytes(n: float) -> str:
    """``1536 -> '1.50 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def _itemsize(dtype: Any) -> int:
    dt = np.dtype(dtype)
    return max(int(dt.itemsize), 1) if dt.kind not in "OT" else 8  # vlen: one pointer


def check_buffer_shape(
    buffer_shape: tuple[int, ...], chunk_shape: tuple[int, ...] | None, shape: tuple[int, ...]
) -> None:
    """Check a buffer shape against the chunk shape and the full shape.

    Raises
    ------
    SettingsError
        Rank mismatch, a non-positive axis, an axis longer than the data, or an axis that is
        neither full length nor a multiple of the chunk (the message names the axis and the
        remainder).
    """
    if len(buffer_shape) != len(shape):
        raise SettingsError(
            f"buffer_shape={buffer_shape} has {len(buffer_shape)} axes but the shape {shape} "
            f"has {len(shape)}"
        )
    for axis, (b, s) in enumerate(zip(buffer_shape, shape, strict=True)):
        if b <= 0 and s > 0:
            raise SettingsError(f"buffer_shape={buffer_shape}: axis {axis} is {b}; must be > 0")
        if b > max(s, 1):
            raise SettingsError(
                f"buffer_shape={buffer_shape}: axis {axis} is {b}, longer than the data ({s}) "
                f"by {b - s}"
            )
        if chunk_shape is not None and b != s and b % chunk_shape[axis]:
            c = chunk_shape[axis]
            raise SettingsError(
                f"buffer_shape={buffer_shape}: axis {axis} buffer {b} is not a multiple of "
                f"chunk {c} (off by {b % c}; use {b - b % c or c} or {b + c - b % c}); a buffer "
                "must hold whole chunks on every axis that is not full length"
            )


@dataclass(frozen=True)
class DatasetConfiguration:
    """Settings plus buffer shape for one dataset: what :func:`default_settings` returns.

    Parameters
    ----------
    shape, dtype
        The full dataset.
    backend
        ``"hdf5"`` or ``"zarr"``.
    settings
        The :class:`~nwbstore.DatasetSettings` to create the dataset with.
    buffer_shape
        How much a writer holds in memory at once (checked by :func:`check_buffer_shape`).
    path
        Dataset location, for display.
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    backend: Backend
    settings: DatasetSettings
    buffer_shape: tuple[int, ...]
    path: str = ""

    def __post_init__(self) -> None:
        check_buffer_shape(self.buffer_shape, self.settings.chunks, self.shape)

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """Shortcut for ``settings.chunks``."""
        return self.settings.chunks

    def __str__(self) -> str:
        from nwbstore.describe import describe_dataset

        return describe_dataset(
            self.path or "<dataset>", self.shape, self.dtype, self.settings, self.buffer_shape
        )


def _chunk_shape(shape: tuple[int, ...], itemsize: int, target: int) -> tuple[int, ...]:
    n = len(shape)
    dims = [max(s, 1) for s in shape]
    n_inner = 1 if n == 2 else (2 if n >= 3 else n)
    chunk = [1] * (n - n_inner) + dims[n - n_inner :]
    # split the row/frame only when it alone exceeds the target
    if n_inner == 1 and chunk[-1] * itemsize > target:
        chunk[-1] = max(1, target // itemsize)
    while math.prod(chunk) * itemsize > target and max(chunk) > 1:
        axis = max(range(n), key=lambda a: chunk[a])
        chunk[axis] = math.ceil(chunk[axis] / 2)
    # grow the leading axes, last first, to fill the target
    for axis in reversed(range(n - n_inner)):
        per = math.prod(chunk) // chunk[axis] * itemsize
        chunk[axis] = max(1, min(dims[axis], target // per))
        if chunk[axis] < dims[axis]:
            break
    return tuple(chunk)


def _buffer_shape(
    shape: tuple[int, ...], chunk: tuple[int, ...], itemsize: int, budget: int
) -> tuple[int, ...]:
    dims = [max(s, 1) for s in shape]
    buf = list(chunk)
    for axis in reversed(range(len(shape))):
        rest = math.prod(buf) // buf[axis] * itemsize
        if dims[axis] * rest <= budget:
            buf[axis] = dims[axis]
            continue
        buf[axis] = max(chunk[axis], budget // rest // chunk[axis] * chunk[axis])
        break
    return tuple(min(b, s) if s else b for b, s in zip(buf, shape, strict=True))


def default_settings(
    shape: tuple[int, ...],
    dtype: Any,
    backend: Backend = "hdf5",
    *,
    chunk_mb: float = 10.0,
    buffer_gb: float = 1.0,
    zarr_format: int = 3,
) -> DatasetConfiguration:
    """Suggest chunks, buffer, compression and (Zarr v3) shards for a dataset.

    Parameters
    ----------
    shape, dtype
        The full dataset.
    backend
        ``"hdf5"`` or ``"zarr"``.
    chunk_mb
        Target chunk size in MiB.
    buffer_gb
        Largest buffer in GiB.
    zarr_format
        2 or 3; shards only for 3.

    Returns
    -------
    DatasetConfiguration
        ``.settings`` (a :class:`~nwbstore.DatasetSettings`) and ``.buffer_shape``; see the
        module docstring for the rules.
    """
    if backend not in ("hdf5", "zarr"):
        raise SettingsError(f"backend={backend!r}: must be 'hdf5' or 'zarr'")
    if not chunk_mb > 0:
        raise SettingsError(f"chunk_mb={chunk_mb!r}: must be positive")
    if not buffer_gb > 0:
        raise SettingsError(f"buffer_gb={buffer_gb!r}: must be positive")
    if chunk_mb * MiB > buffer_gb * GiB:
        raise SettingsError(f"chunk_mb={chunk_mb} exceeds buffer_gb={buffer_gb}")
    shape = tuple(int(s) for s in shape)
    dt = np.dtype(dtype)
    if not shape:  # scalar: contiguous, nothing to compress
        return DatasetConfiguration((), dt, backend, DatasetSettings(), ())
    itemsize = _itemsize(dt)
    chunk = _chunk_shape(shape, itemsize, max(int(chunk_mb * MiB), itemsize))
    buffer = _buffer_shape(shape, chunk, itemsize, int(buffer_gb * GiB))
    name, level = DEFAULT_COMPRESSION[backend]
    maxshape = tuple(None if s == 0 else s for s in shape) if 0 in shape else None
    shards = None
    n_chunks = math.prod(math.ceil(max(s, 1) / c) for s, c in zip(shape, chunk, strict=True))
    if backend == "zarr" and zarr_format == 3 and n_chunks > SHARD_MIN_CHUNKS:
        shards = tuple(math.ceil(b / c) * c for b, c in zip(buffer, chunk, strict=True))
    settings = DatasetSettings(
        chunks=chunk,
        shards=shards,
        compression=name,
        compression_opts=level,
        maxshape=maxshape,
    )
    return DatasetConfiguration(shape, dt, backend, settings, buffer)


def available_compressions(backend: Backend) -> list[str]:
    """Compression codecs this installation can write on ``backend`` (table names).

    For HDF5 a filter counts when HDF5 has it registered (built in, or from hdf5plugin);
    for Zarr when numcodecs can build the codec.
    """
    if backend not in ("hdf5", "zarr"):
        raise SettingsError(f"backend={backend!r}: must be 'hdf5' or 'zarr'")
    out = []
    for row in CODEC_TABLE:
        if row.role != "compression":
            continue
        ok = (
            _hdf5_available(row.hdf5_id) if backend == "hdf5" else _numcodecs_available(row.zarr_v2)
        )
        if ok:
            out.append(row.name)
    return out


def _hdf5_available(filter_id: int | None) -> bool:
    import h5py
    import hdf5plugin  # noqa: F401  (registers plugin filters)

    return filter_id is not None and bool(h5py.h5z.filter_avail(filter_id))


def _numcodecs_available(codec_id: str | None) -> bool:
    import numcodecs

    if codec_id is None:
        return False
    try:
        numcodecs.get_codec({"id": codec_id})
    except (ValueError, TypeError, ImportError, KeyError):
        return False
    return True


assert all(row_by_name(n) for n, _ in DEFAULT_COMPRESSION.values())
