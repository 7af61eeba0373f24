"""``DatasetSettings``: one chunking and codec model for HDF5 and Zarr.

A settings object is a frozen, validated value: chunks (``None`` = HDF5 contiguous), shards
(Zarr v3), an ordered codec pipeline (``filters`` then ``shuffle`` then one ``compression``
then a ``checksum``), fill value and maxshape. It maps both ways through the codec table in
:mod:`nwbstore.codecs`; what has no counterpart raises
:class:`~nwbstore.errors.UnsupportedCodecError` unless a ``fallback`` is chosen.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np

from nwbstore.codecs import (
    CodecSpec,
    adapt_pipeline,
    hdf5_filter_kwargs,
    make_spec,
    require_row,
    row_by_name,
    specs_from_hdf5,
    specs_from_zarr,
    zarr_codec_kwargs,
)
from nwbstore.codecs._spec import freeze, hashable, jsonable, unjson
from nwbstore.errors import SettingsError

__all__ = ["DatasetSettings"]

Backend = Literal["hdf5", "zarr"]


def _shape_tuple(value: Any, name: str, *, allow_none_items: bool = False) -> tuple[Any, ...]:
    if isinstance(value, int | np.integer):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise SettingsError(f"{name}={value!r} is not a tuple of integers") from None
    out: list[Any] = []
    for axis, v in enumerate(items):
        if v is None and allow_none_items:
            out.append(None)
            continue
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise SettingsError(f"{name}={items!r}: axis {axis} is {v!r}, not an integer")
        if v <= 0 and not (allow_none_items and v == 0):
            raise SettingsError(f"{name}={items!r}: axis {axis} is {v}; it must be positive")
        out.append(int(v))
    return tuple(out)


def _is_default_fill(value: Any) -> bool:
    if value is None:
        return True
    try:
        return (bool(value == 0) and not isinstance(value, str | bytes)) or value in ("", b"")
    except (TypeError, ValueError):
        return False


def _as_spec(item: Any, where: str) -> CodecSpec:
    if isinstance(item, CodecSpec):
        return make_spec(item.name, dict(item.options), field=where)
    if isinstance(item, str):
        return make_spec(item, field=where)
    if isinstance(item, Mapping) and "name" in item:
        return make_spec(str(item["name"]), item.get("options"), field=where)
    if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
        return make_spec(item[0], item[1], field=where)
    raise SettingsError(
        f"{where}={item!r} is not a codec: give a name, (name, options), or a CodecSpec"
    )


@dataclass(frozen=True, eq=False)
class DatasetSettings:
    """Chunking, sharding, codec pipeline, fill value and maxshape of one dataset.

    Parameters
    ----------
    chunks
        Chunk shape; ``None`` means an HDF5 contiguous layout (no codecs possible).
    shards
        Zarr v3 shard shape, a multiple of ``chunks`` on every axis; HDF5 ignores it (the
        file already holds every chunk).
    compression
        Codec name from the table (``nwbstore.codecs.known_names()``), e.g. ``"zlib"`` (what
        HDF5 calls "gzip": a zlib stream), ``"zstd"``, ``"blosc"``, ``"lz4"``. Zarr's
        ``"gzip"`` is the gzip container and is not HDF5's "gzip".
    compression_opts
        An int (the codec's level) or a dict of the codec's options; stored with the
        defaults filled in, as a read-only mapping.
    shuffle
        Byte shuffle before compression (element size from the dtype).
    checksum
        ``True`` for Fletcher-32 (HDF5's checksum), or a checksum codec name such as
        ``"crc32c"`` (Zarr only). Stored as the codec name, or ``False``.
    fill_value
        Value of unwritten elements; ``None`` (or zero, the same thing) means the backend
        default, zero.
    maxshape
        Largest shape per axis (``None`` = unlimited); ``None`` means fixed size. Zarr arrays
        are always resizable, so Zarr ignores it and :meth:`from_zarr` returns ``None``.
    filters
        Extra stages applied before ``shuffle`` in order: names, ``(name, options)`` pairs or
        :class:`~nwbstore.codecs.CodecSpec` (e.g. ``("delta", {"dtype": "<i4"})``).
    source
        Where the settings came from (a dataset path), used only in error messages; not
        compared.

    Notes
    -----
    Equal pipelines give equal settings however they were spelled: a trailing ``shuffle``
    in ``filters`` becomes ``shuffle=True``, aliases become table names, and options get
    their defaults.
    """

    chunks: tuple[int, ...] | None = None
    shards: tuple[int, ...] | None = None
    compression: str | None = None
    compression_opts: Any = None
    shuffle: bool = False
    checksum: bool | str = False
    fill_value: Any = None
    maxshape: tuple[int | None, ...] | None = None
    filters: tuple[CodecSpec, ...] = ()
    source: str | None = field(default=None, compare=False)

    # --- validation and normalisation ---------------------------------------------------------

    def __post_init__(self) -> None:
        chunks = None if self.chunks is None else _shape_tuple(self.chunks, "chunks")
        maxshape = (
            None
            if self.maxshape is None
            else _shape_tuple(self.maxshape, "maxshape", allow_none_items=True)
        )
        shards = None if self.shards is None else _shape_tuple(self.shards, "shards")
        self._check_layout(chunks, shards, maxshape)

        if not isinstance(self.shuffle, bool | np.bool_):
            raise SettingsError(f"shuffle={self.shuffle!r} must be True or False")
        pipeline = [_as_spec(f, f"filters[{i}]") for i, f in enumerate(self.filters)]
        if self.shuffle:
            pipeline.append(make_spec("shuffle"))
        if self.compression is not None:
            row = require_row(self.compression, "compression")
            if row.role != "compression":
                hint = {"shuffle": "shuffle=True", "checksum": f"checksum={row.name!r}"}.get(
                    row.role, f"filters=({row.name!r},)"
                )
                raise SettingsError(
                    f"compression={self.compression!r} is a {row.role}, not a compression; "
                    f"use {hint}"
                )
            pipeline.append(make_spec(row.name, self.compression_opts))
        elif self.compression_opts is not None:
            raise SettingsError(
                f"compression_opts={self.compression_opts!r} given without a compression"
            )
        if self.checksum is not False and self.checksum is not None:
            name = "fletcher32" if self.checksum is True else self.checksum
            if not isinstance(name, str):
                raise SettingsError(f"checksum={self.checksum!r}: use True or a checksum name")
            row = require_row(name, "checksum")
            if row.role != "checksum":
                raise SettingsError(f"checksum={name!r} is a {row.role}, not a checksum")
            pipeline.append(make_spec(row.name))
        if pipeline and chunks is None:
            raise SettingsError(
                f"codecs {[s.name for s in pipeline]} need a chunked layout but chunks=None; "
                "set chunks (nwbstore.default_settings(shape, dtype) suggests a shape)"
            )
        split = _split(tuple(pipeline))
        fill = freeze(self.fill_value)
        set_ = object.__setattr__
        set_(self, "chunks", chunks)
        set_(self, "shards", shards)
        set_(self, "maxshape", maxshape)
        set_(self, "fill_value", None if _is_default_fill(fill) else fill)
        for key, value in split.items():
            set_(self, key, value)

    @staticmethod
    def _check_layout(
        chunks: tuple[int, ...] | None,
        shards: tuple[int, ...] | None,
        maxshape: tuple[int | None, ...] | None,
    ) -> None:
        if maxshape is not None:
            if chunks is None:
                raise SettingsError(
                    f"maxshape={maxshape} needs a chunked layout (a resizable dataset is "
                    "chunked); set chunks"
                )
            if len(maxshape) != len(chunks):
                raise SettingsError(
                    f"chunks={chunks} has {len(chunks)} axes but maxshape={maxshape} has "
                    f"{len(maxshape)}; the rank must match"
                )
            for axis, (c, m) in enumerate(zip(chunks, maxshape, strict=True)):
                if m is not None and c > m:
                    raise SettingsError(
                        f"chunks={chunks}: axis {axis} chunk {c} is larger than maxshape {m} "
                        f"by {c - m}; a chunk may not exceed maxshape"
                    )
        if shards is not None:
            if chunks is None:
                raise SettingsError(f"shards={shards} need chunks; set chunks")
            if len(shards) != len(chunks):
                raise SettingsError(
                    f"shards={shards} has {len(shards)} axes but chunks={chunks} has "
                    f"{len(chunks)}; the rank must match"
                )
            for axis, (s, c) in enumerate(zip(shards, chunks, strict=True)):
                if s % c:
                    raise SettingsError(
                        f"shards={shards}: axis {axis} shard {s} is not a multiple of chunk {c} "
                        f"(remainder {s % c}); each shard must hold whole chunks"
                    )

    # --- the pipeline -------------------------------------------------------------------------

    @property
    def pipeline(self) -> tuple[CodecSpec, ...]:
        """All codec stages in application (write) order."""
        out = list(self.filters)
        if self.shuffle:
            out.append(make_spec("shuffle"))
        if self.compression is not None:
            out.append(CodecSpec(self.compression, self.compression_opts))
        if self.checksum:
            out.append(make_spec(str(self.checksum)))
        return tuple(out)

    @classmethod
    def from_pipeline(cls, pipeline: Iterable[CodecSpec], **fields_: Any) -> DatasetSettings:
        """Build settings from an ordered codec pipeline plus layout fields."""
        split = _split(tuple(pipeline))
        return cls(**{**fields_, **split})

    def replace(self, **changes: Any) -> DatasetSettings:
        """Return a copy with ``changes`` applied (validated again).

        A new ``compression`` without ``compression_opts`` drops the old options: they belong
        to the old codec (``replace(compression=None)`` gives an uncompressed pipeline).
        """
        if (
            "compression" in changes
            and "compression_opts" not in changes
            and changes["compression"] != self.compression
        ):
            changes["compression_opts"] = None
        return replace(self, **changes)

    def for_shape(
        self, shape: Iterable[int], backend: Backend, *, variable_length: bool = False
    ) -> DatasetSettings:
        """These settings made creatable for a dataset of ``shape`` on ``backend``.

        Zarr accepts any chunk shape, so Zarr settings come back unchanged. HDF5 is stricter;
        nothing below changes a stored value:

        - a scalar (0-d) dataset cannot be chunked: contiguous, no codecs;
        - an empty dataset of fixed size (a zero-length axis that cannot grow) stores no
          chunk at all: contiguous, no codecs (h5py and pynwb write empty datasets so too);
        - a chunk longer than a fixed-size axis is clipped to the axis length; axes that can
          grow (``maxshape`` larger or unlimited) keep their chunk length;
        - on a variable-length dtype (``variable_length=True``: vlen strings or sequences)
          the HDF5 Blosc and Blosc2 filters crash the process (they divide by the element
          size HDF5 does not give them), so Blosc becomes Zstd at the Blosc level and
          Blosc2 becomes Zstd. HDF5 compresses only the 16-byte heap pointers of such
          datasets anyway; the strings themselves live in the global heap.

        Parameters
        ----------
        shape
            Shape of the dataset to create.
        backend
            ``"hdf5"`` or ``"zarr"``.
        variable_length
            The HDF5 dtype is variable-length (a vlen string or a vlen sequence).
        """
        shape_t = tuple(int(s) for s in shape)
        if backend != "hdf5" or self.chunks is None:
            return self
        contiguous = {
            "chunks": None,
            "shards": None,
            "maxshape": None,
            "filters": (),
            "shuffle": False,
            "compression": None,
            "checksum": False,
        }
        if not shape_t:
            return self.replace(**contiguous)
        out = self._vlen_safe() if variable_length else self
        if len(out.chunks or ()) != len(shape_t):
            return out  # a rank mismatch: h5py's own error names it
        assert out.chunks is not None
        limits = out.maxshape if out.maxshape is not None else shape_t
        fixed = [lim is not None and lim <= s for s, lim in zip(shape_t, limits, strict=True)]
        if any(f and s == 0 for f, s in zip(fixed, shape_t, strict=True)):
            # only without a maxshape: a declared limit of 0 cannot hold a chunk at all
            return out.replace(**contiguous)
        chunks = tuple(
            min(c, s) if f else c for c, s, f in zip(out.chunks, shape_t, fixed, strict=True)
        )
        if chunks == out.chunks:
            return out
        return out.replace(chunks=chunks, shards=None)

    def _vlen_safe(self) -> DatasetSettings:
        if self.compression == "blosc":
            level = int(dict(self.compression_opts or {}).get("clevel", 5))
            return self.replace(compression="zstd", compression_opts={"level": level})
        if self.compression == "blosc2":
            return self.replace(compression="zstd", compression_opts=None)
        return self

    # --- equality, hashing, JSON --------------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        return tuple(
            hashable(getattr(self, f.name)) if f.name != "filters" else self.filters
            for f in fields(self)
            if f.compare
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatasetSettings):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict; :meth:`from_dict` inverts it."""
        d: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "filters":
                d[f.name] = [s.to_dict() for s in value]
            else:
                d[f.name] = jsonable(value)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetSettings:
        """Build settings from :meth:`to_dict` output (unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise SettingsError(
                f"unknown settings field(s) {sorted(unknown)}; known: {sorted(names)}"
            )
        kw = {k: unjson(v) for k, v in data.items() if k != "filters"}
        kw["filters"] = tuple(CodecSpec.from_dict(s) for s in data.get("filters", ()))
        for key in ("chunks", "shards", "maxshape"):
            if kw.get(key) is not None:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DatasetSettings:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    # --- HDF5 ---------------------------------------------------------------------------------

    def _where(self, name: str | None) -> str:
        return f"dataset {name or self.source or '<unnamed>'!r}"

    def to_hdf5(self, *, fallback: str | None = None, name: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``h5py.Group.create_dataset``.

        Parameters
        ----------
        fallback
            ``None`` raises :class:`~nwbstore.errors.UnsupportedCodecError` for a stage HDF5
            cannot write; ``"drop"`` leaves it out; a codec name transcodes to that codec.
        name
            Dataset path for error messages.

        Returns
        -------
        dict
            ``chunks``, ``maxshape``, ``fillvalue`` and the filter keywords (``compression``,
            ``compression_opts``, ``shuffle``, ``fletcher32``, ``scaleoffset``), or a ``dcpl``
            when the pipeline is not in h5py's fixed order. Shards do not apply to HDF5.
        """
        pipeline = adapt_pipeline(self.pipeline, "hdf5", where=self._where(name), fallback=fallback)
        kw: dict[str, Any] = {"chunks": self.chunks}
        if self.maxshape is not None:
            kw["maxshape"] = self.maxshape
        if self.fill_value is not None:
            kw["fillvalue"] = self.fill_value
        kw.update(hdf5_filter_kwargs(pipeline))
        return kw

    @classmethod
    def from_hdf5(cls, dataset: Any, *, fallback: str | None = None) -> DatasetSettings:
        """Read the settings of an open ``h5py.Dataset`` (its real filter pipeline).

        Parameters
        ----------
        dataset
            The dataset.
        fallback
            For a filter the table does not know: ``"drop"`` or a codec name to transcode
            to; ``None`` raises :class:`~nwbstore.errors.UnsupportedCodecError`.
        """
        import h5py

        specs = specs_from_hdf5(dataset, fallback=fallback)
        maxshape = dataset.maxshape if dataset.maxshape != dataset.shape else None
        dcpl = dataset.id.get_create_plist()
        fill = None
        if dcpl.fill_value_defined() == h5py.h5d.FILL_VALUE_USER_DEFINED:
            fill = _scalar(dataset.fillvalue)
        return cls.from_pipeline(
            specs,
            chunks=dataset.chunks,
            maxshape=maxshape,
            fill_value=fill,
            source=f"{dataset.file.filename}:{dataset.name}",
        )

    # --- Zarr ---------------------------------------------------------------------------------

    def to_zarr(
        self,
        zarr_format: int = 3,
        *,
        dtype: Any = None,
        fallback: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Keyword arguments for ``zarr.Group.create_array`` (format 2 or 3).

        Parameters
        ----------
        zarr_format
            2 or 3. Shards are written only for format 3.
        dtype
            The array dtype; needed for shuffle on format 2 (numcodecs' ``Shuffle`` does not
            read it from the array) and used to set Blosc's typesize.
        fallback
            As for :meth:`to_hdf5`.
        name
            Dataset path for error messages.

        Returns
        -------
        dict
            ``chunks``, ``filters``, ``compressors`` (``None`` when the pipeline has none:
            zarr adds no default compressor), ``fill_value`` (only when not the default)
            and, for format 3 with shards, ``shards``. ``chunks`` is ``"auto"`` for a contiguous
            layout.
        """
        if zarr_format not in (2, 3):
            raise SettingsError(f"zarr_format={zarr_format!r}: must be 2 or 3")
        pipeline = adapt_pipeline(self.pipeline, "zarr", where=self._where(name), fallback=fallback)
        itemsize = None if dtype is None else np.dtype(dtype).itemsize
        kw: dict[str, Any] = {"chunks": self.chunks if self.chunks is not None else "auto"}
        if self.shards is not None and zarr_format == 3:
            kw["shards"] = self.shards
        kw.update(zarr_codec_kwargs(pipeline, zarr_format, itemsize))
        if self.fill_value is not None:  # otherwise zarr's default for the dtype (zero)
            kw["fill_value"] = self.fill_value
        return kw

    @classmethod
    def from_zarr(cls, array: Any, *, fallback: str | None = None) -> DatasetSettings:
        """Read the settings of a ``zarr.Array`` (format 2 or 3, sharded or not)."""
        specs = specs_from_zarr(array, fallback=fallback)
        shards = getattr(array, "shards", None)
        fill = array.fill_value
        return cls.from_pipeline(
            specs,
            chunks=tuple(array.chunks),
            shards=tuple(shards) if shards is not None else None,
            fill_value=_scalar(fill) if fill is not None else None,
            source=f"{array.store}/{array.path}",
        )

    # --- display ------------------------------------------------------------------------------

    def describe_compression(self) -> str:
        """One line: the pipeline as ``name(options) -> ...`` or ``none``."""
        parts = []
        for spec in self.pipeline:
            opts = ", ".join(f"{k}={v!r}" for k, v in spec.options.items())
            parts.append(f"{spec.name}({opts})" if opts else spec.name)
        return " -> ".join(parts) if parts else "none"

    def codec_lines(self) -> list[str]:
        """The codec, fill value and maxshape lines of the NeuroConv-style layout."""
        lines = [f"  compression method : {self.compression or 'none'}"]
        if self.compression is not None and self.compression_opts:
            opts = ", ".join(f"{k}={v!r}" for k, v in self.compression_opts.items())
            lines.append(f"  compression options : {opts}")
        if self.filters or self.shuffle:
            names = [s.name for s in self.filters] + (["shuffle"] if self.shuffle else [])
            lines.append(f"  filters : {', '.join(names)}")
        if self.checksum:
            lines.append(f"  checksum : {self.checksum}")
        if self.fill_value is not None:
            lines.append(f"  fill value : {self.fill_value!r}")
        if self.maxshape is not None:
            lines.append(f"  maxshape : {self.maxshape}")
        return lines

    def __str__(self) -> str:
        lines = [
            "DatasetSettings",
            f"  chunk shape : {self.chunks if self.chunks is not None else 'contiguous'}",
        ]
        if self.shards is not None:
            lines.append(f"  shard shape : {self.shards}")
        lines.extend(self.codec_lines())
        return "\n".join(lines)


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.shape == ():
        return value.item()
    return value


def _split(pipeline: tuple[CodecSpec, ...]) -> dict[str, Any]:
    """Split a pipeline into the canonical fields (filters, shuffle, compression, checksum)."""
    stages = list(pipeline)

    def role(spec: CodecSpec) -> str:
        row = row_by_name(spec.name)
        assert row is not None
        return row.role

    out: dict[str, Any] = {
        "checksum": False,
        "compression": None,
        "compression_opts": None,
        "shuffle": False,
    }
    if stages and role(stages[-1]) == "checksum":
        out["checksum"] = stages.pop().name
    if stages and role(stages[-1]) == "compression":
        spec = stages.pop()
        out["compression"], out["compression_opts"] = spec.name, spec.options
    if stages and stages[-1].name == "shuffle":
        stages.pop()
        out["shuffle"] = True
    out["filters"] = tuple(stages)
    return out
