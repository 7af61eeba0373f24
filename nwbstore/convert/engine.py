"""``nwbstore.convert``: copy any store into any other, faithfully and with bounded memory.

Order of work: (1) groups, datasets and plain attributes, dataset values streamed chunk by
chunk; (2) object references (attributes and reference values), once every target exists;
(3) links. The destination carries an "incomplete" mark from the first write until the last.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from typing import Any, Literal

import numpy as np

from nwbstore.convert import link_targets, marker, staging
from nwbstore.convert.chunks_option import ChunksOption
from nwbstore.convert.chunks_option import check_paths as check_chunk_paths
from nwbstore.convert.data import copy_values
from nwbstore.convert.identity import SOURCE_ATTR, encode, source_identity
from nwbstore.convert.locations import exists, rebase_link_url, resolve_link_url
from nwbstore.convert.naming import dataset_errors_named
from nwbstore.convert.overlap import check_distinct
from nwbstore.convert.plan import (
    CodecsMode,
    ConversionPlan,
    PlanOptions,
    SettingsOverride,
    dest_shape,
    destination_format,
    plan_conversion,
)
from nwbstore.convert.progress import ProgressBar, ProgressOption, open_bar, planned_bytes
from nwbstore.convert.report import ConversionReport
from nwbstore.convert.resuming import open_destination, reopen_dataset
from nwbstore.convert.truncation import TruncationPlan, plan_truncation
from nwbstore.dtypes import is_reference_dtype
from nwbstore.errors import NwbStoreError, StoreExistsError
from nwbstore.links import ExternalLink, Reference, SoftLink
from nwbstore.nodes import Dataset, Group, Store

__all__ = ["SettingsOverride", "convert"]

#: convert() parameters that belong to one conversion and are not handed to the conversions
#: of external-link targets (every other option, present or future, is). ``first_n``: a
#: truncated copy links to whole targets, as it does to targets that need no conversion.
_NOT_FOR_TARGETS = frozenset({"src", "dst", "links", "progress", "overwrite", "resume", "first_n"})


def _target_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """convert()'s own arguments, from its ``locals()``, for the conversion of a link target."""
    names = inspect.signature(convert).parameters
    return {n: values[n] for n in names if n not in _NOT_FOR_TARGETS and n in values}


def _has_references(value: Any) -> bool:
    if isinstance(value, Reference):
        return True
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return any(isinstance(v, Reference) for v in value.flat)
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, Reference) for v in value)
    return False


def _dtype_has_references(dtype: np.dtype[Any]) -> bool:
    if dtype.names is not None:
        return any(_dtype_has_references(dtype[n]) for n in dtype.names)
    return is_reference_dtype(dtype)


@dataclasses.dataclass
class _Job:
    """Everything one conversion needs to know while walking."""

    src: Store
    dst: Store
    report: ConversionReport
    links: Literal["keep", "resolve"]
    jobs: int
    raw: bool
    storage_options: Mapping[str, Any]
    zarr_format: int
    progress: ProgressBar | None
    exits: ExitStack
    completed: set[str]
    plan: ConversionPlan
    deferred: list[Callable[[], None]] = dataclasses.field(default_factory=list)
    converted: dict[str, str] = dataclasses.field(default_factory=dict)
    cluster: Any = None  # a DistributedCopier when scheduler= is given
    truncation: TruncationPlan | None = None  # kept lengths when first_n is given
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # for link targets
    identity: dict[str, Any] | None = None  # the source's, recorded on the destination root
    resumed: bool = False  # the destination holds an interrupted run's content
    planned: dict[str, link_targets.PlannedTarget] = dataclasses.field(default_factory=dict)


@contextmanager
def _mark_saved_on_error(mark: marker.Mark) -> Iterator[None]:
    """On any error or interruption, write the mark as it stands, so resume skips what is done.

    The original error always wins over a failed save.
    """
    try:
        yield
    except BaseException:
        with suppress(Exception):
            mark.save()
        raise


def _dest_shape(job: _Job, src: Dataset) -> tuple[int, ...]:
    """Shape of ``src`` in the destination (the one function the copy and the bar use)."""
    return dest_shape(src, job.truncation)


def _kept_length(job: _Job, src: Dataset) -> int | None:
    """Entries of ``src`` kept along axis 0 (truncation), or None when copied whole."""
    return job.truncation.kept_length(src) if job.truncation is not None else None


def _copy_attrs(job: _Job, src_node: Group | Dataset, dst_node: Group | Dataset) -> None:
    plain: dict[str, Any] = {}
    refs: dict[str, Any] = {}
    for key in src_node.attrs:
        value = src_node.attrs[key]
        (refs if _has_references(value) else plain)[key] = value
    job.report.attributes += len(plain) + len(refs)
    if dst_node.name == "/" and job.identity is not None:
        plain[SOURCE_ATTR] = encode(job.identity)  # written with the root's attributes
    if plain:
        dst_node.attrs.update_many(plain)
    if refs:

        def write_refs() -> None:
            dst_node.attrs.update_many(refs)
            job.report.references += len(refs)

        job.deferred.append(write_refs)


def _copy_dataset(job: _Job, src: Dataset, parent: Group, name: str) -> None:
    with dataset_errors_named(src.name, job.src.url):
        _copy_dataset_named(job, src, parent, name)


def _copy_dataset_named(job: _Job, src: Dataset, parent: Group, name: str) -> None:
    path = src.name
    settings = job.plan.settings_for(src)
    shape = _dest_shape(job, src)
    kept = _kept_length(job, src)
    # a new destination holds only what this run wrote: nothing to look up before creating
    dst = reopen_dataset(job.dst, parent, name, path) if job.resumed else None
    if dst is None:
        dst = parent.create_dataset(name, shape=shape, dtype=src.dtype, settings=settings)
    job.report.datasets += 1
    if getattr(src, "decoded_from_pickle", False):  # a legacy Pickle array, read by opt-in
        job.report.unpickled.append(path)
    _copy_attrs(job, src, dst)
    if path in job.completed:
        return
    tick = (
        None
        if job.progress is None
        else job.progress.dataset(int(np.prod(shape)) * src.dtype.itemsize)
    )
    if _dtype_has_references(src.dtype):

        def write_ref_values() -> None:
            with dataset_errors_named(path, job.src.url):
                copy_values(src, dst, job.report, jobs=1, raw=False, first_n=kept)
            job.report.references += int(np.prod(shape)) if shape else 1
            if tick is not None:
                tick.finish()

        job.deferred.append(write_ref_values)
        return
    if src.size and job.cluster is not None and kept is None:
        dst.store.flush()
        job.cluster.copy(src, dst, job.report, raw=job.raw)
        if tick is not None:
            tick(src.nbytes)
    elif src.size:
        mark = marker.mark_of(job.dst)
        landed = mark.landed if mark is not None else None
        all_raw = copy_values(
            src,
            dst,
            job.report,
            jobs=job.jobs,
            raw=job.raw,
            on_progress=tick,
            first_n=kept,
            checkpoint=mark,
            landed=None if landed is None else landed.chunk_filter(dst),
        )
        if all_raw:
            job.report.datasets_raw.append(path)
    marker.record_done(job.dst, path)
    if tick is not None:
        tick.finish()


def _copy_group(job: _Job, src: Group, dst: Group) -> None:
    _copy_attrs(job, src, dst)
    for name in src:
        link = src._get_link(name)
        if link is not None:
            _handle_link(job, src, dst, name, link)
            continue
        child = src._get_child(name)
        if isinstance(child, Group):
            sub = dst.require_group(name)
            job.report.groups += 1
            _copy_group(job, child, sub)
        else:
            _copy_dataset(job, child, dst, name)


def _handle_link(
    job: _Job, src: Group, dst: Group, name: str, link: SoftLink | ExternalLink
) -> None:
    if isinstance(link, SoftLink):

        def make_soft() -> None:
            if name not in dst:
                dst.create_soft_link(name, link.path)
            job.report.soft_links += 1
            if link.path not in job.src:
                job.report.broken_links.append(f"{src.name}/{name} -> {link.path} (missing target)")

        job.deferred.append(make_soft)
        return
    where = f"{src.name.rstrip('/')}/{name}"
    target = resolve_link_url(job.src.url, link.url)
    try:
        other = job.exits.enter_context(_open_read(target, job.storage_options))
        node = other[link.path]
    except (NwbStoreError, OSError) as err:
        job.report.broken_links.append(f"{where} -> {link.url}:{link.path} ({err})")
        if job.links == "keep":
            job.deferred.append(lambda: _make_external(job, dst, name, target, link.path))
        return
    if job.links == "resolve":
        if job.progress is not None:
            job.progress.grow(*planned_bytes(node, lambda ds: _dest_shape(job, ds), job.completed))
        if isinstance(node, Group):
            sub = dst.require_group(name)
            job.report.groups += 1
            _copy_group(job, node, sub)
        else:
            _copy_dataset(job, node, dst, name)
        job.report.resolved_links.append(f"{where} <- {link.url}:{link.path}")
        return
    if other.format != job.dst.format:
        target = _convert_target(job, target, other, where, link)
    job.deferred.append(lambda: _make_external(job, dst, name, target, link.path))


def _make_external(job: _Job, dst: Group, name: str, target: str, path: str) -> None:
    if name not in dst:
        # against the final URL: the store may be written under a temporary sibling name
        dst.create_external_link(name, rebase_link_url(target, job.report.destination), path)
    job.report.external_links += 1


def _convert_target(job: _Job, target: str, other: Store, where: str, link: ExternalLink) -> str:
    """Convert an external link's target into the destination's format, next to it.

    An existing conversion is reused only if its identity record matches the target; a stale
    one is converted again; anything else there is refused (see ``link_targets``).
    """
    if target in job.converted:
        return job.converted[target]
    fmt = other.format
    under_way = link_targets.running_destination(target)
    if under_way is not None:  # a link cycle back to a conversion in progress
        job.converted[target] = under_way
        job.report.converted_targets.append(
            f"in progress (link cycle): {target} ({fmt}) -> {under_way}"
        )
        return under_way
    plan = job.planned.get(target) or link_targets.plan_target(
        target,
        other,
        job.report.destination,  # the final URL (the store may be written under another name)
        job.dst.format,
        job.storage_options,
        where=where,
        link=link,
    )
    new = plan.new_url
    job.converted[target] = new
    verdict = plan.judgement.verdict
    if verdict == "reuse":
        job.report.converted_targets.append(f"reused (identity matched): {target} ({fmt}) -> {new}")
        return new
    sub = convert(target, new, progress=False, overwrite=verdict == "stale", **job.options)
    if verdict == "stale":
        job.report.converted_targets.append(
            f"reconverted (stale): {target} ({fmt}) -> {new} ({sub.datasets} datasets; "
            f"{plan.judgement.reason})"
        )
    else:
        job.report.converted_targets.append(
            f"converted: {target} ({fmt}) -> {new} ({sub.datasets} datasets)"
        )
    return new


def _plan_link_targets(
    source: Store,
    dst_url: str,
    fmt: str | None,
    links: str,
    options: Mapping[str, Any],
) -> dict[str, link_targets.PlannedTarget]:
    """Judge the link targets to convert before the destination exists (refusing conflicts)."""
    if links != "keep":
        return {}
    from nwbstore.backends.registry import detect_backend

    dst_format = "hdf5" if detect_backend(dst_url, "w", format=fmt).startswith("hdf5") else "zarr"
    return link_targets.plan_targets(source, dst_url, dst_format, options)


def _open_read(url: str, storage_options: Mapping[str, Any]) -> Store:
    import nwbstore

    return nwbstore.open(url, "r", storage_options=storage_options)


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    links: Literal["keep", "resolve"] = "keep",
    settings: SettingsOverride = None,
    compression: str | None = None,
    chunks: ChunksOption = None,
    fallback: str | None = None,
    strict: bool = False,
    codecs: CodecsMode = None,
    zarr_format: int = 3,
    format: str | None = None,
    jobs: int | None = None,
    scheduler: Any = None,
    progress: ProgressOption = True,
    storage_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    raw: bool = True,
    first_n: int | None = None,
    allow_pickle: bool = False,
    source_memb_size: int | None = None,
    allow_incomplete_source: bool = False,
    concurrency: int | None = None,
) -> ConversionReport:
    """Convert the store at ``src`` into a new store at ``dst`` (any backend to any backend).

    Parameters
    ----------
    src, dst
        Paths or URLs; the destination format comes from ``format=`` or its extension
        (``.nwb``/``.h5`` HDF5, ``.zarr`` Zarr).
    links
        ``"keep"``: soft links stay soft links and external links stay external links (their
        relative paths rebased; a target in another format is converted next to ``dst``).
        ``"resolve"``: external links are replaced by a copy of what they point to, so the
        result is self-contained. Soft links stay links either way.
    settings
        Per-dataset settings: one :class:`DatasetSettings` for all, a mapping from dataset path,
        or a callable ``(path, source_settings) -> DatasetSettings | None``. By default each
        dataset keeps its chunking, codecs and fill value.
    compression
        Global codec override such as ``"zstd:5"`` or ``"gzip"``.
    chunks
        ``"auto"`` to re-chunk with :func:`nwbstore.default_settings`; a chunk shape, applied
        to the datasets of its rank only; a mapping of dataset path -> chunk shape; or a
        :class:`~nwbstore.convert.chunks_option.ChunksRule` (see that module).
    fallback
        What to do with a codec that has no counterpart on the destination: ``None`` (default)
        uses the default transcode (see ``strict``); a codec name transcodes to it; ``"drop"``
        stores uncompressed. An explicit fallback wins over ``strict``.
    strict
        Raise ``UnsupportedCodecError`` (before the destination is created) for a codec with
        no counterpart, instead of transcoding it to the closest standard codec
        (:data:`nwbstore.codecs.DEFAULT_TRANSCODES`; listed in
        ``report.transcoded_codecs`` and a ``CodecTranscodedWarning``).
    codecs
        ``"portable"``: write only codecs every reader of the destination format decodes
        (Zarr v3 core codecs; Zarr v2 standard compressors without filters; HDF5 built-in
        filters), transcoding where needed. ``None`` keeps the source's codecs.
    zarr_format
        3 (default) or 2 for a Zarr destination.
    jobs
        Worker threads for chunk copies (default: 4 for remote destinations, else 2).
    scheduler
        A Dask distributed ``Client`` or scheduler address: chunk ranges of large datasets are
        copied on its workers (Zarr destinations only).
    progress
        Show a tqdm progress bar on stderr (off when stderr is not a terminal). It counts
        destination bytes and ends at exactly its total, also with ``first_n``, ``resume``
        and resolved links. ``False`` for none; a tqdm-like factory (such as
        ``tqdm.notebook.tqdm``) to draw it yourself.
    storage_options
        fsspec/s3fs options for every remote access (source, destination, link targets).
    overwrite
        Replace an existing destination (refused otherwise). The new store is written beside
        the old one and replaces it only once complete, so a failed overwrite leaves the old
        destination intact. A destination that is, contains or lies inside the source is
        refused even so (:class:`~nwbstore.errors.SameSourceAndDestinationError`).
    resume
        Continue an interrupted conversion into ``dst``: finished datasets are skipped and a
        half-copied one continues after its last recorded chunk range. With nothing to resume
        a new conversion starts; a complete destination is left as it is ("already complete"
        in ``report.resume_note``).
    raw
        Copy stored chunks without decoding where the codec pipelines are byte-compatible.
    first_n
        Write a truncated copy: tables keep their first ``first_n`` rows and time series their
        first ``first_n`` samples, with indexes, regions and electrode tables kept consistent
        (see :func:`nwbstore.convert.truncation.plan_truncation`); a store that is not NWB
        keeps the first ``first_n`` entries of every dataset.
    allow_pickle
        Read legacy Pickle-encoded source arrays (hdmf-zarr <= 0.13) with nwbstore's
        non-executing decoder (see :func:`nwbstore.open`); they are written as ordinary
        strings, references or records (never Pickle) and listed in ``report.unpickled``.
    source_memb_size
        Member size of a source HDF5 family (checked against the file; read from it if
        omitted).
    allow_incomplete_source
        Convert a source that carries the incomplete mark (see :func:`nwbstore.open`).
    concurrency
        Requests in flight when writing to object storage: handed to the destination's
        :func:`nwbstore.open` (chunk uploads) and to the upload of an HDF5 destination on
        object storage (parts at a time). ``None``: the defaults.

    Notes
    -----
    An HDF5 destination on object storage (``s3://bucket/x.nwb``) is written to a local
    temporary file (in ``TMPDIR``) and uploaded when complete, as a parallel multipart upload
    for large files, so the key appears only when the file is whole
    (``report.upload`` says so). A resumed conversion to object storage lists the destination
    once and does not upload again the chunks stored after the last checkpoint; resume with
    the same source and options.

    Returns
    -------
    ConversionReport
    """
    import nwbstore

    target_options = _target_options(locals())  # the arguments as given, for link targets
    started = time.perf_counter()
    src_url, dst_url = os.fspath(src), os.fspath(dst)
    # the source is never written: refuse before anything is created or deleted
    check_distinct(src_url, dst_url, staging.temporary_urls(dst_url))
    options = dict(storage_options or {})
    report = ConversionReport(source=src_url, destination=dst_url)
    if exists(dst_url, options) and not (overwrite or resume):
        raise StoreExistsError(
            f"{dst_url} exists: pass overwrite=True (--overwrite) to replace it, or resume=True "
            "(--resume) to continue an interrupted conversion"
        )
    with ExitStack() as exits:
        source = exits.enter_context(
            nwbstore.open(
                src_url,
                "r",
                storage_options=options,
                allow_pickle=allow_pickle,
                memb_size=source_memb_size,
                allow_incomplete=allow_incomplete_source,
            )
        )
        check_chunk_paths(chunks, source.root)
        # decided before the destination is touched: kept lengths of a truncated copy
        truncation = plan_truncation(source, first_n) if first_n is not None else None
        plan = plan_conversion(
            source.root,
            PlanOptions(
                dst_format=destination_format(dst_url, format),
                zarr_format=zarr_format,
                settings=settings,
                compression=compression,
                chunks=chunks,
                fallback=fallback,
                strict=strict,
                codecs=codecs,
                first_n=first_n,
                truncation=truncation,
            ),
        )
        planned = _plan_link_targets(source, dst_url, format, links, options)
        stage = staging.plan_staging(
            dst_url, format, options, overwrite=overwrite and not resume, resume=resume
        )
        open_options = {"concurrency": concurrency}
        opened = open_destination(
            stage, zarr_format, options, resume=resume, open_options=open_options
        )
        report.resume_note = opened.note
        if opened.store is None or opened.mark is None:  # resume of a complete destination
            if not stage.in_place and exists(stage.where, options):
                # a finished result under a temporary name (or a file not uploaded yet)
                report.upload = staging.publish(
                    stage, options, concurrency=concurrency, overwrite=overwrite
                )
            report.seconds = time.perf_counter() - started
            return report
        dest = exits.enter_context(opened.store)
        completed = opened.mark.completed
        job = _Job(
            src=source,
            dst=dest,
            report=report,
            links=links,
            jobs=jobs or (4 if "://" in dst_url else 2),
            raw=raw,
            storage_options=options,
            zarr_format=zarr_format,
            progress=None,
            exits=exits,
            completed=completed,
            truncation=truncation,
            plan=plan,
            options=target_options,
            identity=source_identity(src_url, source, options, first_n=first_n),
            planned=planned,
            resumed=opened.resumed,
        )
        total, done = planned_bytes(source.root, lambda ds: _dest_shape(job, ds), completed)
        bar = open_bar(progress, total=total, initial=done)
        if bar is not None:
            exits.callback(bar.close)
            job.progress = ProgressBar(bar)
        if truncation is not None:
            report.truncated = truncation.summary()
        if scheduler is not None:
            from nwbstore.convert.distributed import DistributedCopier

            job.cluster = DistributedCopier(scheduler, dest.format, options)
            exits.callback(job.cluster.close)
        with link_targets.running(src_url, dst_url), _mark_saved_on_error(opened.mark):
            _copy_group(job, source.root, dest.root)
            for step in job.deferred:
                step()
        marker.finish(dest)
    report.upload = staging.publish(stage, options, concurrency=concurrency, overwrite=overwrite)
    report.transcoded_codecs = list(plan.transcoded)
    plan.warn()
    report.seconds = time.perf_counter() - started
    return report
