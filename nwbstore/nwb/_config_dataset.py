"""One dataset's configuration: fixed facts about the data, validated editable choices."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from nwbstore.codecs import row_by_name
from nwbstore.defaults import SHARD_MIN_CHUNKS, available_compressions
from nwbstore.dtypes import is_string_dtype
from nwbstore.errors import SettingsError, UnsupportedCodecError
from nwbstore.nwb._config_format import dataset_block
from nwbstore.nwb._config_sources import SourceKind
from nwbstore.settings import DatasetSettings

__all__ = ["Backend", "DatasetIOConfiguration", "Shape", "fields_of"]

Backend = Literal["hdf5", "zarr"]
Shape = tuple[int, ...]

_FIXED = (
    "object_id",
    "location_in_file",
    "dataset_name",
    "dtype",
    "full_shape",
    "backend",
    "zarr_format",
    "maxshape",
    "fill_value",
    "source_kind",
)
_EDITABLE = (
    "chunk_shape",
    "buffer_shape",
    "shard_shape",
    "compression_method",
    "compression_options",
    "filter_methods",
    "filter_options",
)
#: option names NeuroConv users pass (hdf5plugin's) -> nwbstore's, per codec
_OPTION_ALIASES = {"clevel": "level"}
_LEVEL_CODECS = ("zstd", "zlib", "gzip", "bz2", "lzma")


@lru_cache(maxsize=2)
def _available(backend: str) -> tuple[str, ...]:
    return tuple(available_compressions(backend))  # type: ignore[arg-type]


def _canonical_method(name: Any, backend: str) -> Any:
    """``"Zstd" -> "zstd"``; on HDF5 NeuroConv's ``"gzip"`` is HDF5's zlib filter."""
    if not isinstance(name, str):
        return name
    if backend == "hdf5" and name.lower() == "gzip":
        return "zlib"
    row = row_by_name(name) or row_by_name(name.lower())
    return row.name if row is not None else name


def _canonical_options(method: Any, options: Any) -> Any:
    if not isinstance(options, Mapping):
        return options
    opts = dict(options)
    if method in _LEVEL_CODECS:
        for old, new in _OPTION_ALIASES.items():
            if old in opts and new not in opts:
                opts[new] = opts.pop(old)
    return opts


def _shape(value: Any, field: str, where: str, *, none_ok: bool = False) -> Shape | None:
    if value is None and none_ok:
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise SettingsError(f"{where}: {field}={value!r} is not a tuple of integers") from None
    for axis, v in enumerate(items):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise SettingsError(f"{where}: {field}={items!r}: axis {axis} is {v!r}, not an integer")
    return tuple(int(v) for v in items)


class DatasetIOConfiguration:
    """How one dataset of an NWBFile is written: chunks, buffer, compression, filters.

    Fixed fields describe the data (``object_id``, ``location_in_file``, ``dataset_name``,
    ``dtype``, ``full_shape``, ``backend``, ``zarr_format``, ``maxshape``, ``fill_value``,
    ``source_kind``); editable fields (``chunk_shape``, ``buffer_shape``, ``shard_shape``,
    ``compression_method``, ``compression_options``, ``filter_methods``, ``filter_options``)
    are validated on creation and on every assignment; a failed assignment changes nothing.

    Parameters
    ----------
    object_id
        ``object_id`` of the container holding the dataset.
    location_in_file
        Location in the in-memory NWBFile, e.g. ``"acquisition/ts/data"``.
    dataset_name
        The last part of ``location_in_file``.
    dtype, full_shape
        Of the source data.
    chunk_shape
        ``None`` means contiguous on HDF5 (no compression possible); on Zarr one chunk of
        the full shape.
    buffer_shape
        What a write holds in memory at once; at least the chunk, at most the full shape, a
        multiple of the chunk on every axis where it is not the full length.
    compression_method, compression_options
        A codec name of :func:`nwbstore.available_compressions` (NeuroConv's spellings such
        as ``"Zstd"``, and ``"gzip"`` for HDF5's zlib filter, are accepted) and its options
        (a level or a dict; ``clevel`` is accepted for ``level``). Assigning a new method
        without options resets the options to the codec's defaults.
    filter_methods, filter_options
        Stages before compression (e.g. ``["delta", "shuffle"]``), with one options dict (or
        ``None``) per stage.
    shard_shape
        Zarr format 3 only: a multiple of the chunk. While it comes from the defaults it
        follows chunk and buffer changes (one shard per buffer).
    backend, zarr_format
        ``"hdf5"`` or ``"zarr"``; Zarr format 2 or 3.
    maxshape, fill_value
        From the data's ``H5DataIO``/``ZarrDataIO`` wrapper, if it set them.
    source_kind
        What the data is (``"array"``, ``"list"``, ``"text"``, ``"h5py"``, ``"zarr"``,
        ``"dci"``, ``"gdci"``); some rules depend on it.

    Raises
    ------
    SettingsError
        A rule is broken; the message names the location and the rule.
    UnsupportedCodecError
        A codec this backend cannot write here; the message lists the available ones.
    """

    object_id: str
    location_in_file: str
    dataset_name: str
    dtype: np.dtype[Any]
    full_shape: Shape
    backend: Backend
    zarr_format: int
    maxshape: tuple[int | None, ...] | None
    fill_value: Any
    source_kind: SourceKind
    chunk_shape: Shape | None
    buffer_shape: Shape
    shard_shape: Shape | None
    compression_method: str | None
    compression_options: Any
    filter_methods: tuple[str, ...]
    filter_options: tuple[Any, ...]

    def __init__(
        self,
        *,
        object_id: str,
        location_in_file: str,
        dataset_name: str,
        dtype: Any,
        full_shape: Iterable[int],
        chunk_shape: Iterable[int] | None,
        buffer_shape: Iterable[int],
        compression_method: str | None = None,
        compression_options: Any = None,
        filter_methods: Iterable[str] = (),
        filter_options: Iterable[Any] | None = None,
        shard_shape: Iterable[int] | None = None,
        backend: Backend = "hdf5",
        zarr_format: int = 3,
        maxshape: Iterable[int | None] | None = None,
        fill_value: Any = None,
        source_kind: SourceKind = "array",
    ) -> None:
        if backend not in ("hdf5", "zarr"):
            raise SettingsError(f"backend={backend!r}: must be 'hdf5' or 'zarr'")
        if zarr_format not in (2, 3):
            raise SettingsError(f"zarr_format={zarr_format!r}: must be 2 or 3")
        where = f"dataset {location_in_file!r}"
        d = self.__dict__
        d["object_id"] = str(object_id)
        d["location_in_file"] = str(location_in_file)
        d["dataset_name"] = str(dataset_name)
        d["dtype"] = np.dtype(dtype)
        d["full_shape"] = _shape(full_shape, "full_shape", where)
        d["backend"] = backend
        d["zarr_format"] = int(zarr_format)
        d["maxshape"] = None if maxshape is None else tuple(maxshape)
        d["fill_value"] = fill_value
        d["source_kind"] = source_kind
        d["_shards_auto"] = False
        for name in _EDITABLE:
            d[name] = None
        d["filter_methods"], d["filter_options"] = (), ()
        self.update(
            chunk_shape=chunk_shape,
            buffer_shape=buffer_shape,
            shard_shape=shard_shape,
            compression_method=compression_method,
            compression_options=compression_options,
            filter_methods=filter_methods,
            filter_options=filter_options,
        )

    # --- editing --------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "settings":
            self._set_settings(value)
            return
        self.update(**{name: value})

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{name!r} of a dataset configuration cannot be deleted")

    def update(self, **changes: Any) -> None:
        """Change several editable fields at once, validated together (all or nothing).

        Use it when one change alone would break a rule, e.g. a chunk larger than the
        current buffer: ``update(chunk_shape=(200,), buffer_shape=(400,))``.
        """
        loc = self.__dict__["location_in_file"]
        for name in changes:
            if name in _FIXED:
                raise AttributeError(
                    f"dataset {loc!r}: {name} is fixed by the data and cannot be changed"
                )
            if name not in _EDITABLE:
                raise AttributeError(
                    f"dataset {loc!r}: no field {name!r}; editable: {', '.join(_EDITABLE)}"
                )
        new = {name: self.__dict__[name] for name in _EDITABLE}
        shards_auto = self.__dict__["_shards_auto"]
        where = f"dataset {loc!r}"
        backend = self.backend
        if "compression_method" in changes:
            method = _canonical_method(changes["compression_method"], backend)
            if method != new["compression_method"] and "compression_options" not in changes:
                new["compression_options"] = None
            new["compression_method"] = method
        if "compression_options" in changes:
            new["compression_options"] = changes["compression_options"]
        new["compression_options"] = _canonical_options(
            new["compression_method"], new["compression_options"]
        )
        if "filter_methods" in changes:
            fm = changes["filter_methods"]
            methods = (fm,) if isinstance(fm, str) else tuple(fm or ())
            new["filter_methods"] = tuple(_canonical_method(m, "zarr") for m in methods)
            if "filter_options" not in changes:
                new["filter_options"] = (None,) * len(methods)
        if "filter_options" in changes:
            fo = changes["filter_options"]
            new["filter_options"] = (
                (None,) * len(new["filter_methods"]) if fo is None else tuple(fo)
            )
        for name in ("chunk_shape", "buffer_shape", "shard_shape"):
            if name in changes:
                new[name] = _shape(changes[name], name, where, none_ok=name != "buffer_shape")
        if backend == "zarr" and new["chunk_shape"] is None:
            new["chunk_shape"] = self.full_shape  # Zarr is always chunked: one chunk
        if "shard_shape" in changes:
            shards_auto = False
        elif shards_auto and ({"chunk_shape", "buffer_shape"} & set(changes)):
            new["shard_shape"] = self._auto_shards(new["chunk_shape"], new["buffer_shape"])
        self._validate(new)
        self.__dict__.update(new)
        self.__dict__["_shards_auto"] = shards_auto

    def _auto_shards(self, chunk: Shape | None, buffer: Shape | None) -> Shape | None:
        if self.backend != "zarr" or self.zarr_format != 3 or chunk is None or buffer is None:
            return None
        if len(chunk) != len(self.full_shape) or len(buffer) != len(chunk) or 0 in chunk:
            return None
        n_chunks = math.prod(math.ceil(s / c) for s, c in zip(self.full_shape, chunk, strict=True))
        if n_chunks <= SHARD_MIN_CHUNKS:
            return None
        return tuple(math.ceil(b / c) * c for b, c in zip(buffer, chunk, strict=True))

    # --- validation (NeuroConv's order) -----------------------------------------------------

    def _validate(self, v: dict[str, Any]) -> None:
        loc = self.location_in_file
        where = f"dataset {loc!r}"
        last = loc.rstrip("/").split("/")[-1]
        if self.dataset_name != last:
            raise SettingsError(
                f"{where}: dataset_name={self.dataset_name!r} is not the last part of "
                f"location_in_file ({last!r}); the dataset name must be the location's last part"
            )
        full, chunk, buffer, shard = (
            self.full_shape,
            v["chunk_shape"],
            v["buffer_shape"],
            v["shard_shape"],
        )
        for name, shape in (
            ("full_shape", full),
            ("chunk_shape", chunk),
            ("buffer_shape", buffer),
            ("shard_shape", shard),
        ):
            if shape is None:
                continue
            for axis, n in enumerate(shape):
                if n <= 0:
                    raise SettingsError(
                        f"{where}: {name}={shape} has axis {axis} = {n}; every axis must be > 0"
                    )
        for name, shape in (
            ("chunk_shape", chunk),
            ("buffer_shape", buffer),
            ("shard_shape", shard),
        ):
            if shape is not None and len(shape) != len(full):
                raise SettingsError(
                    f"{where}: {name}={shape} has {len(shape)} axes but full_shape={full} has "
                    f"{len(full)}; the rank must match"
                )
        if chunk is not None:
            for axis, (c, b) in enumerate(zip(chunk, buffer, strict=True)):
                if c > b:
                    raise SettingsError(
                        f"{where}: chunk_shape={chunk} exceeds buffer_shape={buffer} on axis "
                        f"{axis} ({c} > {b}); a chunk must fit in the buffer (chunk <= buffer)"
                    )
        for axis, (b, f) in enumerate(zip(buffer, full, strict=True)):
            if b > f:
                raise SettingsError(
                    f"{where}: buffer_shape={buffer} exceeds full_shape={full} on axis {axis} "
                    f"({b} > {f}); the buffer may not be larger than the data (buffer <= full)"
                )
        if chunk is not None:
            for axis, (c, b, f) in enumerate(zip(chunk, buffer, full, strict=True)):
                if b != f and b % c:
                    raise SettingsError(
                        f"{where}: buffer_shape={buffer} is not a multiple of chunk_shape={chunk} "
                        f"on axis {axis} ({b} % {c} = {b % c}); the buffer must be a multiple of "
                        "the chunk on every axis where it is not the full size"
                    )
        self._validate_layout(v, where)
        self._validate_codecs(v, where)

    def _validate_layout(self, v: dict[str, Any], where: str) -> None:
        chunk, buffer, shard = v["chunk_shape"], v["buffer_shape"], v["shard_shape"]
        kind = self.source_kind
        if shard is not None and (self.backend != "zarr" or self.zarr_format != 3):
            raise SettingsError(
                f"{where}: shard_shape={shard} is for Zarr format 3 only (this configuration is "
                f"{self._backend_name()}); set shard_shape=None"
            )
        if shard is not None and chunk is not None:
            for axis, (s, c) in enumerate(zip(shard, chunk, strict=True)):
                if s % c:
                    raise SettingsError(
                        f"{where}: shard_shape={shard} is not a multiple of chunk_shape={chunk} on "
                        f"axis {axis} ({s} % {c} = {s % c}); a shard holds whole chunks"
                    )
        if chunk is None:  # HDF5 contiguous
            if v["compression_method"] is not None or v["filter_methods"]:
                raise SettingsError(
                    f"{where}: chunk_shape=None (contiguous) cannot be compressed or filtered; "
                    "set compression_method=None and filter_methods=() too, or give a chunk shape"
                )
            if kind in ("dci", "gdci", "h5py", "zarr") or buffer != self.full_shape:
                raise SettingsError(
                    f"{where}: chunk_shape=None (contiguous) is written in one piece from memory: "
                    f"it needs in-memory data (this is {kind!r}) and buffer_shape = full_shape "
                    f"{self.full_shape}"
                )
        if kind == "text" and buffer != self.full_shape:
            raise SettingsError(
                f"{where}: text is written in one piece: buffer_shape={buffer} must be the full "
                f"shape {self.full_shape}"
            )
        if kind == "dci" and tuple(buffer[1:]) != tuple(self.full_shape[1:]):
            raise SettingsError(
                f"{where}: a DataChunkIterator yields whole rows along axis 0: buffer_shape="
                f"{buffer} must be full length on the other axes {self.full_shape[1:]}"
            )

    def _validate_codecs(self, v: dict[str, Any], where: str) -> None:
        method = v["compression_method"]
        if method is not None and method not in _available(self.backend):
            available = list(_available(self.backend))
            raise UnsupportedCodecError(
                f"{where}: compression_method={method!r} cannot be written to "
                f"{self._backend_name()} by this installation; available_compressions("
                f"{self.backend!r}) = {available}",
                dataset=self.location_in_file,
                target=self.backend,
            )
        if len(v["filter_options"]) != len(v["filter_methods"]):
            raise SettingsError(
                f"{where}: filter_options has {len(v['filter_options'])} entries but "
                f"filter_methods={list(v['filter_methods'])} has {len(v['filter_methods'])}; "
                "give one options dict (or None) per filter"
            )
        settings = self._settings_from(v)
        try:
            if self.backend == "hdf5":
                kw = settings.to_hdf5(name=self.location_in_file)
                if "dcpl" in kw or "scaleoffset" in kw:
                    raise SettingsError(
                        f"{where}: H5DataIO cannot write the pipeline "
                        f"{settings.describe_compression()}; put shuffle right before the "
                        "compression and use no other HDF5 filters"
                    )
            else:
                settings.to_zarr(3, dtype=self._codec_dtype(), name=self.location_in_file)
        except UnsupportedCodecError as err:
            raise UnsupportedCodecError(
                f"{where}: {err}", dataset=self.location_in_file, target=self.backend
            ) from None

    def _backend_name(self) -> str:
        return "HDF5" if self.backend == "hdf5" else f"Zarr format {self.zarr_format}"

    def _codec_dtype(self) -> np.dtype[Any]:
        return np.dtype(object) if is_string_dtype(self.dtype) else self.dtype

    # --- settings ---------------------------------------------------------------------------

    def _settings_from(self, v: Mapping[str, Any]) -> DatasetSettings:
        where = f"dataset {self.location_in_file!r}"
        filters: tuple[Any, ...] = tuple(
            (name, dict(opts) if opts else None)
            for name, opts in zip(v["filter_methods"], v["filter_options"], strict=True)
        )
        try:
            return DatasetSettings(
                chunks=v["chunk_shape"],
                shards=v["shard_shape"],
                compression=v["compression_method"],
                compression_opts=v["compression_options"],
                filters=filters,
                maxshape=self.maxshape if v["chunk_shape"] is not None else None,
                fill_value=self.fill_value,
                source=self.location_in_file,
            )
        except UnsupportedCodecError as err:
            raise UnsupportedCodecError(
                f"{where}: {err}", dataset=self.location_in_file, target=self.backend
            ) from None
        except SettingsError as err:
            raise SettingsError(f"{where}: {err}") from None

    @property
    def settings(self) -> DatasetSettings:
        """These choices as a :class:`nwbstore.DatasetSettings` (assignable).

        Assigning settings takes their chunks, shards, compression and filters (shuffle is
        the last filter); their ``maxshape`` and ``fill_value`` are ignored (fixed here).
        """
        return self._settings_from({name: self.__dict__[name] for name in _EDITABLE})

    def _set_settings(self, settings: DatasetSettings) -> None:
        if not isinstance(settings, DatasetSettings):
            raise SettingsError(
                f"dataset {self.location_in_file!r}: settings={settings!r} is not a "
                "nwbstore.DatasetSettings"
            )
        self.update(**fields_of(settings))

    @classmethod
    def from_settings(
        cls,
        settings: DatasetSettings,
        *,
        object_id: str,
        location_in_file: str,
        dtype: Any,
        full_shape: Iterable[int],
        buffer_shape: Iterable[int],
        backend: Backend = "hdf5",
        zarr_format: int = 3,
        source_kind: SourceKind = "array",
    ) -> DatasetIOConfiguration:
        """A configuration with the chunks, shards, codecs, maxshape and fill of ``settings``."""
        return cls(
            object_id=object_id,
            location_in_file=location_in_file,
            dataset_name=location_in_file.rstrip("/").split("/")[-1],
            dtype=dtype,
            full_shape=full_shape,
            buffer_shape=buffer_shape,
            backend=backend,
            zarr_format=zarr_format,
            maxshape=settings.maxshape,
            fill_value=settings.fill_value,
            source_kind=source_kind,
            **fields_of(settings),
        )

    # --- display ----------------------------------------------------------------------------

    def __str__(self) -> str:
        return dataset_block(self)

    def __repr__(self) -> str:
        return (
            f"DatasetIOConfiguration({self.location_in_file!r}, {self.dtype}, "
            f"full_shape={self.full_shape}, chunk_shape={self.chunk_shape}, "
            f"buffer_shape={self.buffer_shape}, compression_method={self.compression_method!r})"
        )


def fields_of(settings: DatasetSettings) -> dict[str, Any]:
    methods = [s.name for s in settings.filters]
    options: list[Any] = [dict(s.options) or None for s in settings.filters]
    if settings.shuffle:
        methods.append("shuffle")
        options.append(None)
    opts = settings.compression_opts
    return {
        "chunk_shape": settings.chunks,
        "shard_shape": settings.shards,
        "compression_method": settings.compression,
        "compression_options": dict(opts) if isinstance(opts, Mapping) else opts,
        "filter_methods": tuple(methods),
        "filter_options": tuple(options),
    }
