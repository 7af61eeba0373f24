"""Write an in-memory ``pynwb.NWBFile`` to HDF5 or Zarr, local or on object storage.

pynwb and hdmf-zarr build the file (containers to builders to datasets); nwbstore owns where
the bytes go:

- **local HDF5** (``.nwb``/``.h5``): ``pynwb.NWBHDF5IO`` writes the file (sec2, or
  the family driver for a name with ``%d``) as ``<name>.partial.nwb``, renamed once complete;
- **HDF5 on object storage** (``s3://b/x.nwb``): HDF5 cannot be written in place there, so it
  is written to a local temporary (in ``TMPDIR``) and uploaded with one PUT, or a parallel
  multipart upload for large files (:func:`nwbstore.convert.upload.upload_file`);
- **Zarr** (``.zarr``, local or ``s3://``): ``hdmf_zarr.NWBZarrIO`` writes into the store
  :func:`nwbstore.open` created. On object storage that is nwbstore's write path: metadata
  written once at the end, every chunk PUT once in the background, ``concurrency`` at a time.
  hdmf-zarr's own re-opening (which clears the store), re-reading and double consolidation
  are bypassed (:mod:`nwbstore.nwb._io_zarr`). Zarr format 2 (``zarr_format=2``, which
  hdmf-zarr 0.14 cannot write) is written as Zarr v3 to a local temporary and converted
  with :func:`nwbstore.convert` (hdmf-zarr 0.13 layout, JSON references, no Pickle).

While a Zarr store is written its root carries nwbstore's incomplete mark, so a failed write
(an iterator yielding a chunk of the wrong dtype or shape, a refused upload) leaves a store
that :func:`nwbstore.open` refuses without ``allow_incomplete=True``; a failed local HDF5 write
leaves only ``<name>.partial.nwb``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nwbstore.errors import MissingDependencyError, NwbStoreError, SettingsError, StoreExistsError
from nwbstore.nodes import INCOMPLETE_ATTR
from nwbstore.nwb._io_errors import denied_as_nwbstore
from nwbstore.nwb._io_format import family_member, is_family, is_remote, nwb_format
from nwbstore.nwb._io_guard import checked_iterators

__all__ = ["WriteReport", "write"]


@dataclass
class WriteReport:
    """What :func:`write` did.

    Attributes
    ----------
    url
        The destination.
    format
        ``"hdf5"`` or ``"zarr"``.
    zarr_format
        3 or 2 for Zarr, ``None`` for HDF5.
    iterators
        Data chunk iterators written chunk by chunk (their chunks were checked).
    notes
        How it was written (temporary files, uploads, conversions, links).
    """

    url: str
    format: str
    zarr_format: int | None = None
    iterators: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        kind = "HDF5" if self.format == "hdf5" else f"Zarr v{self.zarr_format}"
        lines = [f"wrote {self.url} ({kind})", *(f"  {note}" for note in self.notes)]
        return "\n".join(lines)


def write(
    nwbfile: Any,
    url: str | os.PathLike[str],
    *,
    backend_configuration: Any = None,
    storage_options: Mapping[str, Any] | None = None,
    link_data: bool = True,
    jobs: int | None = None,
    progress: Any = True,
    overwrite: bool = False,
    format: str | None = None,
    zarr_format: int = 3,
    driver: str | None = None,
    memb_size: int | None = None,
    concurrency: int | None = None,
    manager: Any = None,
) -> WriteReport:
    """Write ``nwbfile`` to ``url`` as HDF5 or Zarr, local or on object storage.

    Parameters
    ----------
    nwbfile
        The ``pynwb.NWBFile`` to write. Its data may be arrays, lists, ``h5py``/``zarr``
        datasets of other files, ``DataChunkIterator``/``GenericDataChunkIterator`` (written
        chunk by chunk: memory stays bounded by the iterator's buffer), wrapped in
        ``H5DataIO``/``ZarrDataIO`` or not.
    url
        ``session.nwb``/``.h5`` (HDF5), ``raw_%d.nwb`` (HDF5 family), ``session.nwb.zarr``
        (Zarr), or the same on object storage (``s3://bucket/session.nwb.zarr``).
    backend_configuration
        A configuration from ``nwbstore.nwb.get_default_backend_configuration`` (chunking,
        buffering, compression per dataset), applied with
        ``nwbstore.nwb.configure_backend`` before writing.
    storage_options
        fsspec/s3fs options (``endpoint_url``, ``key``, ``secret``, ...), used on every request.
    link_data
        Datasets read from another file of the same format are written as external links
        (True) or copied (False). Across formats they are always copied.
    jobs
        Zarr: chunk writes in parallel at most (on object storage the uploads in flight, when
        ``concurrency`` is not given; locally zarr's codec threads). HDF5 writes one chunk at a
        time (HDF5 is not thread-parallel); ``jobs`` is ignored there.
    progress
        Show a :mod:`tqdm` bar of the bytes written by data chunk iterators (where a large
        write spends its time), sized from their shapes when known; ``False`` for none, or a
        tqdm-like factory as in :func:`nwbstore.convert`. The bar stays off when stderr is not
        a terminal (in a notebook, tqdm's widget is shown).
    overwrite
        Replace what is at ``url``. Without it an existing destination is refused.
    format
        ``"hdf5"`` or ``"zarr"`` when the name does not say.
    zarr_format
        3 (default, hdmf-zarr 0.14) or 2 (hdmf-zarr 0.13 layout).
    driver
        HDF5 driver: ``None``/``"sec2"``, or ``"family"`` (implied by ``%d`` in the name).
    memb_size
        Member size in bytes of a new HDF5 family (default 2 GiB).
    concurrency
        Object storage: requests in flight at most (chunk PUTs for Zarr, parts of the upload
        for HDF5).
    manager
        The ``BuildManager`` to build with. By default the one of the io that read containers
        this file links to (so they become links, as pynwb's linking tutorial does with a
        shared ``get_manager()``), else a new one.

    Returns
    -------
    WriteReport

    Raises
    ------
    StoreExistsError
        Something is at ``url`` and ``overwrite`` is False.
    AccessDeniedError
        Object storage refused the credentials.
    IteratorChunkError
        An iterator yielded a chunk of another dtype or shape than it declared; the
        destination is left visibly incomplete.
    UnknownFormatError
        The format cannot be told from ``url``; pass ``format=``.
    """
    url_s = os.fspath(url)
    fmt = nwb_format(url_s, format)
    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format={zarr_format!r} must be 2 or 3")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs={jobs!r} must be a positive integer (or None)")
    if backend_configuration is not None:
        _configure(nwbfile, backend_configuration, fmt, url_s)
    options = dict(storage_options or {})
    report = WriteReport(url=url_s, format=fmt, zarr_format=zarr_format if fmt == "zarr" else None)
    if manager is None:
        manager = _linked_manager(nwbfile, fmt, report)
    if manager is None:
        from pynwb import get_manager

        manager = get_manager()
    if fmt == "zarr":
        from nwbstore.nwb._io_open_iterators import chunk_open_iterators

        for location in chunk_open_iterators(nwbfile, zarr_format):
            report.notes.append(
                f"{location}: an iterator of unknown length, written in whole chunks of the "
                "default chunk shape (wrap it in ZarrDataIO(chunks=...) to choose another)"
            )
    with checked_iterators(nwbfile, manager, progress=progress, desc=f"write {url_s}") as count:
        report.iterators = count
        if fmt == "hdf5":
            if driver not in (None, "sec2", "family"):
                raise ValueError(f"driver={driver!r}: nwbstore.nwb.write writes sec2 or family")
            family = driver == "family" or is_family(url_s)
            if is_remote(url_s):
                if family:
                    raise ValueError(f"{url_s}: an HDF5 family is written to local disk only")
                _write_hdf5_remote(
                    nwbfile, url_s, options, link_data, overwrite, concurrency, manager, report
                )
            else:
                _write_hdf5_local(
                    nwbfile, url_s, link_data, overwrite, family, memb_size, manager, report
                )
        elif zarr_format == 2:
            _write_zarr_v2(
                nwbfile, url_s, options, link_data, overwrite, jobs, concurrency, manager, report
            )
        else:
            if jobs is not None and concurrency is None and is_remote(url_s):
                concurrency = jobs
            _write_zarr(
                nwbfile, url_s, options, link_data, overwrite, jobs, concurrency, manager, report
            )
    return report


# -- configuration and managers ----------------------------------------------------------------


def _configure(nwbfile: Any, configuration: Any, fmt: str, url: str) -> None:
    """Apply ``configuration``, made for the backend ``url`` is written with."""
    try:
        from nwbstore.nwb.configuration import configure_backend
    except ImportError as err:
        raise MissingDependencyError(
            "backend_configuration= needs nwbstore.nwb.configuration (get_default_backend_"
            f"configuration/configure_backend), which this installation lacks: {err}"
        ) from err
    made_for = getattr(configuration, "backend", fmt)
    if made_for != fmt:
        raise SettingsError(
            f"the backend configuration was made for {made_for!r}, but {url} is written as "
            f"{fmt!r}: make one with get_default_backend_configuration(nwbfile, "
            f"backend={fmt!r}), or pass format={made_for!r}"
        )
    configure_backend(nwbfile, configuration)


def _linked_manager(nwbfile: Any, fmt: str, report: WriteReport) -> Any:
    """The manager of the io that read containers ``nwbfile`` holds from another file."""
    own = getattr(nwbfile, "read_io", None)
    for container in _referenced_containers(nwbfile):
        io = container.get_read_io()
        if io is None or io is own:
            continue
        other = "zarr" if "zarr" in type(io).__name__.lower() else "hdf5"
        if other == fmt:
            report.notes.append(
                f"containers read from {io.source} are written as links to it (its manager)"
            )
            return io.manager
        report.notes.append(
            f"containers read from {io.source} ({other}) cannot be linked from {fmt}: "
            "their data is copied"
        )
        return None
    return None


def _referenced_containers(nwbfile: Any) -> Iterator[Any]:
    """The containers ``nwbfile``'s containers hold in their fields (their own or linked)."""
    from hdmf.container import AbstractContainer

    for container in nwbfile.objects.values():
        for value in getattr(container, "fields", {}).values():
            items = value.values() if isinstance(value, Mapping) else value
            if not isinstance(items, (list, tuple, type({}.values()))):
                items = [items]
            for item in items:
                if isinstance(item, AbstractContainer) and item is not nwbfile:
                    yield item


def _hdf5_io(path: str, manager: Any, file: Any = None) -> Any:
    from pynwb import NWBHDF5IO

    if file is not None:
        return NWBHDF5IO(mode="w", file=file, manager=manager)
    return NWBHDF5IO(path, mode="w", manager=manager)


def _write_into(
    io: Any, nwbfile: Any, link_data: bool, report: WriteReport, *, zarr: bool = False
) -> None:
    """Write ``nwbfile`` with ``io``; a file read from another file is exported from it."""
    extra = {"consolidate_metadata": False} if zarr else {}  # nwbstore's store consolidates
    source = getattr(nwbfile, "read_io", None)
    if source is None:
        io.write(nwbfile, link_data=link_data, **extra)
        return
    same = ("zarr" in type(source).__name__.lower()) == zarr
    links = link_data and same
    # NWBZarrIO.export takes no consolidate_metadata: it consolidates once more (in memory
    # on object storage, where nwbstore's store holds every metadata document until close)
    from nwbstore.nwb._io_zarr import quiet_consolidation

    with quiet_consolidation():
        io.export(src_io=source, nwbfile=nwbfile, write_args={"link_data": links})
    report.notes.append(
        f"exported from {source.source} (the NWBFile was read from it)"
        + ("" if same or not link_data else "; across formats its data is copied")
    )


# -- HDF5 --------------------------------------------------------------------------------------


def _exists_message(url: str) -> str:
    return f"{url} exists: pass overwrite=True to replace it, or write to another location"


def _write_hdf5_local(
    nwbfile: Any,
    path: str,
    link_data: bool,
    overwrite: bool,
    family: bool,
    memb_size: int | None,
    manager: Any,
    report: WriteReport,
) -> None:
    import h5py

    if family and "%" not in os.path.basename(path):
        raise ValueError(
            f"{path}: an HDF5 family needs '%d' in the file name (h5py numbers the members "
            "with it: raw_%d.nwb -> raw_0.nwb, raw_1.nwb, ...)"
        )
    first = family_member(path, 0) if family else path
    if os.path.exists(first) and not overwrite:
        raise StoreExistsError(_exists_message(path))
    base, ext = os.path.splitext(path)
    partial = f"{base}.partial{ext}"  # pynwb wants the .nwb extension kept
    if family:
        size = memb_size or 2**31
        with (
            h5py.File(partial, "w", driver="family", memb_size=size) as h5,
            _hdf5_io(partial, manager, file=h5) as io,
        ):
            _write_into(io, nwbfile, link_data, report)
        members = _family_members(partial)
        if overwrite:
            for stale in _family_members(path)[len(members) :]:
                os.remove(stale)
        for i, member in enumerate(members):
            os.replace(member, family_member(path, i))
        report.notes.append(f"HDF5 family of {len(members)} member(s) of {size} bytes")
    else:
        with _hdf5_io(partial, manager) as io:
            _write_into(io, nwbfile, link_data, report)
        os.replace(partial, path)
    report.notes.append(f"written as {partial} and renamed once complete")


def _family_members(pattern: str) -> list[str]:
    members: list[str] = []
    while os.path.exists(family_member(pattern, len(members))):
        members.append(family_member(pattern, len(members)))
    return members


def _write_hdf5_remote(
    nwbfile: Any,
    url: str,
    options: dict[str, Any],
    link_data: bool,
    overwrite: bool,
    concurrency: int | None,
    manager: Any,
    report: WriteReport,
) -> None:
    from nwbstore.convert.locations import exists
    from nwbstore.convert.upload import upload_file

    if denied_as_nwbstore(url, lambda: exists(url, options)) and not overwrite:
        raise StoreExistsError(_exists_message(url))
    fd, local = tempfile.mkstemp(prefix="nwbstore-write-", suffix=".nwb")
    os.close(fd)
    try:
        with _hdf5_io(local, manager) as io:
            _write_into(io, nwbfile, link_data, report)
        note = denied_as_nwbstore(
            url,
            lambda: upload_file(local, url, options, concurrency=concurrency, overwrite=overwrite),
        )
    finally:
        if os.path.exists(local):
            os.remove(local)
    report.notes.append(note)


# -- Zarr --------------------------------------------------------------------------------------


@contextmanager
def _zarr_threads(jobs: int | None) -> Iterator[None]:
    if jobs is None:
        yield
        return
    import zarr

    with zarr.config.set({"threading.max_workers": jobs}):
        yield


def _open_zarr(
    url: str,
    options: dict[str, Any],
    overwrite: bool,
    zarr_format: int,
    concurrency: int | None,
) -> Any:
    import nwbstore

    try:
        return denied_as_nwbstore(
            url,
            lambda: nwbstore.open(
                url,
                "w" if overwrite else "w-",
                format="zarr",
                zarr_format=zarr_format,
                storage_options=options,
                concurrency=concurrency,
            ),
        )
    except StoreExistsError as err:
        if "another writer" in str(err):
            raise
        raise StoreExistsError(_exists_message(url)) from err


def _write_zarr(
    nwbfile: Any,
    url: str,
    options: dict[str, Any],
    link_data: bool,
    overwrite: bool,
    jobs: int | None,
    concurrency: int | None,
    manager: Any,
    report: WriteReport,
) -> None:
    from nwbstore.nwb._io_zarr import StoreNWBZarrIO, consolidate

    unlinkable = _unlinkable_zarr_sources(nwbfile, url) if link_data else []
    if unlinkable:
        link_data = False
        report.notes.append(
            f"datasets of other Zarr stores were copied, not linked: no link from {url} to "
            f"{', '.join(sorted(unlinkable))} can be followed (a store on object storage links "
            "to stores on the same storage, read with nwbstore.nwb.read)"
        )
    store = _open_zarr(url, options, overwrite, 3, concurrency)
    group = store.zarr_group
    ok = False
    try:
        # the mark is in the root document until the end, and on storage before any chunk
        # (one PUT of the root on object storage): a failed or killed write looks incomplete
        group.attrs[INCOMPLETE_ATTR] = json.dumps({"completed": [], "writer": "nwbstore.nwb"})
        store.flush()
        with (
            _zarr_threads(jobs),
            StoreNWBZarrIO(group, "w", manager, url=url, storage_options=options) as io,
        ):
            _write_into(io, nwbfile, link_data, report, zarr=True)
        del group.attrs[INCOMPLETE_ATTR]
        # hdmf-zarr wrote through zarr, past nwbstore's bookkeeping: consolidate here (in
        # memory on object storage; the store writes the root document once, at close)
        consolidate(group)
        ok = True
    finally:
        _close(store, ok, url)
    if is_remote(url):
        report.notes.append(
            "written through nwbstore's object-storage write path (metadata once at the end, "
            f"each chunk PUT once, {concurrency or 'default'} uploads in flight)"
        )


def _unlinkable_zarr_sources(nwbfile: Any, url: str) -> list[str]:
    """Stores of ``zarr.Array`` data in ``nwbfile`` that a link from ``url`` cannot reach.

    hdmf-zarr names a link's target store by ``str(store)``: a local store by its folder,
    nwbstore's stores on object storage by their URL. A store on object storage can link to
    stores of the same protocol; a local store to local stores only.
    """
    import zarr
    from hdmf.data_utils import DataIO
    from hdmf_zarr.utils import get_store_path

    protocol = url.partition("://")[0] if is_remote(url) else "file"
    found: set[str] = set()
    for container in nwbfile.objects.values():
        for value in getattr(container, "fields", {}).values():
            data = value.data if isinstance(value, DataIO) else value
            if not isinstance(data, zarr.Array):
                continue
            name = str(get_store_path(data.store))
            if "://" in name:
                ok = name.partition("://")[0] == protocol
            else:
                ok = protocol == "file" and os.path.isabs(name)
            if not ok:
                found.add(name)
    return list(found)


def _close(store: Any, ok: bool, url: str) -> None:
    """Close (and so flush) the store; after a failure the flush writes the incomplete mark."""
    try:
        store.close()
    except NwbStoreError:
        if ok:
            raise
    except Exception as err:
        if ok:
            raise NwbStoreError(f"finishing {url} failed: {err}") from err


def _write_zarr_v2(
    nwbfile: Any,
    url: str,
    options: dict[str, Any],
    link_data: bool,
    overwrite: bool,
    jobs: int | None,
    concurrency: int | None,
    manager: Any,
    report: WriteReport,
) -> None:
    import nwbstore
    from nwbstore.convert.locations import exists

    if denied_as_nwbstore(url, lambda: exists(url, options)) and not overwrite:
        raise StoreExistsError(_exists_message(url))
    staging = tempfile.mkdtemp(prefix="nwbstore-write-")
    try:
        local = os.path.join(staging, "v3.nwb.zarr")
        scratch = WriteReport(local, "zarr")
        _write_zarr(nwbfile, local, {}, link_data, False, jobs, None, manager, scratch)
        converted = nwbstore.convert(
            local,
            url,
            zarr_format=2,
            storage_options=options,
            overwrite=overwrite,
            progress=False,
            concurrency=concurrency,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.notes.append(
        "hdmf-zarr 0.14 writes Zarr v3 only: written as Zarr v3 to a local temporary and "
        f"converted to Zarr v2 (hdmf-zarr 0.13 layout): {converted}"
    )
