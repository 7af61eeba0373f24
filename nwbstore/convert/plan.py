"""Plan a conversion before writing: every dataset's destination settings, decided up front.

:func:`plan_conversion` walks the source once and decides each dataset's chunks, shards and
codec pipeline on the destination. Anything that cannot be written (an unmappable codec with
``strict=True``, a bad override) fails here, before the destination exists. The copy then
takes its settings from the plan (:meth:`ConversionPlan.settings_for`).

Codecs without counterpart on the destination are transcoded by default
(:data:`nwbstore.codecs.DEFAULT_TRANSCODES`); ``codecs="portable"`` restricts the result to
codecs every reader of the destination format decodes.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import numpy as np

from nwbstore.codecs import describe_pipeline, plan_pipeline
from nwbstore.convert.chunks_option import ChunksOption, chunks_for
from nwbstore.convert.naming import named_error
from nwbstore.convert.truncation import TruncationPlan, fit_chunks
from nwbstore.errors import CodecTranscodedWarning, SettingsError, UnsupportedCodecError
from nwbstore.nodes import Dataset, Group
from nwbstore.settings import DatasetSettings

__all__ = [
    "CodecsMode",
    "ConversionPlan",
    "PlanOptions",
    "SettingsOverride",
    "TranscodedCodec",
    "dest_shape",
    "destination_format",
    "plan_conversion",
]

CodecsMode = Literal["portable"] | None

SettingsOverride = (
    DatasetSettings
    | Mapping[str, DatasetSettings]
    | Callable[[str, DatasetSettings], DatasetSettings | None]
    | None
)


class TranscodedCodec(NamedTuple):
    """One dataset whose codecs the conversion changed.

    Attributes
    ----------
    dataset
        Path of the dataset (in its source store).
    source, target
        The pipelines, e.g. ``"lzf"`` and ``"zstd(level=1)"``.
    reason
        ``"no counterpart"`` (default transcode), ``"portable"`` or ``"fallback"``, followed
        by what was dropped or replaced.
    """

    dataset: str
    source: str
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.dataset}: {self.source} -> {self.target} ({self.reason})"


@dataclasses.dataclass
class PlanOptions:
    """The conversion options that decide destination settings (see :func:`convert`)."""

    dst_format: Literal["hdf5", "zarr"]
    zarr_format: int = 3
    settings: SettingsOverride = None
    compression: str | None = None
    chunks: ChunksOption = None
    fallback: str | None = None
    strict: bool = False
    codecs: CodecsMode = None
    first_n: int | None = None
    truncation: TruncationPlan | None = None  # kept lengths of a truncated copy (first_n)

    def __post_init__(self) -> None:
        if self.codecs not in (None, "portable"):
            raise SettingsError(f"codecs={self.codecs!r} must be None or 'portable'")


def destination_format(url: str, fmt: str | None) -> Literal["hdf5", "zarr"]:
    """The backend a destination URL will get (``format=`` first, then its extension)."""
    from nwbstore.backends.registry import detect_backend

    return "hdf5" if detect_backend(url, "w", format=fmt).startswith("hdf5") else "zarr"


def dest_shape(src: Dataset, truncation: TruncationPlan | None) -> tuple[int, ...]:
    """Shape of ``src`` in the destination (cut along axis 0 where ``truncation`` says)."""
    shape = tuple(src.shape)
    kept = truncation.kept_length(src) if truncation is not None else None
    if kept is not None and shape:
        shape = (kept, *shape[1:])
    return shape


@dataclasses.dataclass
class ConversionPlan:
    """Destination settings of every dataset, keyed by (source store URL, dataset path).

    Attributes
    ----------
    options
        What decided the settings.
    datasets
        The planned settings.
    transcoded
        Datasets whose codecs changed (default transcodes, portable rewrites, fallbacks).
    """

    options: PlanOptions
    datasets: dict[tuple[str, str], DatasetSettings] = dataclasses.field(default_factory=dict)
    transcoded: list[TranscodedCodec] = dataclasses.field(default_factory=list)

    def add(self, src: Dataset) -> DatasetSettings:
        """Plan ``src`` (once) and return its destination settings."""
        key = (src.store.url, src.name)
        found = self.datasets.get(key)
        if found is None:
            try:
                found = _destination_settings(self, src.name, src)
            except UnsupportedCodecError:
                raise  # names the dataset already, and keeps its fields for the summary
            except Exception as err:
                named = named_error(err, src.name, src.store.url)
                if named is err:
                    raise
                raise named from err
            self.datasets[key] = found
        return found

    def settings_for(self, src: Dataset) -> DatasetSettings:
        """Destination settings of ``src``; datasets reached through links are planned now."""
        return self.add(src)

    def defaulted(self) -> list[TranscodedCodec]:
        """The entries that come from a default transcode (what the warning lists)."""
        return [t for t in self.transcoded if t.reason.startswith("no counterpart")]

    def warn(self) -> None:
        """Emit one :class:`CodecTranscodedWarning` listing the default transcodes, if any."""
        items = self.defaulted()
        if not items:
            return
        listed = ", ".join(
            f"{t.dataset} ({_names(t.source)} -> {_names(t.target)})" for t in items[:20]
        )
        more = f"; and {len(items) - 20} more" if len(items) > 20 else ""
        warnings.warn(
            f"{len(items)} dataset(s) use codecs the destination lacks and were transcoded: "
            f"{listed}{more}. Pass strict=True (CLI --strict) to refuse instead, or "
            "fallback='<codec>' (--fallback <codec>) to choose the codec",
            CodecTranscodedWarning,
            stacklevel=3,
        )


def _names(pipeline: str) -> str:
    """``blosc(cname='zstd', ...) -> crc32c`` -> ``blosc+crc32c`` (the warning stays short)."""
    return "+".join(part.split("(")[0].strip() for part in pipeline.split(" -> "))


def plan_conversion(root: Group, options: PlanOptions) -> ConversionPlan:
    """Decide the destination settings of every dataset below ``root``.

    Raises
    ------
    UnsupportedCodecError
        A codec has no counterpart and ``strict=True`` (before anything is written).
    SettingsError
        An override cannot be written for some dataset.
    """
    plan = ConversionPlan(options)
    refused: list[UnsupportedCodecError] = []

    def visit(_name: str, node: Group | Dataset) -> None:
        if isinstance(node, Dataset):
            try:
                plan.add(node)
            except UnsupportedCodecError as err:
                refused.append(err)

    root.visititems(visit)
    if len(refused) == 1:
        raise refused[0]
    if refused:
        first = refused[0]
        others = ", ".join(str(e.dataset) for e in refused[1:])
        raise UnsupportedCodecError(
            f"{len(refused)} datasets cannot be written as they are. First: {first}. "
            f"Also: {others}",
            dataset=first.dataset,
            target=first.target,
            default=first.default,
        ) from first
    return plan


def _destination_settings(job: ConversionPlan, path: str, src: Dataset) -> DatasetSettings:
    from nwbstore.defaults import default_settings

    opts = job.options
    base = src.settings
    user = opts.settings
    chosen: DatasetSettings | None = None
    if isinstance(user, DatasetSettings):
        chosen = user
    elif isinstance(user, Mapping):
        chosen = user.get(path) or user.get(path.lstrip("/"))
    elif callable(user):
        chosen = user(path, base)
    new = chosen if chosen is not None else base
    if chosen is not None and chosen.chunks is not None and len(chosen.chunks) != src.ndim:
        raise SettingsError(
            f"chunks {tuple(chosen.chunks)} given for it have {len(chosen.chunks)} axes but the "
            f"dataset has {src.ndim} (shape {tuple(src.shape)}): give a chunk shape with "
            f"{src.ndim} axes"
        )
    override = None
    if opts.compression is not None and chosen is None:
        name, _, level = opts.compression.partition(":")
        if name == "gzip" and opts.dst_format == "hdf5":
            name = "zlib"  # what HDF5 users mean by gzip (a zlib stream)
        override = (None if name in ("none", "") else name, int(level) if level else None)
    if new.fill_value is not None and (src.dtype.names is not None or src.dtype.kind in "OSU"):
        # record and string fill values have no portable form; both backends default to empty
        new = new.replace(fill_value=None)
    if src.ndim == 0:
        return new.replace(
            chunks=None,
            shards=None,
            maxshape=None,
            filters=(),
            shuffle=False,
            compression=None,
            checksum=False,
        )
    shape = dest_shape(src, opts.truncation)
    dst_backend: Literal["hdf5", "zarr"] = opts.dst_format
    needs_chunks = new.chunks is None and (dst_backend == "zarr" or bool(override and override[0]))
    wanted = chunks_for(path, src.ndim, opts.chunks)  # --chunks: matching rank or path only
    if wanted == "auto" or needs_chunks:
        auto = default_settings(shape, src.dtype, backend=dst_backend, zarr_format=opts.zarr_format)
        new = new.replace(chunks=auto.settings.chunks, shards=auto.settings.shards)
    if isinstance(wanted, tuple):
        new = new.replace(chunks=wanted, shards=None)
    if dst_backend == "hdf5" or opts.zarr_format == 2:
        new = new.replace(shards=None)
    if new.chunks is not None:
        # never ask for a chunk longer than the data on an axis with a fixed size
        limits = new.maxshape or tuple(shape)
        clipped = tuple(
            min(c, max(s, 1)) if lim is not None else c
            for c, s, lim in zip(new.chunks, shape, limits, strict=True)
        )
        if clipped != tuple(new.chunks):
            new = new.replace(chunks=clipped, shards=None)
    if override is not None:
        new = new.replace(compression=override[0], compression_opts=override[1])
    if opts.first_n is not None and new.maxshape is not None:
        new = new.replace(maxshape=None)
    if opts.truncation is not None:
        new = fit_chunks(new, shape)
    # decide the codecs now, so an unmappable codec fails before anything is written
    new = _adapted(job, path, new, src.dtype)
    _check_writable(opts, path, new, src.dtype)
    return new


def _check_writable(
    opts: PlanOptions, path: str, settings: DatasetSettings, dtype: np.dtype[Any]
) -> None:
    """Build the backend's creation arguments now (no I/O): what would fail there fails here."""
    try:
        if opts.dst_format == "hdf5":
            settings.to_hdf5(name=path)
        else:
            settings.to_zarr(opts.zarr_format, dtype=dtype, name=path)
    except UnsupportedCodecError as err:
        if err.dataset is not None:
            raise
        hint = (
            "; without strict=True (--strict) it would be transcoded to zstd" if opts.strict else ""
        )
        raise UnsupportedCodecError(
            f"dataset {path!r}: {err}{hint}", dataset=path, target=opts.dst_format
        ) from None


def _adapted(
    job: ConversionPlan, path: str, settings: DatasetSettings, dtype: np.dtype[Any]
) -> DatasetSettings:
    opts = job.options
    try:
        decided = plan_pipeline(
            settings.pipeline,
            opts.dst_format,
            zarr_format=opts.zarr_format,
            where=f"dataset {path!r}",
            fallback=opts.fallback,
            strict=opts.strict,
            portable=opts.codecs == "portable",
        )
    except UnsupportedCodecError as err:
        err.dataset = path  # the path itself, for callers that format their own text
        raise
    if decided.pipeline == settings.pipeline:
        return settings
    kinds = [
        kind
        for kind, applies in (
            ("no counterpart", decided.defaulted),
            ("fallback", opts.fallback is not None and not decided.defaulted),
            ("portable", decided.portable),
        )
        if applies
    ]
    reason = ", ".join(kinds) + (f": {'; '.join(decided.notes)}" if decided.notes else "")
    job.transcoded.append(
        TranscodedCodec(
            path,
            describe_pipeline(settings.pipeline),
            describe_pipeline(decided.pipeline),
            reason,
        )
    )
    return DatasetSettings.from_pipeline(
        decided.pipeline,
        chunks=settings.chunks,
        shards=settings.shards,
        fill_value=settings.fill_value,
        maxshape=settings.maxshape,
    )
